//! Tamper-evident pagination cursors: the position (DynamoDB's `LastEvaluatedKey`) bound to the
//! user it was issued to and to the filters of the list, signed with HMAC-SHA256.
//!
//! A cursor that was edited, signed with another key, issued to another user or for other filters
//! is `invalid_cursor`: it can never page through someone else's data.

use aws_lc_rs::hmac;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use serde::{Deserialize, Serialize};

use crate::domain::UserId;
use crate::error::ApiError;
use crate::store::StartKey;

/// The HMAC key (`CURSOR_SECRET`, at least 32 bytes).
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
}
