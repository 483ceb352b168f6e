//! What a route function (an HTTP route, or a WebSocket route that reads the table, limits and
//! pushes) builds once at start and lends to every invocation.

use std::sync::Arc;

use crate::adapters::cache::Cache;
use crate::adapters::cursor_keys::CursorKeys;
use crate::adapters::rate_limiter::RateLimiter;
use crate::adapters::redis_link::RedisLink;
use crate::adapters::store::DynamoStore;
use crate::adapters::store::StoreConfig;
use crate::domain::limits::Limits;
use crate::platform::config::{ConfigError, Env};

/// Clients and configuration of the route functions, HTTP and WebSocket alike, built once in
/// `main` (or once by the local gateway for all of them).
#[derive(Debug, Clone)]
pub struct RouteDeps {
    pub store: DynamoStore,
    /// Signs and checks pagination cursors: read from the table (`chat_shared::adapters::cursor_keys`).
    pub cursor_keys: CursorKeys,
    pub limiter: Arc<RateLimiter>,
    pub cache: Cache,
    pub redis: Arc<RedisLink>,
    /// Posts events to WebSocket connections (`@connections`).
    pub pusher: crate::adapters::push::Pusher,
}

impl RouteDeps {
    /// Reads the configuration and builds the clients; an error names the variable at fault.
    pub async fn from_env<F: Fn(&str) -> Option<String>>(
        env: &Env<F>,
    ) -> Result<Self, ConfigError> {
        let store_config = StoreConfig::from_env(env)?;
        let limits = Limits::from_env(env)?;
        let clock = crate::platform::time::Clock::from_env(env)?;
        let sdk = crate::platform::aws::load_sdk_config().await?;
        let mut redis = RedisLink::from_env(env)?;
        if let (Some(credentials), Some(region)) = (sdk.credentials_provider(), sdk.region()) {
            redis = redis.signing_with(credentials, region.as_ref());
        }
        let redis = Arc::new(redis);
        let store = DynamoStore::new(
            aws_sdk_dynamodb::Client::new(&sdk),
            store_config.table_name,
            clock,
        );
        let pusher =
            crate::adapters::push::Pusher::new(aws_sdk_apigatewaymanagement::Client::new(&sdk))
                .with_in_flight(crate::adapters::push::in_flight_from_env(env)?);
        Ok(Self::new(
            store,
            CursorKeys::stored(),
            redis,
            limits,
            pusher,
        ))
    }

    /// Builds the deps from their parts (the local gateway and tests).
    pub fn new(
        store: DynamoStore,
        cursor_keys: CursorKeys,
        redis: Arc<RedisLink>,
        limits: Limits,
        pusher: crate::adapters::push::Pusher,
    ) -> Self {
        Self {
            pusher,
            store,
            cursor_keys,
            limiter: Arc::new(RateLimiter::new(redis.clone(), limits)),
            cache: Cache::new(redis.clone()),
            redis,
        }
    }
}
