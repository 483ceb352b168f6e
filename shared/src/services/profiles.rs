//! Profiles: `GET /me` (created from the token's claims on first call), `PATCH /me`,
//! `GET /users/{userId}`.

use std::future::Future;

use serde::{Deserialize, Deserializer, Serialize};

use crate::adapters::store::keys;
use crate::adapters::store::{Consistency, DynamoStore, Expr, StoreError};
use crate::domain::error::ApiError;
use crate::domain::input::Caller;
use crate::domain::{AvatarUrl, DisplayName, UserId};
use crate::platform::time::Timestamp;

/// A stored profile (`USER#u` / `PROFILE`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Profile {
    pub user_id: UserId,
    pub display_name: DisplayName,
    pub avatar_url: Option<AvatarUrl>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    /// When the user's last WebSocket connection closed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_seen_at: Option<Timestamp>,
}

/// The contract's User object.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct User {
    pub user_id: UserId,
    pub display_name: DisplayName,
    pub avatar_url: Option<AvatarUrl>,
    pub created_at: Timestamp,
    /// Whether the user holds an unexpired WebSocket connection.
    pub online: bool,
    /// When the user's last connection closed (null while never connected).
    pub last_seen_at: Option<Timestamp>,
}

impl User {
    fn of(p: Profile, online: bool) -> Self {
        Self {
            user_id: p.user_id,
            display_name: p.display_name,
            avatar_url: p.avatar_url,
            created_at: p.created_at,
            online,
            last_seen_at: p.last_seen_at,
        }
    }
}

/// `PATCH /me`: each field optional; `avatarUrl: null` removes the avatar.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ProfileChanges {
    #[serde(default, deserialize_with = "crate::domain::input::not_null")]
    pub display_name: Option<DisplayName>,
    #[serde(default, deserialize_with = "present")]
    pub avatar_url: Option<Option<AvatarUrl>>,
}

/// Tells `"field": null` (Some(None)) from an absent field (None).
fn present<'de, D, T>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(d).map(Some)
}

/// Where profiles are kept.
pub trait ProfileStore: Send + Sync {
    fn get(
        &self,
        user: &UserId,
    ) -> impl Future<Output = Result<Option<Profile>, StoreError>> + Send;
    /// Stores the profile unless one exists; `false` when one did.
    fn insert_new(
        &self,
        profile: &Profile,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;
    /// Applies the changes to an existing profile; `None` when there is none.
    fn update(
        &self,
        user: &UserId,
        changes: &ProfileChanges,
        at: Timestamp,
    ) -> impl Future<Output = Result<Option<Profile>, StoreError>> + Send;
    /// Whether the user holds a live WebSocket connection.
    fn is_online(&self, user: &UserId) -> impl Future<Output = Result<bool, StoreError>> + Send;
    /// Now, by the application clock.
    fn now(&self) -> Timestamp;
}

/// The display name a new profile gets: the token's `name`, else `preferred_username`, else the
/// local part of `email`, else `user`; cut to 64 characters, control characters removed.
pub fn display_name_from_claims(caller: &Caller) -> DisplayName {
    let email_local = caller.claim("email").and_then(|e| e.split('@').next());
    [
        caller.claim("name"),
        caller.claim("preferred_username"),
        email_local,
    ]
    .into_iter()
    .flatten()
    .find_map(|raw| {
        let cleaned: String = raw
            .trim()
            .chars()
            .filter(|c| !c.is_control())
            .take(64)
            .collect();
        cleaned.parse::<DisplayName>().ok()
    })
    .unwrap_or_else(DisplayName::fallback)
}

/// `GET /me`: my profile, created from my token's claims on the first call (race-free: two first
/// calls at once store one profile and both return it).
pub async fn me(store: &impl ProfileStore, caller: &Caller) -> Result<User, ApiError> {
    let profile = ensure_profile(store, caller).await?;
    let online = store.is_online(&caller.user_id).await?;
    Ok(User::of(profile, online))
}

/// My profile, made from my token on the first call (without presence: see [`me`]).
pub async fn ensure_profile(
    store: &impl ProfileStore,
    caller: &Caller,
) -> Result<Profile, ApiError> {
    if let Some(existing) = store.get(&caller.user_id).await? {
        return Ok(existing);
    }
    let now = store.now();
    let fresh = Profile {
        user_id: caller.user_id.clone(),
        display_name: display_name_from_claims(caller),
        avatar_url: None,
        created_at: now,
        updated_at: now,
        last_seen_at: None,
    };
    if store.insert_new(&fresh).await? {
        return Ok(fresh);
    }
    // Another request created it in between: return what it stored.
    store
        .get(&caller.user_id)
        .await?
        .ok_or_else(|| ApiError::internal("profile vanished right after a concurrent create"))
}

/// `PATCH /me`: creates the profile first if this is my first call.
pub async fn update_me(
    store: &impl ProfileStore,
    caller: &Caller,
    changes: &ProfileChanges,
) -> Result<User, ApiError> {
    let current = ensure_profile(store, caller).await?;
    let online = store.is_online(&caller.user_id).await?;
    if changes.display_name.is_none() && changes.avatar_url.is_none() {
        return Ok(User::of(current, online));
    }
    store
        .update(&caller.user_id, changes, store.now())
        .await?
        .map(|p| User::of(p, online))
        .ok_or(ApiError::NotFound)
}

/// `GET /users/{userId}`: 404 when the user has never called the API.
pub async fn get_user(store: &impl ProfileStore, user: &UserId) -> Result<User, ApiError> {
    let profile = store.get(user).await?.ok_or(ApiError::NotFound)?;
    let online = store.is_online(user).await?;
    Ok(User::of(profile, online))
}

/// Notes when a user's connection closed (for `lastSeenAt`); a user without a profile is skipped.
pub async fn seen(store: &DynamoStore, user: &UserId, at: Timestamp) -> Result<(), StoreError> {
    let update = Expr::new("SET lastSeenAt = :at")
        .when("attribute_exists(PK)")
        .string(":at", at.to_string());
    match DynamoStore::update::<ProfileItem>(store, &keys::profile(user), update).await {
        Ok(_) | Err(StoreError::ConditionFailed) => Ok(()),
        Err(e) => Err(e),
    }
}

/// The DynamoDB form of a profile: the item's keys beside its fields.
#[derive(Serialize, Deserialize)]
struct ProfileItem {
    #[serde(rename = "PK")]
    pk: String,
    #[serde(rename = "SK")]
    sk: String,
    #[serde(flatten)]
    profile: Profile,
}

impl ProfileStore for DynamoStore {
    async fn get(&self, user: &UserId) -> Result<Option<Profile>, StoreError> {
        // Strong: a profile written by the previous call must be seen by this one.
        let item: Option<ProfileItem> =
            DynamoStore::get(self, &keys::profile(user), Consistency::Strong).await?;
        Ok(item.map(|i| i.profile))
    }

    async fn insert_new(&self, profile: &Profile) -> Result<bool, StoreError> {
        let key = keys::profile(&profile.user_id);
        let item = ProfileItem {
            pk: key.pk,
            sk: key.sk,
            profile: profile.clone(),
        };
        match self.put(&item, Some(Expr::item_absent())).await {
            Ok(()) => Ok(true),
            Err(StoreError::ConditionFailed) => Ok(false),
            Err(e) => Err(e),
        }
    }

    async fn update(
        &self,
        user: &UserId,
        changes: &ProfileChanges,
        at: Timestamp,
    ) -> Result<Option<Profile>, StoreError> {
        let mut set = vec!["updatedAt = :at"];
        let mut remove = Vec::new();
        let mut expr = Expr::default().string(":at", at.to_string());
        if let Some(name) = &changes.display_name {
            set.push("displayName = :name");
            expr = expr.string(":name", name.as_str());
        }
        match &changes.avatar_url {
            Some(Some(url)) => {
                set.push("avatarUrl = :avatar");
                expr = expr.string(":avatar", url.as_str());
            }
            Some(None) => remove.push("avatarUrl"),
            None => {}
        }
        expr.expression = format!("SET {}", set.join(", "));
        if !remove.is_empty() {
            expr.expression
                .push_str(&format!(" REMOVE {}", remove.join(", ")));
        }
        let expr = expr.when("attribute_exists(PK)");
        match DynamoStore::update::<ProfileItem>(self, &keys::profile(user), expr).await {
            Ok(item) => Ok(Some(item.profile)),
            Err(StoreError::ConditionFailed) => Ok(None),
            Err(e) => Err(e),
        }
    }

    async fn is_online(&self, user: &UserId) -> Result<bool, StoreError> {
        crate::services::connections::is_online(self, user).await
    }

    fn now(&self) -> Timestamp {
        DynamoStore::now(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;
    use std::sync::Mutex;

    fn caller(claims: &[(&str, &str)]) -> Caller {
        Caller {
            user_id: "u1".parse().unwrap(),
            claims: claims
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        }
    }

    #[test]
    fn the_display_name_falls_back_through_the_claims() {
        let name = |c: &[(&str, &str)]| display_name_from_claims(&caller(c)).to_string();
        assert_eq!(
            name(&[("name", "Ada L."), ("email", "ada@x.org")]),
            "Ada L."
        );
        assert_eq!(
            name(&[("name", "  "), ("preferred_username", "ada")]),
            "ada"
        );
        assert_eq!(name(&[("email", "ada.l@x.org")]), "ada.l");
        assert_eq!(name(&[]), "user");
        assert_eq!(name(&[("name", &"n".repeat(100))]).chars().count(), 64);
    }

    #[test]
    fn patch_bodies_tell_null_from_absent() {
        let parse = |raw: &str| crate::edge::http::parse_json::<ProfileChanges>(raw.as_bytes());
        assert_eq!(parse("{}").unwrap(), ProfileChanges::default());
        assert_eq!(
            parse(r#"{"avatarUrl":null}"#).unwrap().avatar_url,
            Some(None)
        );
        assert!(parse(r#"{"avatarUrl":"http://x.org/a.png"}"#).is_err());
        assert!(parse(r#"{"displayName":null}"#).is_err());
        assert!(parse(r#"{"userId":"someone-else"}"#).is_err());
    }

    /// A profile store in memory, for the service logic only (the DynamoDB adapter is tested
    /// against DynamoDB Local).
    #[derive(Default)]
    struct Memory(Mutex<HashMap<String, Profile>>);

    impl ProfileStore for Memory {
        async fn get(&self, user: &UserId) -> Result<Option<Profile>, StoreError> {
            Ok(self.0.lock().unwrap().get(user.as_str()).cloned())
        }
        async fn insert_new(&self, profile: &Profile) -> Result<bool, StoreError> {
            let mut map = self.0.lock().unwrap();
            if map.contains_key(profile.user_id.as_str()) {
                return Ok(false);
            }
            map.insert(profile.user_id.to_string(), profile.clone());
            Ok(true)
        }
        async fn update(
            &self,
            user: &UserId,
            changes: &ProfileChanges,
            at: Timestamp,
        ) -> Result<Option<Profile>, StoreError> {
            let mut map = self.0.lock().unwrap();
            let Some(p) = map.get_mut(user.as_str()) else {
                return Ok(None);
            };
            if let Some(n) = &changes.display_name {
                p.display_name = n.clone();
            }
            if let Some(a) = &changes.avatar_url {
                p.avatar_url = a.clone();
            }
            p.updated_at = at;
            Ok(Some(p.clone()))
        }
        async fn is_online(&self, _user: &UserId) -> Result<bool, StoreError> {
            Ok(false)
        }
        fn now(&self) -> Timestamp {
            crate::platform::time::Clock::system().now()
        }
    }

    #[tokio::test]
    async fn the_first_call_creates_and_later_calls_keep_the_profile() {
        let store = Memory::default();
        let first = me(&store, &caller(&[("name", "Ada")])).await.unwrap();
        assert_eq!(first.display_name.as_str(), "Ada");
        // A later token with another name does not rename an existing profile.
        let again = me(&store, &caller(&[("name", "Someone")])).await.unwrap();
        assert_eq!(again, first);
    }

    #[tokio::test]
    async fn update_creates_first_then_applies_and_clears() {
        let store = Memory::default();
        let c = caller(&[("name", "Ada")]);
        let changes = ProfileChanges {
            display_name: None,
            avatar_url: Some(Some("https://img.example/a.png".parse().unwrap())),
        };
        let updated = update_me(&store, &c, &changes).await.unwrap();
        assert_eq!(updated.display_name.as_str(), "Ada");
        assert!(updated.avatar_url.is_some());
        let cleared = ProfileChanges {
            display_name: None,
            avatar_url: Some(None),
        };
        assert_eq!(
            update_me(&store, &c, &cleared).await.unwrap().avatar_url,
            None
        );
        let missing = get_user(&store, &"nobody".parse().unwrap()).await;
        assert!(matches!(missing, Err(ApiError::NotFound)));
    }
}
