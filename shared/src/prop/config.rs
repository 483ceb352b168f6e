//! Configuration (`shared/src/platform/config.rs` and the `from_env` readers built on it): any value of any
//! variable is read or refused with an error naming the variable, never a panic.

use std::collections::HashMap;

use proptest::prelude::*;

use super::{CASES, cases, text_near};
use crate::adapters::redis_link::RedisLink;
use crate::adapters::store::StoreConfig;
use crate::platform::config::{ConfigError, Env};

fn value() -> impl Strategy<Value = String> {
    prop_oneof![
        text_near(8),
        " *[A-Za-z0-9_.-]{0,6} *",
        "[0-9]{0,25}",
        Just("redis://127.0.0.1:6379".to_owned()),
        Just("rediss://:secret@cache.example:6380/0".to_owned()),
        "redis[s]?://[a-z@:/.0-9]{0,20}",
        any::<String>(),
    ]
}

fn env_of(vars: &HashMap<String, String>) -> Env<impl Fn(&str) -> Option<String> + '_> {
    Env::new(move |name: &str| vars.get(name).cloned())
}

proptest! {
    #![proptest_config(cases(CASES))]

    #[test]
    fn optional_values_are_trimmed_and_empty_is_unset(raw in value()) {
        let vars = HashMap::from([("V".to_owned(), raw.clone())]);
        let env = env_of(&vars);
        let expected = Some(raw.trim().to_owned()).filter(|v| !v.is_empty());
        prop_assert_eq!(env.optional("V"), expected.clone());
        prop_assert_eq!(env.required("V").ok(), expected.clone());
        if expected.is_none() {
            prop_assert_eq!(env.required("V"), Err(ConfigError::Missing("V")));
        }
        match env.parse_or::<u64>("V", 7) {
            Ok(n) => prop_assert_eq!(n, expected.as_deref().map_or(Ok(7), str::parse::<u64>).unwrap()),
            Err(ConfigError::Invalid { name, reason }) => {
                prop_assert_eq!(name, "V");
                prop_assert!(!reason.is_empty());
                prop_assert!(expected.unwrap().parse::<u64>().is_err());
            }
            Err(other) => prop_assert!(false, "{}", other),
        }
    }

    #[test]
    fn the_table_name_is_read_or_named_in_the_error(raw in proptest::option::of(value())) {
        let vars: HashMap<String, String> = raw.iter().map(|r| ("TABLE_NAME".to_owned(), r.clone())).collect();
        match StoreConfig::from_env(&env_of(&vars)) {
            Ok(config) => prop_assert_eq!(Some(config.table_name.as_str()), raw.as_deref().map(str::trim)),
            Err(ConfigError::Missing(name) | ConfigError::Invalid { name, .. }) => prop_assert_eq!(name, "TABLE_NAME"),
        }
    }

    #[test]
    fn redis_settings_are_read_or_named_in_the_error(
        url in proptest::option::of(value()),
        timeout in proptest::option::of(value()),
        user in proptest::option::of(value()),
        cache in proptest::option::of(value()),
        prefix in proptest::option::of(value()),
    ) {
        let mut vars = HashMap::new();
        for (name, value) in [("REDIS_URL", url), ("REDIS_TIMEOUT_MS", timeout), ("REDIS_IAM_USER", user), ("REDIS_IAM_CACHE", cache), ("REDIS_KEY_PREFIX", prefix)] {
            if let Some(value) = value {
                vars.insert(name.to_owned(), value);
            }
        }
        match RedisLink::from_env(&env_of(&vars)) {
            Ok(_) => {}
            Err(ConfigError::Invalid { name, .. }) => prop_assert!(matches!(name, "REDIS_URL" | "REDIS_TIMEOUT_MS" | "REDIS_IAM_USER" | "REDIS_IAM_CACHE")),
            // One of the pair without the other.
            Err(ConfigError::Missing(name)) => prop_assert!(matches!(name, "REDIS_IAM_USER" | "REDIS_IAM_CACHE")),
        }
    }
}
