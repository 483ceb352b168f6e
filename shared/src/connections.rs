//! WebSocket connection records: `CONN#<id>` / `CONN`, indexed by user on `GSI1` for fan-out and
//! presence. A record lives 2 hours 10 minutes (API Gateway closes a connection after 2 hours),
//! and every read treats an expired one as gone: `$disconnect` is best-effort, so the TTL and the
//! 410 answers of `@connections` are the real cleanup.

use serde::{Deserialize, Serialize};

use crate::domain::UserId;
use crate::keys::{self, attr, index};
use crate::store::{DynamoStore, Expr, Query, StoreError};
use crate::time::Timestamp;

/// How long a record outlives its connection's start.
pub const CONNECTION_TTL_SECONDS: i64 = 2 * 3600 + 10 * 60;

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
}

/// Records a new connection of `user`.
pub async fn open(
    store: &DynamoStore,
    connection_id: &str,
    user: &UserId,
) -> Result<ConnectionItem, StoreError> {
    let key = keys::connection(connection_id);
    let now = store.now();
    let item = ConnectionItem {
        pk: key.pk,
        sk: key.sk,
        gsi1pk: keys::user_pk(user),
        gsi1sk: format!("CONN#{connection_id}"),
        connection_id: connection_id.to_owned(),
        user_id: user.clone(),
        connected_at: now,
        expires_at: now.unix_seconds() + CONNECTION_TTL_SECONDS,
    };
    store.put(&item, None).await?;
    Ok(item)
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
