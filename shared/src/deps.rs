//! What an HTTP route function builds once at start and lends to every invocation.

use crate::config::{ConfigError, Env, StoreConfig};
use crate::store::DynamoStore;

/// Clients and configuration of the HTTP route functions, built once in `main` (or once by the
/// local gateway for all of them).
#[derive(Debug, Clone)]
pub struct HttpDeps {
    pub store: DynamoStore,
}

impl HttpDeps {
    /// Reads the configuration and builds the clients; an error names the variable at fault.
    pub async fn from_env<F: Fn(&str) -> Option<String>>(
        env: &Env<F>,
    ) -> Result<Self, ConfigError> {
        let store_config = StoreConfig::from_env(env)?;
        let sdk = crate::aws::load_sdk_config().await;
        Ok(Self {
            store: DynamoStore::new(aws_sdk_dynamodb::Client::new(&sdk), store_config.table_name),
        })
    }
}
