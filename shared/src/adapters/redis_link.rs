//! The one Redis connection of a function instance: made lazily on first use (start-up never
//! waits for or fails on Redis), with short connect and response timeouts, `rediss://` (TLS) and
//! ElastiCache's IAM authentication: each new connection sends `AUTH <user> <token>` with a token
//! signed just then by the function's role ([`iam_token`]), so no password is configured anywhere.
//! When Redis fails, the link stays down for a second before the next try, so that an outage costs
//! requests nothing but the fallback path. ElastiCache closes an IAM-authenticated connection
//! after 12 hours; the command that finds it closed falls back, and the next connection signs a
//! fresh token.

pub mod iam_token;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime};

use aws_credential_types::provider::{ProvideCredentials, SharedCredentialsProvider};
use redis::aio::MultiplexedConnection;
use redis::{AsyncConnectionConfig, Client, ConnectionInfo, IntoConnectionInfo};
use tokio::sync::Mutex;

use crate::platform::config::{ConfigError, Env};
pub use iam_token::IamUser;

/// How long the link stays down after a failure before it tries again.
const RETRY_AFTER_FAILURE: Duration = Duration::from_secs(1);

#[derive(Default)]
struct State {
    connection: Option<MultiplexedConnection>,
    down_until: Option<Instant>,
}

pub struct RedisLink {
    /// Where and as whom; `None`: no Redis.
    target: Option<Target>,
    /// Put before every key (`REDIS_KEY_PREFIX`): stages or test runs can share one cache.
    prefix: String,
    response_timeout: Duration,
    state: Mutex<State>,
    /// Connections handed out: every caller makes exactly one round trip (a command, a
    /// pipeline or a script) with the connection it gets, so this counts round trips.
    round_trips: Arc<AtomicU64>,
}

/// Where the link connects, and how it authenticates.
struct Target {
    info: ConnectionInfo,
    iam: Option<IamUser>,
    /// The credentials and region the IAM token is signed with (the function's SDK config's).
    signer: Option<(SharedCredentialsProvider, String)>,
}

impl Target {
    /// A client for one new connection: under IAM, with a token signed now.
    async fn client(&self) -> Result<Client, String> {
        let Some(iam) = &self.iam else {
            return Client::open(self.info.clone()).map_err(|e| e.to_string());
        };
        let (provider, region) = self
            .signer
            .as_ref()
            .ok_or("REDIS_IAM_USER is set but the link has no AWS credentials to sign with")?;
        let credentials = provider
            .provide_credentials()
            .await
            .map_err(|e| format!("no AWS credentials for the Redis IAM token: {e}"))?;
        let token = iam
            .token(&credentials, region, SystemTime::now())
            .map_err(|e| e.to_string())?;
        let settings = self
            .info
            .redis_settings()
            .clone()
            .set_username(iam.user())
            .set_password(token);
        Client::open(self.info.clone().set_redis_settings(settings)).map_err(|e| e.to_string())
    }
}

impl std::fmt::Debug for RedisLink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisLink")
            .field("configured", &self.target.is_some())
            .field("iam", &self.target.as_ref().and_then(|t| t.iam.as_ref()))
            .field("response_timeout", &self.response_timeout)
            .finish_non_exhaustive()
    }
}

impl RedisLink {
    /// `REDIS_URL` (`redis://` or `rediss://`; unset means no Redis: local limits, no cache),
    /// `REDIS_IAM_USER` and `REDIS_IAM_CACHE` (the ElastiCache user to authenticate as by IAM, and
    /// the replication group's id the token names: both or neither), `REDIS_TIMEOUT_MS` (response
    /// timeout, default 100; connecting may take twice as long). Under IAM the link signs with
    /// the credentials given by [`Self::signing_with`].
    pub fn from_env<F: Fn(&str) -> Option<String>>(env: &Env<F>) -> Result<Self, ConfigError> {
        let timeout_ms: u64 = env.parse_or("REDIS_TIMEOUT_MS", 100)?;
        let prefix = env.optional("REDIS_KEY_PREFIX").unwrap_or_default();
        let iam = match (
            env.optional("REDIS_IAM_USER"),
            env.optional("REDIS_IAM_CACHE"),
        ) {
            (None, None) => None,
            (Some(user), Some(cache)) => {
                Some(
                    IamUser::new(&user, &cache).map_err(|e| ConfigError::Invalid {
                        name: if e.0 == user {
                            "REDIS_IAM_USER"
                        } else {
                            "REDIS_IAM_CACHE"
                        },
                        reason: e.to_string(),
                    })?,
                )
            }
            (Some(_), None) => return Err(ConfigError::Missing("REDIS_IAM_CACHE")),
            (None, Some(_)) => return Err(ConfigError::Missing("REDIS_IAM_USER")),
        };
        let Some(url) = env.optional("REDIS_URL") else {
            return Ok(Self::disabled());
        };
        let link = Self::disabled().with_prefix(prefix);
        Ok(Self {
            response_timeout: Duration::from_millis(timeout_ms),
            ..link.pointed_at(&url, iam)?
        })
    }

    /// The same link signing its IAM tokens with `credentials` in `region` (the function's
    /// SDK config's); without IAM, the same link.
    pub fn signing_with(mut self, credentials: SharedCredentialsProvider, region: &str) -> Self {
        if let Some(target) = &mut self.target {
            target.signer = Some((credentials, region.to_owned()));
        }
        self
    }

    /// A link to `url` as `iam`, with this link's prefix and timeout, counting its round trips
    /// with this link's (the local gateway gives each function its own, behind the local IAM).
    pub fn pointed_at(&self, url: &str, iam: Option<IamUser>) -> Result<Self, ConfigError> {
        let info = url
            .into_connection_info()
            .map_err(|e| ConfigError::Invalid {
                name: "REDIS_URL",
                reason: e.to_string(),
            })?;
        Ok(Self {
            target: Some(Target {
                info,
                iam,
                signer: None,
            }),
            prefix: self.prefix.clone(),
            response_timeout: self.response_timeout,
            state: Mutex::new(State::default()),
            round_trips: self.round_trips.clone(),
        })
    }

    /// The `host:port` the link connects to, if it is configured.
    pub fn address(&self) -> Option<String> {
        match self.target.as_ref()?.info.addr() {
            redis::ConnectionAddr::Tcp(host, port)
            | redis::ConnectionAddr::TcpTls { host, port, .. } => Some(format!("{host}:{port}")),
            _ => None,
        }
    }

    /// A link that never connects.
    pub fn disabled() -> Self {
        Self {
            target: None,
            prefix: String::new(),
            response_timeout: Duration::from_millis(100),
            state: Mutex::new(State::default()),
            round_trips: Arc::new(AtomicU64::new(0)),
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
        let target = self.target.as_ref()?;
        let mut state = self.state.lock().await;
        if let Some(connection) = &state.connection {
            return Some(connection.clone());
        }
        if state.down_until.is_some_and(|until| Instant::now() < until) {
            crate::platform::metrics::degraded(crate::platform::metrics::Dependency::Redis);
            return None;
        }
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(self.response_timeout * 2))
            .set_response_timeout(Some(self.response_timeout));
        let connected = match target.client().await {
            Ok(client) => client
                .get_multiplexed_async_connection_with_config(&config)
                .await
                .map_err(|e| e.to_string()),
            Err(error) => Err(error),
        };
        match connected {
            Ok(connection) => {
                state.down_until = None;
                state.connection = Some(connection.clone());
                Some(connection)
            }
            Err(error) => {
                tracing::warn!(%error, "redis unreachable: local limits, no cache");
                crate::platform::metrics::degraded(crate::platform::metrics::Dependency::Redis);
                state.down_until = Some(Instant::now() + RETRY_AFTER_FAILURE);
                None
            }
        }
    }

    /// Reports a failed command: the connection is dropped and the link rests a second.
    pub async fn failed(&self, error: &redis::RedisError) {
        tracing::warn!(%error, "redis command failed: local limits, no cache");
        crate::platform::metrics::degraded(crate::platform::metrics::Dependency::Redis);
        let mut state = self.state.lock().await;
        state.connection = None;
        state.down_until = Some(Instant::now() + RETRY_AFTER_FAILURE);
    }
}
