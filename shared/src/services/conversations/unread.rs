//! `GET /me/unread`: my total unread over the conversations I have neither archived nor muted,
//! without reading every conversation (docs/decisions/0007-hot-conversations.md, part 3).
//!
//! My inbox entries are one partition: each small conversation's entry carries the conversation's
//! `lastSeq` (moved by every send with the entry) and a copy of my read position (moved by my reads
//! and sends, never ahead of my membership's). Only the conversations those copies cannot settle are
//! read (`META` and my membership, consistently): the small ones whose entry shows something
//! unread, the big ones (their entries are not moved by sends), and entries written before the
//! copies were kept. Voids never count (`MetaItem::unread_above`).

use std::collections::HashMap;

use serde::Serialize;

use super::model::{InboxItem, MemberItem, MetaItem};
use crate::adapters::store::keys::{self, prefix};
use crate::adapters::store::{Consistency, DynamoStore, Key, Query, StoreError};
use crate::domain::error::ApiError;
use crate::domain::{ConversationId, UserId};
use crate::services::deps::RouteDeps;

/// The answer of `GET /me/unread`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Unread {
    /// Messages above my read position, over unarchived, unmuted conversations.
    pub unread_count: u64,
    /// How many of those conversations have any.
    pub conversations: u64,
}

/// My total unread: one consistent query of my inbox entries, then one consistent batch of the
/// `META`s and memberships it cannot settle.
pub async fn total_unread(deps: &RouteDeps, user: &UserId) -> Result<Unread, ApiError> {
    let store = &deps.store;
    let entries = inbox_entries(store, user).await?;
    let open = to_read(&entries);
    let meta_keys: Vec<Key> = open.iter().map(keys::conversation_meta).collect();
    let member_keys: Vec<Key> = open.iter().map(|c| keys::membership(c, user)).collect();
    let (metas, members): (HashMap<Key, MetaItem>, HashMap<Key, MemberItem>) = tokio::try_join!(
        store.batch_get(&meta_keys, Consistency::Strong),
        store.batch_get(&member_keys, Consistency::Strong),
    )?;
    let read: Vec<(MetaItem, MemberItem)> = open
        .iter()
        .filter_map(|c| {
            let meta = metas.get(&keys::conversation_meta(c))?;
            let mine = members.get(&keys::membership(c, user))?;
            Some((meta.clone(), mine.clone()))
        })
        .collect();
    Ok(total(&read))
}

/// Every inbox entry of `user`'s (one consistent query of their partition, every page).
pub(crate) async fn inbox_entries(
    store: &DynamoStore,
    user: &UserId,
) -> Result<Vec<InboxItem>, StoreError> {
    store
        .query_all(&Query::prefix(keys::user_pk(user), prefix::INBOX))
        .await
}

/// The conversations whose unread count the entries alone cannot settle at zero: unarchived,
/// unmuted (as far as the entry knows: a legacy entry may not carry `muted`), and big, or without
/// the copies, or showing `lastSeq` above the read position. No I/O.
fn to_read(entries: &[InboxItem]) -> Vec<ConversationId> {
    entries
        .iter()
        .filter(|e| !e.archived && !e.muted)
        .filter(|e| match (e.big, e.last_seq, e.last_read_seq) {
            (false, Some(last), Some(read)) => last > read,
            _ => true,
        })
        .map(|e| e.conversation_id.clone())
        .collect()
}

/// The total over what was read: muted memberships left out, voids never unread. No I/O.
fn total(read: &[(MetaItem, MemberItem)]) -> Unread {
    let counts = read
        .iter()
        .filter(|(_, mine)| !mine.muted)
        .map(|(meta, mine)| meta.unread_above(mine.last_read_seq))
        .filter(|n| *n > 0);
    counts.fold(
        Unread {
            unread_count: 0,
            conversations: 0,
        },
        |sum, n| Unread {
            unread_count: sum.unread_count + n,
            conversations: sum.conversations + 1,
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::platform::time::Timestamp;
    use crate::services::model::conversation::{Kind, Role};

    fn entry(last_seq: u64, read: u64) -> InboxItem {
        let ada: UserId = "ada".parse().unwrap();
        let at = Timestamp::from_unix_millis(1_700_000_000_000);
        InboxItem {
            last_seq: Some(last_seq),
            last_read_seq: Some(read),
            ..InboxItem::new(&ada, &ConversationId::generate(), at, 0, false)
        }
    }

    /// Settled by the entry: nothing unread, archived, muted. Read: unread shown, big, legacy.
    #[test]
    fn only_what_the_entries_cannot_settle_is_read() {
        let read_up = entry(5, 5);
        let unread = entry(7, 5);
        let archived = InboxItem {
            archived: true,
            ..entry(9, 1)
        };
        let muted = InboxItem {
            muted: true,
            ..entry(9, 1)
        };
        let big = InboxItem {
            big: true,
            last_seq: None,
            ..entry(0, 0)
        };
        let legacy = InboxItem {
            last_seq: None,
            last_read_seq: None,
            ..entry(0, 0)
        };
        let entries = [
            read_up,
            unread.clone(),
            archived,
            muted,
            big.clone(),
            legacy.clone(),
        ];
        assert_eq!(
            to_read(&entries),
            [
                unread.conversation_id,
                big.conversation_id,
                legacy.conversation_id
            ]
        );
    }

    /// Voids above my position are not unread; a muted membership does not count.
    #[test]
    fn the_total_skips_voids_and_muted_memberships() {
        let ada: UserId = "ada".parse().unwrap();
        let pair = |last_seq: u64, voids: Vec<u64>, read: u64, muted: bool| {
            let id = ConversationId::generate();
            let meta = MetaItem {
                last_seq,
                void_seqs: voids,
                ..MetaItem::for_test(&id, Kind::Group)
            };
            let at = meta.created_at;
            let mine = MemberItem {
                muted,
                ..MemberItem::new(&id, &ada, Role::Member, at, read)
            };
            (meta, mine)
        };
        let read = [
            pair(10, vec![3, 8, 9], 4, false), // 5..10 less voids 8, 9: 4
            pair(6, vec![], 6, false),         // none
            pair(20, vec![], 0, true),         // muted
            pair(3, vec![], 1, false),         // 2
        ];
        assert_eq!(
            total(&read),
            Unread {
                unread_count: 6,
                conversations: 2
            }
        );
    }
}
