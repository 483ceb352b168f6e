//! Rate limits (the contract's table, each configurable by environment), exact: "N per window"
//! means at most N requests accepted in any window of that length, per user and limit, across
//! every instance and both APIs (a WebSocket `sendMessage` and `POST …/messages` share one).
//!
//! Redis keeps, per user and limit, the log of the accepted requests' times (a sorted set), and
//! one atomic script per request drops the times that have left the window, counts the rest and
//! logs this request only if there is room. A refused request (429) is not logged: it costs
//! nothing. Redis's own clock (`TIME`) stamps every request, so instances with skewed clocks
//! agree. `Retry-After` is when the oldest logged request leaves the window, `RateLimit-Reset`
//! when the newest does (the whole allowance is back), both rounded up to the second, and
//! `RateLimit-Policy` says the limit and window (`20;w=3600`).
//!
//! **While Redis is unreachable**, each function instance keeps such a log of its own: exact
//! within the instance, not across instances (a user whose requests reach k instances may get up
//! to k × N in a window). That keeps every route working through a cache outage, which refusing
//! would not, at the price of looser limits until Redis is back; the fault tests show both.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use redis::Script;

use crate::config::{ConfigError, Env};
use crate::error::ApiError;
use crate::keys::escape;
use crate::redis_link::RedisLink;

/// The contract's limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LimitKind {
    CreateConversation,
    SendMessage,
    Typing,
    Realtime,
    /// Any other route.
    Default,
}

impl LimitKind {
    pub const ALL: [LimitKind; 5] = [
        Self::CreateConversation,
        Self::SendMessage,
        Self::Typing,
        Self::Realtime,
        Self::Default,
    ];

    fn name(self) -> &'static str {
        match self {
            Self::CreateConversation => "create-conversation",
            Self::SendMessage => "send-message",
            Self::Typing => "typing",
            Self::Realtime => "realtime",
            Self::Default => "default",
        }
    }

    /// `RATE_LIMIT_…`: `COUNT/SECONDS`, e.g. `20/3600`.
    pub fn env_var(self) -> &'static str {
        match self {
            Self::CreateConversation => "RATE_LIMIT_CREATE_CONVERSATION",
            Self::SendMessage => "RATE_LIMIT_SEND_MESSAGE",
            Self::Typing => "RATE_LIMIT_TYPING",
            Self::Realtime => "RATE_LIMIT_REALTIME",
            Self::Default => "RATE_LIMIT_DEFAULT",
        }
    }

    fn default_rate(self) -> Rate {
        match self {
            Self::CreateConversation => Rate::new(20, 3_600),
            Self::SendMessage => Rate::new(60, 60),
            Self::Typing => Rate::new(1, 2),
            Self::Realtime => Rate::new(30, 60),
            Self::Default => Rate::new(600, 60),
        }
    }
}

/// `count` requests per `seconds`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    pub count: u32,
    pub seconds: u32,
}

impl Rate {
    pub const fn new(count: u32, seconds: u32) -> Self {
        Self { count, seconds }
    }

    fn period_ms(self) -> i64 {
        i64::from(self.seconds) * 1_000
    }
}

impl std::str::FromStr for Rate {
    type Err = String;
    fn from_str(raw: &str) -> Result<Self, Self::Err> {
        let (count, seconds) = raw.split_once('/').ok_or("COUNT/SECONDS, e.g. 20/3600")?;
        let count: u32 = count.trim().parse().map_err(|_| "COUNT must be a number")?;
        let seconds: u32 = seconds
            .trim()
            .parse()
            .map_err(|_| "SECONDS must be a number")?;
        if count == 0 || seconds == 0 {
            return Err("COUNT and SECONDS must be above 0".to_owned());
        }
        Ok(Self { count, seconds })
    }
}

impl std::fmt::Display for Rate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.count, self.seconds)
    }
}

/// Where a caller stands: the `RateLimit-*` headers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quota {
    pub limit: u32,
    pub remaining: u32,
    /// Seconds until the whole allowance is back (the newest logged request leaves the window).
    pub reset_seconds: u64,
    /// The window's length (`RateLimit-Policy: limit;w=window`).
    pub window_seconds: u32,
}

/// A request taken from an allowance, which can be given back (it turned out not to count).
#[derive(Debug, Clone)]
pub struct Grant {
    pub quota: Quota,
    kind: LimitKind,
    subject: String,
    /// The request's entry in the log.
    entry: String,
}

/// One step of the sliding log: `log` holds the times (ms) of the accepted requests, oldest
/// first. Drops those that left the window, then logs `now` if there is room. The Lua script
/// below is the same arithmetic, in Redis.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Step {
    accepted: bool,
    /// Requests in the window, this one included when accepted.
    count: u32,
    /// Milliseconds until a place frees (the oldest leaves) and until all do (the newest).
    free_in_ms: i64,
    empty_in_ms: i64,
}

fn slide(
    log: &mut std::collections::VecDeque<(i64, String)>,
    rate: Rate,
    now: i64,
    entry: &str,
) -> Step {
    let window = rate.period_ms();
    // An entry logged at t counts while now < t + window.
    while log.front().is_some_and(|(t, _)| *t <= now - window) {
        log.pop_front();
    }
    let accepted = log.len() < rate.count as usize;
    if accepted {
        log.push_back((now, entry.to_owned()));
    }
    let oldest = log.front().map_or(now, |(t, _)| *t);
    let newest = log.back().map_or(now, |(t, _)| *t);
    Step {
        accepted,
        count: u32::try_from(log.len()).unwrap_or(u32::MAX),
        free_in_ms: oldest + window - now,
        empty_in_ms: newest + window - now,
    }
}

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

/// Limits per kind, read from the environment.
#[derive(Debug, Clone)]
pub struct Limits(HashMap<LimitKind, Rate>);

impl Limits {
    pub fn from_env<F: Fn(&str) -> Option<String>>(env: &Env<F>) -> Result<Self, ConfigError> {
        let mut rates = HashMap::new();
        for kind in LimitKind::ALL {
            let rate = match env.optional(kind.env_var()) {
                None => kind.default_rate(),
                Some(raw) => raw.parse().map_err(|reason| ConfigError::Invalid {
                    name: kind.env_var(),
                    reason,
                })?,
            };
            rates.insert(kind, rate);
        }
        Ok(Self(rates))
    }

    pub fn rate(&self, kind: LimitKind) -> Rate {
        self.0
            .get(&kind)
            .copied()
            .unwrap_or_else(|| kind.default_rate())
    }

    /// These limits with `kind` set to `rate` (tests: a short window).
    pub fn with(mut self, kind: LimitKind, rate: Rate) -> Self {
        self.0.insert(kind, rate);
        self
    }
}

impl Default for Limits {
    fn default() -> Self {
        Self(
            LimitKind::ALL
                .into_iter()
                .map(|k| (k, k.default_rate()))
                .collect(),
        )
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
    fn rates_parse_from_the_environment_form() {
        assert_eq!("20/3600".parse::<Rate>().unwrap(), Rate::new(20, 3_600));
        assert!("20".parse::<Rate>().is_err());
        assert!("0/60".parse::<Rate>().is_err());
        assert!("x/60".parse::<Rate>().is_err());
    }

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
