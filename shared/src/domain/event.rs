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

/// The event types of the stream (`type`), as the contract names them: what the producer
/// (`stream-publisher`) writes and the consumers (`stream-analytics`) match on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventType {
    ConversationCreated,
    MemberAdded,
    MemberRemoved,
    MessageCreated,
    MessageEdited,
    MessageDeleted,
    MessageRead,
    ReactionAdded,
    ReactionRemoved,
    ConnectionOpened,
    ConnectionClosed,
}

impl EventType {
    pub const ALL: [Self; 11] = [
        Self::ConversationCreated,
        Self::MemberAdded,
        Self::MemberRemoved,
        Self::MessageCreated,
        Self::MessageEdited,
        Self::MessageDeleted,
        Self::MessageRead,
        Self::ReactionAdded,
        Self::ReactionRemoved,
        Self::ConnectionOpened,
        Self::ConnectionClosed,
    ];

    pub const fn name(self) -> &'static str {
        match self {
            Self::ConversationCreated => "chat.conversation.created",
            Self::MemberAdded => "chat.member.added",
            Self::MemberRemoved => "chat.member.removed",
            Self::MessageCreated => "chat.message.created",
            Self::MessageEdited => "chat.message.edited",
            Self::MessageDeleted => "chat.message.deleted",
            Self::MessageRead => "chat.message.read",
            Self::ReactionAdded => "chat.reaction.added",
            Self::ReactionRemoved => "chat.reaction.removed",
            Self::ConnectionOpened => "chat.connection.opened",
            Self::ConnectionClosed => "chat.connection.closed",
        }
    }

    /// The type a `type` attribute names, if it is one of ours.
    pub fn of(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.name() == name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_type_reads_back_from_its_name() {
        for t in EventType::ALL {
            assert_eq!(EventType::of(t.name()), Some(t));
        }
        assert_eq!(EventType::of("chat.message.sent"), None);
    }
}
