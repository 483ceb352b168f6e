//! Shared set-up: SDK clients pointed at the local stack, and fresh tables made from
//! `template.yaml` exactly as the local stack makes its own.

use std::sync::Arc;

use aws_config::SdkConfig;
use chat_shared::deps::HttpDeps;
use chat_shared::store::DynamoStore;
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

pub async fn sdk_config() -> &'static SdkConfig {
    static CONFIG: OnceCell<SdkConfig> = OnceCell::const_new();
    CONFIG
        .get_or_init(|| async {
            for name in [
                "AWS_ENDPOINT_URL_DYNAMODB",
                "AWS_ENDPOINT_URL_KINESIS",
                "AWS_REGION",
            ] {
                require_env(name);
            }
            chat_shared::aws::load_sdk_config().await
        })
        .await
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
    DynamoStore::new(client, name.parse().unwrap())
}

/// The deps a route function builds in `main`, on a fresh table.
pub async fn fresh_deps() -> HttpDeps {
    HttpDeps {
        store: fresh_store().await,
        cursor_key: chat_shared::cursor::CursorKey::new(b"integration-tests-cursor-secret-32+")
            .unwrap(),
    }
}

/// A running local gateway on its own port and a fresh table; it stops with the test's runtime.
pub struct LocalApi {
    pub url: String,
    pub gateway: Arc<Gateway>,
    pub http: reqwest::Client,
}

impl LocalApi {
    pub async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let facts = ApiFacts {
            api_id: "local".to_owned(),
            stage: "$default".to_owned(),
            domain_name: address.to_string(),
        };
        let gateway = Arc::new(Gateway::new(
            fresh_deps().await,
            LocalIssuer::ephemeral().unwrap(),
            facts,
            vec!["*".to_owned()],
        ));
        let serving = gateway.clone();
        tokio::spawn(async move {
            local_gateway::server::serve(listener, serving, std::future::pending()).await
        });
        Self {
            url: format!("http://{address}"),
            gateway,
            http: reqwest::Client::new(),
        }
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
}

/// Runs the futures at once (on this task) and returns their outputs in order.
pub async fn join_all<F: Future>(futures: impl IntoIterator<Item = F>) -> Vec<F::Output> {
    futures::future::join_all(futures).await
}
