//! Plays the event source mapping of the event stream (Kinesis, `MaximumRetryAttempts: -1`):
//! kinesis-local's stream as a [`ShardSource`] of [`crate::shard_poller`], read from the trim
//! horizon. A partial batch failure is read again from the lowest failed sequence number; an
//! answer naming a record that is not in the batch fails the whole batch, as Lambda does.

use std::future::Future;

use aws_lambda_events::encodings::SecondTimestamp;
use aws_lambda_events::event::kinesis::{KinesisEvent, KinesisEventRecord, KinesisRecord};
use aws_lambda_events::event::streams::KinesisEventResponse;
use aws_sdk_kinesis::Client;
use aws_sdk_kinesis::types::{Record, ShardIteratorType};

use crate::shard_poller::{Page, ShardSource, Start, failed};

/// The record as the Lambda event carries it.
fn lambda_record(record: &Record, shard_id: &str, stream_arn: &str) -> KinesisEventRecord {
    let mut kinesis = KinesisRecord::default();
    kinesis.kinesis_schema_version = Some("1.0".to_owned());
    kinesis.partition_key = record.partition_key().unwrap_or_default().to_owned();
    kinesis.sequence_number = record.sequence_number().to_owned();
    // `Base64Data` cannot be built directly (non-exhaustive): fill the default one.
    kinesis.data.extend_from_slice(record.data().as_ref());
    if let Some(at) = record.approximate_arrival_timestamp() {
        let millis = at.to_millis().unwrap_or_default();
        kinesis.approximate_arrival_timestamp =
            SecondTimestamp(chrono::DateTime::from_timestamp_millis(millis).unwrap_or_default());
    }
    let mut out = KinesisEventRecord::default();
    out.aws_region = Some("us-east-1".to_owned());
    out.event_id = Some(format!("{shard_id}:{}", record.sequence_number()));
    out.event_name = Some("aws:kinesis:record".to_owned());
    out.event_source = Some("aws:kinesis".to_owned());
    out.event_source_arn = Some(stream_arn.to_owned());
    out.event_version = Some("1.0".to_owned());
    out.kinesis = kinesis;
    out
}

/// Kinesis sequence numbers are decimal strings: a longer one is larger.
fn sequence_order(a: &str, b: &str) -> std::cmp::Ordering {
    (a.len(), a).cmp(&(b.len(), b))
}

/// Where a batch must be read again from: `None` when it succeeded; the lowest reported sequence
/// number; the batch's first record when an answer names none of its records.
fn retry_point(event: &KinesisEvent, response: &KinesisEventResponse) -> Option<String> {
    if response.batch_item_failures.is_empty() {
        return None;
    }
    let in_batch = |s: &str| event.records.iter().any(|r| r.kinesis.sequence_number == s);
    let mut lowest: Option<&str> = None;
    for failure in &response.batch_item_failures {
        match failure.item_identifier.as_deref() {
            Some(s) if in_batch(s) => {
                if lowest.is_none_or(|l| sequence_order(s, l).is_lt()) {
                    lowest = Some(s);
                }
            }
            // Null, empty or foreign: the whole batch failed.
            _ => {
                lowest = None;
                break;
            }
        }
    }
    lowest.map(str::to_owned).or_else(|| {
        event
            .records
            .first()
            .map(|r| r.kinesis.sequence_number.clone())
    })
}

/// The event stream, by its name (its ARN read once, for the records' `eventSourceARN`).
#[derive(Debug)]
struct EventStream {
    client: Client,
    stream_name: String,
    stream_arn: String,
}

impl ShardSource for EventStream {
    type Event = KinesisEvent;
    type Response = KinesisEventResponse;

    async fn shards(&mut self) -> Result<Vec<String>, String> {
        if self.stream_arn.is_empty() {
            let out = self
                .client
                .describe_stream_summary()
                .stream_name(&self.stream_name)
                .send()
                .await
                .map_err(|e| failed(&e))?;
            self.stream_arn = out
                .stream_description_summary()
                .map(|s| s.stream_arn().to_owned())
                .unwrap_or_default();
        }
        let mut ids = Vec::new();
        let mut next: Option<String> = None;
        loop {
            let request = match &next {
                // A page token carries the stream: naming it as well is an error.
                Some(token) => self.client.list_shards().next_token(token),
                None => self.client.list_shards().stream_name(&self.stream_name),
            };
            let out = request.send().await.map_err(|e| failed(&e))?;
            ids.extend(out.shards().iter().map(|s| s.shard_id().to_owned()));
            match out.next_token() {
                Some(token) if !token.is_empty() => next = Some(token.to_owned()),
                _ => return Ok(ids),
            }
        }
    }

    async fn iterator(&self, shard: &str, start: Start) -> Result<Option<String>, String> {
        let (kind, sequence) = match start {
            Start::At(from) => (ShardIteratorType::AtSequenceNumber, Some(from)),
            Start::After(done) => (ShardIteratorType::AfterSequenceNumber, Some(done)),
            Start::TrimHorizon => (ShardIteratorType::TrimHorizon, None),
        };
        let out = self
            .client
            .get_shard_iterator()
            .stream_name(&self.stream_name)
            .shard_id(shard)
            .shard_iterator_type(kind)
            .set_starting_sequence_number(sequence)
            .send()
            .await
            .map_err(|e| failed(&e))?;
        Ok(out.shard_iterator)
    }

    async fn records(
        &self,
        shard: &str,
        iterator: &str,
        limit: i32,
    ) -> Result<Page<KinesisEvent>, String> {
        let out = self
            .client
            .get_records()
            .shard_iterator(iterator)
            .limit(limit)
            .send()
            .await
            .map_err(|e| failed(&e))?;
        let next_iterator = out.next_shard_iterator().map(str::to_owned);
        let records = out.records();
        if records.is_empty() {
            return Ok(Page {
                event: None,
                last: None,
                next_iterator,
            });
        }
        let mut event = KinesisEvent::default();
        event.records = records
            .iter()
            .map(|r| lambda_record(r, shard, &self.stream_arn))
            .collect();
        let last = event
            .records
            .last()
            .map(|r| r.kinesis.sequence_number.clone());
        Ok(Page {
            event: Some(event),
            last,
            next_iterator,
        })
    }

    fn retry_point(event: &KinesisEvent, response: &KinesisEventResponse) -> Option<String> {
        retry_point(event, response)
    }
}

/// Reads the stream until `shutdown` resolves, handing batches to `handler`.
pub async fn run<H, Fut>(
    client: Client,
    stream_name: String,
    handler: H,
    shutdown: impl Future<Output = ()>,
) where
    H: Fn(KinesisEvent) -> Fut,
    Fut: Future<Output = KinesisEventResponse>,
{
    let source = EventStream {
        client,
        stream_name,
        stream_arn: String::new(),
    };
    crate::shard_poller::run(source, handler, shutdown).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn batch(sequence_numbers: &[&str]) -> KinesisEvent {
        let mut event = KinesisEvent::default();
        event.records = sequence_numbers
            .iter()
            .map(|s| {
                let mut record = KinesisEventRecord::default();
                record.kinesis.sequence_number = (*s).to_owned();
                record
            })
            .collect();
        event
    }

    fn failing(ids: &[Option<&str>]) -> KinesisEventResponse {
        let mut response = KinesisEventResponse::default();
        for id in ids {
            let mut failure = aws_lambda_events::event::streams::KinesisBatchItemFailure::default();
            failure.item_identifier = id.map(str::to_owned);
            response.batch_item_failures.push(failure);
        }
        response
    }

    #[test]
    fn a_batch_is_read_again_from_its_lowest_failed_record() {
        let event = batch(&["98", "99", "100", "101"]);
        assert_eq!(retry_point(&event, &failing(&[])), None);
        assert_eq!(
            retry_point(&event, &failing(&[Some("101"), Some("99")])),
            Some("99".to_owned()),
            "numeric order, not string order"
        );
        assert_eq!(
            retry_point(&event, &failing(&[Some("100")])),
            Some("100".to_owned())
        );
    }

    #[test]
    fn a_failure_naming_no_record_of_the_batch_fails_all_of_it() {
        let event = batch(&["1", "2", "3"]);
        for bad in [None, Some(""), Some("7")] {
            assert_eq!(
                retry_point(&event, &failing(&[Some("3"), bad])),
                Some("1".to_owned()),
                "{bad:?}"
            );
        }
    }
}
