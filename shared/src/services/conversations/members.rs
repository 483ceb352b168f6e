//! `POST /conversations/{id}/members` and `DELETE /conversations/{id}/members/{userId}`.
//!
//! Every membership change is a transaction that also updates `META` on the condition that
//! `memberCount` is still what was read, so concurrent changes are serialised (the loser reads
//! again and retries) and the count, the 256 cap and the owner stay right.

use serde::Deserialize;

use super::model::{Conversation, InboxItem, Kind, MAX_MEMBERS, MemberItem, MetaItem, Role};
use super::read::{access, load_member_view, member_items};
use crate::adapters::store::keys;
use crate::adapters::store::retry::{Attempt, lost_race, retrying};
use crate::adapters::store::{Consistency, Expr, Key, Write};
use crate::domain::error::ApiError;
use crate::domain::{ConversationId, UserId, ValidationError};
use crate::services::deps::HttpDeps;
use crate::services::profiles::Profile;

/// New members per transaction: `META` + 2 × 48 items ≤ 100.
const MEMBERS_PER_TRANSACTION: usize = 48;

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AddMembers {
    pub user_ids: Vec<UserId>,
}

/// Whom a `DELETE …/members/{userId}` removes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MemberTarget {
    /// `me` or my own id: I leave.
    Me,
    Other(UserId),
}

impl MemberTarget {
    pub fn parse(raw: &str, caller: &UserId) -> Result<Self, ApiError> {
        if raw == crate::domain::ME || raw == caller.as_str() {
            return Ok(Self::Me);
        }
        raw.parse()
            .map(Self::Other)
            .map_err(|e: ValidationError| ApiError::Validation(e.at("userId")))
    }
}

fn version_guard(meta: &MetaItem) -> Expr {
    Expr::default().number(":seenCount", meta.member_count)
}

/// `POST /conversations/{id}/members`: any member of a group adds people with a profile. Those
/// already in are skipped; past 256 members is 409. New members start with nothing unread.
pub async fn add_members(
    deps: &HttpDeps,
    user: &UserId,
    id: &ConversationId,
    request: &AddMembers,
) -> Result<Conversation, ApiError> {
    let store = &deps.store;
    if request.user_ids.is_empty() {
        return Err(ApiError::validation("userIds", "must not be empty"));
    }
    if request.user_ids.len() >= MAX_MEMBERS {
        return Err(ApiError::validation(
            "userIds",
            format!("at most {} users", MAX_MEMBERS - 1),
        ));
    }
    let first = access(store, user, id).await?;
    if first.meta.kind != Kind::Group {
        return Err(ApiError::Conflict("only a group's members can change"));
    }
    let mut wanted: Vec<UserId> = Vec::new();
    for u in &request.user_ids {
        if u != user && !wanted.contains(u) {
            wanted.push(u.clone());
        }
    }
    let profile_keys: Vec<Key> = wanted.iter().map(keys::profile).collect();
    let profiles: std::collections::HashMap<Key, Profile> =
        store.batch_get(&profile_keys, Consistency::Strong).await?;
    let unknown: Vec<UserId> = wanted
        .iter()
        .filter(|u| !profiles.contains_key(&keys::profile(u)))
        .cloned()
        .collect();
    if !unknown.is_empty() {
        return Err(ApiError::UnknownUsers(unknown));
    }

    // The users this request added (chunk by chunk, across retries).
    let joined: std::sync::Mutex<Vec<UserId>> = std::sync::Mutex::new(Vec::new());
    retrying(|| async {
        let current = access(store, user, id).await?;
        let meta = current.meta;
        let member_keys: Vec<Key> = wanted.iter().map(|u| keys::membership(id, u)).collect();
        let existing: std::collections::HashMap<Key, MemberItem> =
            store.batch_get(&member_keys, Consistency::Strong).await?;
        let joining: Vec<&UserId> = wanted
            .iter()
            .filter(|u| !existing.contains_key(&keys::membership(id, u)))
            .collect();
        if joining.is_empty() {
            return Ok(Attempt::Done(()));
        }
        if meta.member_count as usize + joining.len() > MAX_MEMBERS {
            return Err(ApiError::Conflict("a group holds at most 256 members"));
        }
        // One chunk per attempt; the loop comes back for the rest with a fresh read.
        let chunk = &joining[..joining.len().min(MEMBERS_PER_TRANSACTION)];
        let now = store.now();
        let mut update = version_guard(&meta)
            .number(":added", chunk.len())
            .string(":now", now.to_string())
            .name("#names", "memberNames");
        let mut sets = vec![
            "memberCount = memberCount + :added".to_owned(),
            "updatedAt = :now".to_owned(),
        ];
        for (i, u) in chunk.iter().enumerate() {
            let name = profiles
                .get(&keys::profile(u))
                .map(|p| p.display_name.as_str().to_lowercase())
                .unwrap_or_default();
            update = update
                .name(&format!("#u{i}"), u.as_str())
                .string(&format!(":n{i}"), name);
            sets.push(format!("#names.#u{i} = :n{i}"));
        }
        update.expression = format!("SET {}", sets.join(", "));
        let mut writes = vec![Write::Update {
            key: keys::conversation_meta(id),
            update: update.when("memberCount = :seenCount"),
        }];
        for u in chunk {
            let member = MemberItem {
                added_by: Some(user.clone()),
                ..MemberItem::new(id, u, Role::Member, now, meta.last_seq)
            };
            writes.push(Write::put(&member, Some(Expr::item_absent()))?);
            let entry = InboxItem::new(u, id, meta.last_activity_at);
            writes.push(Write::put(&entry, None)?);
        }
        let done = store.transact(writes).await;
        if done.is_ok()
            && let Ok(mut list) = joined.lock()
        {
            list.extend(chunk.iter().map(|u| (*u).clone()));
        }
        match done {
            Ok(()) if chunk.len() == joining.len() => Ok(Attempt::Done(())),
            Ok(()) => Ok(Attempt::Retry),
            Err(e) if lost_race(&e) => Ok(Attempt::Retry),
            Err(e) => Err(e.into()),
        }
    })
    .await?;
    // The added users' lists changed; bumping those who were already in costs nothing wrong.
    deps.cache.bump_generations(wanted.iter()).await;
    deps.cache
        .forget(&[crate::adapters::cache::members_key(id)])
        .await;
    let joined = joined
        .into_inner()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    if !joined.is_empty() {
        let members = crate::services::conversations::notify::members_of(deps, id).await;
        crate::services::conversations::notify::members_changed(
            deps,
            "member.added",
            id,
            &joined,
            &members,
        )
        .await;
        // The new members learn of the conversation itself.
        crate::services::conversations::notify::conversation(
            deps,
            "conversation.created",
            id,
            &joined,
        )
        .await;
    }
    load_member_view(deps, user, id).await
}

/// `DELETE /conversations/{id}/members/{userId}`: I leave (`me` or my id), or the owner removes
/// another member (403 for anyone else). When the owner leaves, the longest-standing member
/// becomes owner. Direct and self conversations have fixed members (409).
pub async fn remove_member(
    deps: &HttpDeps,
    user: &UserId,
    id: &ConversationId,
    target: &MemberTarget,
) -> Result<(), ApiError> {
    let store = &deps.store;
    let gone: UserId = retrying(|| async {
        let current = access(store, user, id).await?;
        let meta = current.meta;
        if meta.kind != Kind::Group {
            return Err(ApiError::Conflict("only a group's members can change"));
        }
        let leaving: MemberItem = match target {
            MemberTarget::Me => current.mine,
            MemberTarget::Other(other) => {
                if current.mine.role != Role::Owner {
                    return Err(ApiError::Forbidden("only the owner removes other members"));
                }
                store
                    .get(&keys::membership(id, other), Consistency::Strong)
                    .await?
                    .ok_or(ApiError::NotFound)?
            }
        };
        let now = store.now();
        let last_one_out = meta.member_count <= 1;
        let mut update = version_guard(&meta)
            .name("#names", "memberNames")
            .number(":one", 1)
            .string(":now", now.to_string())
            .when("memberCount = :seenCount");
        // The last member out removes the whole map rather than leave it empty (an empty map in
        // DynamoDB Local's stream cannot be parsed; see `MetaItem::member_names`).
        update.expression = if last_one_out {
            "SET memberCount = memberCount - :one, updatedAt = :now REMOVE #names".to_owned()
        } else {
            update = update.name("#gone", leaving.user_id.as_str());
            "SET memberCount = memberCount - :one, updatedAt = :now REMOVE #names.#gone".to_owned()
        };
        let mut writes = vec![
            Write::Update {
                key: keys::conversation_meta(id),
                update,
            },
            Write::Delete {
                key: keys::membership(id, &leaving.user_id),
                condition: Some(Expr::item_present()),
            },
            Write::Delete {
                key: keys::inbox_entry(&leaving.user_id, id),
                condition: None,
            },
        ];
        if leaving.role == Role::Owner {
            let heir = member_items(store, id, None)
                .await?
                .into_iter()
                .filter(|m| m.user_id != leaving.user_id)
                .min_by(|a, b| (a.joined_at, &a.user_id).cmp(&(b.joined_at, &b.user_id)));
            if let Some(heir) = heir {
                writes.push(Write::Update {
                    key: keys::membership(id, &heir.user_id),
                    update: Expr::new("SET #role = :owner")
                        .when("attribute_exists(PK)")
                        .name("#role", "role")
                        .string(":owner", "owner"),
                });
            }
        }
        match store.transact(writes).await {
            Ok(()) => Ok(Attempt::Done(leaving.user_id.clone())),
            Err(e) if lost_race(&e) => Ok(Attempt::Retry),
            Err(e) => Err(e.into()),
        }
    })
    .await?;
    deps.cache.bump_generations([&gone]).await;
    deps.cache
        .forget(&[crate::adapters::cache::members_key(id)])
        .await;
    // Everyone still in, and the removed member last: after this, nothing more reaches them.
    let mut recipients = crate::services::conversations::notify::members_of(deps, id).await;
    recipients.push(gone.clone());
    crate::services::conversations::notify::members_changed(
        deps,
        "member.removed",
        id,
        std::slice::from_ref(&gone),
        &recipients,
    )
    .await;
    Ok(())
}
