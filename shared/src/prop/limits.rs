//! The rate-limit configuration parser (`shared/src/domain/limits.rs`): `COUNT/SECONDS` with both above
//! zero, nothing else; `Limits::from_env` names the variable at fault; and a parsed limit is the
//! one the local limiter enforces.

use std::collections::HashMap;
use std::sync::Arc;

use proptest::prelude::*;

use super::{CASES, cases, text_near};
use crate::adapters::rate_limiter::RateLimiter;
use crate::adapters::redis_link::RedisLink;
use crate::domain::error::ApiError;
use crate::domain::limits::{LimitKind, Limits, Rate};
use crate::platform::config::{ConfigError, Env};

/// `^\s*\+?[0-9]+\s*/\s*\+?[0-9]+\s*$` (white space as Rust's `trim` takes it), both numbers
/// from 1 to `u32::MAX`.
fn reference(raw: &str) -> Option<(u32, u32)> {
    let (count, seconds) = raw.split_once('/')?;
    let number = |s: &str| -> Option<u32> {
        let s = s.trim();
        let digits = s.strip_prefix('+').unwrap_or(s);
        if digits.is_empty() || !digits.chars().all(|c| c.is_ascii_digit()) {
            return None;
        }
        digits.parse::<u32>().ok().filter(|n| *n > 0)
    };
    Some((number(count)?, number(seconds)?))
}

fn rate_text() -> impl Strategy<Value = String> {
    prop_oneof![
        (any::<u32>(), any::<u32>()).prop_map(|(c, s)| format!("{c}/{s}")),
        (0..5u32, 0..5u32).prop_map(|(c, s)| format!("{c}/{s}")),
        "[ +-]?[0-9]{0,11} ?/ ?[+-]?[0-9]{0,11}[ /]?",
        text_near(8),
        any::<String>(),
    ]
}

proptest! {
    #![proptest_config(cases(CASES))]

    #[test]
    fn rates_are_count_per_seconds_both_above_zero(raw in rate_text()) {
        match (raw.parse::<Rate>(), reference(&raw)) {
            (Ok(rate), Some((count, seconds))) => {
                prop_assert_eq!((rate.count, rate.seconds), (count, seconds));
                prop_assert_eq!(rate.to_string().parse::<Rate>(), Ok(rate));
            }
            (Err(reason), None) => prop_assert!(!reason.is_empty()),
            (got, expected) => prop_assert!(false, "{:?}: {:?}, expected {:?}", raw, got, expected),
        }
    }

    #[test]
    fn limits_from_the_environment_name_the_variable_at_fault(
        values in proptest::collection::vec(proptest::option::of(rate_text()), LimitKind::ALL.len()),
    ) {
        let vars: HashMap<&'static str, String> = LimitKind::ALL
            .iter()
            .zip(&values)
            .filter_map(|(kind, value)| Some((kind.env_var(), value.clone()?)))
            .collect();
        let env = Env::new(|name: &str| vars.get(name).cloned());
        let first_bad = LimitKind::ALL.iter().find(|kind| {
            env.optional(kind.env_var()).is_some_and(|raw| raw.parse::<Rate>().is_err())
        });
        match (Limits::from_env(&env), first_bad) {
            (Ok(limits), None) => {
                for kind in LimitKind::ALL {
                    let expected = env.optional(kind.env_var()).map(|raw| raw.parse::<Rate>().unwrap());
                    if let Some(expected) = expected {
                        prop_assert_eq!(limits.rate(kind), expected);
                    }
                }
            }
            (Err(ConfigError::Invalid { name, .. }), Some(kind)) => prop_assert_eq!(name, kind.env_var()),
            (got, expected) => prop_assert!(false, "{:?}, expected a refusal of {:?}", got, expected),
        }
    }
}

proptest! {
    #![proptest_config(cases(32))]

    /// Without Redis, a limit of `count` per a long period lets exactly `count` requests through.
    #[test]
    fn the_local_limiter_enforces_the_parsed_rate(count in 1..40u32, subject in text_near(6)) {
        let raw = format!("{count}/3600");
        let env = Env::new(|name: &str| (name == "RATE_LIMIT_DEFAULT").then(|| raw.clone()));
        let limiter = RateLimiter::new(Arc::new(RedisLink::disabled()), Limits::from_env(&env).unwrap());
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        runtime.block_on(async {
            for n in 0..count {
                let quota = limiter.acquire(LimitKind::Default, &subject).await;
                prop_assert!(quota.is_ok(), "request {} of {}", n + 1, count);
                prop_assert_eq!(quota.unwrap().remaining, count - n - 1);
            }
            match limiter.acquire(LimitKind::Default, &subject).await {
                Err(ApiError::RateLimited { retry_after_seconds, quota }) => {
                    prop_assert!((1..=3_600).contains(&retry_after_seconds));
                    prop_assert_eq!(quota.remaining, 0);
                    prop_assert_eq!(quota.limit, count);
                }
                other => prop_assert!(false, "{:?}", other.map(|_| ())),
            }
            Ok(())
        })?;
    }
}
