//! The changes of a conversation that are not membership changes: a group's title (`PATCH
//! /conversations/{id}`) and a member's own settings (`PATCH /conversations/{id}/settings`).

use serde::Deserialize;

use super::model::{Conversation, InboxItem, Kind};
use super::read::{Access, access, load_member_view};
use crate::adapters::store::keys;
use crate::adapters::store::retry::{Attempt, retrying};
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

/// `PATCH /conversations/{id}/settings`: `muted` lives on my membership and is copied to my inbox
/// entry (for `GET /me/unread`); `archived` lives on the entry and places it in the archived range
/// of the list index. Both change in one transaction, only while I am a member, and on condition
/// that no send moved the entry since it was read (then read again and retry).
pub async fn update_settings(
    deps: &RouteDeps,
    user: &UserId,
    id: &ConversationId,
    changes: &SettingsChanges,
) -> Result<Conversation, ApiError> {
    let store = &deps.store;
    retrying(|| async {
        let seen = access(store, user, id).await?;
        let writes = settings_writes(user, id, seen.inbox.as_ref(), changes);
        if writes.is_empty() {
            return Ok(Attempt::Done(()));
        }
        match store.transact(writes).await {
            Ok(()) => Ok(Attempt::Done(())),
            // I left (the next read says 404), or a send moved my entry: read again.
            Err(e) if e.cancellation_reasons().is_some() && !e.is_unavailable() => {
                Ok(Attempt::Retry)
            }
            Err(e) => Err(e.into()),
        }
    })
    .await?;
    if changes.archived.is_some() {
        // Archiving moves the conversation between my lists.
        deps.cache.bump_generations([user]).await;
    }
    load_member_view(deps, user, id).await
}

/// The writes of a settings change, from my entry as read: no I/O.
fn settings_writes(
    user: &UserId,
    id: &ConversationId,
    entry: Option<&InboxItem>,
    changes: &SettingsChanges,
) -> Vec<Write> {
    let mut writes = Vec::new();
    if let Some(muted) = changes.muted {
        writes.push(Write::Update {
            key: keys::membership(id, user),
            update: Expr::new("SET muted = :muted")
                .when("attribute_exists(PK)")
                .boolean(":muted", muted),
        });
    }
    let Some(entry) = entry else {
        return writes;
    };
    let mut sets = Vec::new();
    if changes.muted.is_some() {
        sets.push("muted = :muted");
    }
    if changes.archived.is_some() {
        sets.push("archived = :archived");
        sets.push("activityKey = :key");
    }
    if sets.is_empty() {
        return writes;
    }
    let mut update = Expr::set(sets)
        .when("attribute_exists(PK) AND activityKey = :seen")
        .string(":seen", entry.activity_key.clone());
    if let Some(muted) = changes.muted {
        update = update.boolean(":muted", muted);
    }
    if let Some(archived) = changes.archived {
        update = update
            .boolean(":archived", archived)
            .string(":key", entry.place(archived));
    }
    writes.push(Write::Update {
        key: keys::inbox_entry(user, id),
        update,
    });
    writes
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key_value(update: &Expr) -> Option<String> {
        let value = update.values.as_ref()?.get(":key")?;
        value.as_s().ok().cloned()
    }

    /// Archiving moves a small conversation's entry into the archived range at its own time;
    /// a big one's key stays; muting is copied to the entry; both on what was read.
    #[test]
    fn archiving_places_the_entry_in_the_archived_range() {
        use crate::services::model::conversation::{ARCHIVED_PREFIX, BIG_PREFIX};
        let id: ConversationId = "01JDQ7Z8K3M4N5P6Q7R8S9T0VW".parse().unwrap();
        let ada: UserId = "ada".parse().unwrap();
        let at = Timestamp::from_unix_millis(1_700_000_000_000);
        let small = InboxItem::new(&ada, &id, at, 3, false);
        let changes = SettingsChanges {
            muted: Some(true),
            archived: Some(true),
        };
        let writes = settings_writes(&ada, &id, Some(&small), &changes);
        let [Write::Update { .. }, Write::Update { key, update }] = &writes[..] else {
            panic!("membership, then entry: {writes:?}");
        };
        assert_eq!(key, &keys::inbox_entry(&ada, &id));
        assert_eq!(
            update.expression,
            "SET muted = :muted, archived = :archived, activityKey = :key"
        );
        let placed = format!("{ARCHIVED_PREFIX}{at}#{id}");
        assert_eq!(key_value(update), Some(placed));
        let big = InboxItem::new(&ada, &id, at, 3, true);
        let writes = settings_writes(&ada, &id, Some(&big), &changes);
        let [_, Write::Update { update, .. }] = &writes[..] else {
            panic!("two writes");
        };
        let kept = format!("{BIG_PREFIX}{id}");
        assert_eq!(key_value(update), Some(kept));
    }

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
