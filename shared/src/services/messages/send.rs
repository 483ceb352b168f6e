//! `POST /conversations/{id}/messages`.

use futures::stream::{self, StreamExt};
use serde::Deserialize;

use super::model::{
    IDEMPOTENCY_SECONDS, IdempotencyItem, Message, MessageItem, body_digest, preview,
};
use crate::adapters::store::keys;
use crate::adapters::store::retry::{Attempt, lost_race, retrying};
use crate::adapters::store::{
    CancellationCode, Consistency, Expr, Key, StoreError, TransactError, Write,
};
use crate::domain::error::ApiError;
use crate::domain::{ClientMessageId, ConversationId, MessageBody, MessageId, UserId};
use crate::platform::time::Timestamp;
use crate::services::conversations::model::{
    InboxItem, LastMessage, MemberItem, MetaItem, activity_key,
};
use crate::services::conversations::notify::{self, PushEvent};
use crate::services::conversations::{access_with, member_items};
use crate::services::deps::RouteDeps;

/// Inbox entries moved at once after a send.
const INBOX_MOVES_IN_FLIGHT: usize = 16;

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SendMessage {
    pub body: MessageBody,
    pub client_message_id: ClientMessageId,
    #[serde(default)]
    pub reply_to_seq: Option<u64>,
}

/// The stored message, and whether this request stored it (201) or found it (200).
#[derive(Debug)]
pub struct Sent {
    pub message: Message,
    pub new: bool,
    /// Who hears of a new message (empty for a retry's stored one, which was announced).
    members: Vec<UserId>,
}

impl Sent {
    /// Pushes `message.created` to every connection of every member but `origin` (the frame's
    /// connection, which gets an ack instead). Separate from [`send`] so that a WebSocket sender
    /// gets its ack before the fan-out starts: in a 256-member group the fan-out is most of the
    /// time (BENCHMARKS.md, fan-out). Nothing is pushed for a retry.
    pub async fn push(&self, deps: &RouteDeps, origin: Option<&str>) {
        if self.new {
            notify::message(
                deps,
                PushEvent::MessageCreated,
                &self.message,
                &self.members,
                origin,
            )
            .await;
        }
    }
}

/// What the one consistent read of a send finds.
#[derive(Debug)]
struct Seen {
    meta: MetaItem,
    idempotency: Option<IdempotencyItem>,
}

async fn read_state(
    deps: &RouteDeps,
    user: &UserId,
    id: &ConversationId,
    idem_key: &Key,
) -> Result<Seen, ApiError> {
    let (meta, _, idempotency) = access_with(&deps.store, user, id, idem_key).await?;
    Ok(Seen { meta, idempotency })
}

/// The message a retried send refers to: its current state, or 409 for another body.
async fn stored(
    deps: &RouteDeps,
    id: &ConversationId,
    key: &IdempotencyItem,
    body: &MessageBody,
) -> Result<Message, ApiError> {
    if key.body_digest != body_digest(body.as_str()) {
        return Err(ApiError::Conflict(
            "this clientMessageId was used with another body",
        ));
    }
    let item: MessageItem = deps
        .store
        .get(&keys::message(id, key.seq), Consistency::Strong)
        .await?
        .ok_or_else(|| ApiError::internal("an idempotency key names a missing message"))?;
    Ok(item.into())
}

/// Sends a message: one consistent read and one conditional transaction on the message path,
/// then every member's inbox entry is moved to the top (and unarchived). The caller pushes the
/// event with [`Sent::push`].
/// Counted in the metrics: a new message as `MessagesSent`, a server error as `SendsFailed`.
pub async fn send(
    deps: &RouteDeps,
    user: &UserId,
    id: &ConversationId,
    request: &SendMessage,
) -> Result<Sent, ApiError> {
    use crate::platform::metrics::{Metric, count};
    let result = send_unmetered(deps, user, id, request).await;
    match &result {
        Ok(sent) if sent.new => count(Metric::MessagesSent, 1),
        Err(error) if error.status() >= 500 => count(Metric::SendsFailed, 1),
        _ => {}
    }
    result
}

async fn send_unmetered(
    deps: &RouteDeps,
    user: &UserId,
    id: &ConversationId,
    request: &SendMessage,
) -> Result<Sent, ApiError> {
    // Seqs start at 1: 0 is refused whatever the state, before a retry could return its message.
    if request.reply_to_seq == Some(0) {
        return Err(no_such_reply());
    }
    let idem_key = keys::idempotency(id, user, &request.client_message_id);
    let outcome = retrying(|| async {
        let seen = read_state(deps, user, id, &idem_key).await?;
        let plan = plan_send(
            &seen,
            user,
            id,
            request,
            deps.store.now(),
            MessageId::generate(),
        )?;
        let (item, writes) = match plan {
            SendPlan::Retried(existing) => return Ok(Attempt::Done(Err(existing))),
            SendPlan::Store { item, writes } => (item, writes),
        };
        match deps.store.transact_named(writes).await {
            Ok(()) => Ok(Attempt::Done(Ok(item))),
            Err(error) => after_cancel(error).map(|()| Attempt::Retry),
        }
    })
    .await?;
    let item = match outcome {
        Ok(item) => item,
        Err(existing) => {
            let message = stored(deps, id, &existing, &request.body).await?;
            // The first attempt may have failed after storing, before moving the inboxes: moving
            // them again is harmless (each move is conditioned on being newer).
            move_inboxes(deps, id, message.created_at).await?;
            return Ok(Sent {
                message,
                new: false,
                members: Vec::new(),
            });
        }
    };
    let members = move_inboxes(deps, id, item.created_at).await?;
    deps.cache
        .forget(&[crate::adapters::cache::members_key(id)])
        .await;
    Ok(Sent {
        message: Message::from(item),
        new: true,
        members,
    })
}

fn no_such_reply() -> ApiError {
    ApiError::validation("replyToSeq", "no message has this seq")
}

/// The writes of a send's transaction, by name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SendWrite {
    /// `META`: `lastSeq` and `rev` one up, on condition that they are still what was read.
    Meta,
    /// The message, on condition that its key is new.
    Message,
    /// The sender's idempotency key, on condition that it is absent or expired.
    Idempotency,
    /// The sender's read position, up to the new message, on condition that they are a member.
    SenderRead,
}

/// What a send decides from its one consistent read.
#[derive(Debug)]
enum SendPlan {
    /// An earlier attempt of this very send was stored: answer with it (409 for another body).
    Retried(IdempotencyItem),
    /// Store this message with these writes, in one transaction.
    Store {
        item: MessageItem,
        writes: Vec<(SendWrite, Write)>,
    },
}

/// The decision of a send, from what was read: no I/O, so that it is tested without a table.
/// `message_id` is the new message's id (generated by the caller).
fn plan_send(
    seen: &Seen,
    user: &UserId,
    id: &ConversationId,
    request: &SendMessage,
    now: Timestamp,
    message_id: MessageId,
) -> Result<SendPlan, ApiError> {
    if let Some(existing) = seen
        .idempotency
        .as_ref()
        .filter(|k| k.expires_at >= now.unix_seconds())
    {
        return Ok(SendPlan::Retried(existing.clone()));
    }
    let meta = &seen.meta;
    if let Some(reply) = request.reply_to_seq
        && (reply == 0 || reply > meta.last_seq)
    {
        return Err(no_such_reply());
    }
    let (seq, rev) = (meta.last_seq + 1, meta.rev + 1);
    let message_key = keys::message(id, seq);
    let item = MessageItem {
        pk: message_key.pk,
        sk: message_key.sk,
        id: message_id,
        conversation_id: id.clone(),
        seq,
        msg_rev: rev,
        sender_id: user.clone(),
        body: request.body.to_string(),
        client_message_id: request.client_message_id.clone(),
        reply_to_seq: request.reply_to_seq,
        created_at: now,
        edited_at: None,
        deleted: false,
        reactions: Default::default(),
    };
    let last = LastMessage {
        seq,
        id: item.id.clone(),
        sender_id: user.clone(),
        preview: preview(request.body.as_str()),
        created_at: now,
        deleted: false,
    };
    let last = serde_dynamo::to_attribute_value(&last).map_err(ApiError::internal)?;
    let meta_update = Expr::new(
        "SET lastSeq = :seq, rev = :rev, lastMessage = :last, lastActivityAt = :now, updatedAt = :now",
    )
    .when("lastSeq = :seenSeq AND rev = :seenRev")
    .number(":seq", seq)
    .number(":rev", rev)
    .value_raw(":last", last)
    .string(":now", now.to_string())
    .number(":seenSeq", meta.last_seq)
    .number(":seenRev", meta.rev);
    let idem_key = keys::idempotency(id, user, &request.client_message_id);
    let idempotency = IdempotencyItem {
        pk: idem_key.pk,
        sk: idem_key.sk,
        seq,
        body_digest: body_digest(request.body.as_str()),
        expires_at: now.unix_seconds() + IDEMPOTENCY_SECONDS,
    };
    let unused = Expr::absent_or_expired(now.unix_seconds());
    let writes = vec![
        (
            SendWrite::Meta,
            Write::Update {
                key: keys::conversation_meta(id),
                update: meta_update,
            },
        ),
        (
            SendWrite::Message,
            Write::put(&item, Some(Expr::item_absent()))?,
        ),
        (
            SendWrite::Idempotency,
            Write::put(&idempotency, Some(unused))?,
        ),
        // Sending marks everything up to the new message as read for the sender.
        (
            SendWrite::SenderRead,
            Write::Update {
                key: keys::membership(id, user),
                update: Expr::new("SET lastReadSeq = :seq")
                    .when("attribute_exists(PK)")
                    .number(":seq", seq),
            },
        ),
    ];
    Ok(SendPlan::Store { item, writes })
}

/// What a send's transaction that did not commit means: `Ok` to read again and retry, or the
/// answer.
fn after_cancel(error: TransactError<SendWrite>) -> Result<(), ApiError> {
    use CancellationCode::{ConditionalCheckFailed, None as Fine};
    match &error {
        // The key was taken by a concurrent retry of this same send: the retry finds it.
        TransactError::Canceled(_)
            if error.reason(SendWrite::Idempotency) == Some(&ConditionalCheckFailed) =>
        {
            Ok(())
        }
        // The sender left the conversation meanwhile (`META` itself was as read).
        TransactError::Canceled(_)
            if error.reason(SendWrite::Meta) == Some(&Fine)
                && error.reason(SendWrite::SenderRead) == Some(&ConditionalCheckFailed) =>
        {
            Err(ApiError::NotFound)
        }
        // A concurrent write moved `META` on, or another transaction was in the way.
        TransactError::Canceled(_) => Ok(()),
        TransactError::Store(store) if lost_race(store) => Ok(()),
        TransactError::Store(_) => Err(StoreError::from(error).into()),
    }
}

/// Moves every member's inbox entry to `at` (and unarchives it) with a conditional update: an
/// entry already moved by a later send stays where it is, an entry that is gone stays gone.
async fn move_inboxes(
    deps: &RouteDeps,
    id: &ConversationId,
    at: Timestamp,
) -> Result<Vec<UserId>, ApiError> {
    let members: Vec<MemberItem> = member_items(&deps.store, id, None).await?;
    let (at_text, sort_key) = (at.to_string(), activity_key(at, id));
    let moves: Vec<_> = members
        .iter()
        .map(|m| {
            let store = deps.store.clone();
            let key = keys::inbox_entry(&m.user_id, id);
            let update =
                Expr::new("SET lastActivityAt = :at, activityKey = :key, archived = :false")
                    .when("attribute_exists(PK) AND lastActivityAt < :at")
                    .string(":at", at_text.clone())
                    .string(":key", sort_key.clone())
                    .boolean(":false", false);
            async move {
                match store.update::<InboxItem>(&key, update).await {
                    Ok(_) | Err(StoreError::ConditionFailed) => Ok(()),
                    Err(e) => Err(e),
                }
            }
        })
        .collect();
    let results: Vec<Result<(), StoreError>> = stream::iter(moves)
        .buffer_unordered(INBOX_MOVES_IN_FLIGHT)
        .collect()
        .await;
    for result in results {
        result?;
    }
    deps.cache
        .bump_generations(members.iter().map(|m| &m.user_id))
        .await;
    Ok(members.into_iter().map(|m| m.user_id).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::services::conversations::model::Kind;

    fn user(raw: &str) -> UserId {
        raw.parse().unwrap()
    }

    fn request(reply_to_seq: Option<u64>) -> SendMessage {
        SendMessage {
            body: "hello".parse().unwrap(),
            client_message_id: "c-1".parse().unwrap(),
            reply_to_seq,
        }
    }

    /// The time `MetaItem::for_test` was last active.
    fn now() -> Timestamp {
        Timestamp::from_unix_millis(1_700_000_000_000)
    }

    /// A group whose last message is seq 7 at rev 12.
    fn seen(id: &ConversationId, idempotency: Option<IdempotencyItem>) -> Seen {
        Seen {
            meta: MetaItem::for_test(id, Kind::Group),
            idempotency,
        }
    }

    fn plan(seen: &Seen, request: &SendMessage) -> Result<SendPlan, ApiError> {
        let id = seen.meta.id.clone();
        plan_send(
            seen,
            &user("ada"),
            &id,
            request,
            now(),
            MessageId::generate(),
        )
    }

    #[test]
    fn a_new_message_takes_the_next_seq_and_rev_in_four_named_writes() {
        let id = ConversationId::generate();
        let Ok(SendPlan::Store { item, writes }) = plan(&seen(&id, None), &request(Some(7))) else {
            panic!("a new send stores its message");
        };
        assert_eq!((item.seq, item.msg_rev), (8, 13));
        assert_eq!(item.reply_to_seq, Some(7));
        assert_eq!(item.created_at, now());
        let names: Vec<SendWrite> = writes.iter().map(|(name, _)| *name).collect();
        assert_eq!(
            names,
            [
                SendWrite::Meta,
                SendWrite::Message,
                SendWrite::Idempotency,
                SendWrite::SenderRead
            ]
        );
        let Write::Update { key, .. } = &writes[0].1 else {
            panic!("META is updated");
        };
        assert_eq!(*key, keys::conversation_meta(&id));
    }

    #[test]
    fn an_unexpired_key_of_this_send_answers_with_the_stored_message() {
        let id = ConversationId::generate();
        let key = |expires_at| IdempotencyItem {
            pk: String::new(),
            sk: String::new(),
            seq: 5,
            body_digest: body_digest("hello"),
            expires_at,
        };
        let at = now().unix_seconds();
        assert!(matches!(
            plan(&seen(&id, Some(key(at))), &request(None)),
            Ok(SendPlan::Retried(IdempotencyItem { seq: 5, .. }))
        ));
        // Expired a second ago: a new send, which takes the key over.
        assert!(matches!(
            plan(&seen(&id, Some(key(at - 1))), &request(None)),
            Ok(SendPlan::Store { .. })
        ));
    }

    #[test]
    fn a_reply_to_a_message_that_does_not_exist_is_refused() {
        let id = ConversationId::generate();
        let refused = plan(&seen(&id, None), &request(Some(8)));
        assert!(
            matches!(refused, Err(ApiError::Validation(_))),
            "{refused:?}"
        );
    }

    #[test]
    fn a_cancelled_send_is_read_by_the_names_of_its_writes() {
        use CancellationCode::{ConditionalCheckFailed as Failed, None as Fine};
        let canceled = |meta, idempotency, read| {
            TransactError::Canceled(vec![
                (SendWrite::Meta, meta),
                (SendWrite::Message, Fine),
                (SendWrite::Idempotency, idempotency),
                (SendWrite::SenderRead, read),
            ])
        };
        // A concurrent retry of this send took the key: read again, and find it.
        assert!(after_cancel(canceled(Fine, Failed, Fine)).is_ok());
        // Even when the sender's read position failed too: the retry's read decides.
        assert!(after_cancel(canceled(Fine, Failed, Failed)).is_ok());
        // The sender is no longer a member: 404.
        assert!(matches!(
            after_cancel(canceled(Fine, Fine, Failed)),
            Err(ApiError::NotFound)
        ));
        // Another send moved META on: read again.
        assert!(after_cancel(canceled(Failed, Fine, Failed)).is_ok());
        // Whatever the order the writes were listed in.
        let reordered = TransactError::Canceled(vec![
            (SendWrite::SenderRead, Failed),
            (SendWrite::Idempotency, Fine),
            (SendWrite::Message, Fine),
            (SendWrite::Meta, Fine),
        ]);
        assert!(matches!(after_cancel(reordered), Err(ApiError::NotFound)));
        // The table is unreachable: 503, not a retry.
        let unavailable = after_cancel(TransactError::Store(StoreError::Unavailable {
            operation: "TransactWriteItems",
            source: "throttled".into(),
        }));
        assert!(
            matches!(unavailable, Err(ApiError::Unavailable(_))),
            "{unavailable:?}"
        );
    }
}
