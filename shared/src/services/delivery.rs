//! What `stream-fan-out` does with the table's stream: each record that connected clients hear
//! of becomes one push (`message.created`, `message.updated`, `message.deleted`, `read`,
//! `typing`) to every connection of the conversation's members. It runs outside the invocation
//! of the write that caused it, so a send answers after its own writes whatever the group's size,
//! and a dead or slow `@connections` never slows a write (docs/decisions/0007-hot-conversations.md).
//!
//! Decided apart from done: [`push_of`] reads a record into a [`Push`] (pure); [`deliver`] groups
//! a batch's pushes by conversation, reads each conversation's members and their connections once
//! per batch, and posts the pushes in order. A conversation whose members or connections cannot
//! be read fails its first record, and the mapping hands the batch again from there (pushes are
//! at least once; each message push carries `rev`, by which a client orders and dedupes).

use std::collections::{BTreeMap, HashMap};

use aws_lambda_events::event::dynamodb::{Event, EventRecord};
use aws_lambda_events::event::streams::{DynamoDbBatchItemFailure, DynamoDbEventResponse};
use futures::stream::{self, StreamExt};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::adapters::push::{Pusher, fit};
use crate::adapters::store::keys::{self, prefix};
use crate::adapters::store::{DynamoStore, StoreError};
use crate::domain::error::ApiError;
use crate::domain::{ConversationId, UserId};
use crate::platform::time::Timestamp;
use crate::services::conversations::model::MemberItem;
use crate::services::conversations::notify::PushEvent;
use crate::services::events::{RecordError, image, string_key};
use crate::services::messages::model::{Message, StoredMessage};

/// How long a typing item lives: the stream carries its change, the table's TTL removes it later.
pub const TYPING_ITEM_SECONDS: i64 = 60;

/// Conversations of one batch fanned out at once.
const CONVERSATIONS_IN_FLIGHT: usize = 8;

/// `TYPING#c` / `u`: the last typing frame of `u` in `c`. Each frame writes it again with a new
/// `at`, so that each one is a change on the stream (an unchanged put makes no record).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TypingItem {
    #[serde(rename = "PK")]
    pub pk: String,
    #[serde(rename = "SK")]
    pub sk: String,
    pub conversation_id: ConversationId,
    pub user_id: UserId,
    pub is_typing: bool,
    pub at: Timestamp,
    /// Epoch seconds: the table's TTL removes it.
    pub expires_at: i64,
}

impl TypingItem {
    pub fn new(
        conversation: &ConversationId,
        user: &UserId,
        is_typing: bool,
        at: Timestamp,
    ) -> Self {
        let key = keys::typing(conversation, user);
        Self {
            pk: key.pk,
            sk: key.sk,
            conversation_id: conversation.clone(),
            user_id: user.clone(),
            is_typing,
            at,
            expires_at: at.plus_seconds(TYPING_ITEM_SECONDS).unix_seconds(),
        }
    }
}

/// One push a stream record makes: `event` to every connection of the conversation's members
/// but `except`'s and `except_connection`.
#[derive(Debug, Clone, PartialEq)]
pub struct Push {
    pub conversation: ConversationId,
    /// A member who is not told (the typist).
    pub except: Option<UserId>,
    /// A connection that is not told (the one a message was sent from, which had its ack).
    pub except_connection: Option<String>,
    /// The `rev` of a message push: a batch's message pushes go out in this order.
    pub rev: Option<u64>,
    pub event: Value,
}

/// The push a stream record makes, if any: a message stored, changed or unsent (not a void,
/// which holds a number and tells nobody anything), a read position a member moved themselves (a
/// send moves the sender's without `lastReadAt`), a typing frame.
pub fn push_of(record: &EventRecord) -> Result<Option<Push>, RecordError> {
    let fail = |reason: String| RecordError {
        event_id: record.event_id.clone(),
        reason,
    };
    let (Some(pk), Some(sk)) = (string_key(record, "PK"), string_key(record, "SK")) else {
        return Ok(None);
    };
    let (new_image, old_image) = (&record.change.new_image, &record.change.old_image);
    let inserted = match record.event_name.as_str() {
        "INSERT" => true,
        "MODIFY" => false,
        _ => return Ok(None),
    };
    if pk.starts_with(prefix::TYPING) {
        let item: TypingItem = image(new_image).map_err(fail)?;
        let event = json!({"type": PushEvent::Typing.name(), "conversationId": item.conversation_id,
                           "userId": item.user_id, "isTyping": item.is_typing});
        return Ok(Some(Push {
            conversation: item.conversation_id,
            except: Some(item.user_id),
            except_connection: None,
            rev: None,
            event,
        }));
    }
    if !pk.starts_with(prefix::CONVERSATION) {
        return Ok(None);
    }
    if sk.starts_with(prefix::MESSAGE) {
        let StoredMessage::Message(item) = image(new_image).map_err(fail)? else {
            return Ok(None);
        };
        let sent_from = item.sent_from.clone().filter(|_| inserted);
        let message = Message::from(*item);
        let kind = if inserted {
            PushEvent::MessageCreated
        } else if message.deleted {
            PushEvent::MessageDeleted
        } else {
            PushEvent::MessageUpdated
        };
        let event = message_event(kind, &message);
        return Ok(Some(Push {
            conversation: message.conversation_id,
            except: None,
            except_connection: sent_from,
            rev: Some(message.rev),
            event,
        }));
    }
    if sk.starts_with(prefix::MEMBER) && !inserted {
        let (before, after): (MemberItem, MemberItem) = (
            image(old_image).map_err(fail)?,
            image(new_image).map_err(fail)?,
        );
        if after.last_read_at != before.last_read_at && after.last_read_seq > before.last_read_seq {
            let event = json!({"type": PushEvent::Read.name(), "conversationId": after.conversation_id,
                               "userId": after.user_id, "lastReadSeq": after.last_read_seq});
            return Ok(Some(Push {
                conversation: after.conversation_id,
                except: None,
                except_connection: None,
                rev: None,
                event,
            }));
        }
    }
    Ok(None)
}

/// `message.created`, `message.updated` or `message.deleted` as `asyncapi.yaml` describes it.
pub fn message_event(kind: PushEvent, message: &Message) -> Value {
    json!({"type": kind.name(), "conversationId": message.conversation_id, "rev": message.rev,
           "message": message})
}

/// One conversation's pushes in a batch, each with the sequence number of its record.
#[derive(Debug, Default)]
struct Pending {
    pushes: Vec<(String, Push)>,
}

impl Pending {
    /// Message pushes in `rev` order, each other push where it was: numbers are taken before a
    /// write lands, so two sends can reach the stream in the other order.
    fn in_rev_order(mut self) -> Vec<(String, Push)> {
        let slots: Vec<usize> = (0..self.pushes.len())
            .filter(|&i| self.pushes[i].1.rev.is_some())
            .collect();
        let mut by_rev: Vec<(String, Push)> =
            slots.iter().map(|&i| self.pushes[i].clone()).collect();
        by_rev.sort_by_key(|(_, push)| push.rev);
        for (slot, push) in slots.into_iter().zip(by_rev) {
            self.pushes[slot] = push;
        }
        self.pushes
    }
}

/// The batch's pushes by conversation, in the order each conversation first appears; unreadable
/// records are logged and skipped (failing them would stop the shard for good).
fn pending_of(batch: &Event) -> Vec<(ConversationId, Pending)> {
    let mut order: Vec<(ConversationId, Pending)> = Vec::new();
    let mut index: HashMap<ConversationId, usize> = HashMap::new();
    for record in &batch.records {
        let push = match push_of(record) {
            Ok(Some(push)) => push,
            Ok(None) => continue,
            Err(error) => {
                tracing::error!(%error, "skipped an unreadable stream record");
                continue;
            }
        };
        let sequence = record.change.sequence_number.clone().unwrap_or_default();
        let slot = *index.entry(push.conversation.clone()).or_insert_with(|| {
            order.push((push.conversation.clone(), Pending::default()));
            order.len() - 1
        });
        order[slot].1.pushes.push((sequence, push));
    }
    order
}

/// Every connection of every member, by member (every page of each member's connections).
async fn connections_of(
    store: &DynamoStore,
    members: &[UserId],
    in_flight: usize,
) -> Result<BTreeMap<UserId, Vec<String>>, StoreError> {
    stream::iter(members.iter().cloned())
        .map(|user| async move {
            let found = crate::services::connections::of_user(store, &user).await?;
            Ok((user, found.into_iter().map(|c| c.connection_id).collect()))
        })
        .buffer_unordered(in_flight.max(1))
        .collect::<Vec<Result<(UserId, Vec<String>), StoreError>>>()
        .await
        .into_iter()
        .collect()
}

/// Posts one conversation's pushes in order (each push reaches every connection before the next
/// starts, so a connection sees them in that order). `Err` when its members or their connections
/// could not be read: nothing of it was posted.
async fn deliver_conversation(
    store: &DynamoStore,
    pusher: &Pusher,
    conversation: &ConversationId,
    pushes: &[(String, Push)],
) -> Result<(), ApiError> {
    let members: Vec<UserId> =
        crate::services::conversations::member_items(store, conversation, None)
            .await?
            .into_iter()
            .map(|m| m.user_id)
            .collect();
    let connections = connections_of(store, &members, pusher.in_flight()).await?;
    for (_, push) in pushes {
        let targets: Vec<String> = connections
            .iter()
            .filter(|(user, _)| Some(*user) != push.except.as_ref())
            .flat_map(|(_, ids)| ids.iter().cloned())
            .filter(|id| Some(id) != push.except_connection.as_ref())
            .collect();
        pusher
            .post_all(store, targets, &fit(push.event.clone()))
            .await;
    }
    Ok(())
}

/// Fans a batch of the table's stream out to the connections concerned. The answer names the
/// first record (in the batch's order) of a conversation that could not be delivered; the
/// mapping hands the batch again from it.
pub async fn deliver(store: &DynamoStore, pusher: &Pusher, batch: &Event) -> DynamoDbEventResponse {
    let pending = pending_of(batch);
    let failed: Vec<String> = stream::iter(pending)
        .map(|(conversation, pending)| async move {
            let pushes = pending.in_rev_order();
            match deliver_conversation(store, pusher, &conversation, &pushes).await {
                Ok(()) => None,
                Err(error) => {
                    error.log();
                    pushes
                        .iter()
                        .map(|(sequence, _)| sequence.clone())
                        .min_by(|a, b| sequence_order(a, b))
                }
            }
        })
        .buffer_unordered(CONVERSATIONS_IN_FLIGHT)
        .filter_map(|failed| async move { failed })
        .collect()
        .await;
    let mut response = DynamoDbEventResponse::default();
    if let Some(first) = failed.into_iter().min_by(|a, b| sequence_order(a, b)) {
        crate::platform::metrics::degraded(crate::platform::metrics::Dependency::DynamoDb);
        let mut failure = DynamoDbBatchItemFailure::default();
        failure.item_identifier = Some(first);
        response.batch_item_failures.push(failure);
    }
    response
}

/// Stream sequence numbers are decimal strings of any length: compared as numbers.
fn sequence_order(a: &str, b: &str) -> std::cmp::Ordering {
    a.len().cmp(&b.len()).then_with(|| a.cmp(b))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn push(rev: Option<u64>, tag: &str) -> Push {
        Push {
            conversation: "01JDQ7Z8K3M4N5P6Q7R8S9T0VW".parse().unwrap(),
            except: None,
            except_connection: None,
            rev,
            event: json!({ "tag": tag }),
        }
    }

    #[test]
    fn message_pushes_go_out_by_rev_and_the_others_keep_their_place() {
        let pending = Pending {
            pushes: vec![
                ("1".into(), push(Some(5), "m5")),
                ("2".into(), push(None, "read")),
                ("3".into(), push(Some(4), "m4")),
                ("4".into(), push(Some(6), "m6")),
            ],
        };
        let tags: Vec<String> = pending
            .in_rev_order()
            .into_iter()
            .map(|(_, p)| p.event["tag"].as_str().unwrap().to_owned())
            .collect();
        assert_eq!(tags, ["m4", "read", "m5", "m6"]);
    }

    #[test]
    fn sequence_numbers_compare_as_numbers() {
        assert!(sequence_order("900", "1000").is_lt());
        assert!(sequence_order("1000", "1001").is_lt());
        assert!(sequence_order("42", "42").is_eq());
    }
}
