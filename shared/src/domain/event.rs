//! The events of the stream (Kinesis), as the contract describes them (`asyncapi.yaml` and
//! docs/architecture.md): a CloudEvents 1.0 envelope, and an event on its way to the stream.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::platform::time::Timestamp;

/// The CloudEvents 1.0 envelope the contract describes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CloudEvent {
    pub specversion: String,
    pub id: String,
    pub source: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub time: Timestamp,
    pub subject: String,
    pub datacontenttype: String,
    pub data: Value,
}

/// An event ready to publish: its partition key (the conversation, or the user for user-level
/// events) and the stream record it came from (what a partial batch failure names).
#[derive(Debug, Clone, PartialEq)]
pub struct PendingEvent {
    pub partition_key: String,
    pub sequence_number: String,
    pub event: CloudEvent,
}
