//! Changes to a sent message: edit and unsend (the sender only), reactions (any member), and the
//! catch-up read `/changes`. Every change takes the conversation's next `rev`: the message and
//! `META` are written in one transaction, each guarded by the revision that was read.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::model::{Message, MessageItem, preview};
use crate::adapters::store::keys::{self, attr, index};
use crate::adapters::store::retry::{Attempt, lost_race, retrying};
use crate::adapters::store::{Consistency, Expr, Query, Write};
use crate::domain::error::ApiError;
use crate::domain::{ConversationId, Emoji, Limit, MessageBody, UserId};
use crate::platform::time::Timestamp;
use crate::services::conversations::model::MetaItem;
use crate::services::conversations::notify::{self, PushEvent};
use crate::services::conversations::{access, access_with};
use crate::services::deps::RouteDeps;

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EditMessage {
    pub body: MessageBody,
}

/// What a change does to a message; `None` from a rule means "nothing to do" (idempotent).
#[derive(Debug, Clone, PartialEq)]
struct Change {
    body: String,
    edited_at: Option<Timestamp>,
    deleted: bool,
    reactions: BTreeMap<String, Vec<UserId>>,
}

impl Change {
    fn of(item: &MessageItem) -> Self {
        Self {
            body: item.body.clone(),
            edited_at: item.edited_at,
            deleted: item.deleted,
            reactions: item.reactions.clone(),
        }
    }
}

/// Reads `META`, my membership and the message consistently; 404 for a non-member or no message.
async fn read(
    deps: &RouteDeps,
    user: &UserId,
    id: &ConversationId,
    seq: u64,
) -> Result<(MetaItem, MessageItem), ApiError> {
    let (meta, _, message) = access_with(&deps.store, user, id, &keys::message(id, seq)).await?;
    Ok((meta, message.ok_or(ApiError::NotFound)?))
}

/// Applies `rule` to the message with optimistic retries; the message as it is afterwards.
async fn change_message<F>(
    deps: &RouteDeps,
    user: &UserId,
    id: &ConversationId,
    seq: u64,
    rule: F,
) -> Result<Message, ApiError>
where
    F: Fn(&MessageItem, Timestamp) -> Result<Option<Change>, ApiError>,
{
    let (message, changed) = retrying(|| async {
        let (meta, item) = read(deps, user, id, seq).await?;
        let now = deps.store.now();
        let Some(change) = rule(&item, now)? else {
            return Ok(Attempt::Done((Message::from(item), false)));
        };
        let writes = change_writes(&meta, &item, &change, user, now)?;
        match deps.store.transact(writes).await {
            Ok(()) => {
                let mut updated = item;
                updated.body = change.body;
                updated.edited_at = change.edited_at;
                updated.deleted = change.deleted;
                updated.reactions = change.reactions;
                updated.msg_rev = meta.rev + 1;
                Ok(Attempt::Done((Message::from(updated), true)))
            }
            // A lost race, or the writer is no longer a member: read again (and 404).
            Err(e) if lost_race(&e) => Ok(Attempt::Retry),
            Err(e) => Err(e.into()),
        }
    })
    .await?;
    if changed {
        // Edits and reactions are `message.updated`; an unsend is `message.deleted`.
        let kind = if message.deleted {
            PushEvent::MessageDeleted
        } else {
            PushEvent::MessageUpdated
        };
        let members = notify::members_of(deps, id).await;
        notify::message(deps, kind, &message, &members, None).await;
    }
    Ok(message)
}

/// The writes of a change to `item` by `user`, decided from what was read: the message and
/// `META` move to the next `rev` if neither moved meanwhile, and only while `user` is still a
/// member (a member being removed must not land one last change).
fn change_writes(
    meta: &MetaItem,
    item: &MessageItem,
    change: &Change,
    user: &UserId,
    now: Timestamp,
) -> Result<Vec<Write>, ApiError> {
    let (id, seq) = (&meta.id, item.seq);
    {
        let rev = meta.rev + 1;
        let mut message_update = Expr::default()
            .string(":body", change.body.clone())
            .boolean(":deleted", change.deleted)
            .number(":rev", rev)
            .number(":seenRev", item.msg_rev);
        let mut sets = vec!["body = :body", "deleted = :deleted", "msgRev = :rev"];
        if let Some(edited) = change.edited_at {
            message_update = message_update.string(":edited", edited.to_string());
            sets.push("editedAt = :edited");
        }
        // An empty map is removed, never stored (see `MessageItem::reactions`).
        let reactions = if change.reactions.is_empty() {
            " REMOVE reactions".to_owned()
        } else {
            let value =
                serde_dynamo::to_attribute_value(&change.reactions).map_err(ApiError::internal)?;
            message_update = message_update.value_raw(":reactions", value);
            sets.push("reactions = :reactions");
            String::new()
        };
        message_update.expression = format!("SET {}{reactions}", sets.join(", "));
        let message_update = message_update.when("msgRev = :seenRev");

        let mut meta_update = Expr::default()
            .number(":rev", rev)
            .number(":seenRev", meta.rev)
            .string(":now", now.to_string());
        meta_update.expression = "SET rev = :rev, updatedAt = :now".to_owned();
        if meta.last_seq == seq
            && let Some(mut last) = meta.last_message.clone()
        {
            // The conversation shows its last message: keep that summary true.
            last.preview = if change.deleted {
                String::new()
            } else {
                preview(&change.body)
            };
            last.deleted = change.deleted;
            let value = serde_dynamo::to_attribute_value(&last).map_err(ApiError::internal)?;
            meta_update = meta_update.value_raw(":last", value);
            meta_update.expression.push_str(", lastMessage = :last");
        }
        Ok(vec![
            Write::Update {
                key: keys::conversation_meta(id),
                update: meta_update.when("rev = :seenRev"),
            },
            Write::Update {
                key: keys::message(id, seq),
                update: message_update,
            },
            Write::Check {
                key: keys::membership(id, user),
                condition: Expr::item_present(),
            },
        ])
    }
}

fn only_the_sender(item: &MessageItem, user: &UserId, what: &'static str) -> Result<(), ApiError> {
    if &item.sender_id != user {
        return Err(ApiError::Forbidden(what));
    }
    Ok(())
}

fn not_unsent(item: &MessageItem) -> Result<(), ApiError> {
    if item.deleted {
        return Err(ApiError::Conflict("the message was unsent"));
    }
    Ok(())
}

/// `PATCH …/messages/{seq}`: the sender edits the body; the same body again changes nothing.
pub async fn edit(
    deps: &RouteDeps,
    user: &UserId,
    id: &ConversationId,
    seq: u64,
    request: &EditMessage,
) -> Result<Message, ApiError> {
    change_message(deps, user, id, seq, |item, now| {
        only_the_sender(item, user, "only the sender edits a message")?;
        not_unsent(item)?;
        if item.body == request.body.as_str() {
            return Ok(None);
        }
        Ok(Some(Change {
            body: request.body.to_string(),
            edited_at: Some(now),
            ..Change::of(item)
        }))
    })
    .await
}

/// `DELETE …/messages/{seq}`: the sender unsends; the message becomes a tombstone that keeps its
/// `seq` (empty body, no reactions). Unsending again changes nothing.
pub async fn unsend(
    deps: &RouteDeps,
    user: &UserId,
    id: &ConversationId,
    seq: u64,
) -> Result<Message, ApiError> {
    change_message(deps, user, id, seq, |item, _| {
        only_the_sender(item, user, "only the sender unsends a message")?;
        if item.deleted {
            return Ok(None);
        }
        Ok(Some(Change {
            body: String::new(),
            edited_at: item.edited_at,
            deleted: true,
            reactions: BTreeMap::new(),
        }))
    })
    .await
}

/// `PUT …/reactions/{emoji}`: my one reaction becomes this emoji (replacing another).
pub async fn react(
    deps: &RouteDeps,
    user: &UserId,
    id: &ConversationId,
    seq: u64,
    emoji: &Emoji,
) -> Result<Message, ApiError> {
    change_message(deps, user, id, seq, |item, _| {
        not_unsent(item)?;
        if item
            .reactions
            .get(emoji.as_str())
            .is_some_and(|users| users.contains(user))
        {
            return Ok(None);
        }
        let mut reactions = without(&item.reactions, user);
        reactions
            .entry(emoji.to_string())
            .or_default()
            .push(user.clone());
        Ok(Some(Change {
            reactions,
            ..Change::of(item)
        }))
    })
    .await
}

/// `DELETE …/reactions/{emoji}`: removes my reaction if it is this emoji.
pub async fn unreact(
    deps: &RouteDeps,
    user: &UserId,
    id: &ConversationId,
    seq: u64,
    emoji: &Emoji,
) -> Result<Message, ApiError> {
    change_message(deps, user, id, seq, |item, _| {
        not_unsent(item)?;
        if !item
            .reactions
            .get(emoji.as_str())
            .is_some_and(|users| users.contains(user))
        {
            return Ok(None);
        }
        Ok(Some(Change {
            reactions: without(&item.reactions, user),
            ..Change::of(item)
        }))
    })
    .await
}

/// The reactions with `user`'s removed (and emptied emoji dropped).
fn without(
    reactions: &BTreeMap<String, Vec<UserId>>,
    user: &UserId,
) -> BTreeMap<String, Vec<UserId>> {
    reactions
        .iter()
        .map(|(emoji, users)| {
            (
                emoji.clone(),
                users
                    .iter()
                    .filter(|u| *u != user)
                    .cloned()
                    .collect::<Vec<_>>(),
            )
        })
        .filter(|(_, users)| !users.is_empty())
        .collect()
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ChangesPage {
    pub items: Vec<Message>,
    pub has_more: bool,
    /// The revision the client has caught up to once it has applied this page.
    pub rev: u64,
}

/// `GET /conversations/{id}/changes?sinceRev&limit`: every message whose latest change is after
/// `sinceRev`, in ascending `rev`, from the `ByRev` index. The message holding the conversation's
/// newest `rev` is always among them, so "more" is known exactly: the page ends below that `rev`.
pub async fn changes(
    deps: &RouteDeps,
    user: &UserId,
    id: &ConversationId,
    since: u64,
    limit: Limit,
) -> Result<ChangesPage, ApiError> {
    let meta = access(&deps.store, user, id).await?.meta;
    let condition = Expr::new("#pk = :pk AND #rev > :since")
        .name("#pk", attr::PK)
        .name("#rev", attr::MSG_REV)
        .string(":pk", keys::conversation_pk(id))
        .number(":since", since);
    let query = Query {
        page_size: i32::try_from(limit.get()).ok(),
        consistency: Consistency::Strong,
        ..Query::new(Some(index::BY_REV), condition)
    };
    let items: Vec<MessageItem> = deps.store.query_page(&query, None).await?.items;
    let newest = items.last().map_or(since, |m| m.msg_rev);
    let has_more = newest < meta.rev && items.len() == limit.get();
    let rev = if has_more {
        newest
    } else {
        meta.rev.max(newest)
    };
    Ok(ChangesPage {
        items: items.into_iter().map(Message::from).collect(),
        has_more,
        rev,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A change lands only while its writer is a member: the membership is checked in the same
    /// transaction, so a member removed between the read and the write changes nothing.
    #[test]
    fn a_change_is_conditioned_on_the_writers_membership() {
        let at = Timestamp::from_unix_millis(1_800_000_000_000);
        let id: ConversationId = "01JDQ7Z8K3M4N5P6Q7R8S9T0VW".parse().unwrap();
        let ada: UserId = "ada".parse().unwrap();
        let meta_key = keys::conversation_meta(&id);
        let meta = MetaItem {
            pk: meta_key.pk,
            sk: meta_key.sk,
            id: id.clone(),
            kind: crate::services::conversations::Kind::Group,
            title: None,
            created_by: ada.clone(),
            created_at: at,
            updated_at: at,
            last_activity_at: at,
            last_seq: 1,
            rev: 4,
            last_message: None,
            member_count: 2,
            member_names: BTreeMap::new(),
        };
        let key = keys::message(&id, 1);
        let item = MessageItem {
            pk: key.pk,
            sk: key.sk,
            id: "01JDQ7Z8K3M4N5P6Q7R8S9T0VX".parse().unwrap(),
            conversation_id: id.clone(),
            seq: 1,
            msg_rev: 1,
            sender_id: ada.clone(),
            body: "hello".to_owned(),
            client_message_id: "m1".parse().unwrap(),
            reply_to_seq: None,
            created_at: at,
            edited_at: None,
            deleted: false,
            reactions: BTreeMap::new(),
        };
        let change = Change {
            body: "hello!".to_owned(),
            edited_at: Some(at),
            deleted: false,
            reactions: BTreeMap::new(),
        };
        let writes = change_writes(&meta, &item, &change, &ada, at).unwrap();
        let checks: Vec<&crate::adapters::store::Key> = writes
            .iter()
            .filter_map(|w| match w {
                Write::Check { key, condition } => {
                    assert_eq!(condition.expression, "attribute_exists(PK)");
                    Some(key)
                }
                _ => None,
            })
            .collect();
        assert_eq!(checks, [&keys::membership(&id, &ada)]);
    }

    #[test]
    fn removing_a_users_reaction_drops_emptied_emoji() {
        let (a, b): (UserId, UserId) = ("a".parse().unwrap(), "b".parse().unwrap());
        let reactions = BTreeMap::from([
            ("👍".to_owned(), vec![a.clone(), b.clone()]),
            ("🎉".to_owned(), vec![a.clone()]),
        ]);
        assert_eq!(
            without(&reactions, &a),
            BTreeMap::from([("👍".to_owned(), vec![b])])
        );
    }
}
