//! Plays the event source mapping of the event stream (Kinesis): reads kinesis-local's stream
//! shard by shard from the trim horizon, hands each batch (as the Lambda event AWS would send)
//! to a handler, and on a partial batch failure reads again from the lowest failed sequence
//! number, with growing pauses, until the handler succeeds (`MaximumRetryAttempts: -1`; locally
//! records never expire). An answer naming a record that is not in the batch fails the whole
//! batch, as Lambda does.

use std::collections::HashMap;
use std::future::Future;
use std::time::Duration;

use aws_lambda_events::encodings::SecondTimestamp;
use aws_lambda_events::event::kinesis::{KinesisEvent, KinesisEventRecord, KinesisRecord};
use aws_lambda_events::event::streams::KinesisEventResponse;
use aws_sdk_kinesis::Client;
use aws_sdk_kinesis::types::{Record, ShardIteratorType};

const BATCH_SIZE: i32 = 100;
const IDLE_PAUSE: Duration = Duration::from_millis(100);
const FIRST_RETRY_PAUSE: Duration = Duration::from_millis(200);
const LONGEST_RETRY_PAUSE: Duration = Duration::from_secs(2);

/// Where a shard's reading stands.
#[derive(Debug, Default)]
struct ShardState {
    /// The last record handled successfully.
    checkpoint: Option<String>,
    /// Read again from this record (after a failure).
    retry_from: Option<String>,
    iterator: Option<String>,
    closed: bool,
}

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
    tokio::select! {
        () = poll(&client, &stream_name, &handler) => {}
        () = shutdown => {}
    }
}

async fn poll<H, Fut>(client: &Client, stream_name: &str, handler: &H)
where
    H: Fn(KinesisEvent) -> Fut,
    Fut: Future<Output = KinesisEventResponse>,
{
    let mut shards: HashMap<String, ShardState> = HashMap::new();
    let mut order: Vec<String> = Vec::new();
    let mut stream_arn = String::new();
    let mut pause = FIRST_RETRY_PAUSE;
    loop {
        if stream_arn.is_empty() {
            match client
                .describe_stream_summary()
                .stream_name(stream_name)
                .send()
                .await
            {
                Ok(out) => {
                    stream_arn = out
                        .stream_description_summary()
                        .map(|s| s.stream_arn().to_owned())
                        .unwrap_or_default();
                }
                Err(error) => {
                    tracing::warn!(error = %chat_shared::domain::error::ErrorChain(&error), "DescribeStreamSummary failed");
                    tokio::time::sleep(LONGEST_RETRY_PAUSE).await;
                    continue;
                }
            }
        }
        match list_shards(client, stream_name).await {
            Ok(ids) => {
                for id in ids {
                    if !shards.contains_key(&id) {
                        shards.insert(id.clone(), ShardState::default());
                        order.push(id);
                    }
                }
            }
            Err(error) => {
                tracing::warn!(%error, "ListShards failed");
                tokio::time::sleep(LONGEST_RETRY_PAUSE).await;
                continue;
            }
        }
        let mut busy = false;
        for shard_id in &order {
            let Some(state) = shards.get_mut(shard_id) else {
                continue;
            };
            if state.closed {
                continue;
            }
            match step(client, stream_name, &stream_arn, shard_id, state, handler).await {
                Step::Handled => {
                    busy = true;
                    pause = FIRST_RETRY_PAUSE;
                }
                Step::Idle => {}
                Step::Failed => {
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(LONGEST_RETRY_PAUSE);
                }
            }
        }
        if !busy {
            tokio::time::sleep(IDLE_PAUSE).await;
        }
    }
}

/// Every shard id of the stream (every page).
async fn list_shards(client: &Client, stream_name: &str) -> Result<Vec<String>, String> {
    let mut ids = Vec::new();
    let mut next: Option<String> = None;
    loop {
        let request = match &next {
            // A page token carries the stream: naming it as well is an error.
            Some(token) => client.list_shards().next_token(token),
            None => client.list_shards().stream_name(stream_name),
        };
        let out = request
            .send()
            .await
            .map_err(|e| chat_shared::domain::error::ErrorChain(&e).to_string())?;
        ids.extend(out.shards().iter().map(|s| s.shard_id().to_owned()));
        match out.next_token() {
            Some(token) if !token.is_empty() => next = Some(token.to_owned()),
            _ => return Ok(ids),
        }
    }
}

enum Step {
    Handled,
    Idle,
    Failed,
}

async fn step<H, Fut>(
    client: &Client,
    stream_name: &str,
    stream_arn: &str,
    shard_id: &str,
    state: &mut ShardState,
    handler: &H,
) -> Step
where
    H: Fn(KinesisEvent) -> Fut,
    Fut: Future<Output = KinesisEventResponse>,
{
    if state.iterator.is_none() {
        let (kind, sequence) = match (&state.retry_from, &state.checkpoint) {
            (Some(from), _) => (ShardIteratorType::AtSequenceNumber, Some(from.clone())),
            (None, Some(done)) => (ShardIteratorType::AfterSequenceNumber, Some(done.clone())),
            (None, None) => (ShardIteratorType::TrimHorizon, None),
        };
        let got = client
            .get_shard_iterator()
            .stream_name(stream_name)
            .shard_id(shard_id)
            .shard_iterator_type(kind)
            .set_starting_sequence_number(sequence)
            .send()
            .await;
        match got {
            Ok(out) => state.iterator = out.shard_iterator,
            Err(error) => {
                tracing::warn!(error = %chat_shared::domain::error::ErrorChain(&error), "GetShardIterator failed");
                return Step::Failed;
            }
        }
        if state.iterator.is_none() {
            state.closed = true;
            return Step::Idle;
        }
    }
    let Some(iterator) = state.iterator.clone() else {
        return Step::Idle;
    };
    let out = match client
        .get_records()
        .shard_iterator(iterator)
        .limit(BATCH_SIZE)
        .send()
        .await
    {
        Ok(out) => out,
        Err(error) => {
            tracing::warn!(error = %chat_shared::domain::error::ErrorChain(&error), "GetRecords failed");
            state.iterator = None;
            return Step::Failed;
        }
    };
    let records = out.records();
    if records.is_empty() {
        state.iterator = out.next_shard_iterator().map(str::to_owned);
        state.closed = state.iterator.is_none();
        return Step::Idle;
    }
    let mut event = KinesisEvent::default();
    event.records = records
        .iter()
        .map(|r| lambda_record(r, shard_id, stream_arn))
        .collect();
    let last = event
        .records
        .last()
        .map(|r| r.kinesis.sequence_number.clone());
    let next_iterator = out.next_shard_iterator().map(str::to_owned);
    let response = handler(event.clone()).await;
    match retry_point(&event, &response) {
        None => {
            state.checkpoint = last;
            state.retry_from = None;
            state.iterator = next_iterator;
            state.closed = state.iterator.is_none();
            Step::Handled
        }
        Some(failed_at) => {
            tracing::info!(shard = shard_id, from = %failed_at, "batch failed in part; reading again");
            state.retry_from = Some(failed_at);
            state.iterator = None;
            Step::Failed
        }
    }
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
