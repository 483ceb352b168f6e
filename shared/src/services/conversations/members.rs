//! `POST /conversations/{id}/members` and `DELETE /conversations/{id}/members/{userId}`.
//!
//! Every membership change is a transaction that also updates `META` on the condition that
//! `memberCount` is still what was read, so concurrent changes are serialised (the loser reads
//! again and retries) and the count, the 1,024 cap and the owner stay right.

use std::collections::HashMap;

use serde::Deserialize;

use super::model::{
    BIG_PREFIX, Conversation, InboxItem, Kind, MAX_MEMBERS, MemberItem, MetaItem, Role,
    SMALL_GROUP_MEMBERS,
};
use super::read::{access, load_member_view, member_items};
use crate::adapters::store::keys;
use crate::adapters::store::retry::{Attempt, lost_race, retrying};
use crate::adapters::store::{Consistency, Expr, Key, Write};
use crate::domain::error::ApiError;
use crate::domain::{ConversationId, UserId, ValidationError};
use crate::platform::time::Timestamp;
use crate::services::deps::RouteDeps;
use crate::services::profiles::Profile;

/// New members per transaction: `META`, the 16 entries of a group turning big, and 2 × 41 items:
/// at most 99 of a transaction's 100.
const MEMBERS_PER_TRANSACTION: usize = 41;

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
/// already in are skipped; past 1,024 members is 409. New members start with nothing unread.
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
    retrying(|| async {
        let meta = access(store, user, id).await?.meta;
        let member_keys: Vec<Key> = wanted.iter().map(|u| keys::membership(id, u)).collect();
        let existing: HashMap<Key, MemberItem> =
            store.batch_get(&member_keys, Consistency::Strong).await?;
        // A small group about to pass 16 members: its members' entries turn big with the chunk.
        let joining_count = wanted.len() - existing.len();
        let current: Vec<UserId> = if meta.big
            || meta.member_count as usize + joining_count <= SMALL_GROUP_MEMBERS as usize
        {
            Vec::new()
        } else {
            member_items(store, id, None)
                .await?
                .into_iter()
                .map(|m| m.user_id)
                .collect()
        };
        let joining = Joining {
            wanted: &wanted,
            existing: &existing,
            current: &current,
        };
        let plan = plan_add(&meta, &joining, user, id, store.now())?;
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

/// What one attempt of [`add_members`] read.
struct Joining<'a> {
    /// The users asked for, the caller left out.
    wanted: &'a [UserId],
    /// Their memberships that exist.
    existing: &'a HashMap<Key, MemberItem>,
    /// Every member now, read only when this addition takes a small group past 16 (else empty).
    current: &'a [UserId],
}

/// The decision of one attempt of [`add_members`]: who joins (the wanted users `existing` has no
/// membership of), at most 1,024 members in all (409), and the writes of the next chunk: `META` on
/// condition that `memberCount` is as read, then each new member's item and inbox entry. A chunk
/// that takes a small group past 16 members marks `META` big and moves every current member's
/// entry under `~big#` in the same transaction. No I/O.
fn plan_add(
    meta: &MetaItem,
    read: &Joining<'_>,
    adder: &UserId,
    id: &ConversationId,
    now: Timestamp,
) -> Result<AddPlan, ApiError> {
    let joining: Vec<&UserId> = read
        .wanted
        .iter()
        .filter(|u| !read.existing.contains_key(&keys::membership(id, u)))
        .collect();
    if joining.is_empty() {
        return Ok(AddPlan::Done);
    }
    if meta.member_count as usize + joining.len() > MAX_MEMBERS {
        return Err(ApiError::Conflict("a group holds at most 1,024 members"));
    }
    let chunk = &joining[..joining.len().min(MEMBERS_PER_TRANSACTION)];
    let turns_big =
        !meta.big && meta.member_count as usize + chunk.len() > SMALL_GROUP_MEMBERS as usize;
    let big = meta.big || turns_big;
    let sets = ["memberCount = memberCount + :added", "updatedAt = :now"]
        .map(String::from)
        .into_iter()
        .chain(turns_big.then(|| "big = :true".to_owned()));
    // `memberNames` (a map of names kept before the search entries) goes with any change.
    let mut set = Expr::set(sets);
    set.expression.push_str(" REMOVE memberNames");
    let mut update = version_guard(set, meta)
        .number(":added", chunk.len())
        .string(":now", now.to_string());
    if turns_big {
        update = update.boolean(":true", true);
    }
    let mut writes = vec![Write::Update {
        key: keys::conversation_meta(id),
        update,
    }];
    if turns_big {
        // Unconditional and idempotent: a big entry's key does not depend on its state. A send
        // that moves one of them later finds `big` and leaves it.
        for u in read.current {
            writes.push(Write::Update {
                key: keys::inbox_entry(u, id),
                update: Expr::new("SET big = :true, activityKey = :key REMOVE lastSeq")
                    .when("attribute_exists(PK)")
                    .boolean(":true", true)
                    .string(":key", format!("{BIG_PREFIX}{id}")),
            });
        }
    }
    for u in chunk {
        let member = MemberItem {
            added_by: Some(adder.clone()),
            ..MemberItem::new(id, u, Role::Member, now, meta.last_seq)
        };
        writes.push(Write::put(&member, Some(Expr::item_absent()))?);
        writes.push(Write::put(
            &InboxItem::new(u, id, meta.last_activity_at, meta.last_seq, big),
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
        // `memberNames` (a map of names kept before the search entries) goes with any change.
        let update = version_guard(
            Expr::new("SET memberCount = memberCount - :one, updatedAt = :now REMOVE memberNames"),
            &meta,
        )
        .number(":one", 1)
        .string(":now", now.to_string());
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
        let current = users(member_count as usize);
        plan_with(member_count, wanted, existing, &current)
    }

    /// `current` are the members read (the group is small while it is not empty).
    fn plan_with(
        member_count: u32,
        wanted: &[UserId],
        existing: &[UserId],
        current: &[UserId],
    ) -> Result<AddPlan, ApiError> {
        let id = ConversationId::generate();
        let mut meta = MetaItem::for_test(&id, Kind::Group);
        meta.member_count = member_count;
        meta.big = member_count > SMALL_GROUP_MEMBERS;
        let current = if meta.big { &[][..] } else { current };
        let now = meta.created_at;
        let existing = existing
            .iter()
            .map(|u| {
                let member = MemberItem::new(&id, u, Role::Member, now, 0);
                (keys::membership(&id, u), member)
            })
            .collect();
        let adder: UserId = "ada".parse().unwrap();
        let read = Joining {
            wanted,
            existing: &existing,
            current,
        };
        plan_add(&meta, &read, &adder, &id, now)
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
            "SET memberCount = memberCount + :added, updatedAt = :now REMOVE memberNames"
        );
        assert_eq!(
            update.condition.as_deref(),
            Some("memberCount = :seenCount")
        );
    }

    #[test]
    fn a_large_addition_goes_in_chunks_of_41() {
        let wanted = users(50);
        let Ok(AddPlan::Add {
            chunk,
            writes,
            last,
        }) = plan(20, &wanted, &[])
        else {
            panic!("50 join");
        };
        assert_eq!((chunk.len(), writes.len(), last), (41, 83, false));
    }

    /// The chunk that takes a group past 16 marks `META` big and moves the current members'
    /// entries under `~big#` in its transaction: at most 1 + 16 + 2 × 41 = 99 items.
    #[test]
    fn a_group_passing_16_members_turns_big_in_the_same_transaction() {
        let wanted: Vec<UserId> = (0..60)
            .map(|i| format!("new-{i}").parse().unwrap())
            .collect();
        let Ok(AddPlan::Add { writes, .. }) = plan(16, &wanted, &[]) else {
            panic!("they join");
        };
        assert_eq!(writes.len(), 99);
        let Write::Update { update, .. } = &writes[0] else {
            panic!("META first");
        };
        assert!(
            update.expression.contains("big = :true"),
            "{}",
            update.expression
        );
        let moved = writes[1..17]
            .iter()
            .filter(|w| matches!(w, Write::Update { update, .. } if update.expression.starts_with("SET big = :true")))
            .count();
        assert_eq!(moved, 16);
        // Sixteen stay small: nothing moves, the new entries are shown ones.
        let Ok(AddPlan::Add { writes, .. }) = plan(15, &wanted[..1], &[]) else {
            panic!("one joins");
        };
        assert_eq!(writes.len(), 3);
        let Write::Update { update, .. } = &writes[0] else {
            panic!("META first");
        };
        assert!(!update.expression.contains("big"));
    }

    #[test]
    fn a_group_holds_at_most_1024_members() {
        let wanted = users(6);
        assert!(matches!(plan(1018, &wanted, &[]), Ok(AddPlan::Add { .. })));
        assert!(matches!(
            plan(1019, &wanted, &[]),
            Err(ApiError::Conflict(_))
        ));
        // Those already in do not count twice.
        assert!(matches!(
            plan(1019, &wanted, &wanted[..1]),
            Ok(AddPlan::Add { .. })
        ));
    }
}
