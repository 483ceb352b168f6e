//! Daily aggregates of the event stream, kept by `stream-analytics`: messages per conversation
//! per day, active senders per day and new conversations per day, each event counted exactly once
//! however often Kinesis delivers it.
//!
//! **Days** are UTC dates of the event's `time` (when the change happened in the table).
//!
//! **Layout** (see [`crate::adapters::store::keys`]): a day's items are spread over [`SHARDS`] partitions
//! `STATS#<day>#<nn>`. The table has local indexes, so a partition key can never be split across
//! DynamoDB partitions: one `STATS#<day>` key would cap the whole system at one partition's
//! write rate. A conversation's item (`CONV#c`) lives in the shard of the conversation, a sender's
//! marker (`ACTIVE#u`) in the shard of the user, and each event adds to the `TOTAL` of its
//! conversation's shard: a day's totals are the sums over its shards.
//!
//! **Exactly once**: one transaction per counted event puts the dedupe item of its CloudEvent id
//! (`STATS#EVENT#<id>`, absent or expired) and applies its increments. A cancellation whose first
//! reason is that condition means another delivery counted the event already. The SDK's own
//! retry of a transaction that did commit lands there too, so it never counts twice.
//!
//! **Distinct senders**: a message event first reads (consistently, with the dedupe item) the
//! sender's marker for the day. Absent: the transaction also puts the marker (absent or expired)
//! and adds one to `activeSenders`; present: neither. A marker made meanwhile by another event
//! cancels the transaction, which is read and tried again.
//!
//! **Window** ([`DedupeWindow`]): dedupe items and markers live for the event stream's retention
//! (`EVENT_STREAM_RETENTION_HOURS`, the template's `EventStreamRetentionHours`) plus 8 days *from
//! when they are written*, by the application clock. Kinesis redelivers a record only while it
//! holds it, and the 8 days cover the table stream's 24 hours and the retries in between, so any
//! replay within retention finds the items of the first delivery and is counted exactly once,
//! whatever the event's own `time` says. A replay of records older than that window (from an
//! archive, say) would be counted again: out of scope.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use serde::de::IgnoredAny;
use serde::{Deserialize, Serialize};
use time::macros::format_description;

use crate::adapters::store::retry::{self, Attempt, retry_races};
use crate::adapters::store::{
    CancellationCode, Consistency, DynamoStore, Expr, Query, StoreError, TransactError, Write, keys,
};
use crate::domain::event::{CloudEvent, EventType};
use crate::domain::{ConversationId, UserId};
use crate::platform::time::Timestamp;

/// Partitions per day (`STATS#<day>#00` … `#31`). Changing it changes where a day's items are,
/// so it is fixed: the report reads every shard of a day.
pub const SHARDS: u32 = 32;

/// The margin a dedupe item or marker outlives the event stream's retention by.
pub const DEDUPE_MARGIN_SECONDS: i64 = 8 * 24 * 3600;

/// How long a dedupe item or a sender's marker lives after it was written: the event stream's
/// retention plus [`DEDUPE_MARGIN_SECONDS`] (see the module's documentation).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DedupeWindow {
    seconds: i64,
}

impl DedupeWindow {
    /// `EVENT_STREAM_RETENTION_HOURS`: as Kinesis allows it, 24 to 8760 (a year).
    pub const RETENTION_ENV: &'static str = "EVENT_STREAM_RETENTION_HOURS";

    pub fn for_retention_hours(hours: u32) -> Self {
        Self {
            seconds: i64::from(hours) * 3_600 + DEDUPE_MARGIN_SECONDS,
        }
    }

    /// From `EVENT_STREAM_RETENTION_HOURS` (default 24, the template's default).
    pub fn from_env<F: Fn(&str) -> Option<String>>(
        env: &crate::platform::config::Env<F>,
    ) -> Result<Self, crate::platform::config::ConfigError> {
        let hours: u32 = env.parse_or(Self::RETENTION_ENV, 24)?;
        if !(24..=8_760).contains(&hours) {
            return Err(crate::platform::config::ConfigError::Invalid {
                name: Self::RETENTION_ENV,
                reason: "Kinesis keeps records 24 to 8760 hours".to_owned(),
            });
        }
        Ok(Self::for_retention_hours(hours))
    }

    pub fn seconds(self) -> i64 {
        self.seconds
    }
}

/// CloudEvent ids longer than this are refused (a key holds at most 2 KiB).
const MAX_EVENT_ID_BYTES: usize = 512;

const DAY_FORMAT: &[time::format_description::FormatItem<'static>] =
    format_description!("[year]-[month]-[day]");

/// A UTC calendar day, written `YYYY-MM-DD`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Day(time::Date);

impl Day {
    /// The UTC day of an instant.
    pub fn of(t: Timestamp) -> Self {
        let seconds = t.unix_millis().div_euclid(1000);
        let at = time::OffsetDateTime::from_unix_timestamp(seconds)
            .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
        Self(at.date())
    }
}

impl fmt::Display for Day {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0.format(DAY_FORMAT) {
            Ok(s) => f.write_str(&s),
            Err(_) => Err(fmt::Error),
        }
    }
}

impl FromStr for Day {
    type Err = String;
    fn from_str(raw: &str) -> Result<Self, Self::Err> {
        time::Date::parse(raw, DAY_FORMAT)
            .map(Self)
            .map_err(|_| "a day is written YYYY-MM-DD".to_owned())
    }
}

impl Serialize for Day {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// The shard (`0..SHARDS`) of a conversation or user id: FNV-1a, stable across builds and
/// platforms (unlike the standard library's hasher).
pub fn shard_of(raw: &str) -> u32 {
    let mut hash: u32 = 0x811c_9dc5;
    for byte in raw.bytes() {
        hash ^= u32::from(byte);
        hash = hash.wrapping_mul(0x0100_0193);
    }
    hash % SHARDS
}

/// What an event adds to a day's aggregates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Tally {
    /// `chat.message.created`: one message in the conversation, by the sender.
    Message {
        conversation: ConversationId,
        sender: UserId,
    },
    /// `chat.conversation.created`: one new conversation.
    Conversation { conversation: ConversationId },
}

impl Tally {
    /// The conversation the event adds to.
    pub fn conversation(&self) -> &ConversationId {
        match self {
            Self::Message { conversation, .. } | Self::Conversation { conversation } => {
                conversation
            }
        }
    }
}

/// An event that counts, read from a stream record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Countable {
    /// The CloudEvent id: the same for every delivery of the event.
    pub id: String,
    pub kind: &'static str,
    pub day: Day,
    pub tally: Tally,
}

/// Why a record cannot be counted. It never holds the record's content (which may come from any
/// producer), only where it went wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Unreadable {
    #[error("not a CloudEvent ({0})")]
    Envelope(String),
    #[error("{kind}: data.{field} is missing or invalid")]
    Data {
        kind: &'static str,
        field: &'static str,
    },
    #[error(
        "the event id is empty, longer than {MAX_EVENT_ID_BYTES} bytes or holds control characters"
    )]
    Id,
}

/// Reads a stream record's data: `Ok(None)` for an event that does not count (reactions, reads,
/// members, connections …), an error for a record that is not a readable CloudEvent.
pub fn read_event(data: &[u8]) -> Result<Option<Countable>, Unreadable> {
    let envelope: CloudEvent = serde_json::from_slice(data).map_err(|e| {
        // serde's message may quote the record; keep only the category and the position.
        Unreadable::Envelope(format!(
            "{:?} error at line {} column {}",
            e.classify(),
            e.line(),
            e.column()
        ))
    })?;
    let kind = match EventType::of(&envelope.kind) {
        Some(kind @ (EventType::MessageCreated | EventType::ConversationCreated)) => kind.name(),
        _ => return Ok(None),
    };
    if envelope.id.is_empty()
        || envelope.id.len() > MAX_EVENT_ID_BYTES
        || envelope.id.chars().any(char::is_control)
    {
        return Err(Unreadable::Id);
    }
    let field = |field: &'static str| -> Result<&str, Unreadable> {
        envelope.data[field]
            .as_str()
            .ok_or(Unreadable::Data { kind, field })
    };
    let conversation: ConversationId =
        field("conversationId")?
            .parse()
            .map_err(|_| Unreadable::Data {
                kind,
                field: "conversationId",
            })?;
    let tally = if kind == EventType::MessageCreated.name() {
        let sender: UserId = field("senderId")?.parse().map_err(|_| Unreadable::Data {
            kind,
            field: "senderId",
        })?;
        Tally::Message {
            conversation,
            sender,
        }
    } else {
        Tally::Conversation { conversation }
    };
    Ok(Some(Countable {
        id: envelope.id,
        kind,
        day: Day::of(envelope.time),
        tally,
    }))
}

/// What counting an event did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Its increments were applied now.
    Counted,
    /// An earlier delivery counted it; nothing was written.
    AlreadyCounted,
}

/// Why an event could not be counted now (the batch is retried from its record).
#[derive(Debug, thiserror::Error)]
pub enum CountError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("lost the race for the aggregates {} times", retry::MAX_ATTEMPTS)]
    Contended,
}

/// The dedupe record of a counted event.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct CountedItem {
    #[serde(rename = "PK")]
    pk: String,
    #[serde(rename = "SK")]
    sk: String,
    event_type: String,
    day: String,
    counted_at: Timestamp,
    expires_at: i64,
}

/// The marker of a user who sent on a day.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ActiveSenderItem {
    #[serde(rename = "PK")]
    pk: String,
    #[serde(rename = "SK")]
    sk: String,
    user_id: UserId,
    day: String,
    expires_at: i64,
}

/// The writes of counting one event, by name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CountWrite {
    /// The event's dedupe record, on condition that it is absent (or expired): its failure means
    /// "already counted".
    Dedupe,
    /// The conversation's aggregates of the day.
    Conversation,
    /// The shard's totals of the day.
    Total,
    /// The sender's marker for the day, on condition that it is absent: a new active sender.
    ActiveSender,
}

/// The writes that count `event` at `now`; `new_sender` when the sender's marker for the day is
/// absent.
fn writes(
    event: &Countable,
    now: Timestamp,
    window: DedupeWindow,
    new_sender: bool,
) -> Result<Vec<(CountWrite, Write)>, StoreError> {
    let expires_at = now.unix_seconds() + window.seconds();
    let day = event.day.to_string();
    let conversation = event.tally.conversation();
    let shard = shard_of(conversation.as_str());
    let dedupe = keys::stats_event(&event.id);
    let counted = CountedItem {
        pk: dedupe.pk,
        sk: dedupe.sk,
        event_type: event.kind.to_owned(),
        day: day.clone(),
        counted_at: now,
        expires_at,
    };
    let mut out = vec![(
        CountWrite::Dedupe,
        Write::put(&counted, Some(Expr::absent_or_expired(now.unix_seconds())))?,
    )];
    let item = Expr::new("")
        .name("#c", "conversationId")
        .name("#d", "day")
        .string(":c", conversation.as_str())
        .string(":d", day.clone());
    let total = Expr::new("").name("#d", "day").string(":d", day.clone());
    match &event.tally {
        Tally::Message { sender, .. } => {
            out.push((
                CountWrite::Conversation,
                Write::Update {
                    key: keys::stats_conversation(&day, shard, conversation),
                    update: Expr {
                        expression: "SET #c = :c, #d = :d ADD #m :one".to_owned(),
                        ..item
                    }
                    .name("#m", "messages")
                    .number(":one", 1),
                },
            ));
            let mut total = total.name("#m", "messages").number(":one", 1);
            if new_sender {
                total = total.name("#s", "activeSenders");
                total.expression = "SET #d = :d ADD #m :one, #s :one".to_owned();
            } else {
                total.expression = "SET #d = :d ADD #m :one".to_owned();
            }
            out.push((
                CountWrite::Total,
                Write::Update {
                    key: keys::stats_total(&day, shard),
                    update: total,
                },
            ));
            if new_sender {
                let marker = keys::stats_active_sender(&day, shard_of(sender.as_str()), sender);
                let item = ActiveSenderItem {
                    pk: marker.pk,
                    sk: marker.sk,
                    user_id: sender.clone(),
                    day: day.clone(),
                    expires_at,
                };
                out.push((
                    CountWrite::ActiveSender,
                    Write::put(&item, Some(Expr::absent_or_expired(now.unix_seconds())))?,
                ));
            }
        }
        Tally::Conversation { .. } => {
            out.push((
                CountWrite::Conversation,
                Write::Update {
                    key: keys::stats_conversation(&day, shard, conversation),
                    update: Expr {
                        expression: "SET #c = :c, #d = :d, #n = :true".to_owned(),
                        ..item
                    }
                    .name("#n", "created")
                    .boolean(":true", true),
                },
            ));
            let mut total = total.name("#n", "newConversations").number(":one", 1);
            total.expression = "SET #d = :d ADD #n :one".to_owned();
            out.push((
                CountWrite::Total,
                Write::Update {
                    key: keys::stats_total(&day, shard),
                    update: total,
                },
            ));
        }
    }
    Ok(out)
}

/// Counts one event into its day's aggregates, exactly once per event id (within `window`).
pub async fn count(
    store: &DynamoStore,
    event: &Countable,
    window: DedupeWindow,
) -> Result<Outcome, CountError> {
    let dedupe = keys::stats_event(&event.id);
    retry_races(
        || async {
            let new_sender = match &event.tally {
                Tally::Message { sender, .. } => {
                    let day = event.day.to_string();
                    let marker = keys::stats_active_sender(&day, shard_of(sender.as_str()), sender);
                    let found = store
                        .batch_get::<IgnoredAny>(
                            &[dedupe.clone(), marker.clone()],
                            Consistency::Strong,
                        )
                        .await?;
                    if found.contains_key(&dedupe) {
                        return Ok(Attempt::Done(Outcome::AlreadyCounted));
                    }
                    !found.contains_key(&marker)
                }
                Tally::Conversation { .. } => false,
            };
            let writes = writes(event, store.now(), window, new_sender)?;
            match store.transact_named(writes).await {
                Ok(()) => Ok(Attempt::Done(Outcome::Counted)),
                Err(error)
                    if error.reason(CountWrite::Dedupe)
                        == Some(&CancellationCode::ConditionalCheckFailed) =>
                {
                    Ok(Attempt::Done(Outcome::AlreadyCounted))
                }
                // A marker made meanwhile, a concurrent transaction on the same counters, or
                // throttling: read again and retry.
                Err(TransactError::Canceled(reasons))
                    if reasons.iter().all(|(_, r)| {
                        matches!(
                            r,
                            CancellationCode::None
                                | CancellationCode::ConditionalCheckFailed
                                | CancellationCode::TransactionConflict
                                | CancellationCode::Throttling
                        )
                    }) =>
                {
                    Ok(Attempt::Retry)
                }
                Err(error) => Err(StoreError::from(error).into()),
            }
        },
        || CountError::Contended,
    )
    .await
}

/// A conversation's aggregates of a day.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ConversationDay {
    pub conversation_id: String,
    pub messages: u64,
    /// Created on this day.
    pub created: bool,
}

/// A day's aggregates.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DayReport {
    pub day: Day,
    pub messages: u64,
    pub active_senders: u64,
    pub new_conversations: u64,
    /// Every conversation with a message or created on the day, most messages first.
    pub conversations: Vec<ConversationDay>,
}

/// Any item of a day's partitions, as the report reads it.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct StatsItem {
    #[serde(rename = "SK")]
    sk: String,
    #[serde(default)]
    conversation_id: Option<String>,
    #[serde(default)]
    messages: u64,
    #[serde(default)]
    active_senders: u64,
    #[serde(default)]
    new_conversations: u64,
    #[serde(default)]
    created: bool,
}

/// A day's totals only: one consistent `BatchGetItem` of its shards' `TOTAL` items.
pub async fn totals(store: &DynamoStore, day: Day) -> Result<DayTotals, StoreError> {
    let day_text = day.to_string();
    let keys: Vec<_> = (0..SHARDS)
        .map(|shard| keys::stats_total(&day_text, shard))
        .collect();
    let found = store
        .batch_get::<StatsItem>(&keys, Consistency::Strong)
        .await?;
    let mut totals = DayTotals::default();
    for item in found.values() {
        totals.messages += item.messages;
        totals.active_senders += item.active_senders;
        totals.new_conversations += item.new_conversations;
    }
    Ok(totals)
}

/// A day's totals.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DayTotals {
    pub messages: u64,
    pub active_senders: u64,
    pub new_conversations: u64,
}

/// Reads a day's aggregates: one consistent query per shard (every page), of the totals and the
/// conversations (the markers sort before them and are not read).
pub async fn report(store: &DynamoStore, day: Day) -> Result<DayReport, StoreError> {
    let day_text = day.to_string();
    let mut report = DayReport {
        day,
        messages: 0,
        active_senders: 0,
        new_conversations: 0,
        conversations: Vec::new(),
    };
    let mut conversations: BTreeMap<String, ConversationDay> = BTreeMap::new();
    for shard in 0..SHARDS {
        let mut query = Query::new(
            None,
            Expr::new("#pk = :pk AND #sk >= :first")
                .name("#pk", "PK")
                .name("#sk", "SK")
                .string(":pk", keys::stats_partition(&day_text, shard))
                .string(":first", keys::prefix::CONVERSATION),
        );
        query.consistency = Consistency::Strong;
        for item in store.query_all::<StatsItem>(&query).await? {
            if item.sk == "TOTAL" {
                report.messages += item.messages;
                report.active_senders += item.active_senders;
                report.new_conversations += item.new_conversations;
            } else if let Some(id) = item.conversation_id {
                let entry = conversations.entry(id.clone()).or_default();
                entry.conversation_id = id;
                entry.messages += item.messages;
                entry.created |= item.created;
            }
        }
    }
    report.conversations = conversations.into_values().collect();
    report.conversations.sort_by(|a, b| {
        b.messages
            .cmp(&a.messages)
            .then_with(|| a.conversation_id.cmp(&b.conversation_id))
    });
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn record(kind: &str, data: serde_json::Value) -> Vec<u8> {
        serde_json::to_vec(&json!({
            "specversion": "1.0", "id": "e-1", "source": "chat", "type": kind,
            "time": "2026-11-25T23:59:59.999Z", "subject": "s",
            "datacontenttype": "application/json", "data": data,
        }))
        .unwrap()
    }

    const C: &str = "01JDQ7Z8K3M4N5P6Q7R8S9T0VW";

    #[test]
    fn messages_and_creations_count_and_other_events_do_not() {
        let message = read_event(&record(
            "chat.message.created",
            json!({"conversationId": C, "senderId": "auth0|ada", "seq": 1}),
        ))
        .unwrap()
        .unwrap();
        assert_eq!(message.id, "e-1");
        assert_eq!(message.day.to_string(), "2026-11-25");
        assert_eq!(
            message.tally,
            Tally::Message {
                conversation: C.parse().unwrap(),
                sender: "auth0|ada".parse().unwrap()
            }
        );
        let created = read_event(&record(
            "chat.conversation.created",
            json!({"conversationId": C, "kind": "group"}),
        ))
        .unwrap()
        .unwrap();
        assert_eq!(
            created.tally,
            Tally::Conversation {
                conversation: C.parse().unwrap()
            }
        );
        for kind in [
            "chat.reaction.added",
            "chat.message.read",
            "chat.connection.opened",
        ] {
            assert_eq!(
                read_event(&record(kind, json!({}))).unwrap(),
                None,
                "{kind}"
            );
        }
    }

    #[test]
    fn unreadable_records_say_where_without_quoting_them() {
        let err = read_event(b"{\"secret words\": ").unwrap_err();
        assert!(matches!(err, Unreadable::Envelope(_)), "{err}");
        assert!(!err.to_string().contains("secret"), "{err}");
        let err = read_event(br#"{"id": "x", "type": "chat.message.created", "time": "secret"}"#)
            .unwrap_err();
        assert!(!err.to_string().contains("secret"), "{err}");
        assert_eq!(
            read_event(&record(
                "chat.message.created",
                json!({"conversationId": C})
            )),
            Err(Unreadable::Data {
                kind: "chat.message.created",
                field: "senderId"
            })
        );
        assert_eq!(
            read_event(&record(
                "chat.conversation.created",
                json!({"conversationId": "not a ulid"})
            )),
            Err(Unreadable::Data {
                kind: "chat.conversation.created",
                field: "conversationId"
            })
        );
    }

    #[test]
    fn days_are_utc_dates_and_parse_back() {
        let t = Timestamp::parse("2026-11-26T00:30:00.000+01:00").unwrap();
        assert_eq!(Day::of(t).to_string(), "2026-11-25");
        let day: Day = "2026-11-25".parse().unwrap();
        assert_eq!(day, Day::of(t));
        assert!("2026-13-01".parse::<Day>().is_err());
        assert!("yesterday".parse::<Day>().is_err());
        assert_eq!(
            Day::of(Timestamp::from_unix_millis(-1)).to_string(),
            "1969-12-31"
        );
    }

    #[test]
    fn shards_are_stable_and_spread() {
        // FNV-1a of "a" is 0xe40c292c; fixed so that a day's items never move between builds.
        assert_eq!(shard_of("a"), 0xe40c_292c % SHARDS);
        let used: std::collections::HashSet<u32> = (0..1000)
            .map(|_| shard_of(ConversationId::generate().as_str()))
            .collect();
        assert_eq!(used.len(), SHARDS as usize, "1000 ids reach every shard");
    }

    #[test]
    fn a_message_from_a_new_sender_marks_them_and_counts_them_once() {
        let event = read_event(&record(
            "chat.message.created",
            json!({"conversationId": C, "senderId": "ada"}),
        ))
        .unwrap()
        .unwrap();
        // Counted a year after the event's day (a replay): both items live the window from now,
        // not from the event's day.
        let now = Timestamp::parse("2027-11-26T01:00:00Z").unwrap();
        let window = DedupeWindow::for_retention_hours(168);
        assert_eq!(window.seconds(), 7 * 86_400 + 8 * 86_400);
        let new = writes(&event, now, window, true).unwrap();
        assert_eq!(new.len(), 4, "dedupe, conversation, total, marker");
        let names: Vec<CountWrite> = new.iter().map(|(name, _)| *name).collect();
        assert_eq!(
            names,
            [
                CountWrite::Dedupe,
                CountWrite::Conversation,
                CountWrite::Total,
                CountWrite::ActiveSender
            ]
        );
        let (_, Write::Put { item, condition }) = &new[0] else {
            panic!("the dedupe put comes first: {new:?}");
        };
        assert_eq!(
            item["PK"],
            aws_sdk_dynamodb::types::AttributeValue::S("STATS#EVENT#e-1".into())
        );
        assert_eq!(
            item["expiresAt"],
            aws_sdk_dynamodb::types::AttributeValue::N(
                (now.unix_seconds() + window.seconds()).to_string()
            )
        );
        assert!(condition.is_some());
        let (_, Write::Put { item: marker, .. }) = &new[3] else {
            panic!("the marker comes last: {new:?}");
        };
        assert_eq!(marker["expiresAt"], item["expiresAt"]);
        let (_, Write::Update { update, .. }) = &new[2] else {
            panic!("{new:?}");
        };
        assert_eq!(update.expression, "SET #d = :d ADD #m :one, #s :one");
        let known = writes(&event, now, window, false).unwrap();
        assert_eq!(known.len(), 3, "no marker for a known sender");
        let (_, Write::Update { update, .. }) = &known[2] else {
            panic!("{known:?}");
        };
        assert_eq!(update.expression, "SET #d = :d ADD #m :one");
    }
}
