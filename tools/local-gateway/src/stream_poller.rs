//! Plays the event source mapping of the table's DynamoDB stream (`MaximumRetryAttempts: -1`,
//! `MaximumRecordAgeInSeconds: -1`): DynamoDB Local's stream as a [`ShardSource`] of
//! [`crate::shard_poller`]. A partial batch failure is read again from the first failed record.

use std::collections::HashMap;
use std::future::Future;

use aws_lambda_events::event::dynamodb::{Event, EventRecord, StreamRecord};
use aws_lambda_events::event::streams::DynamoDbEventResponse;
use aws_sdk_dynamodbstreams::Client;
use aws_sdk_dynamodbstreams::types::{Record, ShardIteratorType};

use crate::shard_poller::{Page, ShardSource, Start, failed};

fn item(
    image: Option<&HashMap<String, aws_sdk_dynamodbstreams::types::AttributeValue>>,
) -> serde_dynamo::Item {
    image
        .map(|m| {
            m.iter()
                .map(|(k, v)| (k.clone(), serde_dynamo::AttributeValue::from(v.clone())))
                .collect::<HashMap<_, _>>()
        })
        .unwrap_or_default()
        .into()
}

/// A stream record as the Lambda event source mapping hands it to `stream-publisher`.
pub fn lambda_record(record: &Record, stream_arn: &str) -> EventRecord {
    let mut out = EventRecord::default();
    out.aws_region = "us-east-1".to_owned();
    out.event_id = record.event_id().unwrap_or_default().to_owned();
    out.event_name = record
        .event_name()
        .map(|n| n.as_str().to_owned())
        .unwrap_or_default();
    out.event_source = Some("aws:dynamodb".to_owned());
    out.event_version = Some("1.1".to_owned());
    out.event_source_arn = Some(stream_arn.to_owned());
    let mut change = StreamRecord::default();
    if let Some(dynamodb) = record.dynamodb() {
        change.keys = item(dynamodb.keys.as_ref());
        change.new_image = item(dynamodb.new_image.as_ref());
        change.old_image = item(dynamodb.old_image.as_ref());
        change.sequence_number = dynamodb.sequence_number().map(str::to_owned);
        change.size_bytes = dynamodb.size_bytes().unwrap_or_default();
        if let Some(at) = dynamodb.approximate_creation_date_time() {
            let millis = at.to_millis().unwrap_or_default();
            change.approximate_creation_date_time =
                chrono::DateTime::from_timestamp_millis(millis).unwrap_or_default();
        }
    }
    out.change = change;
    out
}

/// The table's stream, by its ARN.
#[derive(Debug)]
struct TableStream {
    client: Client,
    stream_arn: String,
}

impl ShardSource for TableStream {
    type Event = Event;
    type Response = DynamoDbEventResponse;

    async fn shards(&mut self) -> Result<Vec<String>, String> {
        let described = self
            .client
            .describe_stream()
            .stream_arn(&self.stream_arn)
            .send()
            .await
            .map_err(|e| failed(&e))?;
        Ok(described
            .stream_description()
            .map(|d| d.shards())
            .unwrap_or_default()
            .iter()
            .filter_map(|s| s.shard_id().map(str::to_owned))
            .collect())
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
            .stream_arn(&self.stream_arn)
            .shard_id(shard)
            .shard_iterator_type(kind)
            .set_sequence_number(sequence)
            .send()
            .await
            .map_err(|e| failed(&e))?;
        Ok(out.shard_iterator)
    }

    async fn records(
        &self,
        _shard: &str,
        iterator: &str,
        limit: i32,
    ) -> Result<Page<Event>, String> {
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
        let mut event = Event::default();
        event.records = records
            .iter()
            .map(|r| lambda_record(r, &self.stream_arn))
            .collect();
        let last = event
            .records
            .last()
            .and_then(|r| r.change.sequence_number.clone());
        Ok(Page {
            event: Some(event),
            last,
            next_iterator,
        })
    }

    fn retry_point(_event: &Event, response: &DynamoDbEventResponse) -> Option<String> {
        response
            .batch_item_failures
            .first()
            .and_then(|f| f.item_identifier.clone())
    }
}

/// The ARN of the gateway's table's stream, as CloudFormation hands it to a mapping.
pub async fn table_stream_arn(gateway: &crate::server::Gateway) -> Result<String, String> {
    let table = gateway.deps.store.table().as_str().to_owned();
    gateway
        .deps
        .store
        .client()
        .describe_table()
        .table_name(&table)
        .send()
        .await
        .map_err(|e| {
            format!(
                "describe table {table}: {}",
                chat_shared::domain::error::ErrorChain(&e)
            )
        })?
        .table
        .and_then(|t| t.latest_stream_arn)
        .ok_or_else(|| format!("table {table} has no stream"))
}

/// Reads the stream until `shutdown` resolves, handing batches to `handler`.
pub async fn run<H, Fut>(
    client: Client,
    stream_arn: String,
    handler: H,
    shutdown: impl Future<Output = ()>,
) where
    H: Fn(Event) -> Fut,
    Fut: Future<Output = DynamoDbEventResponse>,
{
    crate::shard_poller::run(TableStream { client, stream_arn }, handler, shutdown).await;
}

/// As [`run`], counting idle rounds (`crate::shard_poller::run_counted`).
pub async fn run_counted<H, Fut>(
    client: Client,
    stream_arn: String,
    handler: H,
    idle_rounds: &std::sync::atomic::AtomicU64,
) where
    H: Fn(Event) -> Fut,
    Fut: Future<Output = DynamoDbEventResponse>,
{
    crate::shard_poller::run_counted(
        TableStream { client, stream_arn },
        handler,
        std::future::pending(),
        idle_rounds,
    )
    .await;
}
