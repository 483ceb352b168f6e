//! WebSocket connection records: `CONN#<id>` / `CONN`, indexed by user on `GSI1` for fan-out and
//! presence. A record lives 2 hours 10 minutes (API Gateway closes a connection after 2 hours),
//! and every read treats an expired one as gone: `$disconnect` is best-effort, so the TTL and the
//! 410 answers of `@connections` are the real cleanup.
//!
//! A user holds at most [`SOCKETS_PER_USER`] sockets at once, since every send fans out to each
//! of them. Counting records on `GSI1` cannot enforce that (the index is eventually consistent),
//! so each open connection holds one of the user's numbered slots (`SOCKETS#u` / `SLOT#<n>`),
//! claimed in the same transaction that writes its record. A slot is free when it is absent,
//! expired (it lives as long as its record), or held by a connection whose record is gone: a 410
//! deletes only the record (the pushing functions may not touch slots), so the next
//! `$connect` that finds every slot taken reads the holders' records and takes over a dead one.
//! The 11th socket is refused, rather than the oldest closed: closing needs `@connections`, and
//! a client that opens sockets in a loop should be the one to hear about it.
//!
//! The ids of a user's open connections are also kept in one item (`LIVE#u` / `LIVE`, a string
//! set), added in `$connect`'s transaction and removed by `$disconnect` and by a 410: the fan-out
//! reads a group's connections from it, 100 members a `BatchGetItem` ([`of_users`]), where the
//! index would take one query a member. An id left there by a lost `$disconnect` costs one post
//! that answers 410 and removes it.

use std::collections::{BTreeMap, HashMap, HashSet};

use aws_sdk_dynamodb::types::AttributeValue;

use serde::{Deserialize, Serialize};

use crate::adapters::store::keys::{self, attr, index};
use crate::adapters::store::retry::{Attempt, lost_race, retrying};
use crate::adapters::store::{Consistency, DynamoStore, Expr, Query, StoreError, Write};
use crate::domain::UserId;
use crate::domain::error::ApiError;
use crate::platform::time::Timestamp;

/// How long a record outlives its connection's start.
pub const CONNECTION_TTL_SECONDS: i64 = 2 * 3600 + 10 * 60;

/// Sockets one user may hold open at once; `$connect` refuses the next one with 429.
pub const SOCKETS_PER_USER: u8 = 10;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ConnectionItem {
    #[serde(rename = "PK")]
    pub pk: String,
    #[serde(rename = "SK")]
    pub sk: String,
    #[serde(rename = "GSI1PK")]
    pub gsi1pk: String,
    #[serde(rename = "GSI1SK")]
    pub gsi1sk: String,
    pub connection_id: String,
    pub user_id: UserId,
    pub connected_at: Timestamp,
    pub expires_at: i64,
    /// The user's socket slot this connection holds (records written before slots have none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub socket_slot: Option<u8>,
}

/// A user's socket slot (`SOCKETS#u` / `SLOT#<n>`), held by one connection until it closes or
/// expires with it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SocketSlotItem {
    #[serde(rename = "PK")]
    pub pk: String,
    #[serde(rename = "SK")]
    pub sk: String,
    pub connection_id: String,
    pub expires_at: i64,
}

impl SocketSlotItem {
    /// The slot's number, from its sort key (`None` for a key no slot of ours would have).
    fn number(&self) -> Option<u8> {
        self.sk.strip_prefix(keys::SOCKET_SLOT_PREFIX)?.parse().ok()
    }
}

/// What opening a connection came to.
#[derive(Debug, Clone, PartialEq)]
pub enum Opened {
    Connected(ConnectionItem),
    /// The user already holds [`SOCKETS_PER_USER`] live sockets.
    Full,
}

/// The lowest slot that no unexpired item holds (expired items are left out by the read).
pub fn free_slot(held: &[SocketSlotItem]) -> Option<u8> {
    let taken: HashSet<u8> = held.iter().filter_map(SocketSlotItem::number).collect();
    (0..SOCKETS_PER_USER).find(|n| !taken.contains(n))
}

/// The lowest slot whose holder has no live record any more, with that holder: the slot may be
/// taken over on condition that the same connection still holds it.
pub fn reclaimable(held: &[SocketSlotItem], live: &HashSet<String>) -> Option<(u8, String)> {
    held.iter()
        .filter(|slot| !live.contains(&slot.connection_id))
        .filter_map(|slot| Some((slot.number()?, slot.connection_id.clone())))
        .filter(|(n, _)| *n < SOCKETS_PER_USER)
        .min()
}

/// Records a new connection of `user`, holding one of the user's socket slots; [`Opened::Full`]
/// when every slot is held by a live connection. Two connects racing for one slot: the loser
/// reads again and takes another (503 after too many lost races).
pub async fn open(
    store: &DynamoStore,
    connection_id: &str,
    user: &UserId,
) -> Result<Opened, ApiError> {
    retrying(|| async {
        let now = store.now();
        let held: Vec<SocketSlotItem> = store.query_all(&slots_of(user)).await?;
        let (slot, condition) = match free_slot(&held) {
            Some(n) => (n, unheld(now)),
            None => {
                let live = live_holders(store, &held).await?;
                match reclaimable(&held, &live) {
                    Some((n, holder)) => (
                        n,
                        Expr::new("connectionId = :holder").string(":holder", holder),
                    ),
                    None => return Ok(Attempt::Done(Opened::Full)),
                }
            }
        };
        let (record, claim) = connection_items(connection_id, user, slot, now);
        let writes = vec![
            Write::put(&claim, Some(condition))?,
            Write::put(&record, None)?,
            Write::Update {
                key: keys::live_connections(user),
                update: live_ids("ADD", connection_id),
            },
        ];
        match store.transact(writes).await {
            Ok(()) => Ok(Attempt::Done(Opened::Connected(record))),
            Err(e) if lost_race(&e) => Ok(Attempt::Retry),
            Err(e) => Err(e.into()),
        }
    })
    .await
}

/// The record of a new connection holding slot `slot`, and that slot's item.
fn connection_items(
    connection_id: &str,
    user: &UserId,
    slot: u8,
    now: Timestamp,
) -> (ConnectionItem, SocketSlotItem) {
    let key = keys::connection(connection_id);
    let expires_at = now.unix_seconds() + CONNECTION_TTL_SECONDS;
    let slot_key = keys::socket_slot(user, slot);
    let record = ConnectionItem {
        pk: key.pk,
        sk: key.sk,
        gsi1pk: keys::user_pk(user),
        gsi1sk: format!("{}{connection_id}", keys::prefix::CONNECTION),
        connection_id: connection_id.to_owned(),
        user_id: user.clone(),
        connected_at: now,
        expires_at,
        socket_slot: Some(slot),
    };
    let claim = SocketSlotItem {
        pk: slot_key.pk,
        sk: slot_key.sk,
        connection_id: connection_id.to_owned(),
        expires_at,
    };
    (record, claim)
}

/// A slot no one holds: absent, or expired but not yet removed by the TTL.
fn unheld(now: Timestamp) -> Expr {
    Expr::absent_or_expired(now.unix_seconds())
}

/// Every unexpired slot of a user, read strongly (a slot claimed a moment ago counts).
fn slots_of(user: &UserId) -> Query {
    Query {
        consistency: Consistency::Strong,
        ..Query::partition(None, attr::PK, keys::socket_slots_pk(user))
    }
}

/// The holders of `held` whose connection records are still there and unexpired.
async fn live_holders(
    store: &DynamoStore,
    held: &[SocketSlotItem],
) -> Result<HashSet<String>, StoreError> {
    let records: Vec<_> = held
        .iter()
        .map(|slot| keys::connection(&slot.connection_id))
        .collect();
    Ok(store
        .batch_get::<ConnectionItem>(&records, Consistency::Strong)
        .await?
        .into_values()
        .map(|record| record.connection_id)
        .collect())
}

/// `$disconnect`: removes the connection's record, its id from the user's live ones, and gives
/// its slot back; the record as it was, if there was one. The slot goes only while this
/// connection still holds it.
pub async fn disconnect(
    store: &DynamoStore,
    connection_id: &str,
) -> Result<Option<ConnectionItem>, StoreError> {
    let closed = close(store, connection_id).await?;
    if let Some(record) = &closed {
        forget(store, &record.user_id, connection_id).await?;
    }
    if let Some(slot) = closed
        .as_ref()
        .and_then(|c| Some((&c.user_id, c.socket_slot?)))
    {
        let held_by_me = Expr::new("connectionId = :me").string(":me", connection_id);
        match store
            .delete(&keys::socket_slot(slot.0, slot.1), Some(held_by_me))
            .await
        {
            Ok(()) | Err(StoreError::ConditionFailed) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(closed)
}

/// Removes a connection's record; the record as it was, if there was one.
pub async fn close(
    store: &DynamoStore,
    connection_id: &str,
) -> Result<Option<ConnectionItem>, StoreError> {
    match store
        .delete_returning::<ConnectionItem>(&keys::connection(connection_id), Expr::item_present())
        .await
    {
        Ok(item) => Ok(item),
        Err(StoreError::ConditionFailed) => Ok(None),
        Err(e) => Err(e),
    }
}

/// A connection `@connections` answered 410 for: its id leaves the user's live ones first, then
/// its record goes (if the second fails, the record only waits for its TTL; if the first fails,
/// the next push finds it gone again).
pub async fn gone(
    store: &DynamoStore,
    user: &UserId,
    connection_id: &str,
) -> Result<(), StoreError> {
    forget(store, user, connection_id).await?;
    close(store, connection_id).await.map(|_| ())
}

/// Removes one id from the user's live connections (nothing if it is not there).
async fn forget(store: &DynamoStore, user: &UserId, connection_id: &str) -> Result<(), StoreError> {
    store
        .update::<LiveConnections>(
            &keys::live_connections(user),
            live_ids("DELETE", connection_id),
        )
        .await
        .map(|_| ())
}

/// `ADD` or `DELETE` of one id in a user's live connections.
fn live_ids(action: &str, connection_id: &str) -> Expr {
    Expr::new(format!("{action} connectionIds :id"))
        .value_raw(":id", AttributeValue::Ss(vec![connection_id.to_owned()]))
}

/// Connection ids by user, as a fan-out reads them.
pub type ByUser = BTreeMap<UserId, Vec<String>>;

/// A user's live connections item, as read (`connectionIds` is absent once the set is empty).
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct LiveConnections {
    #[serde(default)]
    connection_ids: Vec<String>,
}

/// The ids of each user's open connections, from their live items (100 users a request; read
/// eventually consistent, as the index was): a user with none maps to an empty list.
pub async fn of_users(store: &DynamoStore, users: &[UserId]) -> Result<ByUser, StoreError> {
    let keys: Vec<_> = users.iter().map(keys::live_connections).collect();
    let mut found: HashMap<_, LiveConnections> =
        store.batch_get(&keys, Consistency::Eventual).await?;
    Ok(users
        .iter()
        .zip(&keys)
        .map(|(user, key)| {
            let ids = found.remove(key).unwrap_or_default().connection_ids;
            (user.clone(), ids)
        })
        .collect())
}

/// Every live connection of a user (every page of the index: a fan-out that read one page would
/// miss sockets).
pub async fn of_user(
    store: &DynamoStore,
    user: &UserId,
) -> Result<Vec<ConnectionItem>, StoreError> {
    let query = Query::partition(Some(index::GSI1), attr::GSI1_PK, keys::user_pk(user));
    store.query_all(&query).await
}

/// Whether the user holds an unexpired connection.
pub async fn is_online(store: &DynamoStore, user: &UserId) -> Result<bool, StoreError> {
    Ok(!of_user(store, user).await?.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn held(n: u8, connection: &str) -> SocketSlotItem {
        SocketSlotItem {
            pk: "SOCKETS#ada".into(),
            sk: format!("{}{n}", keys::SOCKET_SLOT_PREFIX),
            connection_id: connection.into(),
            expires_at: 0,
        }
    }

    #[test]
    fn the_lowest_unheld_slot_is_free() {
        assert_eq!(free_slot(&[]), Some(0));
        assert_eq!(free_slot(&[held(0, "a"), held(2, "c")]), Some(1));
        let nine: Vec<_> = (0..9).map(|n| held(n, &format!("c{n}"))).collect();
        assert_eq!(free_slot(&nine), Some(9));
    }

    #[test]
    fn ten_held_slots_leave_none_free() {
        let ten: Vec<_> = (0..SOCKETS_PER_USER)
            .map(|n| held(n, &format!("c{n}")))
            .collect();
        assert_eq!(free_slot(&ten), None);
        // A key that is no slot of ours frees nothing and takes nothing.
        let mut odd = ten.clone();
        odd.push(SocketSlotItem {
            sk: "SLOT#x".into(),
            ..held(0, "stray")
        });
        assert_eq!(free_slot(&odd), None);
    }

    #[test]
    fn a_slot_whose_holder_is_gone_can_be_taken_over() {
        let ten: Vec<_> = (0..SOCKETS_PER_USER)
            .map(|n| held(n, &format!("c{n}")))
            .collect();
        let all_live: HashSet<String> = (0..SOCKETS_PER_USER).map(|n| format!("c{n}")).collect();
        assert_eq!(reclaimable(&ten, &all_live), None);
        let mut some_gone = all_live.clone();
        some_gone.remove("c7");
        some_gone.remove("c3");
        assert_eq!(reclaimable(&ten, &some_gone), Some((3, "c3".into())));
    }
}
