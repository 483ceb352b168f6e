//! `POST /conversations/{id}/messages`.

use futures::stream::{self, StreamExt};
use serde::Deserialize;

use super::model::{
    IDEMPOTENCY_SECONDS, IdempotencyItem, Message, MessageItem, body_digest, preview,
};
use super::sequence::{self, Issue, Numbers, RevisionItem, Voided};
use crate::adapters::store::keys;
use crate::adapters::store::retry::{
    Cancelled, MAX_ATTEMPTS, lost_race, transact_through_conflicts, update_forward,
};
use crate::adapters::store::{
    CancellationCode, Consistency, Expr, Key, StoreError, TransactError, Write,
};
use crate::domain::error::ApiError;
use crate::domain::{ClientMessageId, ConversationId, MessageBody, MessageId, UserId};
use crate::platform::time::Timestamp;
use crate::services::conversations::model::{
    InboxItem, LastMessage, MemberItem, MetaItem, activity_key,
};
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
    /// The WebSocket connection the message came from (never part of a request's body): it gets
    /// the ack, and the fan-out leaves it out of `message.created`.
    #[serde(skip)]
    pub sent_from: Option<String>,
}

/// The stored message, and whether this request stored it (201) or found it (200). Nobody is
/// pushed anything here: `stream-fan-out` reads the new message off the table's stream
/// (`crate::services::delivery`).
#[derive(Debug)]
pub struct Sent {
    pub message: Message,
    pub new: bool,
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

/// The message a retried send refers to, as stored now, or 409 for another body.
async fn stored(
    deps: &RouteDeps,
    id: &ConversationId,
    key: &IdempotencyItem,
    body: &MessageBody,
) -> Result<MessageItem, ApiError> {
    if key.body_digest != body_digest(body.as_str()) {
        return Err(ApiError::Conflict(
            "this clientMessageId was used with another body",
        ));
    }
    deps.store
        .get(&keys::message(id, key.seq), Consistency::Strong)
        .await?
        .ok_or_else(|| ApiError::internal("an idempotency key names a missing message"))
}

/// The idempotency key of this send as it is now (after a concurrent retry stored it).
async fn key_now(deps: &RouteDeps, key: &Key) -> Result<IdempotencyItem, ApiError> {
    deps.store
        .get(key, Consistency::Strong)
        .await?
        .ok_or_else(|| ApiError::internal("a refused idempotency key is not there"))
}

/// Sends a message: one consistent read, numbers from the conversation's counter, and one
/// transaction that stores the message under them (see `sequence`); then `lastMessage`, the
/// sender's read position and every member's inbox entry move forward. The caller pushes the
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
    let seen = read_state(deps, user, id, &idem_key).await?;
    let stored_now = match first_look(&seen, request, deps.store.now())? {
        Look::Retried(existing) => *existing,
        Look::New => store_new(deps, user, id, request).await?,
    };
    let item = match stored_now {
        Stored::New(item) => *item,
        Stored::Existing(existing) => {
            let item = stored(deps, id, &existing, &request.body).await?;
            // The first attempt may have stopped after storing, before the upkeep: doing it
            // again is harmless (each update moves forward only).
            after_landing(deps, user, id, &item, seen.meta.big).await?;
            return Ok(Sent {
                message: Message::from(item),
                new: false,
            });
        }
    };
    after_landing(deps, user, id, &item, seen.meta.big).await?;
    deps.cache
        .forget(&[crate::adapters::cache::members_key(id)])
        .await;
    Ok(Sent {
        message: Message::from(item),
        new: true,
    })
}

/// What a send found of itself.
#[derive(Debug)]
enum Stored {
    /// Stored now.
    New(Box<MessageItem>),
    /// Stored by an earlier attempt with this `clientMessageId`.
    Existing(IdempotencyItem),
}

/// Takes numbers and stores the message under them; numbers that cannot be used are given
/// back (voided). A `seq` voided under a slow writer sends it round again with new numbers.
async fn store_new(
    deps: &RouteDeps,
    user: &UserId,
    id: &ConversationId,
    request: &SendMessage,
) -> Result<Stored, ApiError> {
    let store = &deps.store;
    let idem_key = keys::idempotency(id, user, &request.client_message_id);
    for _ in 0..MAX_ATTEMPTS {
        let numbers = sequence::issue(store, id, Issue::Message, store.now()).await?;
        // Read after the counter: no later than every number below this one was issued, which
        // is what a reader judges a gap's age by (the message's `createdAt`, its ledger entry).
        let now = store.now();
        let (item, writes) = plan_send(user, id, request, numbers, now, MessageId::generate())?;
        let written = transact_through_conflicts(store, &writes, after_cancel, || {
            Refusal::Failed(ApiError::Unavailable(
                "the message's writes kept conflicting; retry".into(),
            ))
        })
        .await;
        let refusal = match written {
            Ok(()) => return Ok(Stored::New(Box::new(item))),
            Err(refusal) => refusal,
        };
        // The numbers are unused: give them back, unless the message landed after all (an
        // answer lost on the way): only this send writes a message at its seq.
        if sequence::give_back(store, id, numbers).await == Voided::Landed {
            return Ok(Stored::New(Box::new(item)));
        }
        match refusal {
            Refusal::Retried => return Ok(Stored::Existing(key_now(deps, &idem_key).await?)),
            Refusal::NotMember => return Err(ApiError::NotFound),
            Refusal::ReplyUnavailable => {
                return Err(ApiError::Conflict(
                    "the message replied to is not available",
                ));
            }
            Refusal::NumbersTaken => continue,
            Refusal::Failed(error) => return Err(error),
        }
    }
    Err(ApiError::Unavailable(
        "the message's numbers were voided under it too often; retry".into(),
    ))
}

fn no_such_reply() -> ApiError {
    ApiError::validation("replyToSeq", "no message has this seq")
}

/// The writes of a send's transaction, by name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SendWrite {
    /// The message, on condition that its `seq` is free (not voided meanwhile).
    Message,
    /// The ledger entry of its `rev`, on condition that the `rev` is free.
    Ledger,
    /// The sender's idempotency key, on condition that it is absent or expired.
    Idempotency,
    /// The sender is still a member.
    Member,
    /// The message replied to is stored and not a void.
    ReplyTo,
}

/// What a send decides before it writes.
#[derive(Debug)]
enum Look {
    /// An earlier attempt of this very send was stored: answer with it (409 for another body).
    Retried(Box<Stored>),
    New,
}

fn first_look(seen: &Seen, request: &SendMessage, now: Timestamp) -> Result<Look, ApiError> {
    if let Some(existing) = seen
        .idempotency
        .as_ref()
        .filter(|k| k.expires_at >= now.unix_seconds())
    {
        return Ok(Look::Retried(Box::new(Stored::Existing(existing.clone()))));
    }
    if let Some(reply) = request.reply_to_seq
        && (reply == 0 || reply > seen.meta.last_seq)
    {
        return Err(no_such_reply());
    }
    Ok(Look::New)
}

/// The message and the writes that store it under `numbers`: no I/O, so that it is tested
/// without a table. `message_id` is the new message's id (generated by the caller).
fn plan_send(
    user: &UserId,
    id: &ConversationId,
    request: &SendMessage,
    numbers: Numbers,
    now: Timestamp,
    message_id: MessageId,
) -> Result<(MessageItem, Vec<(SendWrite, Write)>), ApiError> {
    let seq = numbers
        .seq
        .ok_or_else(|| ApiError::internal("a send needs a seq"))?;
    let message_key = keys::message(id, seq);
    let item = MessageItem {
        pk: message_key.pk,
        sk: message_key.sk,
        id: message_id,
        conversation_id: id.clone(),
        seq,
        msg_rev: numbers.rev,
        sender_id: user.clone(),
        body: request.body.to_string(),
        client_message_id: request.client_message_id.clone(),
        reply_to_seq: request.reply_to_seq,
        created_at: now,
        edited_at: None,
        deleted: false,
        sent_from: request.sent_from.clone(),
        legacy_reactions: Default::default(),
        reacted: Default::default(),
    };
    let idem_key = keys::idempotency(id, user, &request.client_message_id);
    let idempotency = IdempotencyItem {
        pk: idem_key.pk,
        sk: idem_key.sk,
        seq,
        body_digest: body_digest(request.body.as_str()),
        expires_at: now.unix_seconds() + IDEMPOTENCY_SECONDS,
    };
    let unused = Expr::absent_or_expired(now.unix_seconds());
    let mut writes = vec![
        (
            SendWrite::Message,
            Write::put(&item, Some(Expr::item_absent()))?,
        ),
        (
            SendWrite::Ledger,
            RevisionItem::new(id, numbers.rev, Some(seq), now, false).write()?,
        ),
        (
            SendWrite::Idempotency,
            Write::put(&idempotency, Some(unused))?,
        ),
        (
            SendWrite::Member,
            Write::Check {
                key: keys::membership(id, user),
                condition: Expr::item_present(),
            },
        ),
    ];
    if let Some(reply) = request.reply_to_seq {
        // A void has no sender: only a stored message can be replied to.
        writes.push((
            SendWrite::ReplyTo,
            Write::Check {
                key: keys::message(id, reply),
                condition: Expr::new("attribute_exists(senderId)"),
            },
        ));
    }
    Ok((item, writes))
}

/// What a send's transaction that did not commit means.
#[derive(Debug)]
enum Refusal {
    /// A concurrent retry of this same send took the idempotency key: answer with its message.
    Retried,
    /// The sender left the conversation meanwhile: 404.
    NotMember,
    /// The message replied to is a void (or not stored yet): 409.
    ReplyUnavailable,
    /// A reader voided the numbers under a slow writer: take new ones.
    NumbersTaken,
    /// The store failed.
    Failed(ApiError),
}

/// A conflict (another transaction held one of the items) writes again with the same numbers.
fn after_cancel(error: TransactError<SendWrite>) -> Cancelled<Refusal> {
    use CancellationCode::ConditionalCheckFailed as Failed;
    let failed = |name| error.reason(name) == Some(&Failed);
    let refusal = match &error {
        TransactError::Canceled(_) if failed(SendWrite::Idempotency) => Refusal::Retried,
        TransactError::Canceled(_) if failed(SendWrite::Member) => Refusal::NotMember,
        TransactError::Canceled(_) if failed(SendWrite::ReplyTo) => Refusal::ReplyUnavailable,
        TransactError::Canceled(_) if failed(SendWrite::Message) || failed(SendWrite::Ledger) => {
            Refusal::NumbersTaken
        }
        TransactError::Canceled(_) => return Cancelled::Conflict,
        TransactError::Store(store) if lost_race(store) => return Cancelled::Conflict,
        TransactError::Store(_) => Refusal::Failed(StoreError::from(error).into()),
    };
    Cancelled::Refused(refusal)
}

/// The upkeep after a message landed, each step forward-only so that concurrent sends landing in
/// any order leave the newest in place: `lastMessage` and `lastActivityAt` on `META`, the
/// sender's read position, and every member's inbox entry.
async fn after_landing(
    deps: &RouteDeps,
    user: &UserId,
    id: &ConversationId,
    item: &MessageItem,
    big: bool,
) -> Result<(), ApiError> {
    let last = LastMessage {
        seq: item.seq,
        id: item.id.clone(),
        sender_id: item.sender_id.clone(),
        preview: preview(&item.body),
        created_at: item.created_at,
        deleted: item.deleted,
    };
    let last = serde_dynamo::to_attribute_value(&last).map_err(ApiError::internal)?;
    let meta_update = Expr::new(
        "SET lastMessage = :last, lastActivityAt = :at, updatedAt = :at",
    )
    .when("attribute_exists(PK) AND (attribute_type(lastMessage, :null) OR NOT attribute_exists(lastMessage) OR lastMessage.seq < :seq)")
    .value_raw(":last", last)
    .string(":at", item.created_at.to_string())
    .string(":null", "NULL")
    .number(":seq", item.seq);
    update_forward(&deps.store, &keys::conversation_meta(id), meta_update).await?;
    // Sending marks everything up to the new message as read for the sender.
    let read = Expr::new("SET lastReadSeq = :seq")
        .when("attribute_exists(PK) AND lastReadSeq < :seq")
        .number(":seq", item.seq);
    update_forward(&deps.store, &keys::membership(id, user), read).await?;
    if big {
        // Ordered on read by `META.lastActivityAt`, just moved: no entry to move.
        return Ok(());
    }
    move_inboxes(deps, user, id, item).await
}

/// Moves every member's inbox entry of a small conversation to the message (and unarchives it)
/// with a conditional update: an entry already moved by a later send stays where it is, an entry
/// that is gone or turned big stays so. The sender's entry records their read position too.
async fn move_inboxes(
    deps: &RouteDeps,
    sender: &UserId,
    id: &ConversationId,
    item: &MessageItem,
) -> Result<(), ApiError> {
    // More than 16 here: a group made before big groups existed (moved as before, until
    // tools/migrate-inbox marks it big), or one that turned big since `META` was read (its
    // entries refuse the moves).
    let members: Vec<MemberItem> = member_items(&deps.store, id, None).await?;
    let at = item.created_at;
    let (at_text, sort_key) = (at.to_string(), activity_key(at, id));
    let moves: Vec<_> = members
        .iter()
        .map(|m| {
            let store = deps.store.clone();
            let key = keys::inbox_entry(&m.user_id, id);
            let sets = if &m.user_id == sender {
                "SET lastActivityAt = :at, activityKey = :key, archived = :false, lastSeq = :seq, lastReadSeq = :seq"
            } else {
                "SET lastActivityAt = :at, activityKey = :key, archived = :false, lastSeq = :seq"
            };
            let update = Expr::new(sets)
                .when("attribute_exists(PK) AND attribute_not_exists(big) AND (attribute_not_exists(lastSeq) OR lastSeq < :seq)")
                .string(":at", at_text.clone())
                .string(":key", sort_key.clone())
                .boolean(":false", false)
                .number(":seq", item.seq);
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
    Ok(())
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
            sent_from: None,
        }
    }

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

    fn plan(reply_to_seq: Option<u64>) -> (MessageItem, Vec<(SendWrite, Write)>) {
        let id = ConversationId::generate();
        let numbers = Numbers {
            seq: Some(8),
            rev: 13,
        };
        plan_send(
            &user("ada"),
            &id,
            &request(reply_to_seq),
            numbers,
            now(),
            MessageId::generate(),
        )
        .unwrap()
    }

    #[test]
    fn a_new_message_is_stored_under_its_numbers_with_its_ledger_entry() {
        let (item, writes) = plan(None);
        assert_eq!((item.seq, item.msg_rev), (8, 13));
        assert_eq!(item.created_at, now());
        let names: Vec<SendWrite> = writes.iter().map(|(name, _)| *name).collect();
        assert_eq!(
            names,
            [
                SendWrite::Message,
                SendWrite::Ledger,
                SendWrite::Idempotency,
                SendWrite::Member
            ]
        );
        // No write touches META: concurrent sends never conflict on it.
        assert!(writes.iter().all(|(_, w)| !matches!(w,
            Write::Update { key, .. } if key.sk == keys::prefix::META)));
    }

    #[test]
    fn a_reply_checks_that_its_message_is_stored_and_not_a_void() {
        let (item, writes) = plan(Some(7));
        assert_eq!(item.reply_to_seq, Some(7));
        let Some((_, Write::Check { key, condition })) =
            writes.iter().find(|(n, _)| *n == SendWrite::ReplyTo)
        else {
            panic!("a reply checks its message");
        };
        assert_eq!(key.sk, keys::message(&item.conversation_id, 7).sk);
        assert_eq!(condition.expression, "attribute_exists(senderId)");
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
        let Ok(Look::Retried(found)) = first_look(&seen(&id, Some(key(at))), &request(None), now())
        else {
            panic!("an unexpired key is a retry");
        };
        assert!(matches!(
            *found,
            Stored::Existing(IdempotencyItem { seq: 5, .. })
        ));
        // Expired a second ago: a new send, which takes the key over.
        assert!(matches!(
            first_look(&seen(&id, Some(key(at - 1))), &request(None), now()),
            Ok(Look::New)
        ));
    }

    #[test]
    fn a_reply_to_a_message_that_does_not_exist_is_refused() {
        let id = ConversationId::generate();
        let refused = first_look(&seen(&id, None), &request(Some(8)), now());
        assert!(
            matches!(refused, Err(ApiError::Validation(_))),
            "{refused:?}"
        );
    }

    #[test]
    fn a_cancelled_send_is_read_by_the_names_of_its_writes() {
        use CancellationCode::{
            ConditionalCheckFailed as Failed, None as Fine, TransactionConflict,
        };
        let canceled = |message, idempotency, member| {
            TransactError::Canceled(vec![
                (SendWrite::Message, message),
                (SendWrite::Ledger, Fine),
                (SendWrite::Idempotency, idempotency),
                (SendWrite::Member, member),
            ])
        };
        // A concurrent retry of this send took the key: answer with its message.
        assert!(matches!(
            after_cancel(canceled(Fine, Failed, Fine)),
            Cancelled::Refused(Refusal::Retried)
        ));
        assert!(matches!(
            after_cancel(canceled(Fine, Failed, Failed)),
            Cancelled::Refused(Refusal::Retried)
        ));
        // The sender is no longer a member: 404.
        assert!(matches!(
            after_cancel(canceled(Fine, Fine, Failed)),
            Cancelled::Refused(Refusal::NotMember)
        ));
        // A reader voided the seq under a slow writer: new numbers.
        assert!(matches!(
            after_cancel(canceled(Failed, Fine, Fine)),
            Cancelled::Refused(Refusal::NumbersTaken)
        ));
        // Another transaction held an item: the same numbers again.
        assert!(matches!(
            after_cancel(canceled(TransactionConflict, Fine, Fine)),
            Cancelled::Conflict
        ));
        // Whatever the order the writes were listed in.
        let reordered = TransactError::Canceled(vec![
            (SendWrite::Member, Failed),
            (SendWrite::Idempotency, Fine),
            (SendWrite::Ledger, Fine),
            (SendWrite::Message, Fine),
        ]);
        assert!(matches!(
            after_cancel(reordered),
            Cancelled::Refused(Refusal::NotMember)
        ));
        // The table is unreachable: 503, not a retry.
        let unavailable = after_cancel(TransactError::Store(StoreError::Unavailable {
            operation: "TransactWriteItems",
            source: "throttled".into(),
        }));
        assert!(
            matches!(
                unavailable,
                Cancelled::Refused(Refusal::Failed(ApiError::Unavailable(_)))
            ),
            "{unavailable:?}"
        );
    }
}
