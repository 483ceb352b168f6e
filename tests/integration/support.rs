//! Shared set-up: SDK clients pointed at the local stack, and fresh tables made from
//! `template.yaml` exactly as the local stack makes its own.

use chat_functions::stream_publisher;
use std::collections::HashMap;
use std::sync::Arc;

use aws_sdk_dynamodbstreams::types::ShardIteratorType;

use aws_config::SdkConfig;
use chat_shared::adapters::store::DynamoStore;
use chat_shared::services::deps::RouteDeps;
use local_gateway::event::ApiFacts;
use local_gateway::issuer::LocalIssuer;
use local_gateway::server::Gateway;
use local_stack::Template;
use tokio::sync::OnceCell;

/// Endpoints are required: a test run without the stack fails loudly instead of reaching AWS.
fn require_env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!("{name} is not set: run tools/test.sh, or start tools/stack.sh and eval its env")
    })
}

/// The SDK configuration of this test process: the stack's endpoints, and an access key of the
/// process's own ([`access_key`]), so that its tables live in a DynamoDB Local database of their
/// own (the stack runs without `-sharedDb`).
pub async fn sdk_config() -> &'static SdkConfig {
    static CONFIG: OnceCell<SdkConfig> = OnceCell::const_new();
    CONFIG
        .get_or_init(|| async {
            for name in [
                "AWS_ENDPOINT_URL_DYNAMODB",
                "AWS_ENDPOINT_URL_DYNAMODB_STREAMS",
                "AWS_ENDPOINT_URL_KINESIS",
                "AWS_REGION",
            ] {
                require_env(name);
            }
            let credentials =
                aws_credential_types::Credentials::new(access_key(), "local", None, None, "test");
            chat_shared::platform::aws::load_sdk_config()
                .await
                .unwrap()
                .into_builder()
                .credentials_provider(
                    aws_credential_types::provider::SharedCredentialsProvider::new(credentials),
                )
                .build()
        })
        .await
}

/// The stack the test's gateways stand in front of: the emulators of the environment, the test's
/// own DynamoDB Local database, and the stack's event stream (a test with an emulator or a stream
/// of its own starts its gateway with [`LocalApi::start_on`]).
pub fn local_stack() -> local_gateway::functions::LocalStack {
    local_gateway::functions::LocalStack {
        dynamodb: require_env("AWS_ENDPOINT_URL_DYNAMODB"),
        kinesis: require_env("AWS_ENDPOINT_URL_KINESIS"),
        namespace: access_key().to_owned(),
        region: require_env("AWS_REGION"),
        event_stream: std::env::var("EVENT_STREAM_NAME").unwrap_or_default(),
    }
}

/// This test process's access key: DynamoDB Local keeps a database per key, so a test never
/// reads or slows another's tables. (DynamoDB Local takes letters and digits only.)
pub fn access_key() -> &'static str {
    static KEY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    KEY.get_or_init(|| format!("test{}", ulid::Ulid::new()))
}

/// The application clock of the test process: real time moved by `CHAT_CLOCK_OFFSET`, as every
/// process of the stack reads it. Fixtures are made relative to it.
pub fn clock() -> chat_shared::platform::time::Clock {
    chat_shared::platform::time::Clock::from_env(&chat_shared::platform::config::process_env())
        .expect("CHAT_CLOCK_OFFSET is malformed")
}

pub fn unique_name(prefix: &str) -> String {
    format!("{prefix}-{}", ulid::Ulid::new().to_string().to_lowercase())
}

pub async fn dynamo() -> aws_sdk_dynamodb::Client {
    aws_sdk_dynamodb::Client::new(sdk_config().await)
}

pub async fn kinesis() -> aws_sdk_kinesis::Client {
    aws_sdk_kinesis::Client::new(sdk_config().await)
}

/// A new table, created from the repository's `template.yaml`, behind the shared store adapter.
pub async fn fresh_store() -> DynamoStore {
    let template = Template::of_this_repository().unwrap();
    let name = unique_name("test");
    let client = dynamo().await;
    local_stack::create_table(&client, &name, &template.table)
        .await
        .unwrap();
    DynamoStore::new(client, name.parse().unwrap(), clock())
}

/// The deps a route function builds in `main`, on a fresh table.
pub async fn fresh_deps() -> RouteDeps {
    deps_with(fresh_store().await, redis_link()).await
}

/// The stack's Redis, with keys of this test only (a unique prefix).
pub fn redis_link() -> Arc<chat_shared::adapters::redis_link::RedisLink> {
    let env = chat_shared::platform::config::Env::new(|name: &str| std::env::var(name).ok());
    require_env("REDIS_URL");
    let link = chat_shared::adapters::redis_link::RedisLink::from_env(&env).unwrap();
    Arc::new(link.with_prefix(format!("{}:", unique_name("t"))))
}

pub async fn deps_with(
    store: DynamoStore,
    redis: Arc<chat_shared::adapters::redis_link::RedisLink>,
) -> RouteDeps {
    RouteDeps::new(
        store,
        // The keys as deployed: read from (and first made in) the test's own table.
        chat_shared::adapters::cursor_keys::CursorKeys::stored(),
        redis,
        chat_shared::domain::limits::Limits::default(),
        // Replaced by the gateway's own @connections once a LocalApi serves these deps.
        chat_shared::adapters::push::Pusher::for_endpoint("http://127.0.0.1:9/local")
            .await
            .unwrap(),
    )
}

/// Whether a gateway plays the table stream's `stream-fan-out` mapping.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FanOut {
    Run,
    Skip,
}

/// A running local gateway on its own port and a fresh table; it stops with the test's runtime.
pub struct LocalApi {
    pub url: String,
    pub gateway: Arc<Gateway>,
    pub http: reqwest::Client,
    /// The gateway's `stream-fan-out` mapping (none for [`Self::start_beside`]).
    pub fan_out: Option<local_gateway::fan_out::FanOut>,
}

impl LocalApi {
    pub async fn start() -> Self {
        Self::start_with(fresh_deps().await).await
    }

    /// A gateway over these deps (its own Redis, limits …), pushing to its own `@connections`.
    pub async fn start_with(deps: RouteDeps) -> Self {
        Self::serve(deps, true, local_stack(), FanOut::Run).await
    }

    /// A second gateway over a table another gateway serves (its clock moved, say): it plays no
    /// `stream-fan-out` mapping, since the first one's already pushes each change of the table
    /// (to the first gateway's connections; this one's would be pruned as gone).
    pub async fn start_beside(
        deps: RouteDeps,
        stack: local_gateway::functions::LocalStack,
    ) -> Self {
        Self::serve(deps, true, stack, FanOut::Skip).await
    }

    /// A gateway over these deps in front of `stack` (an emulator of the test's own, or a stream
    /// of its own).
    pub async fn start_on(deps: RouteDeps, stack: local_gateway::functions::LocalStack) -> Self {
        Self::serve(deps, true, stack, FanOut::Run).await
    }

    /// A gateway over these deps whose `EventStream` is a new Kinesis stream of the test's own
    /// (its name is returned): `stream-publisher`'s role may write there.
    pub async fn start_with_event_stream(deps: RouteDeps, prefix: &str) -> (Self, String) {
        Self::with_event_stream(deps, prefix, FanOut::Run).await
    }

    /// As [`Self::start_with_event_stream`], but without the fan-out's mapping: the test hands
    /// the table's records to `stream-fan-out` itself (the cost benchmark, to meter each route's).
    pub async fn start_with_event_stream_and_no_fan_out(
        deps: RouteDeps,
        prefix: &str,
    ) -> (Self, String) {
        Self::with_event_stream(deps, prefix, FanOut::Skip).await
    }

    async fn with_event_stream(deps: RouteDeps, prefix: &str, fan_out: FanOut) -> (Self, String) {
        let stream = unique_name(prefix);
        let template = Template::of_this_repository().unwrap();
        local_stack::create_stream(&kinesis().await, &stream, &template.stream)
            .await
            .unwrap();
        let stack = local_gateway::functions::LocalStack {
            event_stream: stream.clone(),
            ..local_stack()
        };
        let api = Self::serve(deps, true, stack, fan_out).await;
        (api, stream)
    }

    /// A gateway over these deps that keeps their pusher (an `@connections` of the test's own).
    pub async fn start_keeping_pusher(deps: RouteDeps) -> Self {
        Self::serve(deps, false, local_stack(), FanOut::Run).await
    }

    async fn serve(
        mut deps: RouteDeps,
        own_connections: bool,
        stack: local_gateway::functions::LocalStack,
        fan_out: FanOut,
    ) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        if own_connections {
            deps.pusher = chat_shared::adapters::push::Pusher::for_endpoint(&format!(
                "http://{address}/local"
            ))
            .await
            .unwrap();
        }
        let facts = ApiFacts {
            api_id: "local".to_owned(),
            stage: "$default".to_owned(),
            domain_name: address.to_string(),
        };
        let gateway = Arc::new(
            Gateway::new(
                deps,
                &stack,
                LocalIssuer::ephemeral(clock()).unwrap(),
                facts,
                vec!["*".to_owned()],
            )
            .await
            .unwrap(),
        );
        let fan_out = match fan_out {
            FanOut::Run => Some(local_gateway::fan_out::start(&gateway).await.unwrap()),
            FanOut::Skip => None,
        };
        let serving = gateway.clone();
        tokio::spawn(async move {
            local_gateway::server::serve(listener, serving, std::future::pending()).await
        });
        Self {
            url: format!("http://{address}"),
            gateway,
            http: reqwest::Client::new(),
            fan_out,
        }
    }

    /// An `@connections` client of the gateway's, signing as the stack's owner (allowed
    /// everything, as the account that deployed a stack), or as `function` with its role.
    pub fn connections_client(
        &self,
        function: Option<&str>,
    ) -> aws_sdk_apigatewaymanagement::Client {
        let iam = self.gateway.functions.iam();
        let credentials = match function {
            Some(function) => iam.credentials(function),
            None => iam.owner_credentials(),
        };
        let config = self
            .gateway
            .deps
            .pusher
            .client()
            .config()
            .to_builder()
            .credentials_provider(
                aws_credential_types::provider::SharedCredentialsProvider::new(credentials),
            )
            .build();
        aws_sdk_apigatewaymanagement::Client::from_conf(config)
    }

    /// A valid token of the gateway's issuer for `user`.
    pub fn token(&self, user: &str, name: Option<&str>) -> String {
        self.gateway.issuer.mint(user, name, 600).unwrap()
    }

    pub fn request(
        &self,
        method: reqwest::Method,
        path: &str,
        token: &str,
    ) -> reqwest::RequestBuilder {
        self.http
            .request(method, format!("{}{path}", self.url))
            .bearer_auth(token)
    }
}

/// Tokens the authorizers must refuse, each named, for `mallory`: see [`refused_tokens_for`].
pub fn refused_tokens(issuer: &LocalIssuer) -> Vec<(&'static str, String)> {
    refused_tokens_for(issuer, "mallory")
}

/// Tokens the authorizers must refuse, each named, that would otherwise be `sub`'s: expired, not
/// yet valid, without `exp`, wrong issuer, `iss` as an array holding the issuer, wrong audience,
/// an `aud` of another type beside a good `client_id`, signed by another key, another key's
/// `kid`, `alg: none`, HS256 keyed with the issuer's public key, claims swapped under a good
/// signature, and text that is no JWT at all.
pub fn refused_tokens_for(issuer: &LocalIssuer, sub: &str) -> Vec<(&'static str, String)> {
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
    use local_gateway::issuer::{LOCAL_AUDIENCE, LOCAL_ISSUER};
    let now = clock().now().unix_seconds();
    let header = serde_json::json!({"alg": "RS256", "typ": "JWT", "kid": issuer.kid()});
    let claims = |extra: serde_json::Value| {
        let mut c = serde_json::json!({"iss": LOCAL_ISSUER, "aud": LOCAL_AUDIENCE, "sub": sub, "exp": now + 600});
        c.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        c
    };
    let sign = |extra: serde_json::Value| issuer.sign(&header, &claims(extra)).unwrap();
    vec![
        ("expired", sign(serde_json::json!({"exp": now - 5}))),
        (
            "wrong issuer",
            sign(serde_json::json!({"iss": "https://evil.example"})),
        ),
        ("wrong audience", sign(serde_json::json!({"aud": "other"}))),
        (
            "forged",
            LocalIssuer::ephemeral(clock())
                .unwrap()
                .sign(&header, &claims(serde_json::json!({})))
                .unwrap(),
        ),
        (
            "alg none",
            format!(
                "{}.{}.",
                B64.encode(r#"{"alg":"none"}"#),
                B64.encode(claims(serde_json::json!({})).to_string())
            ),
        ),
        ("not yet valid", sign(serde_json::json!({"nbf": now + 300}))),
        ("no exp", {
            let mut c = claims(serde_json::json!({}));
            c.as_object_mut().unwrap().remove("exp");
            issuer.sign(&header, &c).unwrap()
        }),
        (
            "iss as an array",
            sign(serde_json::json!({"iss": ["https://evil.example", LOCAL_ISSUER]})),
        ),
        (
            "aud of another type",
            sign(serde_json::json!({"aud": 7, "client_id": LOCAL_AUDIENCE})),
        ),
        (
            "another key's kid",
            LocalIssuer::ephemeral(clock())
                .unwrap()
                .mint(sub, None, 600)
                .unwrap(),
        ),
        ("HS256 keyed with the public key", {
            let header = serde_json::json!({"alg": "HS256", "typ": "JWT", "kid": issuer.kid()});
            let input = format!(
                "{}.{}",
                B64.encode(header.to_string()),
                B64.encode(claims(serde_json::json!({})).to_string())
            );
            let key = aws_lc_rs::hmac::Key::new(
                aws_lc_rs::hmac::HMAC_SHA256,
                issuer.jwks().to_string().as_bytes(),
            );
            let tag = aws_lc_rs::hmac::sign(&key, input.as_bytes());
            format!("{input}.{}", B64.encode(tag.as_ref()))
        }),
        ("claims swapped under a good signature", {
            let good = issuer.mint("someone-else", None, 600).unwrap();
            let parts: Vec<&str> = good.split('.').collect();
            let mine = B64.encode(claims(serde_json::json!({})).to_string());
            format!("{}.{mine}.{}", parts[0], parts[2])
        }),
        ("not a JWT", "not.a.jwt".to_owned()),
        ("garbage", "Zm9v".to_owned()),
    ]
}

impl LocalApi {
    /// A new group of `owner` and `others`, titled "Room"; its id.
    pub async fn group(&self, owner: &str, others: &[&str]) -> String {
        let body = serde_json::json!({"participantIds": others, "kind": "group", "title": "Room"});
        let (status, group) = self
            .call(reqwest::Method::POST, "/conversations", owner, Some(body))
            .await;
        assert_eq!(status, 201, "{group}");
        // Its `conversation.created` is pushed by the time this returns, so that a socket opened
        // next hears only what comes after.
        self.fan_out_drained().await;
        group["id"].as_str().unwrap().to_owned()
    }

    /// Waits until the fan-out has handled every record the table's stream holds now (at once
    /// without a fan-out).
    pub async fn fan_out_drained(&self) {
        if let Some(fan_out) = &self.fan_out {
            fan_out.drained().await;
        }
    }
}

/// Status and JSON body of a response (`Null` when there is none).
pub async fn status_json(resp: reqwest::Response) -> (u16, serde_json::Value) {
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap();
    let body = if text.is_empty() {
        serde_json::Value::Null
    } else {
        serde_json::from_str(&text).unwrap()
    };
    (status, body)
}

impl LocalApi {
    /// Sends a JSON request as `user` and returns status and body.
    pub async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        user: &str,
        body: Option<serde_json::Value>,
    ) -> (u16, serde_json::Value) {
        let token = self.token(user, Some(&format!("Name of {user}")));
        let mut request = self.request(method, path, &token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        status_json(request.send().await.unwrap()).await
    }

    /// [`Self::call`], retrying a 503 as a client should: the same request (a send keeps its
    /// `clientMessageId`, the contract's safe retry) after a backoff with full jitter (a random
    /// wait up to 50 ms, doubling to at most 2 s), at most [`RETRIES`] times. The last answer.
    pub async fn call_retrying(
        &self,
        method: reqwest::Method,
        path: &str,
        user: &str,
        body: Option<serde_json::Value>,
    ) -> (u16, serde_json::Value) {
        let mut answer = self.call(method.clone(), path, user, body.clone()).await;
        for attempt in 0..RETRIES {
            if answer.0 != 503 {
                break;
            }
            tokio::time::sleep(full_jitter(attempt)).await;
            answer = self.call(method.clone(), path, user, body.clone()).await;
        }
        answer
    }

    /// Makes profiles for these users (their first `GET /me`), a few at a time.
    pub async fn sign_up(&self, users: &[String]) {
        for chunk in users.chunks(16) {
            let calls = chunk
                .iter()
                .map(|u| self.call(reqwest::Method::GET, "/me", u, None));
            for (status, _) in join_all(calls).await {
                assert_eq!(status, 200);
            }
        }
    }

    /// Gives `user` the display name `name` (`PATCH /me`), which must succeed.
    pub async fn rename(&self, user: &str, name: &str) {
        let (status, body) = self
            .call(
                reqwest::Method::PATCH,
                "/me",
                user,
                Some(serde_json::json!({"displayName": name})),
            )
            .await;
        assert_eq!(status, 200, "{body}");
    }
}

/// A client's WebSocket to a [`LocalApi`].
pub type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

impl LocalApi {
    /// A WebSocket of `user`'s, opened with a fresh ticket.
    pub async fn socket(&self, user: &str) -> Socket {
        let (status, ticket) = self
            .call(reqwest::Method::POST, "/realtime/tickets", user, None)
            .await;
        assert_eq!(status, 201, "{ticket}");
        let url = format!(
            "{}/local?ticket={}",
            self.url.replacen("http://", "ws://", 1),
            ticket["ticket"].as_str().unwrap()
        );
        tokio_tungstenite::connect_async(url).await.unwrap().0
    }
}

/// The next text frame before `deadline`, as JSON, checked against `asyncapi.yaml`: a frame that
/// the description does not allow fails the test here, with every violation. Every test reads its
/// sockets through this, so the whole WebSocket suite checks the description. `None` when the
/// deadline passes, the socket closes or a frame that is not text arrives.
pub async fn next_frame(
    socket: &mut Socket,
    deadline: tokio::time::Instant,
) -> Option<serde_json::Value> {
    let frame = next_unchecked_frame(socket, deadline).await?;
    if let Err(violations) = crate::ws_schema::check_server_frame(&frame) {
        panic!("{violations}");
    }
    Some(frame)
}

/// [`next_frame`] without the check: only for what a test posts itself through `@connections`.
pub async fn next_unchecked_frame(
    socket: &mut Socket,
    deadline: tokio::time::Instant,
) -> Option<serde_json::Value> {
    match next_event(socket, deadline).await {
        SocketEvent::Frame(frame) => Some(frame),
        SocketEvent::Quiet | SocketEvent::Closed => None,
    }
}

/// What a socket did before a deadline.
#[derive(Debug)]
pub enum SocketEvent {
    /// A text frame (JSON).
    Frame(serde_json::Value),
    /// Nothing until the deadline, and still open.
    Quiet,
    /// Closed (or failed): a closed socket hears nothing, which proves nothing.
    Closed,
}

/// The next text frame, skipping control frames, or why there is none.
pub async fn next_event(socket: &mut Socket, deadline: tokio::time::Instant) -> SocketEvent {
    use futures::StreamExt;
    use tokio_tungstenite::tungstenite::Message;
    loop {
        match tokio::time::timeout_at(deadline, socket.next()).await {
            Ok(Some(Ok(Message::Text(text)))) => {
                return SocketEvent::Frame(
                    serde_json::from_str(&text)
                        .unwrap_or_else(|e| panic!("a text frame that is not JSON ({e}): {text}")),
                );
            }
            Ok(Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_)))) => {}
            Ok(Some(Ok(Message::Binary(_)))) => panic!("a binary frame: the API sends text only"),
            Ok(Some(Ok(Message::Close(_)) | Err(_)) | None) => return SocketEvent::Closed,
            Err(_) => return SocketEvent::Quiet,
        }
    }
}

/// How many times [`LocalApi::call_retrying`] tries again after a 503.
pub const RETRIES: u32 = 10;

/// A random wait between 0 and 50 ms × 2^attempt, at most 2 s ("full jitter"): concurrent
/// clients that failed together do not come back together.
pub fn full_jitter(attempt: u32) -> std::time::Duration {
    let ceiling_ms = (50u64 << attempt.min(6)).min(2_000);
    let random = u64::from(ulid::Ulid::new().random() as u32);
    std::time::Duration::from_millis(random % (ceiling_ms + 1))
}

/// Runs the futures at once (on this task) and returns their outputs in order.
pub async fn join_all<F: Future>(futures: impl IntoIterator<Item = F>) -> Vec<F::Output> {
    futures::future::join_all(futures).await
}

/// A redis-server of the test's own, on a free loopback port, that the test may kill, freeze and
/// restart (Redis keeps no state the tests need).
pub struct OwnRedis {
    pub port: u16,
    child: Option<std::process::Child>,
}

impl OwnRedis {
    pub fn start() -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut redis = Self { port, child: None };
        redis.restart();
        redis
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    pub fn restart(&mut self) {
        let child = std::process::Command::new("redis-server")
            .args([
                "--bind",
                "127.0.0.1",
                "--port",
                &self.port.to_string(),
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("redis-server (tools/install.sh installs it)");
        self.child = Some(child);
        for _ in 0..100 {
            if std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        panic!("redis-server did not start on {}", self.port);
    }

    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    pub fn signal(&self, signal: &str) {
        let pid = self.child.as_ref().unwrap().id().to_string();
        let status = std::process::Command::new("kill")
            .args([signal, &pid])
            .status()
            .unwrap();
        assert!(status.success());
    }

    pub fn link(
        &self,
        limits: &[(&str, &str)],
    ) -> Arc<chat_shared::adapters::redis_link::RedisLink> {
        let mut vars: HashMap<String, String> = limits
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        vars.insert("REDIS_URL".to_owned(), self.url());
        let env =
            chat_shared::platform::config::Env::new(move |name: &str| vars.get(name).cloned());
        Arc::new(chat_shared::adapters::redis_link::RedisLink::from_env(&env).unwrap())
    }
}

impl Drop for OwnRedis {
    fn drop(&mut self) {
        if let Some(child) = &self.child {
            let _ = std::process::Command::new("kill")
                .args(["-CONT", &child.id().to_string()])
                .status();
        }
        self.kill();
    }
}

/// The events pipeline of a test: its table's stream read by the local poller, published by
/// `stream-publisher` to a Kinesis stream of its own.
pub struct Pipeline {
    pub kinesis: aws_sdk_kinesis::Client,
    pub stream: String,
}

impl Pipeline {
    /// Starts the poller on `store`'s table, publishing to a new stream at `kinesis_endpoint`
    /// (the stack's when `None`). It stops with the test's runtime.
    pub async fn start(store: &DynamoStore, kinesis_endpoint: Option<&str>) -> Self {
        chat_shared::platform::telemetry::init();
        let sdk = sdk_config().await;
        let mut kinesis_config = aws_sdk_kinesis::config::Builder::from(sdk);
        if let Some(url) = kinesis_endpoint {
            kinesis_config = kinesis_config.endpoint_url(url);
        }
        let kinesis = aws_sdk_kinesis::Client::from_conf(kinesis_config.build());
        let stream = unique_name("events");
        let template = Template::of_this_repository().unwrap();
        local_stack::create_stream(&kinesis, &stream, &template.stream)
            .await
            .unwrap();
        let stream_arn = table_stream_arn(store).await;
        let streams = aws_sdk_dynamodbstreams::Client::new(sdk);
        let sink = chat_shared::services::events::KinesisSink::new(kinesis.clone(), stream.clone());
        // As the template's mapping: only what its filter admits.
        let filters = local_gateway::filter::Filters::of_function("stream-publisher").unwrap();
        tokio::spawn(async move {
            let handler = |event| {
                let sink = sink.clone();
                let admitted = filters.apply(event);
                async move {
                    match admitted {
                        Some(event) => stream_publisher::publish_batch(&sink, event).await,
                        None => Default::default(),
                    }
                }
            };
            local_gateway::stream_poller::run(streams, stream_arn, handler, std::future::pending())
                .await;
        });
        Self { kinesis, stream }
    }

    /// A reader of an existing stream (no poller).
    pub fn reader(kinesis: aws_sdk_kinesis::Client, stream: String) -> Self {
        Self { kinesis, stream }
    }

    /// Every record now in the stream, shard by shard (order holds within a shard, and one
    /// conversation's records share a shard), as (partition key, CloudEvent).
    pub async fn read_all(&self) -> Vec<(String, serde_json::Value)> {
        let shards = self
            .kinesis
            .list_shards()
            .stream_name(&self.stream)
            .send()
            .await
            .unwrap();
        let mut out = Vec::new();
        for shard in shards.shards() {
            let mut iterator = self
                .kinesis
                .get_shard_iterator()
                .stream_name(&self.stream)
                .shard_id(shard.shard_id())
                .shard_iterator_type(aws_sdk_kinesis::types::ShardIteratorType::TrimHorizon)
                .send()
                .await
                .unwrap()
                .shard_iterator;
            while let Some(it) = iterator {
                let page = self
                    .kinesis
                    .get_records()
                    .shard_iterator(it)
                    .send()
                    .await
                    .unwrap();
                if page.records().is_empty() {
                    break;
                }
                for record in page.records() {
                    let event: serde_json::Value =
                        serde_json::from_slice(record.data().as_ref()).unwrap();
                    out.push((record.partition_key().unwrap_or_default().to_owned(), event));
                }
                iterator = page.next_shard_iterator().map(str::to_owned);
            }
        }
        out
    }

    /// Waits until `count` distinct event ids have arrived (at most `seconds`), then returns all
    /// records read.
    pub async fn wait_for(&self, count: usize, seconds: u64) -> Vec<(String, serde_json::Value)> {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(seconds);
        loop {
            let records = self.read_all().await;
            let ids: std::collections::HashSet<&str> = records
                .iter()
                .map(|(_, e)| e["id"].as_str().unwrap())
                .collect();
            if ids.len() >= count || std::time::Instant::now() > deadline {
                return records;
            }
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        }
    }
}

/// A kinesis-local of the test's own, that it may freeze and thaw.
pub struct OwnKinesis {
    pub port: u16,
    child: std::process::Child,
}

impl OwnKinesis {
    pub fn start() -> Self {
        let free = || {
            std::net::TcpListener::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap()
                .port()
        };
        let (port, tls_port) = (free(), free());
        let mut child = std::process::Command::new(format!(
            "{}/../tools/emulators/kinesis-local.sh",
            env!("CARGO_MANIFEST_DIR")
        ))
        .args([port.to_string(), tls_port.to_string()])
        .env("CREATE_STREAM_DURATION", "50ms")
        .env("SHARD_LIMIT", "1000")
        .env("ON_DEMAND_STREAM_COUNT_LIMIT", "100")
        .env("LOG_LEVEL", "WARN")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("kinesis-local (tools/install.sh installs it)");
        for _ in 0..300 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return Self { port, child };
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        let _ = child.kill();
        let _ = child.wait();
        panic!("kinesis-local did not start on {port}");
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn signal(&self, signal: &str) {
        let status = std::process::Command::new("kill")
            .args([signal, &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }
}

impl Drop for OwnKinesis {
    fn drop(&mut self) {
        let _ = std::process::Command::new("kill")
            .args(["-CONT", &self.child.id().to_string()])
            .status();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The ARN of `store`'s table stream.
pub async fn table_stream_arn(store: &DynamoStore) -> String {
    dynamo()
        .await
        .describe_table()
        .table_name(store.table().as_str())
        .send()
        .await
        .unwrap()
        .table
        .and_then(|t| t.latest_stream_arn)
        .unwrap()
}

/// The table's stream, read from where it was last left: what the route's writes put there.
pub struct StreamReader {
    client: aws_sdk_dynamodbstreams::Client,
    pub arn: String,
    /// Per shard: where the next read starts, and the last record read (to start again after it).
    shards: HashMap<String, ShardCursor>,
}

#[derive(Default)]
struct ShardCursor {
    iterator: Option<String>,
    last: Option<String>,
    closed: bool,
}

impl StreamReader {
    pub async fn new(store: &DynamoStore) -> Self {
        let arn = table_stream_arn(store).await;
        let client = aws_sdk_dynamodbstreams::Client::new(sdk_config().await);
        Self {
            client,
            arn,
            shards: HashMap::new(),
        }
    }

    /// An iterator just after the last record read from the shard, or at its start.
    async fn iterator(&self, shard: &str, last: Option<&str>) -> Option<String> {
        let kind = if last.is_some() {
            ShardIteratorType::AfterSequenceNumber
        } else {
            ShardIteratorType::TrimHorizon
        };
        self.client
            .get_shard_iterator()
            .stream_arn(&self.arn)
            .shard_id(shard)
            .shard_iterator_type(kind)
            .set_sequence_number(last.map(str::to_owned))
            .send()
            .await
            .unwrap()
            .shard_iterator
    }

    /// Every record written since the last drain, in order per shard.
    ///
    /// DynamoDB Local invalidates an iterator taken on a shard while it was empty once the first
    /// record lands (`TrimmedDataAccessException`, aws/aws-sdk-java#2923), so on that error the
    /// iterator is taken again from the last record read.
    pub async fn drain(&mut self) -> Vec<aws_sdk_dynamodbstreams::types::Record> {
        let described = self
            .client
            .describe_stream()
            .stream_arn(&self.arn)
            .send()
            .await
            .unwrap();
        let ids: Vec<String> = described
            .stream_description()
            .map(|d| d.shards())
            .unwrap_or_default()
            .iter()
            .filter_map(|s| s.shard_id().map(str::to_owned))
            .collect();
        let mut records = Vec::new();
        for id in ids {
            let mut cursor = self.shards.remove(&id).unwrap_or_default();
            let mut retakes = 0;
            while !cursor.closed {
                let Some(current) = cursor.iterator.clone() else {
                    cursor.iterator = self.iterator(&id, cursor.last.as_deref()).await;
                    cursor.closed = cursor.iterator.is_none();
                    continue;
                };
                let page = match self
                    .client
                    .get_records()
                    .shard_iterator(current)
                    .send()
                    .await
                {
                    Ok(page) => page,
                    Err(error)
                        if retakes < 3
                            && error
                                .as_service_error()
                                .is_some_and(|e| e.is_trimmed_data_access_exception()) =>
                    {
                        retakes += 1;
                        cursor.iterator = None;
                        continue;
                    }
                    Err(error) => panic!("GetRecords on {id}: {error:?}"),
                };
                cursor.iterator = page.next_shard_iterator().map(str::to_owned);
                cursor.closed = cursor.iterator.is_none();
                if page.records().is_empty() {
                    break;
                }
                cursor.last = page
                    .records()
                    .last()
                    .and_then(|r| r.dynamodb())
                    .and_then(|d| d.sequence_number())
                    .map(str::to_owned);
                records.extend(page.records().iter().cloned());
            }
            self.shards.insert(id, cursor);
        }
        records
    }
}

/// `raw` percent-encoded for a query string: everything but RFC 3986's unreserved characters.
pub fn urlencode(raw: &str) -> String {
    raw.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}
