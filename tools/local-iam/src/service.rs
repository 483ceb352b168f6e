//! The local stack's IAM: every function has credentials named after it (its access key is its
//! name; the secret is this instance's, random), and every AWS call it makes is signed with them.
//! A proxy in front of DynamoDB Local (tables and streams) and kinesis-local checks the signature,
//! finds the function's role, evaluates each authorization the call needs against it, and either
//! forwards the call or answers as AWS would: 400 `AccessDeniedException` with AWS's message, which
//! the SDK reads as the same error it would get on AWS. The local gateway checks `@connections`
//! calls with the same instance ([`LocalIam::authorize`]).
//!
//! Forwarded calls go to the emulators under the stack's own access key: DynamoDB Local keeps a
//! database per key, so every function sees the stack's tables whatever its name.
//!
//! That key (the stack's owner: `local` for `tools/run-local.sh`, a test's own key in a test),
//! signing with this instance's secret, is the account's administrator: allowed everything, as
//! the person who deployed a stack is. Tests use it to look at `@connections` as no function
//! may (`GET`).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use axum::body::{Bytes, to_bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::policies::Policies;
use crate::policy::{Authorization, Decision, StackFacts, evaluate};
use crate::requests::{KeySchema, Service, Unreadable, authorizations, tables_named};
use crate::sigv4::{SignatureError, verify};
use crate::usage::Usage;

/// DynamoDB's largest request (a full `BatchWriteItem` or transaction) with room to spare.
const MAX_BODY: usize = 16 * 1024 * 1024;

/// Where the emulators are, and the stack's own access key at them.
#[derive(Debug, Clone)]
pub struct Upstreams {
    pub dynamodb: String,
    pub kinesis: String,
    /// The access key the stack's tables were made with (its DynamoDB Local database).
    pub namespace: String,
}

/// Why a call was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error(transparent)]
    Signature(#[from] SignatureError),
    #[error("The security token included in the request is invalid.")]
    UnknownKey,
    #[error("Credential should be scoped to a valid region and service.")]
    WrongScope,
    #[error("{0}")]
    Denied(String),
    #[error("the local IAM check cannot read this request ({0}), so it is refused")]
    Unreadable(String),
}

impl Refusal {
    /// AWS's error type for it.
    pub fn error_type(&self) -> &'static str {
        match self {
            Self::Signature(SignatureError::Missing) => "MissingAuthenticationTokenException",
            Self::Signature(_) => "InvalidSignatureException",
            Self::UnknownKey => "UnrecognizedClientException",
            Self::WrongScope => "InvalidSignatureException",
            Self::Denied(_) | Self::Unreadable(_) => "AccessDeniedException",
        }
    }
}

/// The proxy's routes: every request to [`proxy`].
pub(crate) fn router(iam: Arc<LocalIam>) -> axum::Router {
    axum::Router::new().fallback(proxy).with_state(iam)
}

/// The IAM of one local stack.
#[derive(Debug)]
pub struct LocalIam {
    facts: StackFacts,
    policies: Policies,
    secret: String,
    upstreams: Upstreams,
    http: reqwest::Client,
    schemas: tokio::sync::Mutex<BTreeMap<String, KeySchema>>,
    usage: Usage,
    url: Mutex<Option<String>>,
}

impl LocalIam {
    pub fn new(facts: StackFacts, policies: Policies, upstreams: Upstreams) -> Self {
        let mut secret = [0u8; 24];
        // A failure leaves zeros: still a secret no caller knows without asking this instance.
        let _ = aws_lc_rs::rand::fill(&mut secret);
        Self {
            facts,
            policies,
            secret: secret.iter().map(|b| format!("{b:02x}")).collect(),
            upstreams,
            // Longer than any SDK operation's own timeout: a frozen emulator is the caller's to
            // time out, as on AWS.
            http: reqwest::Client::builder()
                .timeout(std::time::Duration::from_secs(30))
                .build()
                .unwrap_or_default(),
            schemas: tokio::sync::Mutex::new(BTreeMap::new()),
            usage: Usage::from_env(),
            url: Mutex::new(None),
        }
    }

    pub fn facts(&self) -> &StackFacts {
        &self.facts
    }

    pub fn policies(&self) -> &Policies {
        &self.policies
    }

    /// The secret every function's credentials share (the access key tells them apart).
    pub fn secret(&self) -> &str {
        &self.secret
    }

    /// The credentials `function` signs with.
    pub fn credentials(&self, function: &str) -> aws_credential_types::Credentials {
        aws_credential_types::Credentials::new(
            function,
            self.secret.clone(),
            None,
            None,
            "local-iam",
        )
    }

    /// The proxy's URL, once [`Self::start`] has run.
    pub fn url(&self) -> Option<String> {
        self.url.lock().ok().and_then(|u| u.clone())
    }

    /// Serves the proxy on a free loopback port, for as long as the runtime runs; its URL.
    pub async fn start(self: &Arc<Self>) -> std::io::Result<String> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let url = format!("http://{}", listener.local_addr()?);
        if let Ok(mut slot) = self.url.lock() {
            *slot = Some(url.clone());
        }
        let router = router(self.clone());
        tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        Ok(url)
    }

    /// Checks a signed request (its signature, then each authorization) as AWS would; the
    /// function that made it.
    pub fn authorize(
        &self,
        method: &str,
        path_and_query: &str,
        headers: &HeaderMap,
        body: &[u8],
        signing_name: &str,
        requests: &[Authorization],
    ) -> Result<String, Refusal> {
        let function = self.signer(method, path_and_query, headers, body, signing_name)?;
        self.check(&function, requests)?;
        Ok(function)
    }

    fn signer(
        &self,
        method: &str,
        path_and_query: &str,
        headers: &HeaderMap,
        body: &[u8],
        signing_name: &str,
    ) -> Result<String, Refusal> {
        let signer = verify(
            method,
            path_and_query,
            headers,
            body,
            &self.secret,
            SystemTime::now(),
        )?;
        if signer.region != self.facts.region || signer.service != signing_name {
            return Err(Refusal::WrongScope);
        }
        if !self.knows(&signer.access_key) {
            return Err(Refusal::UnknownKey);
        }
        Ok(signer.access_key)
    }

    /// Whether `access_key` is the stack owner's or a function's.
    pub(crate) fn knows(&self, access_key: &str) -> bool {
        access_key == self.upstreams.namespace || self.policies.functions.contains_key(access_key)
    }

    /// The stack owner's credentials (allowed everything).
    pub fn owner_credentials(&self) -> aws_credential_types::Credentials {
        self.credentials(&self.upstreams.namespace)
    }

    /// Evaluates each authorization for `function`, recording what was asked.
    pub fn check(&self, function: &str, requests: &[Authorization]) -> Result<(), Refusal> {
        if function == self.upstreams.namespace {
            return Ok(());
        }
        let role = self
            .policies
            .functions
            .get(function)
            .ok_or(Refusal::UnknownKey)?;
        for request in requests {
            let decision = evaluate(&role.statements, request);
            self.usage.record(function, request, &decision, &self.facts);
            let because = match decision {
                Decision::Allowed { .. } => continue,
                Decision::ImplicitDeny => format!(
                    "because no identity-based policy allows the {} action",
                    request.action
                ),
                Decision::ExplicitDeny { .. } => {
                    "with an explicit deny in an identity-based policy".to_owned()
                }
            };
            tracing::warn!(function, action = %request.action, resource = %request.resource, "IAM denied");
            return Err(Refusal::Denied(format!(
                "User: arn:{}:sts::{}:assumed-role/{}/{function} is not authorized to perform: {} on resource: {} {because}",
                self.facts.partition,
                self.facts.account,
                role.role,
                request.action,
                request.resource
            )));
        }
        Ok(())
    }

    /// Checks one JSON-protocol call (`X-Amz-Target`'s service and operation, and its body) made
    /// by `function`, as AWS would before doing it.
    pub async fn check_call(
        &self,
        function: &str,
        service: Service,
        operation: &str,
        body: &[u8],
    ) -> Result<(), Refusal> {
        let json: Value = serde_json::from_slice(body)
            .map_err(|_| Refusal::Unreadable(Unreadable::Body.to_string()))?;
        let schemas = if service == Service::DynamoDb {
            self.schemas(&tables_named(operation, &json)).await
        } else {
            BTreeMap::new()
        };
        match authorizations(service, operation, &json, &self.facts, &schemas) {
            Ok(requests) => self.check(function, &requests),
            // A table that does not exist: DynamoDB answers ResourceNotFoundException.
            Err(Unreadable::Field("TableName")) => Ok(()),
            Err(unreadable) => Err(Refusal::Unreadable(unreadable.to_string())),
        }
    }

    /// The key schemas of `tables` (asked of DynamoDB Local once each); tables that do not exist
    /// are left out.
    async fn schemas(&self, tables: &[String]) -> BTreeMap<String, KeySchema> {
        let mut known = self.schemas.lock().await;
        for table in tables {
            if known.contains_key(table) {
                continue;
            }
            let answer = self
                .http
                .post(&self.upstreams.dynamodb)
                .header("content-type", "application/x-amz-json-1.0")
                .header("x-amz-target", "DynamoDB_20120810.DescribeTable")
                .header("authorization", self.upstream_authorization(None))
                .body(json!({"TableName": table}).to_string())
                .send()
                .await;
            if let Ok(answer) = answer
                && answer.status().is_success()
                && let Ok(description) = answer.json::<Value>().await
                && let Some(schema) = KeySchema::from_description(&description["Table"])
            {
                known.insert(table.clone(), schema);
            }
        }
        known.clone()
    }

    /// An `Authorization` header naming the stack's key (the emulators read the key, not the
    /// signature): the caller's own, with its key replaced, or a fresh one.
    pub fn upstream_authorization(&self, original: Option<&str>) -> String {
        let namespace = &self.upstreams.namespace;
        if let Some(original) = original
            && let Some(start) = original.find("Credential=")
            && let Some(end) = original[start..].find('/')
        {
            let from = start + "Credential=".len();
            return format!(
                "{}{namespace}{}",
                &original[..from],
                &original[start + end..]
            );
        }
        format!(
            "AWS4-HMAC-SHA256 Credential={namespace}/20000101/{}/dynamodb/aws4_request, SignedHeaders=host, Signature=0",
            self.facts.region
        )
    }
}

impl Refusal {
    /// AWS's JSON error answer to a refused call of `service`: its content type and body (the
    /// status is 400).
    pub fn json_answer(&self, service: Option<Service>) -> (&'static str, String) {
        let kind = self.error_type();
        let content_type = match service {
            Some(Service::Kinesis) => "application/x-amz-json-1.1",
            _ => "application/x-amz-json-1.0",
        };
        let body = json!({"__type": format!("com.amazon.coral.service#{kind}"), "message": self.to_string()});
        (content_type, body.to_string())
    }
}

/// AWS's JSON error answer.
fn refused(service: Option<Service>, refusal: &Refusal) -> Response {
    let (content_type, body) = refusal.json_answer(service);
    let mut response = (StatusCode::BAD_REQUEST, body).into_response();
    let headers = response.headers_mut();
    headers.insert("content-type", HeaderValue::from_static(content_type));
    if let Ok(id) = HeaderValue::from_str(&ulid::Ulid::new().to_string()) {
        headers.insert("x-amzn-requestid", id);
    }
    response
}

async fn proxy(State(iam): State<Arc<LocalIam>>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let Ok(body) = to_bytes(body, MAX_BODY).await else {
        return (StatusCode::PAYLOAD_TOO_LARGE, "request too large").into_response();
    };
    let target = parts
        .headers
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let Some((service, operation)) = Service::of_target(&target) else {
        let refusal = Refusal::Unreadable(format!("unknown X-Amz-Target {target:?}"));
        return refused(None, &refusal);
    };
    let path = parts
        .uri
        .path_and_query()
        .map_or("/", |p| p.as_str())
        .to_owned();
    let function = match iam.signer(
        parts.method.as_str(),
        &path,
        &parts.headers,
        &body,
        service.signing_name(),
    ) {
        Ok(function) => function,
        Err(refusal) => return refused(Some(service), &refusal),
    };
    if let Err(refusal) = iam.check_call(&function, service, operation, &body).await {
        return refused(Some(service), &refusal);
    }
    forward(&iam, service, &parts.headers, body).await
}

async fn forward(iam: &LocalIam, service: Service, headers: &HeaderMap, body: Bytes) -> Response {
    let upstream = match service {
        Service::DynamoDb | Service::DynamoDbStreams => &iam.upstreams.dynamodb,
        Service::Kinesis => &iam.upstreams.kinesis,
    };
    let mut request = iam.http.post(upstream).body(body);
    for (name, value) in headers {
        if matches!(name.as_str(), "host" | "content-length" | "authorization") {
            continue;
        }
        request = request.header(name, value);
    }
    let original = headers.get("authorization").and_then(|v| v.to_str().ok());
    request = request.header("authorization", iam.upstream_authorization(original));
    match request.send().await {
        Ok(answer) => {
            let status = answer.status();
            let mut out_headers = HeaderMap::new();
            for (name, value) in answer.headers() {
                if !matches!(
                    name.as_str(),
                    "content-length" | "transfer-encoding" | "connection"
                ) {
                    out_headers.append(name, value.clone());
                }
            }
            let body = answer.bytes().await.unwrap_or_default();
            let mut response = (status, body).into_response();
            response.headers_mut().extend(out_headers);
            response
        }
        Err(error) => {
            tracing::warn!(%error, "the emulator did not answer");
            (StatusCode::BAD_GATEWAY, "the emulator did not answer").into_response()
        }
    }
}
