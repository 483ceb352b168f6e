//! `rotate-cursor-keys` (an EventBridge schedule, outside the VPC): rotates the keys that sign
//! pagination cursors (`chat_shared::adapters::cursor_keys`): a new current key, the old one kept as
//! previous. Every instance of `http-list-conversations` uses the new key within 5 minutes, and a
//! cursor sealed before the rotation keeps opening until the next one. The scheduled event carries
//! nothing it needs. The answer and the log say when, never the key.

use chat_shared::adapters::store::DynamoStore;
use chat_shared::platform::config::{ConfigError, Env};
use lambda_runtime::{Error, LambdaEvent};
use serde_json::{Value, json};

#[derive(Debug)]
pub struct Deps {
    pub store: DynamoStore,
}

impl Deps {
    /// `TABLE_NAME`, `CHAT_CLOCK_OFFSET`.
    pub async fn from_env<F: Fn(&str) -> Option<String>>(
        env: &Env<F>,
    ) -> Result<Self, ConfigError> {
        Ok(Self {
            store: DynamoStore::from_env(env).await?,
        })
    }
}

pub async fn handle(deps: &Deps, _event: LambdaEvent<Value>) -> Result<Value, Error> {
    let rotated = chat_shared::adapters::cursor_keys::rotate(&deps.store).await?;
    tracing::info!(rotated_at = %rotated.rotated_at, "cursor keys rotated");
    Ok(json!({"rotatedAt": rotated.rotated_at}))
}
