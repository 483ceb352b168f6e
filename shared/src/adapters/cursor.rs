//! Tamper-evident pagination cursors: the position (DynamoDB's `LastEvaluatedKey`) bound to the
//! user it was issued to and to the filters of the list, signed with HMAC-SHA256.
//!
//! A cursor that was edited, signed with another key, issued to another user or for other filters
//! is `invalid_cursor`: it can never page through someone else's data.

use aws_lc_rs::hmac;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use serde::{Deserialize, Serialize};

use crate::adapters::store::StartKey;
use crate::domain::UserId;
use crate::domain::error::ApiError;

/// One HMAC key (at least 32 bytes); the keys in use are a [`KeyRing`] (`crate::adapters::cursor_keys`).
#[derive(Clone)]
pub struct CursorKey(hmac::Key);

impl std::fmt::Debug for CursorKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CursorKey(..)")
    }
}

#[derive(Serialize, Deserialize)]
struct Payload {
    /// The user it was issued to.
    u: String,
    /// The list and its filters, e.g. `inbox:archived=false:q=ada`.
    s: String,
    /// Where the next page starts.
    k: StartKey,
}

impl CursorKey {
    pub const MIN_SECRET_BYTES: usize = 32;

    pub fn new(secret: &[u8]) -> Result<Self, &'static str> {
        if secret.len() < Self::MIN_SECRET_BYTES {
            return Err("at least 32 bytes");
        }
        Ok(Self(hmac::Key::new(hmac::HMAC_SHA256, secret)))
    }

    pub fn seal(&self, user: &UserId, scope: &str, start: StartKey) -> Result<String, ApiError> {
        let payload = Payload {
            u: user.to_string(),
            s: scope.to_owned(),
            k: start,
        };
        let json = serde_json::to_vec(&payload).map_err(ApiError::internal)?;
        let tag = hmac::sign(&self.0, &json);
        Ok(format!("{}.{}", B64.encode(json), B64.encode(tag.as_ref())))
    }

    pub fn open(&self, cursor: &str, user: &UserId, scope: &str) -> Result<StartKey, ApiError> {
        let (payload, tag) = cursor.split_once('.').ok_or(ApiError::InvalidCursor)?;
        let json = B64.decode(payload).map_err(|_| ApiError::InvalidCursor)?;
        let tag = B64.decode(tag).map_err(|_| ApiError::InvalidCursor)?;
        hmac::verify(&self.0, &json, &tag).map_err(|_| ApiError::InvalidCursor)?;
        let payload: Payload =
            serde_json::from_slice(&json).map_err(|_| ApiError::InvalidCursor)?;
        if payload.u != user.as_str() || payload.s != scope {
            return Err(ApiError::InvalidCursor);
        }
        Ok(payload.k)
    }
}

/// The keys in use: cursors are sealed with `current`; one sealed with `previous` still opens, so
/// that a rotation does not break the cursors of pages a client is reading.
#[derive(Debug, Clone)]
pub struct KeyRing {
    pub current: CursorKey,
    pub previous: Option<CursorKey>,
}

impl KeyRing {
    pub fn seal(&self, user: &UserId, scope: &str, start: StartKey) -> Result<String, ApiError> {
        self.current.seal(user, scope, start)
    }

    pub fn open(&self, cursor: &str, user: &UserId, scope: &str) -> Result<StartKey, ApiError> {
        match (self.current.open(cursor, user, scope), &self.previous) {
            (Err(ApiError::InvalidCursor), Some(previous)) => previous.open(cursor, user, scope),
            (opened, _) => opened,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn start() -> StartKey {
        StartKey(
            serde_json::json!({"PK": "USER#a", "SK": "INBOX#1"})
                .as_object()
                .unwrap()
                .clone(),
        )
    }

    #[test]
    fn a_cursor_opens_only_for_its_user_scope_and_key() {
        let key = CursorKey::new(&[7; 32]).unwrap();
        let ada: UserId = "ada".parse().unwrap();
        let bob: UserId = "bob".parse().unwrap();
        let cursor = key.seal(&ada, "inbox", start()).unwrap();
        assert_eq!(key.open(&cursor, &ada, "inbox").unwrap(), start());
        assert!(matches!(
            key.open(&cursor, &bob, "inbox"),
            Err(ApiError::InvalidCursor)
        ));
        assert!(matches!(
            key.open(&cursor, &ada, "archived"),
            Err(ApiError::InvalidCursor)
        ));
        let other = CursorKey::new(&[8; 32]).unwrap();
        assert!(matches!(
            other.open(&cursor, &ada, "inbox"),
            Err(ApiError::InvalidCursor)
        ));
        let mut edited = cursor.clone().into_bytes();
        edited[3] ^= 1;
        let edited = String::from_utf8(edited).unwrap();
        assert!(matches!(
            key.open(&edited, &ada, "inbox"),
            Err(ApiError::InvalidCursor)
        ));
        assert!(matches!(
            key.open("garbage", &ada, "inbox"),
            Err(ApiError::InvalidCursor)
        ));
        assert!(CursorKey::new(b"short").is_err());
    }

    #[test]
    fn a_ring_seals_with_its_current_key_and_opens_with_either() {
        let ada: UserId = "ada".parse().unwrap();
        let old = CursorKey::new(&[1; 32]).unwrap();
        let new = CursorKey::new(&[2; 32]).unwrap();
        let from_old = old.seal(&ada, "inbox", start()).unwrap();
        let ring = KeyRing {
            current: new.clone(),
            previous: Some(old.clone()),
        };
        assert_eq!(ring.open(&from_old, &ada, "inbox").unwrap(), start());
        let sealed = ring.seal(&ada, "inbox", start()).unwrap();
        assert_eq!(new.open(&sealed, &ada, "inbox").unwrap(), start());
        // Two rotations later the old key is gone, and so are its cursors.
        let next = KeyRing {
            current: CursorKey::new(&[3; 32]).unwrap(),
            previous: Some(new),
        };
        assert!(matches!(
            next.open(&from_old, &ada, "inbox"),
            Err(ApiError::InvalidCursor)
        ));
        // The previous key opens only what it sealed for that user and scope.
        assert!(matches!(
            ring.open(&from_old, &ada, "archived"),
            Err(ApiError::InvalidCursor)
        ));
    }
}
