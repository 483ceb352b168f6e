//! The cache in Redis. It holds only what is the same for every reader: a conversation's member
//! list and users' profiles (1 hour), and each user's inbox pages (60 s) under a per-user
//! generation number that every write touching that user's inbox increments, so a changed list is
//! simply read under a new key. `me` is never cached, and membership is always checked against
//! the table. With Redis down every call here is a miss or a no-op: the cache is bypassed.

use std::sync::Arc;

use redis::AsyncCommands;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::adapters::redis_link::RedisLink;
use crate::adapters::store::keys::escape;
use crate::domain::{ConversationId, UserId};

pub const CONVERSATION_TTL_SECONDS: u64 = 3_600;
pub const PROFILE_TTL_SECONDS: u64 = 3_600;
pub const LIST_PAGE_TTL_SECONDS: u64 = 60;
/// Generation counters outlive every page they key.
const GENERATION_TTL_SECONDS: i64 = 86_400;

#[derive(Debug, Clone)]
pub struct Cache {
    redis: Arc<RedisLink>,
}

pub fn members_key(conversation: &ConversationId) -> String {
    format!("conv:{{{conversation}}}:members")
}

pub fn profile_key(user: &UserId) -> String {
    format!("user:{{{}}}:profile", escape(user.as_str()))
}

fn generation_key(user: &UserId) -> String {
    format!("user:{{{}}}:gen", escape(user.as_str()))
}

/// The key of one inbox page: the user, their generation, and a digest of the request.
pub fn inbox_page_key(user: &UserId, generation: u64, request: &str) -> String {
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, request.as_bytes());
    let hex: String = digest.as_ref()[..12]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!(
        "user:{{{}}}:inbox:{generation}:{hex}",
        escape(user.as_str())
    )
}

impl Cache {
    pub fn new(redis: Arc<RedisLink>) -> Self {
        Self { redis }
    }

    pub async fn get<T: DeserializeOwned>(&self, key: &str) -> Option<T> {
        let mut connection = self.redis.connection().await?;
        match connection
            .get::<_, Option<String>>(self.redis.key(key))
            .await
        {
            Ok(found) => found.and_then(|json| serde_json::from_str(&json).ok()),
            Err(error) => {
                self.redis.failed(&error).await;
                None
            }
        }
    }

    /// Many keys at once (`MGET`); a missing or unreadable entry is `None`.
    pub async fn get_many<T: DeserializeOwned>(&self, keys: &[String]) -> Vec<Option<T>> {
        let misses = || keys.iter().map(|_| None).collect();
        if keys.is_empty() {
            return Vec::new();
        }
        let Some(mut connection) = self.redis.connection().await else {
            return misses();
        };
        // One MGET per key when keys hash to different slots would be needed on a cluster; a
        // pipeline of GETs works on both.
        let mut pipe = redis::pipe();
        for key in keys {
            pipe.get(self.redis.key(key));
        }
        match pipe
            .query_async::<Vec<Option<String>>>(&mut connection)
            .await
        {
            Ok(found) => found
                .into_iter()
                .map(|v| v.and_then(|json| serde_json::from_str(&json).ok()))
                .collect(),
            Err(error) => {
                self.redis.failed(&error).await;
                misses()
            }
        }
    }

    pub async fn put<T: Serialize>(&self, key: &str, value: &T, ttl_seconds: u64) {
        let Ok(json) = serde_json::to_string(value) else {
            return;
        };
        let Some(mut connection) = self.redis.connection().await else {
            return;
        };
        if let Err(error) = connection
            .set_ex::<_, _, ()>(self.redis.key(key), json, ttl_seconds)
            .await
        {
            self.redis.failed(&error).await;
        }
    }

    /// Many entries at once, in one pipeline.
    pub async fn put_many<T: Serialize>(&self, entries: &[(String, T)], ttl_seconds: u64) {
        if entries.is_empty() {
            return;
        }
        let Some(mut connection) = self.redis.connection().await else {
            return;
        };
        let mut pipe = redis::pipe();
        for (key, value) in entries {
            if let Ok(json) = serde_json::to_string(value) {
                pipe.set_ex(self.redis.key(key), json, ttl_seconds).ignore();
            }
        }
        if let Err(error) = pipe.query_async::<()>(&mut connection).await {
            self.redis.failed(&error).await;
        }
    }

    pub async fn forget(&self, keys: &[String]) {
        if keys.is_empty() {
            return;
        }
        let Some(mut connection) = self.redis.connection().await else {
            return;
        };
        let mut pipe = redis::pipe();
        for key in keys {
            pipe.del(self.redis.key(key)).ignore();
        }
        if let Err(error) = pipe.query_async::<()>(&mut connection).await {
            self.redis.failed(&error).await;
        }
    }

    /// The user's current generation; `None` when Redis is down (then list pages are not cached).
    pub async fn generation(&self, user: &UserId) -> Option<u64> {
        let mut connection = self.redis.connection().await?;
        match connection
            .get::<_, Option<u64>>(self.redis.key(&generation_key(user)))
            .await
        {
            Ok(generation) => Some(generation.unwrap_or(0)),
            Err(error) => {
                self.redis.failed(&error).await;
                None
            }
        }
    }

    /// Moves these users' list pages to new keys (after any change to their inboxes).
    pub async fn bump_generations<'a>(&self, users: impl IntoIterator<Item = &'a UserId>) {
        let keys: Vec<String> = users
            .into_iter()
            .map(|u| self.redis.key(&generation_key(u)))
            .collect();
        if keys.is_empty() {
            return;
        }
        let Some(mut connection) = self.redis.connection().await else {
            return;
        };
        let mut pipe = redis::pipe();
        for key in &keys {
            pipe.incr(key, 1)
                .ignore()
                .expire(key, GENERATION_TTL_SECONDS)
                .ignore();
        }
        if let Err(error) = pipe.query_async::<()>(&mut connection).await {
            self.redis.failed(&error).await;
        }
    }
}
