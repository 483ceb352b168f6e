//! The one Redis connection of a function instance: made lazily on first use (start-up never
//! waits for or fails on Redis), with short connect and response timeouts, `rediss://` (TLS) and
//! AUTH as ElastiCache requires. When Redis fails, the link stays down for a second before the next
//! try, so that an outage costs requests nothing but the fallback path.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use redis::aio::MultiplexedConnection;
use redis::{AsyncConnectionConfig, Client, IntoConnectionInfo};
use tokio::sync::Mutex;

use crate::config::{ConfigError, Env};

/// How long the link stays down after a failure before it tries again.
const RETRY_AFTER_FAILURE: Duration = Duration::from_secs(1);

#[derive(Default)]
struct State {
    connection: Option<MultiplexedConnection>,
    down_until: Option<Instant>,
}

pub struct RedisLink {
    client: Option<Client>,
    /// Put before every key (`REDIS_KEY_PREFIX`): stages or test runs can share one cache.
    prefix: String,
    response_timeout: Duration,
    state: Mutex<State>,
    /// Connections handed out: every caller makes exactly one round trip (a command, a
    /// pipeline or a script) with the connection it gets, so this counts round trips.
    round_trips: AtomicU64,
}

impl std::fmt::Debug for RedisLink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisLink")
            .field("configured", &self.client.is_some())
            .field("response_timeout", &self.response_timeout)
            .finish_non_exhaustive()
    }
}

impl RedisLink {
    /// `REDIS_URL` (`redis://` or `rediss://`; unset means no Redis: local limits, no cache),
    /// `REDIS_AUTH_TOKEN` (optional, overrides a password in the URL), `REDIS_TIMEOUT_MS`
    /// (response timeout, default 100; connecting may take twice as long).
    pub fn from_env<F: Fn(&str) -> Option<String>>(env: &Env<F>) -> Result<Self, ConfigError> {
        let timeout_ms: u64 = env.parse_or("REDIS_TIMEOUT_MS", 100)?;
        let prefix = env.optional("REDIS_KEY_PREFIX").unwrap_or_default();
        let Some(url) = env.optional("REDIS_URL") else {
            return Ok(Self::disabled());
        };
        let invalid = |reason: String| ConfigError::Invalid {
            name: "REDIS_URL",
            reason,
        };
        let mut info = url
            .as_str()
            .into_connection_info()
            .map_err(|e| invalid(e.to_string()))?;
        if let Some(token) = env.optional("REDIS_AUTH_TOKEN") {
            let settings = info.redis_settings().clone().set_password(token);
            info = info.set_redis_settings(settings);
        }
        let client = Client::open(info).map_err(|e| invalid(e.to_string()))?;
        Ok(Self {
            client: Some(client),
            prefix,
            response_timeout: Duration::from_millis(timeout_ms),
            state: Mutex::new(State::default()),
            round_trips: AtomicU64::new(0),
        })
    }

    /// A link that never connects.
    pub fn disabled() -> Self {
        Self {
            client: None,
            prefix: String::new(),
            response_timeout: Duration::from_millis(100),
            state: Mutex::new(State::default()),
            round_trips: AtomicU64::new(0),
        }
    }

    /// The key as stored: the configured prefix, then `key`.
    pub fn key(&self, key: &str) -> String {
        format!("{}{key}", self.prefix)
    }

    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The same link with another key prefix (tests give each run its own).
    pub fn with_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// Round trips to Redis so far (see `round_trips`): what the cost benchmark counts per route.
    pub fn round_trips(&self) -> u64 {
        self.round_trips.load(Ordering::Relaxed)
    }

    /// The connection, made now if needed; `None` while Redis is unconfigured or down. Callers
    /// make one round trip with it (a command, a pipeline or a script) and ask again for the next.
    pub async fn connection(&self) -> Option<MultiplexedConnection> {
        let connection = self.connect().await;
        if connection.is_some() {
            self.round_trips.fetch_add(1, Ordering::Relaxed);
        }
        connection
    }

    async fn connect(&self) -> Option<MultiplexedConnection> {
        let client = self.client.as_ref()?;
        let mut state = self.state.lock().await;
        if let Some(connection) = &state.connection {
            return Some(connection.clone());
        }
        if state.down_until.is_some_and(|until| Instant::now() < until) {
            crate::metrics::degraded(crate::metrics::Dependency::Redis);
            return None;
        }
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(self.response_timeout * 2))
            .set_response_timeout(Some(self.response_timeout));
        match client
            .get_multiplexed_async_connection_with_config(&config)
            .await
        {
            Ok(connection) => {
                state.down_until = None;
                state.connection = Some(connection.clone());
                Some(connection)
            }
            Err(error) => {
                tracing::warn!(%error, "redis unreachable: local limits, no cache");
                crate::metrics::degraded(crate::metrics::Dependency::Redis);
                state.down_until = Some(Instant::now() + RETRY_AFTER_FAILURE);
                None
            }
        }
    }

    /// Reports a failed command: the connection is dropped and the link rests a second.
    pub async fn failed(&self, error: &redis::RedisError) {
        tracing::warn!(%error, "redis command failed: local limits, no cache");
        crate::metrics::degraded(crate::metrics::Dependency::Redis);
        let mut state = self.state.lock().await;
        state.connection = None;
        state.down_until = Some(Instant::now() + RETRY_AFTER_FAILURE);
    }
}
