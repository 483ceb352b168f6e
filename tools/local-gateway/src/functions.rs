//! Every function of the template with clients of its own, as on AWS: each signs its calls with
//! credentials named after it, and each call is held to that function's role as deployed
//! (`template.yaml` after SAM's transform) by the stack's [`LocalIam`]: inside this process by the
//! clients' own HTTP client ([`local_iam::connector`]), and at its proxy for the bootstraps of
//! other processes. So a permission missing from the template fails here exactly as on AWS.
//!
//! Redis likewise: each function connects to the stack's IAM front of the gateway's Redis
//! ([`local_iam::redis_front`]) as the functions' ElastiCache user, with a token its own
//! credentials signed. The rest of a function's deps (limits, the cursor keys, the clock) are the
//! gateway's.

use std::collections::BTreeMap;
use std::sync::Arc;

use aws_credential_types::provider::SharedCredentialsProvider;
use aws_smithy_runtime_api::client::http::SharedHttpClient;
use chat_shared::adapters::push::Pusher;
use chat_shared::adapters::redis_link::IamUser;
use chat_shared::adapters::store::DynamoStore;
use chat_shared::edge::ws::WsDeps;
use chat_shared::services::deps::RouteDeps;
use local_iam::connector::CheckedClient;
use local_iam::{LocalIam, Policies, StackFacts, Upstreams};

/// Where the emulators are that the functions' calls end at, and the stack's names.
#[derive(Debug, Clone)]
pub struct LocalStack {
    /// DynamoDB Local (tables and streams) and kinesis-local.
    pub dynamodb: String,
    pub kinesis: String,
    /// The access key the stack's tables were made with: DynamoDB Local keeps a database per key.
    pub namespace: String,
    pub region: String,
    /// The event stream (`EventStream`).
    pub event_stream: String,
}

impl LocalStack {
    /// From the environment `tools/stack.sh env` prints.
    pub fn from_env() -> Result<Self, String> {
        let var = |name: &str| std::env::var(name).map_err(|_| format!("{name} is not set"));
        Ok(Self {
            dynamodb: var("AWS_ENDPOINT_URL_DYNAMODB")?,
            kinesis: var("AWS_ENDPOINT_URL_KINESIS")?,
            namespace: var("AWS_ACCESS_KEY_ID")?,
            region: var("AWS_REGION")?,
            event_stream: std::env::var("EVENT_STREAM_NAME").unwrap_or_default(),
        })
    }
}

/// How another process on this machine (`local-invoke`, a benchmark) reaches the running
/// gateway's IAM proxy as a function: the proxy's URL and the functions' shared secret, in
/// `$CHAT_STACK_DIR/gateway-iam.json` while `local-gateway serve` runs (readable by its user only).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct IamDoor {
    pub url: String,
    pub secret: String,
    /// The IAM front of the stack's Redis, and whom to connect as (`None`: no Redis).
    #[serde(default)]
    pub redis: Option<RedisDoor>,
    /// The proxy over HTTPS, when `local-gateway serve` was given a certificate.
    #[serde(default)]
    pub tls: Option<TlsDoor>,
}

/// The IAM proxy's HTTPS front (`local_iam::tls`): its URL, and the PEM file a bootstrap trusts
/// it with (`TLS_ROOTS`).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct TlsDoor {
    pub url: String,
    pub roots: String,
}

/// What a function's `REDIS_URL`, `REDIS_IAM_USER` and `REDIS_IAM_CACHE` are locally.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct RedisDoor {
    pub url: String,
    pub user: String,
    pub cache: String,
}

impl IamDoor {
    pub const FILE: &'static str = "gateway-iam.json";

    /// The environment a bootstrap of `function` needs to reach the emulators through the proxy
    /// as itself.
    pub fn sdk_environment(&self, function: &str) -> Vec<(String, String)> {
        vec![
            ("AWS_ACCESS_KEY_ID".to_owned(), function.to_owned()),
            ("AWS_SECRET_ACCESS_KEY".to_owned(), self.secret.clone()),
            ("AWS_ENDPOINT_URL_DYNAMODB".to_owned(), self.url.clone()),
            (
                "AWS_ENDPOINT_URL_DYNAMODB_STREAMS".to_owned(),
                self.url.clone(),
            ),
            ("AWS_ENDPOINT_URL_KINESIS".to_owned(), self.url.clone()),
        ]
    }

    /// The local value of a template variable that names the stack's Redis, if `name` is one.
    pub fn redis_value(&self, name: &str) -> Option<String> {
        let redis = self.redis.as_ref()?;
        match name {
            "REDIS_URL" => Some(redis.url.clone()),
            "REDIS_IAM_USER" => Some(redis.user.clone()),
            "REDIS_IAM_CACHE" => Some(redis.cache.clone()),
            _ => None,
        }
    }

    /// The door of the gateway running on the stack in `stack_dir`.
    pub fn read(stack_dir: &std::path::Path) -> Result<Self, String> {
        let path = stack_dir.join(Self::FILE);
        let text = std::fs::read(&path).map_err(|e| {
            format!(
                "{}: {e} (start the local gateway, tools/run-local.sh: the stack's IAM runs in it)",
                path.display()
            )
        })?;
        serde_json::from_slice(&text).map_err(|e| format!("{}: {e}", path.display()))
    }

    /// Writes it, readable by this user only.
    pub fn write(&self, stack_dir: &std::path::Path) -> std::io::Result<std::path::PathBuf> {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        std::fs::create_dir_all(stack_dir)?;
        let path = stack_dir.join(Self::FILE);
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&path)?;
        file.write_all(serde_json::to_string(self).unwrap_or_default().as_bytes())?;
        Ok(path)
    }
}

/// The account the local stack's ARNs name (DynamoDB Local's own).
pub const LOCAL_ACCOUNT: &str = "000000000000";

/// Each function's deps, behind the stack's IAM.
#[derive(Debug)]
pub struct Functions {
    iam: Arc<LocalIam>,
    aws_url: String,
    redis: Option<RedisDoor>,
    stack: LocalStack,
    deps: BTreeMap<String, RouteDeps>,
}

impl Functions {
    /// Loads the roles, starts the IAM proxy, and builds each function's clients from `base`
    /// (whose table, Redis, limits, clock and `@connections` endpoint they share).
    pub async fn new(
        base: &RouteDeps,
        stack: &LocalStack,
        websocket_api: &str,
        websocket_stage: &str,
    ) -> Result<Self, String> {
        let facts = StackFacts {
            partition: "aws".to_owned(),
            region: stack.region.clone(),
            account: LOCAL_ACCOUNT.to_owned(),
            stack_name: "local".to_owned(),
            table: base.store.table().as_str().to_owned(),
            event_stream: stack.event_stream.clone(),
            websocket_api: websocket_api.to_owned(),
            stage: websocket_stage.to_owned(),
        };
        let policies = tokio::task::spawn_blocking(move || {
            Policies::of_this_repository(&facts).map(|p| (p, facts))
        })
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| e.to_string())?;
        let (policies, facts) = policies;
        let names: Vec<String> = policies.functions.keys().cloned().collect();
        let iam = Arc::new(LocalIam::new(
            facts,
            policies,
            Upstreams {
                dynamodb: stack.dynamodb.clone(),
                kinesis: stack.kinesis.clone(),
                namespace: stack.namespace.clone(),
            },
        ));
        let aws_url = iam.start().await.map_err(|e| e.to_string())?;
        let redis = match base.redis.address() {
            Some(upstream) => Some(RedisDoor {
                url: iam
                    .start_redis_front(&upstream)
                    .await
                    .map_err(|e| e.to_string())?,
                user: iam.facts().cache_user(),
                cache: iam.facts().cache_id(),
            }),
            None => None,
        };
        let redis_user = match &redis {
            Some(door) => Some(IamUser::new(&door.user, &door.cache).map_err(|e| e.to_string())?),
            None => None,
        };
        let http = base
            .store
            .client()
            .config()
            .http_client()
            .ok_or("the stack's DynamoDB client has no HTTP client to check calls in")?;
        let deps = names
            .into_iter()
            .map(|name| -> Result<(String, RouteDeps), String> {
                let credentials = SharedCredentialsProvider::new(iam.credentials(&name));
                let store_config = base
                    .store
                    .client()
                    .config()
                    .to_builder()
                    .endpoint_url(&stack.dynamodb)
                    .http_client(CheckedClient::shared(http.clone(), iam.clone(), &name))
                    .credentials_provider(credentials.clone())
                    .build();
                let store = DynamoStore::new(
                    aws_sdk_dynamodb::Client::from_conf(store_config),
                    base.store.table().clone(),
                    base.store.clock(),
                );
                let pusher = signing_as(&base.pusher, credentials.clone());
                let deps = match (&redis, &redis_user) {
                    (Some(door), Some(user)) => {
                        let link = base
                            .redis
                            .pointed_at(&door.url, Some(user.clone()))
                            .map_err(|e| e.to_string())?
                            .signing_with(credentials, &stack.region);
                        RouteDeps::new(
                            store,
                            base.cursor_keys.clone(),
                            Arc::new(link),
                            base.limiter.limits().clone(),
                            pusher,
                        )
                    }
                    _ => RouteDeps {
                        store,
                        pusher,
                        ..base.clone()
                    },
                };
                Ok((name, deps))
            })
            .collect::<Result<_, _>>()?;
        Ok(Self {
            iam,
            aws_url,
            redis,
            stack: stack.clone(),
            deps,
        })
    }

    /// `pusher` signing as the stack's owner (allowed everything): what the gateway's own deps
    /// push with, so that a test may push as no function may.
    pub fn owner_pusher(&self, pusher: &Pusher) -> Pusher {
        signing_as(
            pusher,
            SharedCredentialsProvider::new(self.iam.owner_credentials()),
        )
    }

    /// The function's deps. Every function of the template has them; a name that is not one is
    /// a bug of the caller's.
    pub fn http(&self, function: &str) -> Option<&RouteDeps> {
        self.deps.get(function)
    }

    /// The function's deps as the WebSocket routes that only answer take them.
    pub fn ws(&self, function: &str) -> Option<WsDeps> {
        self.http(function).map(|d| WsDeps {
            store: d.store.clone(),
            pusher: d.pusher.clone(),
        })
    }

    /// The function's credentials, as a provider.
    fn credentials(&self, function: &str) -> SharedCredentialsProvider {
        SharedCredentialsProvider::new(self.iam.credentials(function))
    }

    /// `base`'s HTTP client behind the check of `function`'s calls.
    fn checked(&self, function: &str, base: &aws_config::SdkConfig) -> Option<SharedHttpClient> {
        base.http_client()
            .map(|http| CheckedClient::shared(http, self.iam.clone(), function))
    }

    /// A Kinesis client of the function's: `base`'s settings, signing as it, its calls checked.
    /// (The endpoint is set on the client's own configuration: set on the shared one, the
    /// environment's `AWS_ENDPOINT_URL_KINESIS` would win.)
    pub fn kinesis(&self, function: &str, base: &aws_config::SdkConfig) -> aws_sdk_kinesis::Client {
        let mut config = aws_sdk_kinesis::config::Builder::from(base)
            .endpoint_url(&self.stack.kinesis)
            .credentials_provider(self.credentials(function));
        config.set_http_client(self.checked(function, base));
        let config = config.build();
        aws_sdk_kinesis::Client::from_conf(config)
    }

    /// A DynamoDB Streams client of the function's (the event source mapping reads the table's
    /// stream with the function's role).
    pub fn dynamodb_streams(
        &self,
        function: &str,
        base: &aws_config::SdkConfig,
    ) -> aws_sdk_dynamodbstreams::Client {
        let mut config = aws_sdk_dynamodbstreams::config::Builder::from(base)
            .endpoint_url(&self.stack.dynamodb)
            .credentials_provider(self.credentials(function));
        config.set_http_client(self.checked(function, base));
        let config = config.build();
        aws_sdk_dynamodbstreams::Client::from_conf(config)
    }

    /// How a bootstrap reaches the IAM proxy as a function (the runtime tests', and through
    /// `gateway-iam.json` `local-invoke`'s).
    pub fn door(&self) -> IamDoor {
        IamDoor {
            url: self.aws_url.clone(),
            secret: self.iam.secret().to_owned(),
            redis: self.redis.clone(),
            tls: None,
        }
    }

    pub fn iam(&self) -> &Arc<LocalIam> {
        &self.iam
    }

    /// The IAM proxy's URL (every AWS service the functions use, told apart by `X-Amz-Target`).
    pub fn aws_url(&self) -> &str {
        &self.aws_url
    }
}

/// `pusher`'s client and settings, signing with `credentials`.
fn signing_as(pusher: &Pusher, credentials: SharedCredentialsProvider) -> Pusher {
    let config = pusher
        .client()
        .config()
        .to_builder()
        .credentials_provider(credentials)
        .build();
    Pusher::new(aws_sdk_apigatewaymanagement::Client::from_conf(config))
        .with_in_flight(pusher.in_flight())
}
