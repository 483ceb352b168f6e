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

use crate::platform::config::{ConfigError, Env};

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

    pub fn name(self) -> &'static str {
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

    pub fn period_ms(self) -> i64 {
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
    pub kind: LimitKind,
    pub subject: String,
    /// The request's entry in the log.
    pub entry: String,
}

/// One step of the sliding log: `log` holds the times (ms) of the accepted requests, oldest
/// first. Drops those that left the window, then logs `now` if there is room. The Lua script
/// in `adapters::rate_limiter` is the same arithmetic, in Redis.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Step {
    pub accepted: bool,
    /// Requests in the window, this one included when accepted.
    pub count: u32,
    /// Milliseconds until a place frees (the oldest leaves) and until all do (the newest).
    pub free_in_ms: i64,
    pub empty_in_ms: i64,
}

pub fn slide(
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
}
