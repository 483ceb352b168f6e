//! What `stream-fan-out` does with the table's stream: each record that connected clients hear
//! of becomes one push (`message.created`, `message.updated`, `message.deleted`, `read`,
//! `typing`, `conversation.created`, `conversation.updated`, `member.added`, `member.removed`)
//! to every connection of the members concerned. It runs outside the invocation of the write
//! that caused it, so a write answers after its own writes, and a dead or slow `@connections`
//! never slows one (docs/decisions/0007-hot-conversations.md).
//!
//! Decided apart from done: [`push_of`] reads a record into a [`Push`] (pure); [`deliver`] groups
//! a batch's pushes by conversation, reads each conversation's members and their connections once
//! per batch, renders a conversation's views where a push needs them, and posts the pushes in
//! order. A conversation whose members, connections or views cannot be read fails its first
//! record, and the mapping hands the batch again from there (pushes are at least once; each
//! message push carries `rev`, by which a client orders and dedupes).

use std::collections::HashMap;

use aws_lambda_events::event::dynamodb::{Event, EventRecord};
use aws_lambda_events::event::streams::{DynamoDbBatchItemFailure, DynamoDbEventResponse};
use futures::stream::{self, StreamExt};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::adapters::push::fit;
use crate::adapters::store::keys::{self, prefix};
use crate::domain::error::ApiError;
use crate::domain::{ConversationId, UserId};
use crate::platform::time::Timestamp;
use crate::services::connections::{ByUser, of_users};
use crate::services::conversations::model::{MemberItem, MetaItem};
use crate::services::deps::RouteDeps;
use crate::services::events::{RecordError, image, string_key};
use crate::services::fan_out::Target;
use crate::services::messages::model::{Message, StoredMessage};

/// The events pushed to connections: their `type`, as `asyncapi.yaml` names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PushEvent {
    MessageCreated,
    MessageUpdated,
    MessageDeleted,
    Read,
    Typing,
    MemberAdded,
    MemberRemoved,
    ConversationCreated,
    ConversationUpdated,
}

impl PushEvent {
    pub const fn name(self) -> &'static str {
        match self {
            Self::MessageCreated => "message.created",
            Self::MessageUpdated => "message.updated",
            Self::MessageDeleted => "message.deleted",
            Self::Read => "read",
            Self::Typing => "typing",
            Self::MemberAdded => "member.added",
            Self::MemberRemoved => "member.removed",
            Self::ConversationCreated => "conversation.created",
            Self::ConversationUpdated => "conversation.updated",
        }
    }
}

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

/// One push a stream record makes, to the connections of one conversation's members.
#[derive(Debug, Clone, PartialEq)]
pub struct Push {
    pub conversation: ConversationId,
    /// The `rev` of a message push: a batch's message pushes go out in this order.
    pub rev: Option<u64>,
    pub what: What,
}

/// What a push posts, and to whom.
#[derive(Debug, Clone, PartialEq)]
pub enum What {
    /// `event` to every connection of every member but `except`'s (the typist) and
    /// `except_connection` (the one a message was sent from, which had its ack).
    Event {
        event: Value,
        except: Option<UserId>,
        except_connection: Option<String>,
    },
    /// `conversation.created` or `conversation.updated` to each of `to` (every member when
    /// `None`), each with its own view of the conversation (its `me`).
    View {
        kind: PushEvent,
        to: Option<Vec<UserId>>,
    },
    /// `member.added` or `member.removed` naming `users`, to every member and to the removed
    /// users (their last push); the added users also get `conversation.created`.
    Members { kind: PushEvent, users: Vec<UserId> },
}

impl Push {
    fn event(conversation: ConversationId, rev: Option<u64>, event: Value) -> Self {
        Self {
            conversation,
            rev,
            what: What::Event {
                event,
                except: None,
                except_connection: None,
            },
        }
    }
}

/// The push a stream record makes, if any: a message stored, changed or unsent (not a void,
/// which holds a number and tells nobody anything), a read position a member moved themselves (a
/// send moves the sender's without `lastReadAt`), a typing frame, a conversation created or
/// renamed (`META` inserted, or its title changed: every send changes `META` too), a member added
/// after the creation or removed.
pub fn push_of(record: &EventRecord) -> Result<Option<Push>, RecordError> {
    let fail = |reason: String| RecordError {
        event_id: record.event_id.clone(),
        reason,
    };
    let (Some(pk), Some(sk)) = (string_key(record, "PK"), string_key(record, "SK")) else {
        return Ok(None);
    };
    let (new_image, old_image) = (&record.change.new_image, &record.change.old_image);
    let (inserted, removed) = match record.event_name.as_str() {
        "INSERT" => (true, false),
        "MODIFY" => (false, false),
        "REMOVE" => (false, true),
        _ => return Ok(None),
    };
    if removed {
        if pk.starts_with(prefix::CONVERSATION) && sk.starts_with(prefix::MEMBER) {
            let gone: MemberItem = image(old_image).map_err(fail)?;
            return Ok(Some(Push {
                conversation: gone.conversation_id,
                rev: None,
                what: What::Members {
                    kind: PushEvent::MemberRemoved,
                    users: vec![gone.user_id],
                },
            }));
        }
        return Ok(None);
    }
    if pk.starts_with(prefix::TYPING) {
        let item: TypingItem = image(new_image).map_err(fail)?;
        let event = json!({"type": PushEvent::Typing.name(), "conversationId": item.conversation_id,
                           "userId": item.user_id, "isTyping": item.is_typing});
        return Ok(Some(Push {
            conversation: item.conversation_id,
            rev: None,
            what: What::Event {
                event,
                except: Some(item.user_id),
                except_connection: None,
            },
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
            rev: Some(message.rev),
            what: What::Event {
                event,
                except: None,
                except_connection: sent_from,
            },
        }));
    }
    if sk.starts_with(prefix::MEMBER) && inserted {
        let joined: MemberItem = image(new_image).map_err(fail)?;
        // The first members arrive with the conversation: its `conversation.created` tells them.
        if joined.added_by.is_none() {
            return Ok(None);
        }
        return Ok(Some(Push {
            conversation: joined.conversation_id,
            rev: None,
            what: What::Members {
                kind: PushEvent::MemberAdded,
                users: vec![joined.user_id],
            },
        }));
    }
    if sk.starts_with(prefix::MEMBER) {
        let (before, after): (MemberItem, MemberItem) = (
            image(old_image).map_err(fail)?,
            image(new_image).map_err(fail)?,
        );
        if after.last_read_at != before.last_read_at && after.last_read_seq > before.last_read_seq {
            let event = json!({"type": PushEvent::Read.name(), "conversationId": after.conversation_id,
                               "userId": after.user_id, "lastReadSeq": after.last_read_seq});
            return Ok(Some(Push::event(after.conversation_id, None, event)));
        }
        return Ok(None);
    }
    if sk == prefix::META {
        let after: MetaItem = image(new_image).map_err(fail)?;
        let kind = if inserted {
            PushEvent::ConversationCreated
        } else {
            let before: MetaItem = image(old_image).map_err(fail)?;
            if before.title == after.title {
                return Ok(None);
            }
            PushEvent::ConversationUpdated
        };
        return Ok(Some(Push {
            conversation: after.id,
            rev: None,
            what: What::View { kind, to: None },
        }));
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
        coalesce_additions(self.pushes)
    }
}

/// Members added one after another (one stream record each, from one request) make one
/// `member.added` naming them all, under the first one's record.
fn coalesce_additions(pushes: Vec<(String, Push)>) -> Vec<(String, Push)> {
    let mut out: Vec<(String, Push)> = Vec::with_capacity(pushes.len());
    for (sequence, push) in pushes {
        if let (
            Some((_, previous)),
            What::Members {
                kind: PushEvent::MemberAdded,
                users: added,
            },
        ) = (out.last_mut(), &push.what)
            && let What::Members {
                kind: PushEvent::MemberAdded,
                users,
            } = &mut previous.what
        {
            users.extend(added.iter().cloned());
            continue;
        }
        out.push((sequence, push));
    }
    out
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

/// Posts one conversation's pushes in order (each push reaches every connection before the next
/// starts, so a connection sees them in that order). `Err` when its members, their connections
/// or a view could not be read: the batch is handed again from this conversation's first record.
async fn deliver_conversation(
    deps: &RouteDeps,
    conversation: &ConversationId,
    pushes: &[(String, Push)],
) -> Result<(), ApiError> {
    let (store, pusher) = (&deps.store, &deps.pusher);
    let members: Vec<UserId> =
        crate::services::conversations::member_items(store, conversation, None)
            .await?
            .into_iter()
            .map(|m| m.user_id)
            .collect();
    // The first push, when it is an event (a message, most often), goes out while the members'
    // connections are read; the rest use what that read found.
    let (mut connections, rest) = match pushes.split_first() {
        Some((
            (
                _,
                Push {
                    what:
                        What::Event {
                            event,
                            except,
                            except_connection,
                        },
                    ..
                },
            ),
            rest,
        )) => {
            let skip = |user: &UserId, id: &str| {
                excluded(user, id, except.as_ref(), except_connection.as_deref())
            };
            (pusher.fan_out(store, &members, event, skip).await?, rest)
        }
        _ => (of_users(store, &members).await?, pushes),
    };
    let everyone = |connections: &ByUser| -> Vec<Target> { targets(connections, |_, _| false) };
    for (_, push) in rest {
        match &push.what {
            What::Event {
                event,
                except,
                except_connection,
            } => {
                let targets = targets(&connections, |user, id| {
                    excluded(user, id, except.as_ref(), except_connection.as_deref())
                });
                pusher.post_all(store, targets, &fit(event.clone())).await;
            }
            What::View { kind, to } => {
                post_views(
                    deps,
                    &connections,
                    *kind,
                    conversation,
                    to.as_deref().unwrap_or(&members),
                )
                .await?;
            }
            What::Members { kind, users } => {
                // A removed member is no longer in the list: their connections are read here,
                // for this last push.
                if *kind == PushEvent::MemberRemoved {
                    let gone: Vec<UserId> = users
                        .iter()
                        .filter(|u| !connections.contains_key(*u))
                        .cloned()
                        .collect();
                    connections.extend(of_users(store, &gone).await?);
                }
                let event =
                    json!({"type": kind.name(), "conversationId": conversation, "userIds": users});
                pusher
                    .post_all(store, everyone(&connections), &fit(event))
                    .await;
                if *kind == PushEvent::MemberRemoved {
                    connections.retain(|user, _| !users.contains(user));
                } else {
                    // The new members learn of the conversation itself.
                    post_views(
                        deps,
                        &connections,
                        PushEvent::ConversationCreated,
                        conversation,
                        users,
                    )
                    .await?;
                }
            }
        }
    }
    Ok(())
}

/// Every connection read, with its user, but those `skip` names.
fn targets(connections: &ByUser, skip: impl Fn(&UserId, &str) -> bool) -> Vec<Target> {
    connections
        .iter()
        .flat_map(|(user, ids)| ids.iter().map(move |id| (user, id)))
        .filter(|(user, id)| !skip(user, id))
        .map(|(user, id)| (user.clone(), id.clone()))
        .collect()
}

/// Whether an event push leaves out this connection of `user`: the typist's own, or the one a
/// message was sent from (it had its ack).
fn excluded(
    user: &UserId,
    connection: &str,
    except: Option<&UserId>,
    except_connection: Option<&str>,
) -> bool {
    Some(user) == except || Some(connection) == except_connection
}

/// `conversation.created` or `conversation.updated` to each recipient's connections, with the
/// recipient's own view (`me`).
async fn post_views(
    deps: &RouteDeps,
    connections: &ByUser,
    kind: PushEvent,
    conversation: &ConversationId,
    recipients: &[UserId],
) -> Result<(), ApiError> {
    let views = crate::services::conversations::views_for(deps, conversation, recipients).await?;
    for (recipient, view) in views {
        let targets: Vec<Target> = connections
            .get(&recipient)
            .into_iter()
            .flatten()
            .map(|id| (recipient.clone(), id.clone()))
            .collect();
        let event =
            json!({"type": kind.name(), "conversationId": conversation, "conversation": view});
        deps.pusher.post_all(&deps.store, targets, &event).await;
    }
    Ok(())
}

/// Fans a batch of the table's stream out to the connections concerned, and keeps the search
/// entries (`services::indexing`) beside it. The answer names the first record (in the batch's
/// order) of a conversation that could not be delivered or whose upkeep failed; the mapping
/// hands the batch again from it. `deps` have no Redis (the function runs outside the
/// VPC): views are read from the table.
pub async fn deliver(deps: &RouteDeps, batch: &Event) -> DynamoDbEventResponse {
    let (mut failed, indexing) = tokio::join!(
        push_all(deps, batch),
        crate::services::indexing::keep(deps, batch)
    );
    failed.extend(indexing);
    let mut response = DynamoDbEventResponse::default();
    if let Some(first) = failed.into_iter().min_by(|a, b| sequence_order(a, b)) {
        crate::platform::metrics::degraded(crate::platform::metrics::Dependency::DynamoDb);
        let mut failure = DynamoDbBatchItemFailure::default();
        failure.item_identifier = Some(first);
        response.batch_item_failures.push(failure);
    }
    response
}

/// Posts the batch's pushes, conversation by conversation; the first record of each conversation
/// that could not be delivered.
async fn push_all(deps: &RouteDeps, batch: &Event) -> Vec<String> {
    let pending = pending_of(batch);
    stream::iter(pending)
        .map(|(conversation, pending)| async move {
            let pushes = pending.in_rev_order();
            match deliver_conversation(deps, &conversation, &pushes).await {
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
        .await
}

/// Stream sequence numbers are decimal strings of any length: compared as numbers.
fn sequence_order(a: &str, b: &str) -> std::cmp::Ordering {
    a.len().cmp(&b.len()).then_with(|| a.cmp(b))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn push(rev: Option<u64>, tag: &str) -> Push {
        Push::event(
            "01JDQ7Z8K3M4N5P6Q7R8S9T0VW".parse().unwrap(),
            rev,
            json!({ "tag": tag }),
        )
    }

    fn tag(push: &Push) -> String {
        match &push.what {
            What::Event { event, .. } => event["tag"].as_str().unwrap().to_owned(),
            What::Members { users, .. } => format!(
                "added {}",
                users
                    .iter()
                    .map(|u| u.as_str())
                    .collect::<Vec<_>>()
                    .join(",")
            ),
            What::View { .. } => "view".to_owned(),
        }
    }

    fn added(user: &str) -> Push {
        Push {
            conversation: "01JDQ7Z8K3M4N5P6Q7R8S9T0VW".parse().unwrap(),
            rev: None,
            what: What::Members {
                kind: PushEvent::MemberAdded,
                users: vec![user.parse().unwrap()],
            },
        }
    }

    #[test]
    fn members_added_one_after_another_make_one_member_added() {
        let pending = Pending {
            pushes: vec![
                ("1".into(), added("bob")),
                ("2".into(), added("cy")),
                ("3".into(), push(Some(4), "m4")),
                ("4".into(), added("dan")),
            ],
        };
        let out = pending.in_rev_order();
        let tags: Vec<String> = out.iter().map(|(_, p)| tag(p)).collect();
        assert_eq!(tags, ["added bob,cy", "m4", "added dan"]);
        assert_eq!(out[0].0, "1", "under the first one's record");
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
        let tags: Vec<String> = pending.in_rev_order().iter().map(|(_, p)| tag(p)).collect();
        assert_eq!(tags, ["m4", "read", "m5", "m6"]);
    }

    #[test]
    fn sequence_numbers_compare_as_numbers() {
        assert!(sequence_order("900", "1000").is_lt());
        assert!(sequence_order("1000", "1001").is_lt());
        assert!(sequence_order("42", "42").is_eq());
    }
}
