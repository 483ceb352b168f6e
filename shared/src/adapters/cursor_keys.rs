//! Where the cursor keys live: one table item (`CONFIG#cursor-keys` / `KEYS`), not the functions'
//! configuration. Only `http-list-conversations` (the one route that issues cursors) may read it,
//! so the key is not readable by whoever can read a function's configuration, and rotating it
//! needs no deployment: [`rotate`] makes a new current key and keeps the old one as previous, and
//! every instance reads the item again at most [`REFRESH_AFTER`] after it last did. A cursor thus
//! stays valid across one rotation (rotations must be further apart than `REFRESH_AFTER` plus the
//! time a client pages through a list) and is refused after two.
//!
//! A fresh table has no item: the first reader makes it (a conditional put of a random key, so
//! that racing instances end with the same key). The item reaches the table's stream like any
//! other; `stream-publisher`'s event filter drops it (only `CONV#` items pass), but its role could
//! read the stream itself.

use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use serde::{Deserialize, Serialize};
use tokio::sync::Mutex;

use crate::adapters::cursor::{CursorKey, KeyRing};
use crate::adapters::store::keys;
use crate::adapters::store::{Consistency, DynamoStore, Expr, StoreError};
use crate::domain::error::ApiError;
use crate::platform::time::Timestamp;

/// How long an instance uses the keys it read before reading them again.
pub const REFRESH_AFTER: Duration = Duration::from_secs(300);

/// Bytes of a generated key.
const KEY_BYTES: usize = 32;

/// The item that holds the keys.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CursorKeysItem {
    #[serde(rename = "PK")]
    pub pk: String,
    #[serde(rename = "SK")]
    pub sk: String,
    /// Base64url, unpadded.
    pub current: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous: Option<String>,
    pub rotated_at: Timestamp,
}

impl CursorKeysItem {
    fn ring(&self) -> Result<KeyRing, StoreError> {
        let key = |text: &str| {
            B64.decode(text)
                .ok()
                .and_then(|bytes| CursorKey::new(&bytes).ok())
                .ok_or(StoreError::Invalid(
                    "a cursor key item holds a key that is not one",
                ))
        };
        Ok(KeyRing {
            current: key(&self.current)?,
            previous: self.previous.as_deref().map(key).transpose()?,
        })
    }
}

/// The first keys of a table.
fn first(now: Timestamp, new_key: String) -> CursorKeysItem {
    let key = keys::cursor_keys();
    CursorKeysItem {
        pk: key.pk,
        sk: key.sk,
        current: new_key,
        previous: None,
        rotated_at: now,
    }
}

/// The keys after a rotation of `item`: a new current key, the old one kept as previous.
pub fn rotated(item: &CursorKeysItem, now: Timestamp, new_key: String) -> CursorKeysItem {
    CursorKeysItem {
        previous: Some(item.current.clone()),
        current: new_key,
        rotated_at: now,
        ..item.clone()
    }
}

fn random_key() -> Result<String, StoreError> {
    let mut bytes = [0u8; KEY_BYTES];
    SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| StoreError::Invalid("no random bytes for a cursor key"))?;
    Ok(B64.encode(bytes))
}

/// The keys as an instance uses them: read from the table, and used for [`REFRESH_AFTER`].
#[derive(Debug, Clone)]
pub struct CursorKeys {
    refresh_after: Duration,
    read: Arc<Mutex<Option<(KeyRing, Instant)>>>,
}

impl CursorKeys {
    /// Keys read from the table of the store they are asked with.
    pub fn stored() -> Self {
        Self::stored_refreshing_after(REFRESH_AFTER)
    }

    /// [`Self::stored`] with another refresh period (tests of rotation use zero).
    pub fn stored_refreshing_after(refresh_after: Duration) -> Self {
        Self {
            refresh_after,
            read: Arc::new(Mutex::new(None)),
        }
    }

    /// The keys to seal and open with, read through `store` (the calling function's own client,
    /// held to its role) when they are older than the refresh period.
    pub async fn ring(&self, store: &DynamoStore) -> Result<KeyRing, ApiError> {
        let mut read = self.read.lock().await;
        if let Some((ring, at)) = read.as_ref()
            && at.elapsed() < self.refresh_after
        {
            return Ok(ring.clone());
        }
        let ring = load(store).await?;
        *read = Some((ring.clone(), Instant::now()));
        Ok(ring)
    }
}

/// Reads the keys, making the first ones if the table has none.
async fn load(store: &DynamoStore) -> Result<KeyRing, StoreError> {
    let key = keys::cursor_keys();
    for _ in 0..2 {
        if let Some(item) = store
            .get::<CursorKeysItem>(&key, Consistency::Strong)
            .await?
        {
            return item.ring();
        }
        match store
            .put(
                &first(store.now(), random_key()?),
                Some(Expr::item_absent()),
            )
            .await
        {
            // Made them, or another instance did a moment ago: read what is there.
            Ok(()) | Err(StoreError::ConditionFailed) => {}
            Err(e) => return Err(e),
        }
    }
    Err(StoreError::Invalid(
        "the cursor keys item vanished while it was made",
    ))
}

/// Rotates the keys: a new current key, the current one kept as previous (conditional on the
/// item being as it was read, so two rotations at once make one). Makes the first keys of a
/// table that has none.
pub async fn rotate(store: &DynamoStore) -> Result<CursorKeysItem, StoreError> {
    let key = keys::cursor_keys();
    let now = store.now();
    let Some(item) = store
        .get::<CursorKeysItem>(&key, Consistency::Strong)
        .await?
    else {
        let made = first(now, random_key()?);
        store.put(&made, Some(Expr::item_absent())).await?;
        return Ok(made);
    };
    let next = rotated(&item, now, random_key()?);
    let unchanged = Expr::new("#current = :current")
        .name("#current", "current")
        .string(":current", item.current.clone());
    store.put(&next, Some(unchanged)).await?;
    Ok(next)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rotation_keeps_the_current_key_as_previous() {
        let now = Timestamp::from_unix_millis(1_000);
        let item = first(now, B64.encode([1; 32]));
        let later = Timestamp::from_unix_millis(2_000);
        let next = rotated(&item, later, B64.encode([2; 32]));
        assert_eq!(next.previous.as_deref(), Some(item.current.as_str()));
        assert_eq!(next.current, B64.encode([2; 32]));
        assert_eq!((next.pk, next.sk), (item.pk, item.sk));
        assert_eq!(next.rotated_at, later);
    }

    #[test]
    fn a_key_shorter_than_32_bytes_is_refused() {
        let item = first(Timestamp::from_unix_millis(0), B64.encode([1; 16]));
        assert!(item.ring().is_err());
        assert!(
            first(Timestamp::from_unix_millis(0), random_key().unwrap())
                .ring()
                .is_ok()
        );
    }
}
