//! The contract's WebSocket events, pushed after each write to every connection of every member
//! concerned (the writer's other connections included). Push is best-effort: nothing here fails
//! the write that caused it, and clients fill gaps with `/changes`.

use serde_json::{Value, json};

use super::{member_items, views_for};
use crate::domain::{ConversationId, UserId};
use crate::services::deps::HttpDeps;
use crate::services::model::message::Message;

/// Every current member's id (empty when the list cannot be read: the push is skipped).
pub async fn members_of(deps: &HttpDeps, id: &ConversationId) -> Vec<UserId> {
    match member_items(&deps.store, id, None).await {
        Ok(members) => members.into_iter().map(|m| m.user_id).collect(),
        Err(error) => {
            error.log();
            Vec::new()
        }
    }
}

/// `message.created`, `message.updated` or `message.deleted` to every member.
pub async fn message(
    deps: &HttpDeps,
    kind: &str,
    message: &Message,
    members: &[UserId],
    except: Option<&str>,
) {
    let event = json!({"type": kind, "conversationId": message.conversation_id, "rev": message.rev,
                       "message": message});
    deps.pusher
        .fan_out(&deps.store, members, &event, except)
        .await;
}

/// `read` to every member.
pub async fn read(deps: &HttpDeps, id: &ConversationId, user: &UserId, last_read_seq: u64) {
    let members = members_of(deps, id).await;
    let event =
        json!({"type": "read", "conversationId": id, "userId": user, "lastReadSeq": last_read_seq});
    deps.pusher
        .fan_out(&deps.store, &members, &event, None)
        .await;
}

/// `typing` to the other members.
pub async fn typing(deps: &HttpDeps, id: &ConversationId, user: &UserId, is_typing: bool) {
    let others: Vec<UserId> = members_of(deps, id)
        .await
        .into_iter()
        .filter(|m| m != user)
        .collect();
    let event =
        json!({"type": "typing", "conversationId": id, "userId": user, "isTyping": is_typing});
    deps.pusher
        .fan_out(&deps.store, &others, &event, None)
        .await;
}

/// `member.added` or `member.removed` with the users concerned, to `recipients`.
pub async fn members_changed(
    deps: &HttpDeps,
    kind: &str,
    id: &ConversationId,
    users: &[UserId],
    recipients: &[UserId],
) {
    let event = json!({"type": kind, "conversationId": id, "userIds": users});
    deps.pusher
        .fan_out(&deps.store, recipients, &event, None)
        .await;
}

/// `conversation.created` or `conversation.updated` to each recipient, with their own `me`.
pub async fn conversation(deps: &HttpDeps, kind: &str, id: &ConversationId, recipients: &[UserId]) {
    let views = match views_for(deps, id, recipients).await {
        Ok(views) => views,
        Err(error) => {
            error.log();
            return;
        }
    };
    for (recipient, view) in views {
        let event: Value = json!({"type": kind, "conversationId": id, "conversation": view});
        deps.pusher
            .fan_out(&deps.store, std::slice::from_ref(&recipient), &event, None)
            .await;
    }
}
