//! The changes of a conversation that are not membership changes: a group's title (`PATCH
//! /conversations/{id}`) and a member's own settings (`PATCH /conversations/{id}/settings`).

use serde::Deserialize;

use super::model::{Conversation, Kind};
use super::read::{Access, access, load_member_view};
use crate::adapters::store::keys;
use crate::adapters::store::{CancellationCode, Expr, StoreError, Write};
use crate::domain::error::ApiError;
use crate::domain::{ConversationId, Title, UserId};
use crate::platform::time::Timestamp;
use crate::services::deps::RouteDeps;

/// `PATCH /conversations/{id}` body.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TitleChange {
    pub title: Title,
}

/// `PATCH /conversations/{id}`: any member of a group renames it; direct and self have no title.
pub async fn set_title(
    deps: &RouteDeps,
    user: &UserId,
    id: &ConversationId,
    change: &TitleChange,
) -> Result<Conversation, ApiError> {
    let store = &deps.store;
    let Access { meta, .. } = access(store, user, id).await?;
    if meta.kind != Kind::Group {
        return Err(ApiError::Conflict("only a group has a title"));
    }
    match store
        .transact(title_writes(id, user, change, store.now()))
        .await
    {
        Ok(()) => {}
        // The group is gone, or I was removed since I read it: nothing of mine lands.
        Err(StoreError::TransactionCanceled { reasons })
            if reasons.contains(&CancellationCode::ConditionalCheckFailed) =>
        {
            return Err(ApiError::NotFound);
        }
        Err(error) => return Err(error.into()),
    }
    // The members hear of it from `stream-fan-out` (`conversation.updated`: the title changed).
    load_member_view(deps, user, id).await
}

/// The writes of a rename by `user`: the title, while the group exists and `user` is still a
/// member (a member being removed must not land one last change).
fn title_writes(
    id: &ConversationId,
    user: &UserId,
    change: &TitleChange,
    now: Timestamp,
) -> Vec<Write> {
    vec![
        Write::Update {
            key: keys::conversation_meta(id),
            update: Expr::new("SET title = :title, updatedAt = :now")
                .when("attribute_exists(PK)")
                .string(":title", change.title.as_str())
                .string(":now", now.to_string()),
        },
        Write::Check {
            key: keys::membership(id, user),
            condition: Expr::item_present(),
        },
    ]
}

/// `PATCH /conversations/{id}/settings` body: my settings, each optional, never null.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SettingsChanges {
    #[serde(default, deserialize_with = "crate::domain::input::not_null")]
    pub muted: Option<bool>,
    #[serde(default, deserialize_with = "crate::domain::input::not_null")]
    pub archived: Option<bool>,
}

/// `PATCH /conversations/{id}/settings`: `muted` lives on my membership, `archived` on my inbox
/// entry; both change in one transaction, and only while I am a member.
pub async fn update_settings(
    deps: &RouteDeps,
    user: &UserId,
    id: &ConversationId,
    changes: &SettingsChanges,
) -> Result<Conversation, ApiError> {
    let store = &deps.store;
    access(store, user, id).await?;
    let mut writes = Vec::new();
    if let Some(muted) = changes.muted {
        writes.push(Write::Update {
            key: keys::membership(id, user),
            update: Expr::new("SET muted = :muted")
                .when("attribute_exists(PK)")
                .boolean(":muted", muted),
        });
    }
    if let Some(archived) = changes.archived {
        writes.push(Write::Update {
            key: keys::inbox_entry(user, id),
            update: Expr::new("SET archived = :archived")
                .when("attribute_exists(PK)")
                .boolean(":archived", archived),
        });
    }
    if !writes.is_empty() {
        match store.transact(writes).await {
            Ok(()) => {}
            // I left between the check and the write.
            Err(e) if e.cancellation_reasons().is_some() && !e.is_unavailable() => {
                return Err(ApiError::NotFound);
            }
            Err(e) => return Err(e.into()),
        }
    }
    if changes.archived.is_some() {
        // Archiving moves the conversation between my lists.
        deps.cache.bump_generations([user]).await;
    }
    load_member_view(deps, user, id).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rename_is_conditioned_on_the_authors_membership() {
        let id: ConversationId = "01JDQ7Z8K3M4N5P6Q7R8S9T0VW".parse().unwrap();
        let ada: UserId = "ada".parse().unwrap();
        let change = TitleChange {
            title: "Trip".parse().unwrap(),
        };
        let writes = title_writes(&id, &ada, &change, Timestamp::from_unix_millis(0));
        assert!(matches!(
            &writes[..],
            [Write::Update { .. }, Write::Check { key, condition }]
                if *key == keys::membership(&id, &ada) && condition.expression == "attribute_exists(PK)"
        ));
    }
}
