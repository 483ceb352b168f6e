//! Plays the event source mapping of the table's DynamoDB stream: reads DynamoDB Local's stream
//! shard by shard, hands each batch (as the Lambda event AWS would send) to a handler, and on a
//! partial batch failure reads again from the failed record, with growing pauses, until the
//! handler succeeds (`MaximumRetryAttempts: -1`, `MaximumRecordAgeInSeconds: -1`).

use std::collections::HashMap;
use std::future::Future;
use std::time::Duration;

use aws_lambda_events::event::dynamodb::{Event, EventRecord, StreamRecord};
use aws_lambda_events::event::streams::DynamoDbEventResponse;
use aws_sdk_dynamodbstreams::Client;
use aws_sdk_dynamodbstreams::types::{Record, ShardIteratorType};

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
    tokio::select! {
        () = poll(&client, &stream_arn, &handler) => {}
        () = shutdown => {}
    }
}

async fn poll<H, Fut>(client: &Client, stream_arn: &str, handler: &H)
where
    H: Fn(Event) -> Fut,
    Fut: Future<Output = DynamoDbEventResponse>,
{
    let mut shards: HashMap<String, ShardState> = HashMap::new();
    let mut order: Vec<String> = Vec::new();
    let mut pause = FIRST_RETRY_PAUSE;
    loop {
        match client.describe_stream().stream_arn(stream_arn).send().await {
            Ok(described) => {
                for shard in described
                    .stream_description()
                    .map(|d| d.shards())
                    .unwrap_or_default()
                {
                    if let Some(id) = shard.shard_id()
                        && !shards.contains_key(id)
                    {
                        shards.insert(id.to_owned(), ShardState::default());
                        order.push(id.to_owned());
                    }
                }
            }
            Err(error) => {
                tracing::warn!(error = %chat_shared::domain::error::ErrorChain(&error), "DescribeStream failed");
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
            match step(client, stream_arn, shard_id, state, handler).await {
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

enum Step {
    Handled,
    Idle,
    Failed,
}

async fn step<H, Fut>(
    client: &Client,
    stream_arn: &str,
    shard_id: &str,
    state: &mut ShardState,
    handler: &H,
) -> Step
where
    H: Fn(Event) -> Fut,
    Fut: Future<Output = DynamoDbEventResponse>,
{
    if state.iterator.is_none() {
        let (kind, sequence) = match (&state.retry_from, &state.checkpoint) {
            (Some(from), _) => (ShardIteratorType::AtSequenceNumber, Some(from.clone())),
            (None, Some(done)) => (ShardIteratorType::AfterSequenceNumber, Some(done.clone())),
            (None, None) => (ShardIteratorType::TrimHorizon, None),
        };
        let got = client
            .get_shard_iterator()
            .stream_arn(stream_arn)
            .shard_id(shard_id)
            .shard_iterator_type(kind)
            .set_sequence_number(sequence)
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
    let mut event = Event::default();
    event.records = records
        .iter()
        .map(|r| lambda_record(r, stream_arn))
        .collect();
    let last = event
        .records
        .last()
        .and_then(|r| r.change.sequence_number.clone());
    let response = handler(event).await;
    match response
        .batch_item_failures
        .first()
        .and_then(|f| f.item_identifier.clone())
    {
        None => {
            state.checkpoint = last;
            state.retry_from = None;
            state.iterator = out.next_shard_iterator().map(str::to_owned);
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
