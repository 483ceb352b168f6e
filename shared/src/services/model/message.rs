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
    /// The WebSocket connection a message was sent from: it gets the ack, so `stream-fan-out`
    /// posts `message.created` to every other connection. Never in an answer or an event.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sent_from: Option<String>,
    /// Emoji → users, as messages stored before per-user reactions held them. The first reaction
    /// change to such a message moves them into [`Self::reacted`] (and removes this). Never stored
    /// empty: DynamoDB Local's stream renders an empty map as `{}`, which no SDK can parse.
    #[serde(
        default,
        rename = "reactions",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub legacy_reactions: BTreeMap<String, Vec<UserId>>,
    /// `react#<userId>` → emoji: each user's reaction is an attribute of its own, so that
    /// concurrent reactions are separate writes that never overwrite each other (no
    /// read-modify-write of a shared map). Every attribute not named above lands here, so a
    /// message item holds no other attribute.
    #[serde(flatten)]
    pub reacted: BTreeMap<String, String>,
}

/// The attribute that holds one user's reaction.
pub const REACTION_PREFIX: &str = "react#";

pub fn reaction_attribute(user: &UserId) -> String {
    format!("{REACTION_PREFIX}{user}")
}

impl MessageItem {
    /// Emoji → the users who reacted with it (sorted), from both ways of storing them.
    pub fn reactions(&self) -> BTreeMap<String, Vec<UserId>> {
        let mut out = self.legacy_reactions.clone();
        for (attribute, emoji) in &self.reacted {
            let Some(Ok(user)) = attribute
                .strip_prefix(REACTION_PREFIX)
                .map(str::parse::<UserId>)
            else {
                continue;
            };
            out.entry(emoji.clone()).or_default().push(user);
        }
        for users in out.values_mut() {
            users.sort();
            users.dedup();
        }
        out
    }

    /// The emoji `user` reacted with, if any.
    pub fn reaction_of(&self, user: &UserId) -> Option<&str> {
        self.reacted
            .get(&reaction_attribute(user))
            .map(String::as_str)
            .or_else(|| {
                self.legacy_reactions
                    .iter()
                    .find(|(_, users)| users.contains(user))
                    .map(|(emoji, _)| emoji.as_str())
            })
    }
}

/// `CONV#c` / `MSG#<seq>` holding no message: the `seq` was handed out and its write never
/// landed (see `services::sequence`). It keeps `seq` gap-free; it is never unread, never
/// `lastMessage`, and cannot be replied to, edited or reacted to (409).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VoidItem {
    #[serde(rename = "PK")]
    pub pk: String,
    #[serde(rename = "SK")]
    pub sk: String,
    pub kind: VoidKind,
    pub id: MessageId,
    pub conversation_id: ConversationId,
    pub seq: u64,
    pub msg_rev: u64,
    /// When the void was written.
    pub created_at: Timestamp,
}

/// The `kind` attribute of a void; a message item has none.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum VoidKind {
    Void,
}

/// What a `MSG#<seq>` item holds.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(untagged)]
pub enum StoredMessage {
    Void(VoidItem),
    Message(Box<MessageItem>),
}

impl StoredMessage {
    pub fn seq(&self) -> u64 {
        match self {
            Self::Void(v) => v.seq,
            Self::Message(m) => m.seq,
        }
    }

    pub fn rev(&self) -> u64 {
        match self {
            Self::Void(v) => v.msg_rev,
            Self::Message(m) => m.msg_rev,
        }
    }

    /// When the number was issued (a message) or voided (a void; later than its issue).
    pub fn created_at(&self) -> Timestamp {
        match self {
            Self::Void(v) => v.created_at,
            Self::Message(m) => m.created_at,
        }
    }
}

impl From<StoredMessage> for Message {
    fn from(stored: StoredMessage) -> Self {
        match stored {
            StoredMessage::Message(item) => Message::from(*item),
            StoredMessage::Void(void) => Message {
                id: void.id,
                conversation_id: void.conversation_id,
                seq: void.seq,
                rev: void.msg_rev,
                kind: MessageKind::Void,
                sender_id: None,
                body: String::new(),
                client_message_id: None,
                reply_to_seq: None,
                created_at: void.created_at,
                edited_at: None,
                deleted: false,
                reactions: BTreeMap::new(),
            },
        }
    }
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

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum MessageKind {
    Text,
    Void,
}

/// The contract's Message object.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Message {
    pub id: MessageId,
    pub conversation_id: ConversationId,
    pub seq: u64,
    pub rev: u64,
    /// `text`, or `void` for a `seq` whose write never landed (no sender, body or client id).
    pub kind: MessageKind,
    pub sender_id: Option<UserId>,
    pub body: String,
    pub client_message_id: Option<ClientMessageId>,
    pub reply_to_seq: Option<u64>,
    pub created_at: Timestamp,
    pub edited_at: Option<Timestamp>,
    pub deleted: bool,
    pub reactions: BTreeMap<String, Vec<UserId>>,
}

impl From<MessageItem> for Message {
    fn from(item: MessageItem) -> Self {
        let reactions = item.reactions();
        Self {
            id: item.id,
            conversation_id: item.conversation_id,
            seq: item.seq,
            rev: item.msg_rev,
            kind: MessageKind::Text,
            reactions: if item.deleted {
                BTreeMap::new()
            } else {
                reactions
            },
            sender_id: Some(item.sender_id),
            body: if item.deleted {
                String::new()
            } else {
                item.body
            },
            client_message_id: Some(item.client_message_id),
            reply_to_seq: item.reply_to_seq,
            created_at: item.created_at,
            edited_at: item.edited_at,
            deleted: item.deleted,
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
