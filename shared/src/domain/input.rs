//! What a request brings besides its body's fields: the caller, as the authorizer vouched for
//! them, and the serde helper for optional fields that must not be null.

use crate::domain::UserId;

/// The caller, as the JWT authorizer vouched for them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    pub user_id: UserId,
    /// The token's claims, as API Gateway passes them: every value a string.
    pub claims: std::collections::HashMap<String, String>,
}

impl Caller {
    pub fn claim(&self, name: &str) -> Option<&str> {
        self.claims
            .get(name)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }
}

/// For `#[serde(default, deserialize_with = "not_null")]`: a field that may be absent but, when
/// present, must not be null.
pub fn not_null<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: serde::Deserialize<'de>,
{
    T::deserialize(d).map(Some)
}
