//! The gateway's HTTP server: the local issuer's routes, then every Lambda route behind the JWT
//! authorizer, answered by the functions' own handlers with the event API Gateway would send, and
//! where no route matches, the web client's files (`crate::web`).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::body::{Body as AxumBody, to_bytes};
use axum::extract::{ConnectInfo, Query, State};
use axum::http::{HeaderMap, HeaderValue, Method, Request, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use chat_shared::edge::jwt::{JwtPolicy, KeySet, claims_as_strings, verify};
use chat_shared::services::deps::RouteDeps;
use serde::Deserialize;
use serde_json::json;

use crate::event::{ApiFacts, Incoming, http_api_event};
use crate::issuer::{LOCAL_AUDIENCE, LOCAL_ISSUER, LocalIssuer};
use crate::routes;

/// API Gateway's HTTP API payload limit.
const MAX_GATEWAY_BODY: usize = 10 * 1024 * 1024;

/// Everything the gateway serves with.
pub struct Gateway {
    /// The stack's own deps (its table, Redis, clock): what the functions' are made from, and what
    /// tests use to arrange data. Functions never use them: each has its own ([`Self::functions`]).
    pub deps: RouteDeps,
    /// Every function's clients, behind the stack's IAM.
    pub functions: crate::functions::Functions,
    pub issuer: LocalIssuer,
    pub keys: KeySet,
    pub policy: JwtPolicy,
    pub facts: ApiFacts,
    /// Origins allowed by CORS (`*` for any), as the HTTP API's CORS configuration.
    pub cors_origins: Vec<String>,
    /// The WebSocket API's side: open sockets, the authorizer, the message routes' deps.
    pub ws: crate::websocket::WsSide,
    /// The web client's built files, served at `/` where no API route matches (`crate::web`).
    pub web_root: Option<std::path::PathBuf>,
}

impl std::fmt::Debug for Gateway {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gateway")
            .field("facts", &self.facts)
            .finish_non_exhaustive()
    }
}

impl Gateway {
    /// A gateway whose authorizer trusts the local issuer, its functions' calls to `stack`
    /// checked against their roles. Fails when the roles cannot be loaded.
    pub async fn new(
        mut deps: RouteDeps,
        stack: &crate::functions::LocalStack,
        issuer: LocalIssuer,
        facts: ApiFacts,
        cors_origins: Vec<String>,
    ) -> Result<Self, String> {
        let keys = KeySet::from_jwks_json(&issuer.jwks().to_string()).unwrap_or_default();
        let functions =
            crate::functions::Functions::new(&deps, stack, &facts.api_id, crate::websocket::STAGE)
                .await?;
        let ws = crate::websocket::WsSide::new(&functions, &facts)?;
        deps.pusher = functions.owner_pusher(&deps.pusher);
        Ok(Self {
            ws,
            functions,
            deps,
            issuer,
            keys,
            policy: JwtPolicy {
                issuer: LOCAL_ISSUER.to_owned(),
                audiences: vec![LOCAL_AUDIENCE.to_owned()],
            },
            facts,
            cors_origins,
            web_root: None,
        })
    }

    /// Serves the web client's files from `dir` where no API route matches.
    pub fn with_web_root(mut self, dir: Option<std::path::PathBuf>) -> Self {
        self.web_root = dir;
        self
    }
}

pub fn router(gateway: Arc<Gateway>) -> Router {
    Router::new()
        .route(crate::websocket::WS_PATH, get(crate::websocket::upgrade))
        .route(
            crate::websocket::CONNECTIONS_PATH,
            axum::routing::post(crate::websocket::post_to_connection)
                .get(crate::websocket::get_connection)
                .delete(crate::websocket::delete_connection),
        )
        .route(crate::issuer::JWKS_PATH, get(jwks))
        .route(crate::issuer::DISCOVERY_PATH, get(openid_configuration))
        .route("/_local/token", get(dev_token))
        .fallback(lambda_route)
        .with_state(gateway)
}

/// Serves until `shutdown` resolves.
pub async fn serve(
    listener: tokio::net::TcpListener,
    gateway: Arc<Gateway>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(
        listener,
        router(gateway).into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown)
    .await
}

async fn jwks(State(gw): State<Arc<Gateway>>) -> Response {
    axum::Json(gw.issuer.jwks()).into_response()
}

async fn openid_configuration(State(gw): State<Arc<Gateway>>) -> Response {
    let base = format!("http://{}", gw.facts.domain_name);
    axum::Json(gw.issuer.openid_configuration(&base)).into_response()
}

#[derive(Deserialize)]
struct TokenQuery {
    user: String,
    name: Option<String>,
}

/// Whether a request names this machine in its `Host`: a page of another site whose name was made
/// to resolve to 127.0.0.1 (DNS rebinding) sends its own name, and must not get tokens.
fn names_loopback(headers: &HeaderMap) -> bool {
    let Some(host) = headers.get(header::HOST).and_then(|h| h.to_str().ok()) else {
        return false;
    };
    let name = match host.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or_default(),
        None => host.rsplit_once(':').map_or(host, |(name, _)| name),
    };
    matches!(name, "127.0.0.1" | "localhost" | "::1")
}

/// `GET /_local/token?user=ada&name=Ada`: a token for the web client (development only), for
/// pages of this machine only (403 for any other `Host`).
async fn dev_token(
    State(gw): State<Arc<Gateway>>,
    headers: HeaderMap,
    Query(q): Query<TokenQuery>,
) -> Response {
    if !names_loopback(&headers) {
        return message(StatusCode::FORBIDDEN, "Forbidden");
    }
    if q.user.is_empty() || q.user.len() > 128 {
        return message(StatusCode::BAD_REQUEST, "user: 1 to 128 characters");
    }
    match gw.issuer.mint(&q.user, q.name.as_deref(), 12 * 3600) {
        Ok(token) => axum::Json(json!({"token": token, "userId": q.user})).into_response(),
        Err(_) => message(StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error"),
    }
}

/// API Gateway's own answers: `{"message": "..."}`.
pub(crate) fn message(status: StatusCode, text: &str) -> Response {
    (status, axum::Json(json!({"message": text}))).into_response()
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then_some(token.trim())
}

fn cors_origin(gw: &Gateway, headers: &HeaderMap) -> Option<HeaderValue> {
    let origin = headers.get(header::ORIGIN)?;
    let allowed = gw
        .cors_origins
        .iter()
        .any(|o| o == "*" || o.as_bytes() == origin.as_bytes());
    allowed.then(|| origin.clone())
}

/// Adds the CORS answer headers, as the HTTP API does for an allowed origin.
fn with_cors(mut resp: Response, origin: Option<HeaderValue>) -> Response {
    if let Some(origin) = origin {
        let h = resp.headers_mut();
        h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
        h.insert(header::VARY, HeaderValue::from_static("origin"));
        h.insert(
            header::ACCESS_CONTROL_EXPOSE_HEADERS,
            HeaderValue::from_static(
                "x-request-id,ratelimit-policy,ratelimit-limit,ratelimit-remaining,ratelimit-reset,retry-after",
            ),
        );
    }
    resp
}

async fn lambda_route(
    State(gw): State<Arc<Gateway>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    request: Request<AxumBody>,
) -> Response {
    let started = Instant::now();
    let origin = cors_origin(&gw, request.headers());
    // CORS preflight: answered by the gateway, never by a function, and without a token.
    if request.method() == Method::OPTIONS
        && request
            .headers()
            .contains_key(header::ACCESS_CONTROL_REQUEST_METHOD)
    {
        let mut resp = StatusCode::NO_CONTENT.into_response();
        if origin.is_some() {
            let h = resp.headers_mut();
            h.insert(
                header::ACCESS_CONTROL_ALLOW_METHODS,
                HeaderValue::from_static("GET,POST,PUT,PATCH,DELETE,OPTIONS"),
            );
            h.insert(
                header::ACCESS_CONTROL_ALLOW_HEADERS,
                HeaderValue::from_static("authorization,content-type"),
            );
            h.insert(
                header::ACCESS_CONTROL_MAX_AGE,
                HeaderValue::from_static("600"),
            );
        }
        return with_cors(resp, origin);
    }

    let (parts, body) = request.into_parts();
    let method = parts.method.as_str().to_owned();
    let raw_path = parts.uri.path().to_owned();
    let Ok(matched) = routes::find(&method, &raw_path) else {
        if let Some(file) =
            crate::web::serve(gw.web_root.as_deref(), &parts.method, &raw_path).await
        {
            return file;
        }
        return with_cors(message(StatusCode::NOT_FOUND, "Not Found"), origin);
    };
    // The JWT authorizer runs before the integration, and before the body is read.
    let claims = match bearer(&parts.headers)
        .map(|t| verify(t, &gw.keys, &gw.policy, gw.deps.store.now()))
    {
        Some(Ok(claims)) => claims_as_strings(&claims),
        Some(Err(reason)) => {
            tracing::info!(route = %matched.route.route_key(), ?reason, "token refused");
            return with_cors(message(StatusCode::UNAUTHORIZED, "Unauthorized"), origin);
        }
        None => return with_cors(message(StatusCode::UNAUTHORIZED, "Unauthorized"), origin),
    };
    let Ok(body) = to_bytes(body, MAX_GATEWAY_BODY).await else {
        return with_cors(
            message(StatusCode::PAYLOAD_TOO_LARGE, "Request Entity Too Large"),
            origin,
        );
    };

    let request_id = ulid::Ulid::new().to_string();
    let incoming = Incoming {
        method: &method,
        raw_path: &raw_path,
        raw_query: parts.uri.query().unwrap_or_default(),
        headers: &parts.headers,
        body: &body,
        source_ip: peer.ip().to_string(),
    };
    let event = http_api_event(
        &incoming,
        &matched,
        &claims,
        &gw.facts,
        &request_id,
        gw.deps.store.now(),
    );
    let function = routes::function_name(matched.route);
    let Some(deps) = gw.functions.http(&function) else {
        tracing::error!(%function, "no such function in the template");
        return message(StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error");
    };
    let response = match lambda_http::request::from_str(&event.to_string()) {
        Ok(lambda_request) => match (matched.route.handler)(deps, lambda_request).await {
            Ok(resp) => to_axum(resp, &request_id),
            Err(error) => {
                // A handler error is a failed invocation: API Gateway answers 500.
                tracing::error!(route = %matched.route.route_key(), %error, "function failed");
                message(StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error")
            }
        },
        Err(error) => {
            tracing::error!(%error, "could not build the event");
            message(StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error")
        }
    };
    tracing::info!(
        route = %matched.route.route_key(),
        %function,
        status = response.status().as_u16(),
        elapsed_ms = started.elapsed().as_millis() as u64,
        "request"
    );
    with_cors(response, origin)
}

/// The function's response, as API Gateway relays it (plus its `apigw-requestid`).
fn to_axum(resp: lambda_http::Response<lambda_http::Body>, request_id: &str) -> Response {
    let (parts, body) = resp.into_parts();
    let bytes: Vec<u8> = match body {
        lambda_http::Body::Text(text) => text.into_bytes(),
        lambda_http::Body::Binary(bytes) => bytes,
        _ => Vec::new(),
    };
    let mut out = Response::new(AxumBody::from(bytes));
    *out.status_mut() = parts.status;
    *out.headers_mut() = parts.headers;
    if let Ok(id) = HeaderValue::from_str(request_id) {
        out.headers_mut().insert("apigw-requestid", id);
    }
    out
}

/// Parses `a,b` into a list of origins.
pub fn parse_origins(raw: &str) -> Vec<String> {
    raw.split(',')
        .map(str::trim)
        .filter(|o| !o.is_empty())
        .map(str::to_owned)
        .collect()
}
