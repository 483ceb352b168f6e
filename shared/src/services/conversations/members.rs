//! `POST /conversations/{id}/members` and `DELETE /conversations/{id}/members/{userId}`.
//!
//! Every membership change is a transaction that also updates `META` on the condition that
//! `memberCount` is still what was read, so concurrent changes are serialised (the loser reads
//! again and retries) and the count, the 256 cap and the owner stay right.

use std::collections::HashMap;

use serde::Deserialize;

use super::model::{Conversation, InboxItem, Kind, MAX_MEMBERS, MemberItem, MetaItem, Role};
use super::read::{access, load_member_view, member_items};
use crate::adapters::store::keys;
use crate::adapters::store::retry::{Attempt, lost_race, retrying};
use crate::adapters::store::{Consistency, Expr, Key, Write};
use crate::domain::error::ApiError;
use crate::domain::{ConversationId, UserId, ValidationError};
use crate::platform::time::Timestamp;
use crate::services::deps::RouteDeps;
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

/// `update`, on condition that `memberCount` is still what was read in `meta`.
fn version_guard(update: Expr, meta: &MetaItem) -> Expr {
    update
        .when("memberCount = :seenCount")
        .number(":seenCount", meta.member_count)
}

/// `POST /conversations/{id}/members`: any member of a group adds people with a profile. Those
/// already in are skipped; past 256 members is 409. New members start with nothing unread.
pub async fn add_members(
    deps: &RouteDeps,
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
    let profiles: HashMap<Key, Profile> =
        store.batch_get(&profile_keys, Consistency::Strong).await?;
    let unknown: Vec<UserId> = wanted
        .iter()
        .filter(|u| !profiles.contains_key(&keys::profile(u)))
        .cloned()
        .collect();
    if !unknown.is_empty() {
        return Err(ApiError::UnknownUsers(unknown));
    }

    // Their display names, lower-cased, as `META` keeps them for `q`.
    let names: HashMap<UserId, String> = wanted
        .iter()
        .filter_map(|u| {
            let profile = profiles.get(&keys::profile(u))?;
            Some((u.clone(), profile.display_name.as_str().to_lowercase()))
        })
        .collect();
    retrying(|| async {
        let meta = access(store, user, id).await?.meta;
        let member_keys: Vec<Key> = wanted.iter().map(|u| keys::membership(id, u)).collect();
        let existing: HashMap<Key, MemberItem> =
            store.batch_get(&member_keys, Consistency::Strong).await?;
        let plan = plan_add(&meta, &wanted, &existing, &names, user, id, store.now())?;
        let AddPlan::Add {
            chunk,
            writes,
            last,
        } = plan
        else {
            return Ok(Attempt::Done(()));
        };
        match store.transact(writes).await {
            Ok(()) => {
                tracing::info!(added = chunk.len(), last, "members added");
                // The loop comes back for the rest with a fresh read.
                Ok(if last {
                    Attempt::Done(())
                } else {
                    Attempt::Retry
                })
            }
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
    // `stream-fan-out` tells the members (`member.added`, one per request's records in a batch)
    // and the new members (`conversation.created`).
    load_member_view(deps, user, id).await
}

/// What one attempt of [`add_members`] decides from what it read.
#[derive(Debug)]
enum AddPlan {
    /// Everyone wanted is a member already.
    Done,
    /// Add `chunk` (at most [`MEMBERS_PER_TRANSACTION`]) with `writes`, one transaction; `last`
    /// when no one else is left to add.
    Add {
        chunk: Vec<UserId>,
        writes: Vec<Write>,
        last: bool,
    },
}

/// The decision of one attempt of [`add_members`]: who joins (the wanted users `existing` has no
/// membership of), at most 256 members in all (409), and the writes of the next chunk: `META` on
/// condition that `memberCount` is as read, then each new member's item and inbox entry. No I/O.
fn plan_add(
    meta: &MetaItem,
    wanted: &[UserId],
    existing: &HashMap<Key, MemberItem>,
    names: &HashMap<UserId, String>,
    adder: &UserId,
    id: &ConversationId,
    now: Timestamp,
) -> Result<AddPlan, ApiError> {
    let joining: Vec<&UserId> = wanted
        .iter()
        .filter(|u| !existing.contains_key(&keys::membership(id, u)))
        .collect();
    if joining.is_empty() {
        return Ok(AddPlan::Done);
    }
    if meta.member_count as usize + joining.len() > MAX_MEMBERS {
        return Err(ApiError::Conflict("a group holds at most 256 members"));
    }
    let chunk = &joining[..joining.len().min(MEMBERS_PER_TRANSACTION)];
    let sets = ["memberCount = memberCount + :added", "updatedAt = :now"]
        .map(String::from)
        .into_iter()
        .chain((0..chunk.len()).map(|i| format!("#names.#u{i} = :n{i}")));
    let mut update = version_guard(Expr::set(sets), meta)
        .number(":added", chunk.len())
        .string(":now", now.to_string())
        .name("#names", "memberNames");
    for (i, u) in chunk.iter().enumerate() {
        let name = names.get(*u).cloned().unwrap_or_default();
        update = update
            .name(&format!("#u{i}"), u.as_str())
            .string(&format!(":n{i}"), name);
    }
    let mut writes = vec![Write::Update {
        key: keys::conversation_meta(id),
        update,
    }];
    for u in chunk {
        let member = MemberItem {
            added_by: Some(adder.clone()),
            ..MemberItem::new(id, u, Role::Member, now, meta.last_seq)
        };
        writes.push(Write::put(&member, Some(Expr::item_absent()))?);
        writes.push(Write::put(
            &InboxItem::new(u, id, meta.last_activity_at),
            None,
        )?);
    }
    Ok(AddPlan::Add {
        chunk: chunk.iter().map(|u| (*u).clone()).collect(),
        writes,
        last: chunk.len() == joining.len(),
    })
}

/// `DELETE /conversations/{id}/members/{userId}`: I leave (`me` or my id), or the owner removes
/// another member (403 for anyone else). When the owner leaves, the longest-standing member
/// becomes owner. Direct and self conversations have fixed members (409).
pub async fn remove_member(
    deps: &RouteDeps,
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
        let mut update = version_guard(Expr::default(), &meta)
            .name("#names", "memberNames")
            .number(":one", 1)
            .string(":now", now.to_string());
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
    // `stream-fan-out` tells everyone still in and the removed member (`member.removed`, their
    // last push: after it, nothing more reaches them).
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn users(n: usize) -> Vec<UserId> {
        (0..n)
            .map(|i| format!("user-{i}").parse().unwrap())
            .collect()
    }

    fn plan(
        member_count: u32,
        wanted: &[UserId],
        existing: &[UserId],
    ) -> Result<AddPlan, ApiError> {
        let id = ConversationId::generate();
        let mut meta = MetaItem::for_test(&id, Kind::Group);
        meta.member_count = member_count;
        let now = meta.created_at;
        let existing = existing
            .iter()
            .map(|u| {
                let member = MemberItem::new(&id, u, Role::Member, now, 0);
                (keys::membership(&id, u), member)
            })
            .collect();
        let names = wanted
            .iter()
            .map(|u| (u.clone(), format!("name of {u}")))
            .collect();
        let adder: UserId = "ada".parse().unwrap();
        plan_add(&meta, wanted, &existing, &names, &adder, &id, now)
    }

    #[test]
    fn members_already_in_are_skipped_and_no_one_left_is_done() {
        let wanted = users(3);
        assert!(matches!(plan(4, &wanted, &wanted), Ok(AddPlan::Done)));
        let Ok(AddPlan::Add {
            chunk,
            writes,
            last,
        }) = plan(4, &wanted, &wanted[..1])
        else {
            panic!("two join");
        };
        assert_eq!(chunk, wanted[1..]);
        assert!(last);
        // META, then a membership and an inbox entry each.
        assert_eq!(writes.len(), 1 + 2 * 2);
        let Write::Update { update, .. } = &writes[0] else {
            panic!("META first");
        };
        assert_eq!(
            update.expression,
            "SET memberCount = memberCount + :added, updatedAt = :now, #names.#u0 = :n0, \
             #names.#u1 = :n1"
        );
        assert_eq!(
            update.condition.as_deref(),
            Some("memberCount = :seenCount")
        );
    }

    #[test]
    fn a_large_addition_goes_in_chunks_of_48() {
        let wanted = users(50);
        let Ok(AddPlan::Add {
            chunk,
            writes,
            last,
        }) = plan(1, &wanted, &[])
        else {
            panic!("50 join");
        };
        assert_eq!((chunk.len(), writes.len(), last), (48, 97, false));
    }

    #[test]
    fn a_group_holds_at_most_256_members() {
        let wanted = users(6);
        assert!(matches!(plan(250, &wanted, &[]), Ok(AddPlan::Add { .. })));
        assert!(matches!(
            plan(251, &wanted, &[]),
            Err(ApiError::Conflict(_))
        ));
        // Those already in do not count twice.
        assert!(matches!(
            plan(251, &wanted, &wanted[..1]),
            Ok(AddPlan::Add { .. })
        ));
    }
}
