//! The rate limiter: the sliding log of [`crate::domain::limits`] kept in Redis, one atomic script
//! per request, with a per-instance log while Redis is unreachable (the module docs of
//! `domain::limits` say what each limit means and what the fallback gives up).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use redis::Script;

use crate::adapters::redis_link::RedisLink;
use crate::adapters::store::keys::escape;
use crate::domain::error::ApiError;
use crate::domain::limits::{Grant, LimitKind, Limits, Quota, Rate, Step, slide};

/// The sliding log in Redis: KEYS[1] the log, ARGV window (ms), limit, and the entry. Returns
/// accepted (0/1), the count, and the milliseconds until a place frees and until all do.
const SLIDING_LOG_LUA: &str = r"
local key = KEYS[1]
local window = tonumber(ARGV[1])
local limit = tonumber(ARGV[2])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', key, '-inf', now - window)
local count = redis.call('ZCARD', key)
local accepted = 0
if count < limit then
  redis.call('ZADD', key, now, ARGV[3])
  count = count + 1
  accepted = 1
end
local oldest = now
local newest = now
if count > 0 then
  oldest = tonumber(redis.call('ZRANGE', key, 0, 0, 'WITHSCORES')[2])
  newest = tonumber(redis.call('ZRANGE', key, -1, -1, 'WITHSCORES')[2])
  redis.call('PEXPIRE', key, newest + window - now)
end
return {accepted, count, oldest + window - now, newest + window - now}
";

/// What a step means for the caller.
fn outcome(rate: Rate, step: Step) -> Result<Quota, ApiError> {
    let ceil_secs = |ms: i64| u64::try_from((ms.max(0) + 999) / 1_000).unwrap_or(0);
    let quota = Quota {
        limit: rate.count,
        remaining: rate.count.saturating_sub(step.count),
        reset_seconds: ceil_secs(step.empty_in_ms),
        window_seconds: rate.seconds,
    };
    if step.accepted {
        Ok(quota)
    } else {
        Err(ApiError::RateLimited {
            retry_after_seconds: ceil_secs(step.free_in_ms).max(1),
            quota,
        })
    }
}

/// The rate limiter of a function instance.
#[derive(Debug)]
pub struct RateLimiter {
    redis: Arc<RedisLink>,
    limits: Limits,
    script: Script,
    /// The per-instance fallback: the log by key.
    local: Mutex<HashMap<String, std::collections::VecDeque<(i64, String)>>>,
}

/// Real time in milliseconds: the fallback's clock (Redis's `TIME` is the shared one; a window is
/// relative, so the application clock's offset has no place here).
fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

impl RateLimiter {
    pub fn new(redis: Arc<RedisLink>, limits: Limits) -> Self {
        Self {
            redis,
            limits,
            script: Script::new(SLIDING_LOG_LUA),
            local: Mutex::new(HashMap::new()),
        }
    }

    /// The limits it applies.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// The key of a subject's log. The hash tag (`{…}`) keeps every key of one subject in one
    /// slot of a cluster-mode cache.
    fn key(kind: LimitKind, subject: &str) -> String {
        format!("rl:{{{}}}:{}", escape(subject), kind.name())
    }

    /// Takes one request from the subject's allowance, or refuses with 429 `rate_limited`.
    pub async fn acquire(&self, kind: LimitKind, subject: &str) -> Result<Quota, ApiError> {
        self.take(kind, subject).await.map(|grant| grant.quota)
    }

    /// [`Self::acquire`], keeping what [`Self::give_back`] needs.
    pub async fn take(&self, kind: LimitKind, subject: &str) -> Result<Grant, ApiError> {
        let rate = self.limits.rate(kind);
        let key = Self::key(kind, subject);
        let entry = ulid::Ulid::new().to_string();
        let step = match self.take_in_redis(rate, &key, &entry).await {
            Some(step) => step,
            None => self.take_locally(rate, key, &entry),
        };
        outcome(rate, step).map(|quota| Grant {
            quota,
            kind,
            subject: subject.to_owned(),
            entry,
        })
    }

    async fn take_in_redis(&self, rate: Rate, key: &str, entry: &str) -> Option<Step> {
        let mut connection = self.redis.connection().await?;
        let answer: Result<(i64, i64, i64, i64), redis::RedisError> = self
            .script
            .key(self.redis.key(key))
            .arg(rate.period_ms())
            .arg(rate.count)
            .arg(entry)
            .invoke_async(&mut connection)
            .await;
        match answer {
            Ok((accepted, count, free_in_ms, empty_in_ms)) => Some(Step {
                accepted: accepted == 1,
                count: u32::try_from(count).unwrap_or(u32::MAX),
                free_in_ms,
                empty_in_ms,
            }),
            Err(error) => {
                self.redis.failed(&error).await;
                None
            }
        }
    }

    fn take_locally(&self, rate: Rate, key: String, entry: &str) -> Step {
        let now = now_ms();
        let mut local = match self.local.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        if local.len() > 10_000 {
            local.retain(|_, log| log.back().is_some_and(|(t, _)| *t > now - rate.period_ms()));
        }
        slide(local.entry(key).or_default(), rate, now, entry)
    }

    /// Gives a request back: it turned out not to count (a creation that found an existing
    /// conversation, or failed on the server's side). Best effort: a failure leaves it counted.
    pub async fn give_back(&self, grant: Grant) {
        let key = Self::key(grant.kind, &grant.subject);
        if let Some(mut connection) = self.redis.connection().await {
            let removed: Result<i64, redis::RedisError> =
                redis::AsyncCommands::zrem(&mut connection, self.redis.key(&key), &grant.entry)
                    .await;
            if let Err(error) = removed {
                self.redis.failed(&error).await;
            }
        }
        let mut local = match self.local.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        if let Some(log) = local.get_mut(&key) {
            log.retain(|(_, e)| *e != grant.entry);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_log_admits_n_in_any_window_and_says_exactly_when_again() {
        let rate = Rate::new(3, 10); // 3 per 10 s
        let mut log = std::collections::VecDeque::new();
        for (n, at) in [0, 1_000, 2_500].into_iter().enumerate() {
            let step = slide(&mut log, rate, at, &format!("e{n}"));
            assert!(step.accepted, "request {n}");
            let quota = outcome(rate, step).unwrap();
            assert_eq!(quota.remaining, 2 - n as u32);
            assert_eq!(quota.window_seconds, 10);
        }
        // The fourth, at 4.2 s: refused until the first leaves at 10 s (5.8 s: Retry-After 6).
        let refused = slide(&mut log, rate, 4_200, "e3");
        match outcome(rate, refused) {
            Err(ApiError::RateLimited {
                retry_after_seconds,
                quota,
            }) => {
                assert_eq!(retry_after_seconds, 6);
                assert_eq!(quota.remaining, 0);
                // The allowance is whole again when the newest (2.5 s) leaves: 8.3 s later.
                assert_eq!(quota.reset_seconds, 9);
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(
            log.len(),
            3,
            "a refused request is not logged: it costs nothing"
        );
        // At 9.999 s still full; at 10 s the first has left: exactly one more.
        assert!(!slide(&mut log, rate, 9_999, "e4").accepted);
        assert!(slide(&mut log, rate, 10_000, "e5").accepted);
        assert!(!slide(&mut log, rate, 10_000, "e6").accepted);
        // Any 10 s window held at most 3 accepted requests.
        let times: Vec<i64> = log.iter().map(|(t, _)| *t).collect();
        assert_eq!(times, [1_000, 2_500, 10_000]);
    }
    #[test]
    fn keys_are_hash_tagged_by_subject() {
        assert_eq!(
            RateLimiter::key(LimitKind::Default, "auth0|a#b"),
            "rl:{auth0|a%23b}:default"
        );
    }

    #[tokio::test]
    async fn without_redis_the_local_log_stops_a_burst_and_a_grant_given_back_frees_its_place() {
        let limiter = RateLimiter::new(Arc::new(RedisLink::disabled()), Limits::default());
        let mut grants = Vec::new();
        for _ in 0..20 {
            grants.push(
                limiter
                    .take(LimitKind::CreateConversation, "ada")
                    .await
                    .unwrap(),
            );
        }
        let refused = limiter.acquire(LimitKind::CreateConversation, "ada").await;
        assert!(matches!(refused, Err(ApiError::RateLimited { .. })));
        limiter
            .acquire(LimitKind::CreateConversation, "bob")
            .await
            .unwrap();
        limiter.give_back(grants.pop().unwrap()).await;
        let again = limiter
            .acquire(LimitKind::CreateConversation, "ada")
            .await
            .unwrap();
        assert_eq!(again.remaining, 0);
    }
}
