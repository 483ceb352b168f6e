//! Domain events for analytics: the table's DynamoDB stream is the outbox. `stream-publisher`
//! turns each stream record into the contract's CloudEvents and writes them to Kinesis, in order
//! per conversation (see [`publish`]).
//!
//! An event's id derives from the stream record's `eventID` (with an index when one change yields
//! several events), so a re-published event carries the same id and consumers dedupe by it.
//! `data` never holds a message body: ids, lengths and counts only.

use aws_lambda_events::event::dynamodb::EventRecord;

use serde_json::{Value, json};

pub use crate::adapters::kinesis::{EventSink, KinesisSink, OutRecord, publish};
pub use crate::domain::event::{CloudEvent, EventType, PendingEvent};

use crate::adapters::store::keys::prefix;
use crate::domain::UserId;
use crate::platform::time::Timestamp;
use crate::services::connections::ConnectionItem;
use crate::services::conversations::model::{MemberItem, MetaItem};
use crate::services::messages::model::{MessageItem, StoredMessage};

/// Why a record could not be read (a bug: logged, never retried forever).
#[derive(Debug, thiserror::Error)]
#[error("stream record {event_id}: {reason}")]
pub struct RecordError {
    pub event_id: String,
    pub reason: String,
}

/// A string attribute of the record's key.
pub(crate) fn string_key(record: &EventRecord, name: &str) -> Option<String> {
    match record.change.keys.get(name)? {
        serde_dynamo::AttributeValue::S(s) => Some(s.clone()),
        _ => None,
    }
}

fn envelope(
    record: &EventRecord,
    index: usize,
    kind: EventType,
    subject: &str,
    data: Value,
) -> CloudEvent {
    let id = if index == 0 {
        record.event_id.clone()
    } else {
        format!("{}-{index}", record.event_id)
    };
    let millis = record
        .change
        .approximate_creation_date_time
        .timestamp_millis();
    CloudEvent {
        specversion: "1.0".to_owned(),
        id,
        source: "chat".to_owned(),
        kind: kind.name().to_owned(),
        time: Timestamp::from_unix_millis(millis),
        subject: subject.to_owned(),
        datacontenttype: "application/json".to_owned(),
        data,
    }
}

/// An image of the record as the item type it holds.
pub(crate) fn image<T: serde::de::DeserializeOwned>(
    item: &serde_dynamo::Item,
) -> Result<T, String> {
    serde_dynamo::from_item(item.clone()).map_err(|e| e.to_string())
}

/// The events of one stream record, in order (none for items that make no event).
pub fn events_of(record: &EventRecord) -> Result<Vec<PendingEvent>, RecordError> {
    let fail = |reason: String| RecordError {
        event_id: record.event_id.clone(),
        reason,
    };
    let (Some(pk), Some(sk)) = (string_key(record, "PK"), string_key(record, "SK")) else {
        return Ok(Vec::new());
    };
    if !pk.starts_with(prefix::CONVERSATION) && !pk.starts_with(prefix::CONNECTION) {
        return Ok(Vec::new());
    }
    let new_image = &record.change.new_image;
    let old_image = &record.change.old_image;
    let mut events = Vec::new();
    match (record.event_name.as_str(), sk.as_str()) {
        ("INSERT", prefix::META) => {
            let meta: MetaItem = image(new_image).map_err(fail)?;
            let data = json!({"conversationId": meta.id, "kind": meta.kind, "createdBy": meta.created_by,
                              "memberCount": meta.member_count});
            events.push((meta.id.to_string(), EventType::ConversationCreated, data));
        }
        ("INSERT", member) if member.starts_with(prefix::MEMBER) => {
            let item: MemberItem = image(new_image).map_err(fail)?;
            // The first members arrive with the conversation; only later additions are events.
            if let Some(added_by) = item.added_by {
                let data = json!({"conversationId": item.conversation_id, "userId": item.user_id,
                                  "addedBy": added_by, "role": item.role});
                events.push((
                    item.conversation_id.to_string(),
                    EventType::MemberAdded,
                    data,
                ));
            }
        }
        ("MODIFY", member) if member.starts_with(prefix::MEMBER) => {
            let (before, after): (MemberItem, MemberItem) = (
                image(old_image).map_err(fail)?,
                image(new_image).map_err(fail)?,
            );
            // Only a read the member made: a send moves the sender's position without `lastReadAt`.
            if after.last_read_at != before.last_read_at
                && after.last_read_seq > before.last_read_seq
            {
                let data = json!({"conversationId": after.conversation_id, "userId": after.user_id,
                                  "lastReadSeq": after.last_read_seq});
                events.push((
                    after.conversation_id.to_string(),
                    EventType::MessageRead,
                    data,
                ));
            }
        }
        ("INSERT", message) if message.starts_with(prefix::MESSAGE) => {
            // A void holds a number, not a message: nothing happened that an event tells.
            let StoredMessage::Message(item) = image(new_image).map_err(fail)? else {
                return Ok(Vec::new());
            };
            let data = json!({"conversationId": item.conversation_id, "messageId": item.id, "seq": item.seq,
                              "rev": item.msg_rev, "senderId": item.sender_id,
                              "length": item.body.chars().count(), "replyToSeq": item.reply_to_seq});
            events.push((
                item.conversation_id.to_string(),
                EventType::MessageCreated,
                data,
            ));
        }
        ("MODIFY", message) if message.starts_with(prefix::MESSAGE) => {
            let (StoredMessage::Message(before), StoredMessage::Message(after)) = (
                image(old_image).map_err(fail)?,
                image(new_image).map_err(fail)?,
            ) else {
                return Ok(Vec::new());
            };
            let subject = after.conversation_id.to_string();
            let base = json!({"conversationId": after.conversation_id, "messageId": after.id, "seq": after.seq,
                              "rev": after.msg_rev});
            let with = |extra: Value| {
                let mut data = base.clone();
                if let (Some(data), Value::Object(extra)) = (data.as_object_mut(), extra) {
                    data.extend(extra);
                }
                data
            };
            if after.deleted && !before.deleted {
                events.push((
                    subject.clone(),
                    EventType::MessageDeleted,
                    with(json!({"senderId": after.sender_id})),
                ));
            } else if after.edited_at != before.edited_at {
                let length = after.body.chars().count();
                events.push((
                    subject.clone(),
                    EventType::MessageEdited,
                    with(json!({"length": length})),
                ));
            }
            let pairs = |m: &MessageItem| -> Vec<(String, UserId)> {
                m.reactions()
                    .into_iter()
                    .flat_map(|(e, users)| users.into_iter().map(move |u| (e.clone(), u)))
                    .collect()
            };
            let (old_pairs, new_pairs) = (pairs(&before), pairs(&after));
            // A tombstone's reactions go with it; that is the deletion, not removals.
            if !after.deleted {
                for (emoji, user) in old_pairs.iter().filter(|p| !new_pairs.contains(p)) {
                    let data = with(json!({"userId": user, "emoji": emoji}));
                    events.push((subject.clone(), EventType::ReactionRemoved, data));
                }
            }
            for (emoji, user) in new_pairs.iter().filter(|p| !old_pairs.contains(p)) {
                let data = with(json!({"userId": user, "emoji": emoji}));
                events.push((subject.clone(), EventType::ReactionAdded, data));
            }
        }
        // User-level events: partition key the user.
        ("INSERT", "CONN") => {
            let item: ConnectionItem = image(new_image).map_err(fail)?;
            let data = json!({"userId": item.user_id, "connectionId": item.connection_id});
            events.push((item.user_id.to_string(), EventType::ConnectionOpened, data));
        }
        ("REMOVE", "CONN") => {
            let item: ConnectionItem = image(old_image).map_err(fail)?;
            let data = json!({"userId": item.user_id, "connectionId": item.connection_id,
                              "connectedAt": item.connected_at});
            events.push((item.user_id.to_string(), EventType::ConnectionClosed, data));
        }
        ("REMOVE", member) if member.starts_with(prefix::MEMBER) => {
            let item: MemberItem = image(old_image).map_err(fail)?;
            let data = json!({"conversationId": item.conversation_id, "userId": item.user_id});
            events.push((
                item.conversation_id.to_string(),
                EventType::MemberRemoved,
                data,
            ));
        }
        _ => {}
    }
    let sequence_number = record.change.sequence_number.clone().unwrap_or_default();
    Ok(events
        .into_iter()
        .enumerate()
        .map(|(index, (partition_key, kind, data))| PendingEvent {
            event: envelope(record, index, kind, &partition_key, data),
            partition_key,
            sequence_number: sequence_number.clone(),
        })
        .collect())
}
