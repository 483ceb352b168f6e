//! `stream-publisher`: fed by the table's DynamoDB stream (an event source mapping that retries
//! from the failed record until it succeeds), it writes the contract's CloudEvents to Kinesis in
//! order per conversation and reports partial batch failures.

use aws_lambda_events::event::dynamodb::Event;
use aws_lambda_events::event::streams::{DynamoDbBatchItemFailure, DynamoDbEventResponse};
use chat_shared::platform::config::{ConfigError, Env};
use chat_shared::services::events::{EventSink, KinesisSink, events_of, publish};
use lambda_runtime::{Error, LambdaEvent};

/// What the function builds once.
#[derive(Debug, Clone)]
pub struct Deps<S> {
    pub sink: S,
}

impl Deps<KinesisSink> {
    /// `EVENT_STREAM_NAME`: the Kinesis stream.
    pub async fn from_env<F: Fn(&str) -> Option<String>>(
        env: &Env<F>,
    ) -> Result<Self, ConfigError> {
        let stream = env.required("EVENT_STREAM_NAME")?;
        let sdk = chat_shared::platform::aws::load_sdk_config().await?;
        Ok(Self {
            sink: KinesisSink::new(aws_sdk_kinesis::Client::new(&sdk), stream),
        })
    }
}

pub async fn handle<S: EventSink>(
    deps: &Deps<S>,
    event: LambdaEvent<Event>,
) -> Result<DynamoDbEventResponse, Error> {
    Ok(publish_batch(&deps.sink, event.payload).await)
}

/// The events of a batch, published; a record that cannot be read is logged and skipped (the
/// mapping retries without limit, so failing it would stop the shard for good).
pub async fn publish_batch<S: EventSink>(sink: &S, batch: Event) -> DynamoDbEventResponse {
    let mut events = Vec::new();
    for record in &batch.records {
        match events_of(record) {
            Ok(mut found) => events.append(&mut found),
            Err(error) => tracing::error!(%error, "skipped an unreadable stream record"),
        }
    }
    let count = events.len();
    let failed = publish(sink, events).await;
    tracing::info!(records = batch.records.len(), events = count, failed_from = ?failed, "published");
    let mut response = DynamoDbEventResponse::default();
    if let Some(sequence_number) = failed {
        chat_shared::platform::metrics::degraded(
            chat_shared::platform::metrics::Dependency::Kinesis,
        );
        let mut failure = DynamoDbBatchItemFailure::default();
        failure.item_identifier = Some(sequence_number);
        response.batch_item_failures.push(failure);
    }
    response
}
