//! Rate limits (the contract's table, each configurable by environment), enforced in Redis by one
//! atomic GCRA script per request. When Redis is unreachable, a per-instance limiter with the same
//! algorithm takes over, so a burst is still stopped and the request goes on.
//!
//! GCRA keeps one number per key, the "theoretical arrival time" (TAT): each request moves it one
//! emission interval (period / limit) into the future, and a request is refused while the TAT
//! would be more than one period ahead of now. Redis's own clock (`TIME`) is used, so instances
//! with skewed clocks agree.

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

    /// Milliseconds between two requests at the steady rate.
    fn interval_ms(self) -> i64 {
        (self.period_ms() / i64::from(self.count.max(1))).max(1)
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
    /// Seconds until the limit is whole again.
    pub reset_seconds: u64,
}

/// How a request meets its limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Take one if the allowance has one, else refuse.
    Take,
    /// Give one back (the request turned out not to count).
    Refund,
}

impl Mode {
    fn arg(self) -> &'static str {
        match self {
            Self::Take => "take",
            Self::Refund => "refund",
        }
    }
}

/// The GCRA step: given the stored TAT and now, whether the request passes, the TAT to store, and
/// how far ahead of now the TAT stands (ms). The Lua script below is the same arithmetic.
fn gcra(rate: Rate, stored_tat: Option<i64>, now: i64, mode: Mode) -> (bool, i64, i64) {
    let tat = stored_tat.unwrap_or(now).max(now);
    match mode {
        Mode::Refund => {
            let back = (tat - rate.interval_ms()).max(now);
            (true, back, back - now)
        }
        Mode::Take => {
            let new_tat = tat + rate.interval_ms();
            if new_tat - now <= rate.period_ms() {
                (true, new_tat, new_tat - now)
            } else {
                (false, tat, tat - now)
            }
        }
    }
}

/// What a decision means for the caller.
fn outcome(rate: Rate, allowed: bool, ahead_ms: i64) -> Result<Quota, ApiError> {
    let ceil_secs = |ms: i64| u64::try_from((ms.max(0) + 999) / 1_000).unwrap_or(0);
    let quota = Quota {
        limit: rate.count,
        remaining: u32::try_from(((rate.period_ms() - ahead_ms) / rate.interval_ms()).max(0))
            .unwrap_or(0),
        reset_seconds: ceil_secs(ahead_ms),
    };
    if allowed {
        Ok(quota)
    } else {
        let retry_ms = ahead_ms + rate.interval_ms() - rate.period_ms();
        Err(ApiError::RateLimited {
            retry_after_seconds: ceil_secs(retry_ms).max(1),
            quota: Quota {
                remaining: 0,
                ..quota
            },
        })
    }
}

const GCRA_LUA: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local interval = tonumber(ARGV[1])
local period = tonumber(ARGV[2])
local mode = ARGV[3]
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
if tat < now then tat = now end
local new_tat = tat + interval
if mode == 'refund' then
  new_tat = math.max(tat - interval, now)
elseif new_tat - now > period then
  return {0, tat - now}
end
if new_tat > now then
  redis.call('SET', KEYS[1], new_tat, 'PX', new_tat - now)
else
  redis.call('DEL', KEYS[1])
end
return {1, new_tat - now}
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
    /// The per-instance fallback: TAT by key.
    local: Mutex<HashMap<String, i64>>,
}

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
            script: Script::new(GCRA_LUA),
            local: Mutex::new(HashMap::new()),
        }
    }

    /// The key of a subject's bucket. The hash tag (`{…}`) keeps every key of one subject in one
    /// slot of a cluster-mode cache.
    fn key(kind: LimitKind, subject: &str) -> String {
        format!("rl:{{{}}}:{}", escape(subject), kind.name())
    }

    /// Takes one request from the subject's allowance, or refuses with 429 `rate_limited`.
    pub async fn acquire(&self, kind: LimitKind, subject: &str) -> Result<Quota, ApiError> {
        self.apply(kind, subject, Mode::Take).await
    }

    /// Gives one request back: it turned out not to count (a creation that found an existing
    /// conversation).
    pub async fn refund(&self, kind: LimitKind, subject: &str) {
        let _ = self.apply(kind, subject, Mode::Refund).await;
    }

    async fn apply(&self, kind: LimitKind, subject: &str, mode: Mode) -> Result<Quota, ApiError> {
        let rate = self.limits.rate(kind);
        let key = Self::key(kind, subject);
        if let Some(mut connection) = self.redis.connection().await {
            let answer: Result<(i64, i64), redis::RedisError> = self
                .script
                .key(self.redis.key(&key))
                .arg(rate.interval_ms())
                .arg(rate.period_ms())
                .arg(mode.arg())
                .invoke_async(&mut connection)
                .await;
            match answer {
                Ok((allowed, ahead_ms)) => return outcome(rate, allowed == 1, ahead_ms),
                Err(error) => self.redis.failed(&error).await,
            }
        }
        let (allowed, ahead_ms) = self.apply_locally(rate, key, mode);
        outcome(rate, allowed, ahead_ms)
    }

    fn apply_locally(&self, rate: Rate, key: String, mode: Mode) -> (bool, i64) {
        let now = now_ms();
        let mut local = match self.local.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        if local.len() > 10_000 {
            local.retain(|_, tat| *tat > now);
        }
        let (allowed, new_tat, ahead) = gcra(rate, local.get(&key).copied(), now, mode);
        local.insert(key, new_tat);
        (allowed, ahead)
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
    fn gcra_allows_the_burst_then_refuses_until_an_interval_passes() {
        let rate = Rate::new(20, 3_600); // one per 180 s
        let mut tat = None;
        for n in 0..20 {
            let (ok, new_tat, ahead) = gcra(rate, tat, 1_000_000, Mode::Take);
            assert!(ok, "request {n}");
            tat = Some(new_tat);
            let quota = outcome(rate, ok, ahead).unwrap();
            assert_eq!(quota.remaining, 19 - n);
        }
        let (ok, _, ahead) = gcra(rate, tat, 1_000_000, Mode::Take);
        assert!(!ok);
        match outcome(rate, ok, ahead) {
            Err(ApiError::RateLimited {
                retry_after_seconds,
                quota,
            }) => {
                assert_eq!(retry_after_seconds, 180);
                assert_eq!(quota.remaining, 0);
                assert_eq!(quota.reset_seconds, 3_600);
            }
            other => panic!("{other:?}"),
        }
        // One interval later, one more passes.
        assert!(gcra(rate, tat, 1_000_000 + 180_000, Mode::Take).0);
        // A refund gives one back at once.
        let (_, refunded, _) = gcra(rate, tat, 1_000_000, Mode::Refund);
        assert!(gcra(rate, Some(refunded), 1_000_000, Mode::Take).0);
    }

    #[test]
    fn keys_are_hash_tagged_by_subject() {
        assert_eq!(
            RateLimiter::key(LimitKind::Default, "auth0|a#b"),
            "rl:{auth0|a%23b}:default"
        );
    }

    #[tokio::test]
    async fn without_redis_the_local_limiter_stops_a_burst() {
        let limiter = RateLimiter::new(Arc::new(RedisLink::disabled()), Limits::default());
        for _ in 0..20 {
            limiter
                .acquire(LimitKind::CreateConversation, "ada")
                .await
                .unwrap();
        }
        let refused = limiter.acquire(LimitKind::CreateConversation, "ada").await;
        assert!(matches!(refused, Err(ApiError::RateLimited { .. })));
        limiter
            .acquire(LimitKind::CreateConversation, "bob")
            .await
            .unwrap();
    }
}
