//! The table's key layout (see docs/architecture.md's data model and `template.yaml`), in one place.
//!
//! User ids are opaque (a `sub` may hold `|`, `#` or `%`), so they are escaped wherever they become
//! part of a key: `%` → `%25`, `#` → `%23`. Escaped ids never contain `#`, the key separator, so no
//! two different ids or id pairs can produce the same key.

use crate::adapters::store::Key;
use crate::domain::{ClientMessageId, ClientRequestId, ConversationId, UserId};

/// Attribute and index names shared by the adapter, the services and `template.yaml`.
pub mod attr {
    pub const PK: &str = "PK";
    pub const SK: &str = "SK";
    /// The overloaded global index: connections by user (`USER#u` / `CONN#id`) for fan-out.
    pub const GSI1_PK: &str = "GSI1PK";
    pub const GSI1_SK: &str = "GSI1SK";
    /// Sort key of the `ByRev` local index: a message's latest revision, served by `/changes`.
    pub const MSG_REV: &str = "msgRev";
    /// Sort key of the `ByActivity` local index: `<lastActivityAt>#<conversationId>` on inbox entries.
    pub const ACTIVITY_KEY: &str = "activityKey";
    /// TTL attribute (epoch seconds). Reads treat a past value as absent.
    pub const EXPIRES_AT: &str = "expiresAt";
}

/// The prefixes and fixed sort keys of the layout: the one place they are spelled (the stream
/// consumers and the analytics report read keys by them too).
pub mod prefix {
    /// `USER#u`: a user's partition (profile, inbox).
    pub const USER: &str = "USER#";
    /// `CONV#c`: a conversation's partition (`META`, members, messages, idempotency keys).
    pub const CONVERSATION: &str = "CONV#";
    /// `REVS#c`: a conversation's ledger of landed revisions. Outside `CONV#c` so that the
    /// stream's filter leaves it out (no event is made of it).
    pub const REVISIONS: &str = "REVS#";
    /// `TYPING#c`: who is typing in a conversation, one short-lived item per typist. Outside
    /// `CONV#c` so that the events' filter leaves it out; the fan-out reads it off the stream.
    pub const TYPING: &str = "TYPING#";
    /// `CONN#id`: a WebSocket connection's record.
    pub const CONNECTION: &str = "CONN#";
    /// `LIVE#u`: the ids of a user's open connections, in one item the fan-out reads by key.
    pub const LIVE: &str = "LIVE#";
    pub const INBOX: &str = "INBOX#";
    /// `USER#u` / `FIND#…`: what `u` finds a conversation by (`services::search`).
    pub const FIND: &str = "FIND#";
    pub const MEMBER: &str = "MEMBER#";
    pub const MESSAGE: &str = "MSG#";
    pub const STATS: &str = "STATS#";
    pub const TICKET: &str = "TICKET#";
    /// The sort key of a conversation's `META` item.
    pub const META: &str = "META";
    /// The sort key of a user's profile.
    pub const PROFILE: &str = "PROFILE";
}

/// Index names, as in `template.yaml`.
pub mod index {
    pub const GSI1: &str = "GSI1";
    pub const BY_REV: &str = "ByRev";
    pub const BY_ACTIVITY: &str = "ByActivity";
}

/// Escapes an id for use inside a key.
pub fn escape(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    for c in raw.chars() {
        match c {
            '%' => out.push_str("%25"),
            '#' => out.push_str("%23"),
            _ => out.push(c),
        }
    }
    out
}

pub fn user_pk(user: &UserId) -> String {
    format!("{}{}", prefix::USER, escape(user.as_str()))
}

pub fn profile(user: &UserId) -> Key {
    Key::new(user_pk(user), prefix::PROFILE)
}

pub fn inbox_entry(user: &UserId, conversation: &ConversationId) -> Key {
    Key::new(user_pk(user), format!("{}{conversation}", prefix::INBOX))
}

pub fn conversation_pk(conversation: &ConversationId) -> String {
    format!("{}{conversation}", prefix::CONVERSATION)
}

pub fn conversation_meta(conversation: &ConversationId) -> Key {
    Key::new(conversation_pk(conversation), prefix::META)
}

pub fn membership(conversation: &ConversationId, user: &UserId) -> Key {
    Key::new(
        conversation_pk(conversation),
        format!("{}{}", prefix::MEMBER, escape(user.as_str())),
    )
}

/// Messages sort by `seq`, zero-padded to 12 digits so that string order is number order.
pub fn message(conversation: &ConversationId, seq: u64) -> Key {
    Key::new(
        conversation_pk(conversation),
        format!("{}{seq:012}", prefix::MESSAGE),
    )
}

/// One landed (or voided) revision of a conversation, zero-padded to 20 digits (any `u64`).
pub fn revision(conversation: &ConversationId, rev: u64) -> Key {
    Key::new(revisions_pk(conversation), format!("{rev:020}"))
}

pub fn revisions_pk(conversation: &ConversationId) -> String {
    format!("{}{}", prefix::REVISIONS, conversation.as_str())
}

/// The typing item of `user` in `conversation`.
pub fn typing(conversation: &ConversationId, user: &UserId) -> Key {
    Key::new(
        format!("{}{}", prefix::TYPING, conversation.as_str()),
        escape(user.as_str()),
    )
}

pub fn idempotency(conversation: &ConversationId, sender: &UserId, id: &ClientMessageId) -> Key {
    Key::new(
        conversation_pk(conversation),
        format!("CMID#{}#{id}", escape(sender.as_str())),
    )
}

/// The uniqueness record of a direct conversation: the same for (a, b) and (b, a).
pub fn direct_pair(a: &UserId, b: &UserId) -> Key {
    let (low, high) = if a.as_str() <= b.as_str() {
        (a, b)
    } else {
        (b, a)
    };
    Key::new(
        format!("DIRECT#{}#{}", escape(low.as_str()), escape(high.as_str())),
        "DIRECT",
    )
}

pub fn self_conversation(user: &UserId) -> Key {
    Key::new(format!("SELF#{}", escape(user.as_str())), "DIRECT")
}

/// Makes a group creation retry-safe: the same user and `clientRequestId` find the same group.
pub fn group_request(user: &UserId, client_request_id: &ClientRequestId) -> Key {
    Key::new(
        format!("CREQ#{}#{client_request_id}", escape(user.as_str())),
        "CREQ",
    )
}

pub fn member_prefix() -> &'static str {
    prefix::MEMBER
}

pub fn connection(connection_id: &str) -> Key {
    Key::new(format!("{}{connection_id}", prefix::CONNECTION), "CONN")
}

/// The partition of a user's socket slots (`SOCKETS#u` / `SLOT#<n>`): a partition of its own,
/// so that `ws-connect` may write slots without being allowed to write anything else of a user.
pub fn socket_slots_pk(user: &UserId) -> String {
    format!("SOCKETS#{}", escape(user.as_str()))
}

/// Sort-key prefix of a socket slot.
pub const SOCKET_SLOT_PREFIX: &str = "SLOT#";

/// Slot `n` of a user's open sockets: holding one is what lets a connection open
/// (`chat_shared::services::connections`).
pub fn socket_slot(user: &UserId, n: u8) -> Key {
    Key::new(socket_slots_pk(user), format!("{SOCKET_SLOT_PREFIX}{n}"))
}

/// The ids of a user's open connections (`LIVE#u` / `LIVE`, a string set `connectionIds`): one
/// item a user, so that the fan-out reads a group's connections 100 members a request
/// (`BatchGetItem`) rather than one query a member. A partition of its own, so that the pushing
/// functions may prune an id from it without being allowed to touch anything else of a user.
pub fn live_connections(user: &UserId) -> Key {
    Key::new(format!("{}{}", prefix::LIVE, escape(user.as_str())), "LIVE")
}

/// The keys that sign pagination cursors (`chat_shared::adapters::cursor_keys`): readable by the one route
/// that issues cursors.
pub fn cursor_keys() -> Key {
    Key::new("CONFIG#cursor-keys", "KEYS")
}

pub fn ticket(sha256_hex: &str) -> Key {
    Key::new(format!("{}{sha256_hex}", prefix::TICKET), "TICKET")
}

/// Analytics (`chat_shared::services::analytics`): a day's aggregates are spread over partitions
/// `STATS#<yyyy-mm-dd>#<shard, 2 digits>`, so that no partition takes every event of a day.
pub fn stats_partition(day: &str, shard: u32) -> String {
    format!("{}{day}#{shard:02}", prefix::STATS)
}

/// A shard's running totals of a day (messages, active senders, new conversations).
pub fn stats_total(day: &str, shard: u32) -> Key {
    Key::new(stats_partition(day, shard), "TOTAL")
}

/// A conversation's aggregates of a day.
pub fn stats_conversation(day: &str, shard: u32, conversation: &ConversationId) -> Key {
    Key::new(
        stats_partition(day, shard),
        format!("{}{conversation}", prefix::CONVERSATION),
    )
}

/// The marker of a user who sent on a day. It sorts before `CONV#` and `TOTAL`, so a report
/// (`SK >= "CONV#"`) never reads markers.
pub fn stats_active_sender(day: &str, shard: u32, user: &UserId) -> Key {
    Key::new(
        stats_partition(day, shard),
        format!("ACTIVE#{}", escape(user.as_str())),
    )
}

/// An event already counted (the dedupe record, keyed by the CloudEvent id). Day partitions
/// start with a digit after `STATS#`, so they never meet these.
pub fn stats_event(event_id: &str) -> Key {
    Key::new(
        format!("{}EVENT#{}", prefix::STATS, escape(event_id)),
        "EVENT",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(raw: &str) -> UserId {
        raw.parse().unwrap()
    }

    #[test]
    fn ids_with_separators_cannot_collide() {
        // Unescaped, ("a#b", "c") and ("a", "b#c") would both give DIRECT#a#b#c.
        let one = direct_pair(&user("a#b"), &user("c"));
        let two = direct_pair(&user("a"), &user("b#c"));
        assert_ne!(one, two);
        assert_eq!(escape("a%23"), "a%2523");
        assert_ne!(user_pk(&user("a#")), user_pk(&user("a%23")));
    }

    #[test]
    fn direct_pairs_do_not_depend_on_order() {
        assert_eq!(
            direct_pair(&user("auth0|x"), &user("u2")),
            direct_pair(&user("u2"), &user("auth0|x"))
        );
    }

    #[test]
    fn message_keys_sort_by_seq() {
        let c = ConversationId::generate();
        assert!(message(&c, 9).sk < message(&c, 10).sk);
        assert_eq!(message(&c, 42).sk, "MSG#000000000042");
    }
}
