//! The WebSocket API's side of the local gateway, as API Gateway behaves:
//!
//! - the handshake at `ws://127.0.0.1:<port>/local` runs `ws-authorizer` first (a refusal is 401
//!   and no socket), then `ws-connect` (anything but 200 refuses the connection), and only then
//!   opens the socket, so `@connections` answers 410 until `$connect` has returned;
//! - each text frame is routed on `$request.body.action` (`ping`, `sendMessage`, `markRead`,
//!   `typing`, else `$default`), with the
//!   request context API Gateway builds (connection id, route key, authorizer context, stage,
//!   domain name), and handed to that route's function; every such route is two-way, so the
//!   function's response body (if any) is sent back on the frame's connection;
//! - a closed socket runs `ws-disconnect`; a socket idle for 10 minutes is closed;
//! - `POST/GET/DELETE /local/@connections/{id}` serve the functions' real
//!   `aws-sdk-apigatewaymanagement` client: 410 `GoneException` for a closed or unknown
//!   connection, 413 over 128 KB.

use chat_functions::{
    ws_authorizer, ws_connect, ws_default, ws_disconnect, ws_mark_read, ws_ping, ws_send_message,
    ws_typing,
};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{ConnectInfo, Path, Query, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE;
use chat_shared::domain::UserId;
use chat_shared::edge::jwt::{JwksCache, JwtPolicy};
use chat_shared::edge::ws::WsDeps;
use chat_shared::platform::time::{Clock, Timestamp};
use chat_shared::services::deps::RouteDeps;
use futures::{SinkExt, StreamExt};
use lambda_runtime::LambdaEvent;
use serde_json::{Value, json};
use tokio::sync::mpsc;

use crate::event::ApiFacts;
use crate::functions::Functions;
use crate::issuer::{DISCOVERY_PATH, LOCAL_AUDIENCE, LOCAL_ISSUER};
use crate::server::{Gateway, message};

/// The local stage of the WebSocket API (the path of its URL and of `@connections`).
pub const STAGE: &str = "local";
pub const WS_PATH: &str = "/local";
pub const CONNECTIONS_PATH: &str = "/local/@connections/{id}";
/// API Gateway closes a connection idle this long.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(600);
/// The WebSocket API's routes besides `$connect`, `$disconnect` and `$default` (as in
/// `template.yaml`).
pub const ROUTE_KEYS: &[&str] = &["ping", "sendMessage", "markRead", "typing"];
/// API Gateway's WebSocket quotas: a frame of at most 32 KB, a message (its frames together) of
/// at most 128 KB, both ways. A client that sends more is disconnected (close code 1009); a post
/// to `@connections` over 128 KB is 413.
pub const MAX_FRAME_BYTES: usize = 32 * 1024;
pub const MAX_MESSAGE_BYTES: usize = 128 * 1024;

/// One open socket.
struct Connection {
    tx: mpsc::UnboundedSender<Message>,
    connected_at: Timestamp,
    last_active_at: Timestamp,
    source_ip: String,
    user_agent: String,
}

/// The WebSocket state of the gateway.
pub struct WsSide {
    connections: Mutex<HashMap<String, Connection>>,
    /// Each route's function's own deps (`crate::functions`).
    authorizer: ws_authorizer::Deps,
    connect: RouteDeps,
    disconnect: RouteDeps,
    send_message: RouteDeps,
    mark_read: RouteDeps,
    typing: RouteDeps,
    ping: RouteDeps,
    default: WsDeps,
    clock: Clock,
    domain_name: String,
    /// Route invocations that have returned, as API Gateway's execution logs would show them: a
    /// test that measures what a frame or a close costs waits for its invocation to end instead
    /// of for a quiet period.
    pub returned: Returned,
}

/// Counts of route invocations that have returned (see [`WsSide::returned`]).
#[derive(Debug, Default)]
pub struct Returned {
    /// Message routes (`sendMessage`, `ping`, …, `$default`).
    pub frames: std::sync::atomic::AtomicU64,
    /// `$disconnect`.
    pub disconnects: std::sync::atomic::AtomicU64,
}

impl std::fmt::Debug for WsSide {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WsSide")
            .field("domain_name", &self.domain_name)
            .finish_non_exhaustive()
    }
}

impl WsSide {
    /// The authorizer trusts the local issuer (its discovery document and JWKS served by this
    /// gateway); each route is served by its function with that function's own deps.
    pub fn new(functions: &Functions, facts: &ApiFacts) -> Result<Self, String> {
        let base = format!("http://{}", facts.domain_name);
        let http = |name: &str| {
            functions
                .http(name)
                .cloned()
                .ok_or_else(|| format!("{name} is not in the template"))
        };
        let ws = |name: &str| {
            functions
                .ws(name)
                .ok_or_else(|| format!("{name} is not in the template"))
        };
        let authorizer = http("ws-authorizer")?;
        Ok(Self {
            connections: Mutex::new(HashMap::new()),
            clock: authorizer.store.clock(),
            authorizer: ws_authorizer::Deps {
                store: authorizer.store,
                // Found by discovery, as `ws-authorizer` finds them by default.
                jwks: JwksCache::discover(format!("{base}{DISCOVERY_PATH}"), LOCAL_ISSUER),
                policy: JwtPolicy {
                    issuer: LOCAL_ISSUER.to_owned(),
                    audiences: vec![LOCAL_AUDIENCE.to_owned()],
                },
            },
            connect: http("ws-connect")?,
            disconnect: http("ws-disconnect")?,
            send_message: http("ws-send-message")?,
            mark_read: http("ws-mark-read")?,
            typing: http("ws-typing")?,
            ping: http("ws-ping")?,
            default: ws("ws-default")?,
            domain_name: facts.domain_name.clone(),
            returned: Returned::default(),
        })
    }

    fn open(&self) -> std::sync::MutexGuard<'_, HashMap<String, Connection>> {
        match self.connections.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    /// The request context API Gateway puts in every WebSocket event.
    fn context(
        &self,
        route_key: &str,
        event_type: &str,
        connection_id: &str,
        user: Option<&UserId>,
    ) -> Value {
        let now = self.clock.now();
        let mut context = json!({
            "routeKey": route_key, "eventType": event_type, "messageDirection": "IN",
            "stage": STAGE, "connectionId": connection_id, "apiId": "local",
            "domainName": self.domain_name, "requestId": ulid::Ulid::new().to_string(),
            "extendedRequestId": ulid::Ulid::new().to_string(),
            "requestTime": now.to_string(), "requestTimeEpoch": now.unix_millis(),
            "connectedAt": now.unix_millis(), "identity": {"sourceIp": "127.0.0.1"},
        });
        if let Some(user) = user {
            context["authorizer"] =
                json!({"principalId": user, "userId": user, "integrationLatency": 0});
        }
        context
    }
}

fn new_connection_id() -> String {
    // API Gateway's ids look like `Jk3eAcX1IAMCJ2Q=`: 10 random bytes in base64 (URL-safe here,
    // so that an id is one path segment even unencoded).
    let bytes: [u8; 10] = ulid::Ulid::new().random().to_be_bytes()[6..]
        .try_into()
        .unwrap_or([0; 10]);
    URL_SAFE.encode(bytes)
}

fn event<T: serde::de::DeserializeOwned>(value: Value) -> Option<LambdaEvent<T>> {
    serde_json::from_value(value)
        .ok()
        .map(|payload| LambdaEvent::new(payload, lambda_runtime::Context::default()))
}

/// The handshake: authorizer, `$connect`, then the socket.
pub async fn upgrade(
    State(gw): State<Arc<Gateway>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
    ws: WebSocketUpgrade,
) -> Response {
    let side = &gw.ws;
    let connection_id = new_connection_id();
    let header_map: HashMap<String, String> = headers
        .iter()
        .filter_map(|(k, v)| Some((k.as_str().to_owned(), v.to_str().ok()?.to_owned())))
        .collect();
    let authorizer_request = json!({
        "type": "REQUEST",
        "methodArn": format!("arn:aws:execute-api:us-east-1:000000000000:local/{STAGE}/$connect"),
        "headers": header_map, "queryStringParameters": query,
        "requestContext": side.context("$connect", "CONNECT", &connection_id, None),
    });
    let Some(request) = event(authorizer_request) else {
        return message(StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error");
    };
    let user: UserId = match ws_authorizer::handle(&side.authorizer, request).await {
        Ok(allowed) => match allowed.principal_id.and_then(|p| p.parse().ok()) {
            Some(user) => user,
            None => return message(StatusCode::UNAUTHORIZED, "Unauthorized"),
        },
        Err(_) => return message(StatusCode::UNAUTHORIZED, "Unauthorized"),
    };
    let connect = json!({
        "headers": header_map, "queryStringParameters": query, "isBase64Encoded": false,
        "requestContext": side.context("$connect", "CONNECT", &connection_id, Some(&user)),
    });
    let Some(connect) = event(connect) else {
        return message(StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error");
    };
    match ws_connect::handle(&side.connect, connect).await {
        Ok(answer) if answer.status_code == 200 => {}
        Ok(answer) => {
            let status = u16::try_from(answer.status_code)
                .ok()
                .and_then(|s| StatusCode::from_u16(s).ok());
            return message(status.unwrap_or(StatusCode::FORBIDDEN), "Forbidden");
        }
        Err(error) => {
            tracing::error!(%error, "$connect failed");
            return message(StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error");
        }
    }
    let user_agent = header_map.get("user-agent").cloned().unwrap_or_default();
    let source_ip = peer.ip().to_string();
    ws.max_frame_size(MAX_FRAME_BYTES)
        .max_message_size(MAX_MESSAGE_BYTES)
        .on_upgrade(move |socket| {
            serve_socket(gw, socket, connection_id, user, source_ip, user_agent)
        })
}

async fn serve_socket(
    gw: Arc<Gateway>,
    socket: WebSocket,
    connection_id: String,
    user: UserId,
    source_ip: String,
    user_agent: String,
) {
    let (mut sink, mut stream) = socket.split();
    let (tx, mut rx) = mpsc::unbounded_channel::<Message>();
    let now = gw.ws.clock.now();
    gw.ws.open().insert(
        connection_id.clone(),
        Connection {
            tx,
            connected_at: now,
            last_active_at: now,
            source_ip,
            user_agent,
        },
    );
    let writer = tokio::spawn(async move {
        while let Some(frame) = rx.recv().await {
            let closing = matches!(frame, Message::Close(_));
            if sink.send(frame).await.is_err() || closing {
                break;
            }
        }
    });
    loop {
        match tokio::time::timeout(IDLE_TIMEOUT, stream.next()).await {
            Ok(Some(Ok(Message::Text(text)))) => {
                if let Some(open) = gw.ws.open().get_mut(&connection_id) {
                    open.last_active_at = gw.ws.clock.now();
                }
                let gw = gw.clone();
                let (connection_id, user) = (connection_id.clone(), user.clone());
                tokio::spawn(async move {
                    route_frame(&gw, &connection_id, &user, text.to_string()).await;
                    gw.ws.returned.frames.fetch_add(1, Ordering::SeqCst);
                });
            }
            Ok(Some(Ok(Message::Close(_)) | Err(_)) | None) | Err(_) => break,
            Ok(Some(Ok(_))) => {}
        }
    }
    gw.ws.open().remove(&connection_id);
    writer.abort();
    let disconnect = json!({
        "isBase64Encoded": false,
        "requestContext": gw.ws.context("$disconnect", "DISCONNECT", &connection_id, Some(&user)),
    });
    if let Some(disconnect) = event(disconnect)
        && let Err(error) = ws_disconnect::handle(&gw.ws.disconnect, disconnect).await
    {
        tracing::warn!(%error, "$disconnect failed");
    }
    gw.ws.returned.disconnects.fetch_add(1, Ordering::SeqCst);
}

/// Route selection on `$request.body.action`, as the WebSocket API's expression says.
async fn route_frame(gw: &Gateway, connection_id: &str, user: &UserId, body: String) {
    let action = serde_json::from_str::<Value>(&body)
        .ok()
        .and_then(|v| v.get("action").and_then(Value::as_str).map(str::to_owned));
    let route_key = action
        .as_deref()
        .filter(|a| ROUTE_KEYS.contains(a))
        .unwrap_or("$default");
    let frame = json!({
        "body": body, "isBase64Encoded": false,
        "requestContext": gw.ws.context(route_key, "MESSAGE", connection_id, Some(user)),
    });
    let Some(frame) = event(frame) else { return };
    let outcome = match route_key {
        "ping" => ws_ping::handle(&gw.ws.ping, frame).await,
        "sendMessage" => ws_send_message::handle(&gw.ws.send_message, frame).await,
        "markRead" => ws_mark_read::handle(&gw.ws.mark_read, frame).await,
        "typing" => ws_typing::handle(&gw.ws.typing, frame).await,
        _ => ws_default::handle(&gw.ws.default, frame).await,
    };
    match outcome {
        // Every message route is two-way (a `$default` route response, as template.yaml declares
        // them): the response's body goes back on the frame's connection; an empty one sends
        // nothing.
        Ok(response) => {
            let text = match response.body {
                Some(aws_lambda_events::encodings::Body::Text(text)) => text,
                Some(aws_lambda_events::encodings::Body::Binary(bytes)) => {
                    String::from_utf8_lossy(&bytes).into_owned()
                }
                _ => String::new(),
            };
            if !text.is_empty()
                && let Some(open) = gw.ws.open().get(connection_id)
            {
                let _ = open.tx.send(Message::Text(text.into()));
            }
        }
        Err(error) => tracing::warn!(route = route_key, %error, "route failed"),
    }
}

fn gone() -> Response {
    let mut response = (StatusCode::GONE, axum::Json(json!({"message": "Gone"}))).into_response();
    response.headers_mut().insert(
        "x-amzn-errortype",
        axum::http::HeaderValue::from_static("GoneException"),
    );
    response
}

/// `@connections` as AWS guards it: SigV4 with a function's credentials, and that function's role
/// allowing `execute-api:ManageConnections` on `…/{stage}/{METHOD}/@connections/{id}`. A refusal
/// is 403 with API Gateway's error type: the answer, when refused.
fn refused(
    gw: &Gateway,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: &[u8],
    id: &str,
) -> Option<Response> {
    let iam = gw.functions.iam();
    let request = local_iam::policy::Authorization::new(
        "execute-api:ManageConnections",
        iam.facts().connection_arn(method.as_str(), id),
    );
    let path = uri.path_and_query().map_or("/", |p| p.as_str());
    match iam.authorize(
        method.as_str(),
        path,
        headers,
        body,
        "execute-api",
        &[request],
    ) {
        Ok(_) => None,
        Err(refusal) => {
            let mut response = (
                StatusCode::FORBIDDEN,
                axum::Json(json!({"message": refusal.to_string()})),
            )
                .into_response();
            response.headers_mut().insert(
                "x-amzn-errortype",
                axum::http::HeaderValue::from_static(refusal.error_type()),
            );
            Some(response)
        }
    }
}

/// `POST /local/@connections/{id}`: the body, as one text frame, to the socket.
pub async fn post_to_connection(
    State(gw): State<Arc<Gateway>>,
    Path(id): Path<String>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Some(refusal) = refused(&gw, &method, &uri, &headers, &body, &id) {
        return refusal;
    }
    if body.len() > MAX_MESSAGE_BYTES {
        let mut response = (
            StatusCode::PAYLOAD_TOO_LARGE,
            axum::Json(json!({"message": "Message too long"})),
        )
            .into_response();
        response.headers_mut().insert(
            "x-amzn-errortype",
            axum::http::HeaderValue::from_static("PayloadTooLargeException"),
        );
        return response;
    }
    let text = String::from_utf8_lossy(&body).into_owned();
    let sent = gw
        .ws
        .open()
        .get(&id)
        .map(|c| c.tx.send(Message::Text(text.into())).is_ok());
    match sent {
        Some(true) => StatusCode::OK.into_response(),
        _ => gone(),
    }
}

/// `GET /local/@connections/{id}`: when it connected and was last active, and who it is.
pub async fn get_connection(
    State(gw): State<Arc<Gateway>>,
    Path(id): Path<String>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    if let Some(refusal) = refused(&gw, &method, &uri, &headers, &[], &id) {
        return refusal;
    }
    let open = gw.ws.open();
    match open.get(&id) {
        Some(c) => axum::Json(json!({
            "connectedAt": c.connected_at, "lastActiveAt": c.last_active_at,
            "identity": {"sourceIp": c.source_ip, "userAgent": c.user_agent},
        }))
        .into_response(),
        None => gone(),
    }
}

/// `DELETE /local/@connections/{id}`: closes the socket.
pub async fn delete_connection(
    State(gw): State<Arc<Gateway>>,
    Path(id): Path<String>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    if let Some(refusal) = refused(&gw, &method, &uri, &headers, &[], &id) {
        return refusal;
    }
    let closed = gw
        .ws
        .open()
        .get(&id)
        .map(|c| c.tx.send(Message::Close(None)).is_ok());
    match closed {
        Some(true) => StatusCode::NO_CONTENT.into_response(),
        _ => gone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The routes the gateway selects are the WebSocket API's routes in `template.yaml`.
    #[test]
    fn the_route_keys_are_the_template_routes() {
        let template =
            std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../template.yaml"))
                .unwrap();
        let mut deployed: Vec<String> = Vec::new();
        let mut in_route = false;
        for line in template.lines() {
            let line = line.trim();
            if line.starts_with("Type: ") {
                in_route = line == "Type: AWS::ApiGatewayV2::Route";
            } else if in_route && let Some(key) = line.strip_prefix("RouteKey: ") {
                deployed.push(key.trim_matches('"').to_owned());
            }
        }
        deployed.sort();
        let mut served: Vec<String> = ROUTE_KEYS.iter().map(|k| (*k).to_owned()).collect();
        served.extend(["$connect", "$disconnect", "$default"].map(String::from));
        served.sort();
        assert_eq!(served, deployed);
    }

    /// The routes whose response body the gateway sends back are the template's two-way routes:
    /// every message route has `RouteResponseSelectionExpression` and a `$default` route response.
    #[test]
    fn every_message_route_is_two_way_in_the_template() {
        let template =
            std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../template.yaml"))
                .unwrap();
        let (mut two_way, mut responses) = (Vec::new(), 0);
        let (mut in_route, mut key) = (false, String::new());
        for line in template.lines() {
            let line = line.trim();
            if line.starts_with("Type: ") {
                in_route = line == "Type: AWS::ApiGatewayV2::Route";
                if line == "Type: AWS::ApiGatewayV2::RouteResponse" {
                    responses += 1;
                }
            } else if in_route && let Some(k) = line.strip_prefix("RouteKey: ") {
                key = k.trim_matches('"').to_owned();
            } else if in_route && line == "RouteResponseSelectionExpression: $default" {
                two_way.push(key.clone());
            }
        }
        two_way.sort();
        let mut message_routes: Vec<String> = ROUTE_KEYS.iter().map(|k| (*k).to_owned()).collect();
        message_routes.push("$default".to_owned());
        message_routes.sort();
        assert_eq!(two_way, message_routes);
        assert_eq!(responses, message_routes.len(), "one route response each");
    }
}
