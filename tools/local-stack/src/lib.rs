//! Creates the chat table and the event stream in the local emulators exactly as `template.yaml`
//! defines them: the template is read and its `ChatTable` and `EventStream` properties become the
//! `CreateTable` and `CreateStream` requests. There is no second copy of the schema to drift.
//!
//! Properties that only mean something in AWS (encryption, point-in-time recovery, retention) are
//! accepted and ignored; any property this crate does not know is an error, so that a change to
//! the template cannot be silently left out of the local stack.

use std::path::Path;
use std::time::Duration;

use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType,
    LocalSecondaryIndex, Projection, ProjectionType, ScalarAttributeType, StreamSpecification,
    StreamViewType, TimeToLiveSpecification,
};
use aws_sdk_kinesis::types::{StreamMode, StreamModeDetails, StreamStatus};
use serde::Deserialize;
use serde_norway::Value;

pub mod template;

pub use template::{StreamProperties, TableProperties, Template};

#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("template.yaml: {0}")]
    Template(String),
    #[error("DynamoDB: {0}")]
    Dynamo(String),
    #[error("Kinesis: {0}")]
    Kinesis(String),
    #[error(transparent)]
    Config(#[from] chat_shared::platform::config::ConfigError),
}

fn dynamo_err(e: impl std::error::Error + 'static) -> SetupError {
    SetupError::Dynamo(chat_shared::domain::error::ErrorChain(&e).to_string())
}

fn kinesis_err(e: impl std::error::Error + 'static) -> SetupError {
    SetupError::Kinesis(chat_shared::domain::error::ErrorChain(&e).to_string())
}

impl Template {
    pub fn load(path: &Path) -> Result<Self, SetupError> {
        let text = std::fs::read_to_string(path).map_err(|source| SetupError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Self::parse(&text)
    }

    /// The repository's own `template.yaml` (this crate sits at `tools/local-stack`).
    pub fn of_this_repository() -> Result<Self, SetupError> {
        Self::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../../template.yaml"))
    }
}

fn key_schema(elements: &[template::KeyElement]) -> Result<Vec<KeySchemaElement>, SetupError> {
    elements
        .iter()
        .map(|k| {
            KeySchemaElement::builder()
                .attribute_name(&k.attribute_name)
                .key_type(KeyType::from(k.key_type.as_str()))
                .build()
                .map_err(dynamo_err)
        })
        .collect()
}

fn projection(p: &template::ProjectionDef) -> Projection {
    Projection::builder()
        .projection_type(ProjectionType::from(p.projection_type.as_str()))
        .set_non_key_attributes(if p.non_key_attributes.is_empty() {
            None
        } else {
            Some(p.non_key_attributes.clone())
        })
        .build()
}

/// Creates the table as the template defines it, enables its TTL, and returns the ARN of its
/// DynamoDB stream (what the local event source mapping reads).
pub async fn create_table(
    client: &aws_sdk_dynamodb::Client,
    name: &str,
    props: &TableProperties,
) -> Result<Option<String>, SetupError> {
    let mut request = client
        .create_table()
        .table_name(name)
        .billing_mode(BillingMode::from(props.billing_mode.as_str()))
        .set_key_schema(Some(key_schema(&props.key_schema)?));
    for a in &props.attribute_definitions {
        request = request.attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name(&a.attribute_name)
                .attribute_type(ScalarAttributeType::from(a.attribute_type.as_str()))
                .build()
                .map_err(dynamo_err)?,
        );
    }
    for g in &props.global_secondary_indexes {
        request = request.global_secondary_indexes(
            GlobalSecondaryIndex::builder()
                .index_name(&g.index_name)
                .set_key_schema(Some(key_schema(&g.key_schema)?))
                .projection(projection(&g.projection))
                .build()
                .map_err(dynamo_err)?,
        );
    }
    for l in &props.local_secondary_indexes {
        request = request.local_secondary_indexes(
            LocalSecondaryIndex::builder()
                .index_name(&l.index_name)
                .set_key_schema(Some(key_schema(&l.key_schema)?))
                .projection(projection(&l.projection))
                .build()
                .map_err(dynamo_err)?,
        );
    }
    if let Some(stream) = &props.stream_specification {
        request = request.stream_specification(
            StreamSpecification::builder()
                .stream_enabled(true)
                .stream_view_type(StreamViewType::from(stream.stream_view_type.as_str()))
                .build()
                .map_err(dynamo_err)?,
        );
    }
    let created = request.send().await.map_err(dynamo_err)?;
    if let Some(ttl) = &props.time_to_live_specification {
        client
            .update_time_to_live()
            .table_name(name)
            .time_to_live_specification(
                TimeToLiveSpecification::builder()
                    .attribute_name(&ttl.attribute_name)
                    .enabled(ttl.enabled)
                    .build()
                    .map_err(dynamo_err)?,
            )
            .send()
            .await
            .map_err(dynamo_err)?;
    }
    Ok(created
        .table_description
        .and_then(|t| t.latest_stream_arn().map(str::to_owned)))
}

/// Whether a table of this name exists.
pub async fn table_exists(
    client: &aws_sdk_dynamodb::Client,
    name: &str,
) -> Result<bool, SetupError> {
    match client.describe_table().table_name(name).send().await {
        Ok(_) => Ok(true),
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.is_resource_not_found_exception()) =>
        {
            Ok(false)
        }
        Err(e) => Err(dynamo_err(e)),
    }
}

/// Creates the stream as the template defines it and waits until it is `ACTIVE`.
pub async fn create_stream(
    client: &aws_sdk_kinesis::Client,
    name: &str,
    props: &StreamProperties,
) -> Result<(), SetupError> {
    let mut request = client.create_stream().stream_name(name);
    match props
        .stream_mode_details
        .as_ref()
        .map(|m| m.stream_mode.as_str())
    {
        Some("ON_DEMAND") => {
            request = request.stream_mode_details(
                StreamModeDetails::builder()
                    .stream_mode(StreamMode::OnDemand)
                    .build()
                    .map_err(kinesis_err)?,
            );
        }
        _ => request = request.shard_count(props.shard_count.unwrap_or(1)),
    }
    request.send().await.map_err(kinesis_err)?;
    wait_for_stream(client, name).await
}

/// Whether a stream of this name exists.
pub async fn stream_exists(
    client: &aws_sdk_kinesis::Client,
    name: &str,
) -> Result<bool, SetupError> {
    match client
        .describe_stream_summary()
        .stream_name(name)
        .send()
        .await
    {
        Ok(_) => Ok(true),
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.is_resource_not_found_exception()) =>
        {
            Ok(false)
        }
        Err(e) => Err(kinesis_err(e)),
    }
}

async fn wait_for_stream(client: &aws_sdk_kinesis::Client, name: &str) -> Result<(), SetupError> {
    for _ in 0..100 {
        let summary = client
            .describe_stream_summary()
            .stream_name(name)
            .send()
            .await
            .map_err(kinesis_err)?;
        let active = summary
            .stream_description_summary()
            .is_some_and(|s| *s.stream_status() == StreamStatus::Active);
        if active {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Err(SetupError::Kinesis(format!(
        "stream {name} did not become ACTIVE"
    )))
}

/// A property of the template that the local stack accepts and does not apply.
#[derive(Debug, Deserialize)]
#[serde(transparent)]
pub struct AwsOnly(pub Value);
