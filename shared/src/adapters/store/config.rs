//! The store's configuration: the table it works on.

use crate::domain::{TableName, ValidationError};
use crate::platform::config::{ConfigError, Env};

/// What every function that touches the table needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreConfig {
    /// `TABLE_NAME`: the single table (see `template.yaml`).
    pub table_name: TableName,
}

impl StoreConfig {
    pub fn from_env<F: Fn(&str) -> Option<String>>(env: &Env<F>) -> Result<Self, ConfigError> {
        let raw = env.required("TABLE_NAME")?;
        let table_name = raw
            .parse()
            .map_err(|e: ValidationError| ConfigError::Invalid {
                name: "TABLE_NAME",
                reason: e.to_string(),
            })?;
        Ok(Self { table_name })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Env<impl Fn(&str) -> Option<String>> {
        let pairs: Vec<(String, String)> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        Env::new(move |name: &str| {
            pairs
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
        })
    }

    #[test]
    fn store_config_reads_the_table_name() {
        let config = StoreConfig::from_env(&env(&[("TABLE_NAME", " chat-dev ")])).unwrap();
        assert_eq!(config.table_name.as_str(), "chat-dev");
    }

    #[test]
    fn a_missing_or_empty_table_name_is_named_in_the_error() {
        assert_eq!(
            StoreConfig::from_env(&env(&[])),
            Err(ConfigError::Missing("TABLE_NAME"))
        );
        assert_eq!(
            StoreConfig::from_env(&env(&[("TABLE_NAME", "  ")])),
            Err(ConfigError::Missing("TABLE_NAME"))
        );
    }

    #[test]
    fn an_invalid_table_name_is_refused() {
        let err = StoreConfig::from_env(&env(&[("TABLE_NAME", "a b")])).unwrap_err();
        assert!(
            matches!(
                err,
                ConfigError::Invalid {
                    name: "TABLE_NAME",
                    ..
                }
            ),
            "{err:?}"
        );
    }
}
