//! Message items as stored, and the contract's Message object.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::adapters::store::keys;
use crate::domain::{ClientMessageId, ConversationId, MessageId, UserId};
use crate::platform::time::Timestamp;

/// `CONV#c` / `MSG#<seq>`: one message. `msgRev` (the `ByRev` index key) is its latest change.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MessageItem {
    #[serde(rename = "PK")]
    pub pk: String,
    #[serde(rename = "SK")]
    pub sk: String,
    pub id: MessageId,
    pub conversation_id: ConversationId,
    pub seq: u64,
    pub msg_rev: u64,
    pub sender_id: UserId,
    pub body: String,
    pub client_message_id: ClientMessageId,
    pub reply_to_seq: Option<u64>,
    pub created_at: Timestamp,
    pub edited_at: Option<Timestamp>,
    #[serde(default)]
    pub deleted: bool,
    /// Emoji → the users who reacted with it. Never stored empty: DynamoDB Local's stream renders
    /// an empty map as `{}`, which no SDK can parse, so an empty map is left out (or removed).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub reactions: BTreeMap<String, Vec<UserId>>,
}

/// `CONV#c` / `CMID#<sender>#<clientMessageId>`: makes a send safe to retry (7 days).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IdempotencyItem {
    #[serde(rename = "PK")]
    pub pk: String,
    #[serde(rename = "SK")]
    pub sk: String,
    pub seq: u64,
    /// SHA-256 of the body: a retry must send the same one.
    pub body_digest: String,
    pub expires_at: i64,
}

pub const IDEMPOTENCY_SECONDS: i64 = 7 * 24 * 3600;

pub fn body_digest(body: &str) -> String {
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, body.as_bytes());
    digest.as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

/// The contract's Message object.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Message {
    pub id: MessageId,
    pub conversation_id: ConversationId,
    pub seq: u64,
    pub rev: u64,
    pub sender_id: UserId,
    pub body: String,
    pub client_message_id: ClientMessageId,
    pub reply_to_seq: Option<u64>,
    pub created_at: Timestamp,
    pub edited_at: Option<Timestamp>,
    pub deleted: bool,
    pub reactions: BTreeMap<String, Vec<UserId>>,
}

impl From<MessageItem> for Message {
    fn from(item: MessageItem) -> Self {
        Self {
            id: item.id,
            conversation_id: item.conversation_id,
            seq: item.seq,
            rev: item.msg_rev,
            sender_id: item.sender_id,
            body: if item.deleted {
                String::new()
            } else {
                item.body
            },
            client_message_id: item.client_message_id,
            reply_to_seq: item.reply_to_seq,
            created_at: item.created_at,
            edited_at: item.edited_at,
            deleted: item.deleted,
            reactions: if item.deleted {
                BTreeMap::new()
            } else {
                item.reactions
            },
        }
    }
}

/// The first 100 characters of a body: what a conversation shows of its last message.
pub fn preview(body: &str) -> String {
    body.chars().take(100).collect()
}

impl MessageItem {
    pub fn key_of(conversation: &ConversationId, seq: u64) -> crate::adapters::store::Key {
        keys::message(conversation, seq)
    }
}
