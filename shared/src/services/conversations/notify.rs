//! The contract's WebSocket events about conversations and members, pushed after each such write
//! to every connection of every member concerned. Push is best-effort: nothing here fails the
//! write that caused it, and clients fill gaps with `/changes`. Messages, reads and typing are
//! pushed by `stream-fan-out` instead (`crate::services::delivery`), outside the writer's
//! invocation.

use serde_json::{Value, json};

use super::{member_items, views_for};
use crate::domain::{ConversationId, UserId};
use crate::services::deps::RouteDeps;

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

/// Every current member's id (empty when the list cannot be read: the push is skipped).
pub async fn members_of(deps: &RouteDeps, id: &ConversationId) -> Vec<UserId> {
    match member_items(&deps.store, id, None).await {
        Ok(members) => members.into_iter().map(|m| m.user_id).collect(),
        Err(error) => {
            error.log();
            Vec::new()
        }
    }
}

/// `member.added` or `member.removed` with the users concerned, to `recipients`.
pub async fn members_changed(
    deps: &RouteDeps,
    kind: PushEvent,
    id: &ConversationId,
    users: &[UserId],
    recipients: &[UserId],
) {
    let event = json!({"type": kind.name(), "conversationId": id, "userIds": users});
    deps.pusher
        .fan_out(&deps.store, recipients, &event, None)
        .await;
}

/// `conversation.created` or `conversation.updated` to each recipient, with their own `me`.
pub async fn conversation(
    deps: &RouteDeps,
    kind: PushEvent,
    id: &ConversationId,
    recipients: &[UserId],
) {
    let views = match views_for(deps, id, recipients).await {
        Ok(views) => views,
        Err(error) => {
            error.log();
            return;
        }
    };
    for (recipient, view) in views {
        let event: Value = json!({"type": kind.name(), "conversationId": id, "conversation": view});
        deps.pusher
            .fan_out(&deps.store, std::slice::from_ref(&recipient), &event, None)
            .await;
    }
}
