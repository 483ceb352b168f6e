//! Changes to a sent message: edit and unsend (the sender only), reactions (any member), and the
//! catch-up read `/changes`. Every change takes the conversation's next `rev` from its counter
//! and lands with that revision's ledger entry in one transaction (see `sequence`). The update of
//! the message touches only what the change owns (the body, or one user's own reaction
//! attribute), so concurrent changes to one message never overwrite each other.

use serde::{Deserialize, Serialize};

use super::model::Message;
use super::model::{MessageItem, REACTION_PREFIX, StoredMessage, preview, reaction_attribute};
use super::sequence::{self, Issue, RevisionItem};
use crate::adapters::store::keys::{self, attr, index};
use crate::adapters::store::retry::{
    Cancelled, MAX_ATTEMPTS, lost_race, transact_through_conflicts, update_forward,
};
use crate::adapters::store::{
    CancellationCode, Consistency, Expr, Query, StoreError, TransactError, Write,
};
use crate::domain::error::ApiError;
use crate::domain::{ConversationId, Emoji, Limit, MessageBody, UserId};
use crate::platform::time::Timestamp;
use crate::services::conversations::model::MetaItem;
use crate::services::conversations::{access, access_with};
use crate::services::deps::RouteDeps;

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EditMessage {
    pub body: MessageBody,
}

/// What a change does to a message.
#[derive(Debug, Clone, PartialEq)]
enum Change {
    Edit { body: String, at: Timestamp },
    Unsend,
    React { emoji: String },
    Unreact { emoji: String },
}

/// Reads `META`, my membership and the message consistently; 404 for a non-member or no
/// message, 409 for a void.
async fn read(
    deps: &RouteDeps,
    user: &UserId,
    id: &ConversationId,
    seq: u64,
) -> Result<(MetaItem, MessageItem), ApiError> {
    let (meta, _, message) =
        access_with::<StoredMessage>(&deps.store, user, id, &keys::message(id, seq)).await?;
    match message.ok_or(ApiError::NotFound)? {
        StoredMessage::Message(item) => Ok((meta, *item)),
        StoredMessage::Void(_) => Err(ApiError::Conflict("no message was stored at this seq")),
    }
}

/// The writes of a change, by name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ChangeWrite {
    /// The message's update, on condition that what the change decided from still holds.
    Message,
    /// The revision's ledger entry, on condition that the `rev` was not voided.
    Ledger,
    /// The writer is still a member (a member being removed must not land one last change).
    Member,
}

/// What a change's transaction that did not commit means.
#[derive(Debug)]
enum Refusal {
    /// The message moved since it was read (a concurrent edit or unsend): decide again.
    Moved,
    /// The writer is no longer a member: 404.
    NotMember,
    /// A reader voided the `rev` under a slow writer: take a new one.
    RevTaken,
    Failed(ApiError),
}

/// A conflict (another transaction held an item) writes again with the same `rev`.
fn after_cancel(error: TransactError<ChangeWrite>) -> Cancelled<Refusal> {
    let failed = |name| error.reason(name) == Some(&CancellationCode::ConditionalCheckFailed);
    let refusal = match &error {
        TransactError::Canceled(_) if failed(ChangeWrite::Member) => Refusal::NotMember,
        TransactError::Canceled(_) if failed(ChangeWrite::Message) => Refusal::Moved,
        TransactError::Canceled(_) if failed(ChangeWrite::Ledger) => Refusal::RevTaken,
        TransactError::Canceled(_) => return Cancelled::Conflict,
        TransactError::Store(store) if lost_race(store) => return Cancelled::Conflict,
        TransactError::Store(_) => Refusal::Failed(StoreError::from(error).into()),
    };
    Cancelled::Refused(refusal)
}

/// Applies the change `rule` decides (from the message as read) under a new `rev`; the message
/// as it is afterwards. `None` from the rule means "nothing to do" (idempotent).
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
    let store = &deps.store;
    let (mut meta, mut item) = read(deps, user, id, seq).await?;
    let mut landed = None;
    for _ in 0..MAX_ATTEMPTS {
        let Some(change) = rule(&item, store.now())? else {
            return Ok(Message::from(item));
        };
        let numbers = sequence::issue(store, id, Issue::Change, store.now()).await?;
        // Read after the counter: the ledger entry bounds when the numbers below it were issued.
        let now = store.now();
        let writes = change_writes(&item, &change, user, numbers.rev, now)?;
        let written = transact_through_conflicts(store, &writes, after_cancel, || {
            Refusal::Failed(ApiError::Unavailable(
                "the change kept conflicting; retry".into(),
            ))
        })
        .await;
        let refusal = match written {
            Ok(()) => {
                landed = Some(change);
                break;
            }
            Err(refusal) => refusal,
        };
        if !matches!(refusal, Refusal::RevTaken) {
            sequence::give_back(store, id, numbers).await;
        }
        match refusal {
            Refusal::NotMember => return Err(ApiError::NotFound),
            Refusal::Moved => (meta, item) = read(deps, user, id, seq).await?,
            Refusal::RevTaken => {}
            Refusal::Failed(error) => return Err(error),
        }
    }
    let Some(change) = landed else {
        return Err(ApiError::Unavailable(
            "the message kept moving; retry".into(),
        ));
    };
    let message: Message = store
        .get::<StoredMessage>(&keys::message(id, seq), Consistency::Strong)
        .await?
        .ok_or_else(|| ApiError::internal("a changed message is gone"))?
        .into();
    keep_last_message_true(deps, &meta, &message, &change).await?;
    // The members hear of it from `stream-fan-out` (`message.updated`, or `message.deleted` for
    // an unsend).
    Ok(message)
}

/// The conversation shows its last message: an edit or unsend of it moves the summary too
/// (only while it is still the last one).
async fn keep_last_message_true(
    deps: &RouteDeps,
    meta: &MetaItem,
    message: &Message,
    change: &Change,
) -> Result<(), ApiError> {
    if !matches!(change, Change::Edit { .. } | Change::Unsend)
        || meta
            .last_message
            .as_ref()
            .is_none_or(|l| l.seq != message.seq)
    {
        return Ok(());
    }
    let update = Expr::new(
        "SET lastMessage.preview = :preview, lastMessage.deleted = :deleted, updatedAt = :now",
    )
    .when("lastMessage.seq = :seq")
    .string(":preview", preview(&message.body))
    .boolean(":deleted", message.deleted)
    .string(":now", deps.store.now().to_string())
    .number(":seq", message.seq);
    update_forward(&deps.store, &keys::conversation_meta(&meta.id), update).await
}

/// The writes of `change` to `item` by `user` under `rev`: no I/O, tested without a table.
fn change_writes(
    item: &MessageItem,
    change: &Change,
    user: &UserId,
    rev: u64,
    now: Timestamp,
) -> Result<Vec<(ChangeWrite, Write)>, ApiError> {
    let id = &item.conversation_id;
    let ledger = RevisionItem::new(id, rev, Some(item.seq), now, false);
    Ok(vec![
        (
            ChangeWrite::Message,
            Write::Update {
                key: keys::message(id, item.seq),
                update: message_update(item, change, user, rev),
            },
        ),
        (ChangeWrite::Ledger, ledger.write()?),
        (
            ChangeWrite::Member,
            Write::Check {
                key: keys::membership(id, user),
                condition: Expr::item_present(),
            },
        ),
    ])
}

/// The message's update for `change`. Its condition is what the change was decided from: a
/// message (not a void), not unsent, sent by the writer for an edit or unsend, and for removing
/// a reaction, that reaction. Reactions stored the old way (one map) are moved to one
/// attribute per user by the first reaction change, guarded by the map still being there.
fn message_update(item: &MessageItem, change: &Change, user: &UserId, rev: u64) -> Expr {
    let mut sets = vec!["msgRev = :rev".to_owned()];
    let mut removes: Vec<String> = Vec::new();
    let mut conditions = vec!["attribute_exists(senderId)".to_owned()];
    let mut update = Expr::default().number(":rev", rev);
    let not_unsent = "(attribute_not_exists(deleted) OR deleted = :false)";
    let legacy = |update: Expr, sets: &mut Vec<String>, removes: &mut Vec<String>| {
        if item.legacy_reactions.is_empty() {
            return update;
        }
        let mut update = update;
        let mut n = 0;
        for (emoji, users) in &item.legacy_reactions {
            for other in users.iter().filter(|u| *u != user) {
                update = update
                    .name(&format!("#r{n}"), &reaction_attribute(other))
                    .string(&format!(":e{n}"), emoji.clone());
                sets.push(format!("#r{n} = :e{n}"));
                n += 1;
            }
        }
        removes.push("reactions".to_owned());
        update
    };
    match change {
        Change::Edit { body, at } => {
            sets.push("body = :body".into());
            sets.push("editedAt = :at".into());
            conditions.push("senderId = :me".into());
            conditions.push(not_unsent.into());
            update = update
                .string(":body", body.clone())
                .string(":at", at.to_string())
                .string(":me", user.to_string())
                .boolean(":false", false);
        }
        Change::Unsend => {
            sets.push("deleted = :true".into());
            sets.push("body = :empty".into());
            conditions.push("senderId = :me".into());
            for (n, attribute) in item
                .reacted
                .keys()
                .filter(|a| a.starts_with(REACTION_PREFIX))
                .enumerate()
            {
                update = update.name(&format!("#x{n}"), attribute);
                removes.push(format!("#x{n}"));
            }
            if !item.legacy_reactions.is_empty() {
                removes.push("reactions".into());
            }
            update = update
                .boolean(":true", true)
                .string(":empty", "")
                .string(":me", user.to_string());
        }
        Change::React { emoji } => {
            update = legacy(update, &mut sets, &mut removes);
            sets.push("#mine = :emoji".into());
            conditions.push(not_unsent.into());
            update = update
                .name("#mine", &reaction_attribute(user))
                .string(":emoji", emoji.clone())
                .boolean(":false", false);
        }
        Change::Unreact { emoji } => {
            update = legacy(update, &mut sets, &mut removes);
            conditions.push(not_unsent.into());
            if item.reacted.contains_key(&reaction_attribute(user)) {
                removes.push("#mine".into());
                conditions.push("#mine = :emoji".into());
                update = update
                    .name("#mine", &reaction_attribute(user))
                    .string(":emoji", emoji.clone());
            }
            update = update.boolean(":false", false);
        }
    }
    if !item.legacy_reactions.is_empty()
        && matches!(change, Change::React { .. } | Change::Unreact { .. })
    {
        conditions.push("attribute_exists(reactions)".into());
    }
    update.expression = format!("SET {}", sets.join(", "));
    if !removes.is_empty() {
        update
            .expression
            .push_str(&format!(" REMOVE {}", removes.join(", ")));
    }
    update.when(conditions.join(" AND "))
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
        Ok(Some(Change::Edit {
            body: request.body.to_string(),
            at: now,
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
        Ok((!item.deleted).then_some(Change::Unsend))
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
        Ok(
            (item.reaction_of(user) != Some(emoji.as_str())).then(|| Change::React {
                emoji: emoji.to_string(),
            }),
        )
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
        Ok(
            (item.reaction_of(user) == Some(emoji.as_str())).then(|| Change::Unreact {
                emoji: emoji.to_string(),
            }),
        )
    })
    .await
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
/// `sinceRev`, in ascending `rev`, from the `ByRev` index, up to the watermark (the highest
/// `rev` below which every revision has landed or was voided, `sequence::watermark`): a change
/// still in flight is never skipped by a client that goes on from the answered `rev`.
pub async fn changes(
    deps: &RouteDeps,
    user: &UserId,
    id: &ConversationId,
    since: u64,
    limit: Limit,
) -> Result<ChangesPage, ApiError> {
    let meta = access(&deps.store, user, id).await?.meta;
    let mark = sequence::watermark(&deps.store, &meta, since).await?;
    if mark <= since {
        return Ok(ChangesPage {
            items: Vec::new(),
            has_more: false,
            rev: mark.max(since),
        });
    }
    let condition = Expr::new("#pk = :pk AND #rev BETWEEN :low AND :high")
        .name("#pk", attr::PK)
        .name("#rev", attr::MSG_REV)
        .string(":pk", keys::conversation_pk(id))
        .number(":low", since + 1)
        .number(":high", mark);
    let query = Query {
        page_size: i32::try_from(limit.get()).ok(),
        consistency: Consistency::Strong,
        ..Query::new(Some(index::BY_REV), condition)
    };
    let items: Vec<StoredMessage> = deps.store.query_page(&query, None).await?.items;
    let newest = items.last().map_or(since, StoredMessage::rev);
    let has_more = items.len() == limit.get() && newest < mark;
    Ok(ChangesPage {
        items: items.into_iter().map(Message::from).collect(),
        has_more,
        rev: if has_more { newest } else { mark },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(reacted: &[(&str, &str)], legacy: &[(&str, &[&str])]) -> MessageItem {
        let id: ConversationId = "01JDQ7Z8K3M4N5P6Q7R8S9T0VW".parse().unwrap();
        let key = keys::message(&id, 1);
        MessageItem {
            pk: key.pk,
            sk: key.sk,
            id: "01JDQ7Z8K3M4N5P6Q7R8S9T0VX".parse().unwrap(),
            conversation_id: id,
            seq: 1,
            msg_rev: 1,
            sender_id: "ada".parse().unwrap(),
            body: "hello".to_owned(),
            client_message_id: "m1".parse().unwrap(),
            reply_to_seq: None,
            created_at: Timestamp::from_unix_millis(1_800_000_000_000),
            edited_at: None,
            deleted: false,
            sent_from: None,
            legacy_reactions: legacy
                .iter()
                .map(|(e, users)| {
                    (
                        (*e).to_owned(),
                        users.iter().map(|u| u.parse().unwrap()).collect(),
                    )
                })
                .collect(),
            reacted: reacted
                .iter()
                .map(|(u, e)| (reaction_attribute(&u.parse().unwrap()), (*e).to_owned()))
                .collect(),
        }
    }

    fn user(raw: &str) -> UserId {
        raw.parse().unwrap()
    }

    /// A change lands only while its writer is a member, with its ledger entry: the membership
    /// is checked in the same transaction, so a member removed between the read and the write
    /// changes nothing; `META` is not in it, so concurrent changes never conflict there.
    #[test]
    fn a_change_lands_with_its_ledger_entry_while_its_writer_is_a_member() {
        let at = Timestamp::from_unix_millis(1_800_000_000_000);
        let change = Change::Edit {
            body: "hello!".into(),
            at,
        };
        let writes = change_writes(&item(&[], &[]), &change, &user("ada"), 9, at).unwrap();
        let names: Vec<ChangeWrite> = writes.iter().map(|(n, _)| *n).collect();
        assert_eq!(
            names,
            [
                ChangeWrite::Message,
                ChangeWrite::Ledger,
                ChangeWrite::Member
            ]
        );
        assert!(writes.iter().all(|(_, w)| !matches!(w,
            Write::Update { key, .. } if key.sk == keys::prefix::META)));
    }

    #[test]
    fn a_reaction_writes_only_its_users_attribute_and_the_rev() {
        let update = message_update(
            &item(&[("bob", "🎉")], &[]),
            &Change::React {
                emoji: "👍".into()
            },
            &user("ada"),
            9,
        );
        assert_eq!(update.expression, "SET msgRev = :rev, #mine = :emoji");
        assert_eq!(update.names.unwrap()["#mine"], "react#ada");
    }

    #[test]
    fn removing_a_reaction_is_conditioned_on_it_still_being_there() {
        let update = message_update(
            &item(&[("ada", "👍")], &[]),
            &Change::Unreact {
                emoji: "👍".into()
            },
            &user("ada"),
            9,
        );
        assert_eq!(update.expression, "SET msgRev = :rev REMOVE #mine");
        assert!(update.condition.unwrap().contains("#mine = :emoji"));
    }

    #[test]
    fn reactions_stored_as_one_map_move_to_one_attribute_per_user_on_the_first_change() {
        let old = item(&[], &[("👍", &["ada", "bob"]), ("🎉", &["cy"])]);
        assert_eq!(old.reaction_of(&user("bob")), Some("👍"));
        let update = message_update(
            &old,
            &Change::React {
                emoji: "🎉".into()
            },
            &user("ada"),
            9,
        );
        // bob and cy keep theirs; ada's old one is replaced by the new one; the map goes.
        assert!(
            update.expression.ends_with(" REMOVE reactions"),
            "{}",
            update.expression
        );
        let names: Vec<String> = update.names.unwrap().into_values().collect();
        for attribute in ["react#bob", "react#cy", "react#ada"] {
            assert!(
                names.iter().any(|n| n == attribute),
                "{attribute} in {names:?}"
            );
        }
        assert!(
            update
                .condition
                .unwrap()
                .contains("attribute_exists(reactions)")
        );
    }

    #[test]
    fn reactions_read_from_both_ways_of_storing_them() {
        let both = item(&[("dee", "👍")], &[("👍", &["bob"]), ("🎉", &["cy"])]);
        let reactions = both.reactions();
        assert_eq!(reactions["👍"], [user("bob"), user("dee")]);
        assert_eq!(reactions["🎉"], [user("cy")]);
    }

    #[test]
    fn an_unsend_removes_every_reaction_it_read() {
        let update = message_update(
            &item(&[("bob", "👍"), ("cy", "🎉")], &[]),
            &Change::Unsend,
            &user("ada"),
            9,
        );
        assert!(
            update.expression.contains(" REMOVE #x0, #x1"),
            "{}",
            update.expression
        );
        assert!(update.condition.unwrap().contains("senderId = :me"));
    }
}
