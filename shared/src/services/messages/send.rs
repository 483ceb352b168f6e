//! `POST /conversations/{id}/messages`.

use futures::stream::{self, StreamExt};
use serde::Deserialize;

use super::model::{
    IDEMPOTENCY_SECONDS, IdempotencyItem, Message, MessageItem, body_digest, preview,
};
use crate::adapters::store::keys;
use crate::adapters::store::retry::{Attempt, lost_race, retrying};
use crate::adapters::store::{CancellationCode, Consistency, Expr, Key, StoreError, Write};
use crate::domain::error::ApiError;
use crate::domain::{ClientMessageId, ConversationId, MessageBody, MessageId, UserId};
use crate::platform::time::Timestamp;
use crate::services::conversations::model::{
    InboxItem, LastMessage, MemberItem, MetaItem, activity_key,
};
use crate::services::conversations::{access_with, member_items};
use crate::services::deps::HttpDeps;

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
    pub async fn push(&self, deps: &HttpDeps, origin: Option<&str>) {
        if self.new {
            crate::services::conversations::notify::message(
                deps,
                "message.created",
                &self.message,
                &self.members,
                origin,
            )
            .await;
        }
    }
}

/// What the one consistent read of a send finds.
struct Seen {
    meta: MetaItem,
    idempotency: Option<IdempotencyItem>,
}

async fn read_state(
    deps: &HttpDeps,
    user: &UserId,
    id: &ConversationId,
    idem_key: &Key,
) -> Result<Seen, ApiError> {
    let (meta, _, idempotency) = access_with(&deps.store, user, id, idem_key).await?;
    Ok(Seen { meta, idempotency })
}

/// The message a retried send refers to: its current state, or 409 for another body.
async fn stored(
    deps: &HttpDeps,
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
    deps: &HttpDeps,
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
    deps: &HttpDeps,
    user: &UserId,
    id: &ConversationId,
    request: &SendMessage,
) -> Result<Sent, ApiError> {
    // Seqs start at 1: 0 is refused whatever the state, before a retry could return its message.
    if request.reply_to_seq == Some(0) {
        return Err(ApiError::validation(
            "replyToSeq",
            "no message has this seq",
        ));
    }
    let idem_key = keys::idempotency(id, user, &request.client_message_id);
    let outcome = retrying(|| async {
        let seen = read_state(deps, user, id, &idem_key).await?;
        let now = deps.store.now();
        if let Some(existing) = seen.idempotency.filter(|k| k.expires_at >= now.unix_seconds()) {
            return Ok(Attempt::Done(Err(existing)));
        }
        let meta = seen.meta;
        if let Some(reply) = request.reply_to_seq
            && (reply == 0 || reply > meta.last_seq)
        {
            return Err(ApiError::validation("replyToSeq", "no message has this seq"));
        }
        let (seq, rev) = (meta.last_seq + 1, meta.rev + 1);
        let message_key = keys::message(id, seq);
        let item = MessageItem {
            pk: message_key.pk,
            sk: message_key.sk,
            id: MessageId::generate(),
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
        let idempotency = IdempotencyItem {
            pk: idem_key.pk.clone(),
            sk: idem_key.sk.clone(),
            seq,
            body_digest: body_digest(request.body.as_str()),
            expires_at: now.unix_seconds() + IDEMPOTENCY_SECONDS,
        };
        let unused = Expr::new("attribute_not_exists(PK) OR expiresAt < :now").number(":now", now.unix_seconds());
        let writes = vec![
            Write::Update { key: keys::conversation_meta(id), update: meta_update },
            Write::put(&item, Some(Expr::item_absent()))?,
            Write::put(&idempotency, Some(unused))?,
            // Sending marks everything up to the new message as read for the sender.
            Write::Update {
                key: keys::membership(id, user),
                update: Expr::new("SET lastReadSeq = :seq")
                    .when("attribute_exists(PK)")
                    .number(":seq", seq),
            },
        ];
        match deps.store.transact(writes).await {
            Ok(()) => Ok(Attempt::Done(Ok(item))),
            Err(StoreError::TransactionCanceled { reasons }) => match reasons.as_slice() {
                // The key was taken by a concurrent retry of this same send.
                [_, _, CancellationCode::ConditionalCheckFailed, _] => Ok(Attempt::Retry),
                // I left the conversation meanwhile.
                [CancellationCode::None, _, _, CancellationCode::ConditionalCheckFailed] => Err(ApiError::NotFound),
                _ => Ok(Attempt::Retry),
            },
            Err(e) if lost_race(&e) => Ok(Attempt::Retry),
            Err(e) => Err(e.into()),
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

/// Moves every member's inbox entry to `at` (and unarchives it) with a conditional update: an
/// entry already moved by a later send stays where it is, an entry that is gone stays gone.
async fn move_inboxes(
    deps: &HttpDeps,
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
