//! The security suite, table-driven over every route of the contract.
//!
//! The routes come from `openapi.yaml` (what each takes and may answer), held here to the local
//! gateway's route table and so to `template.yaml`; [`cases`] says how to call each one on a
//! fixture, and [`the_suite_covers_every_route_of_the_contract`] fails when a route has no case
//! or a case disagrees with the description. Then, over real HTTP and WebSocket:
//!
//! - every route with every kind of bad credential: 401 `{"message": "Unauthorized"}`, the
//!   function never runs, nothing is written;
//! - every conversation and message route as a non-member: 404, the same answer as for no such
//!   conversation; as a member without the right: 403; nothing written, and the same request with
//!   the right succeeds (so the refusal was the membership or the right, nothing else);
//! - forged, tampered and foreign cursors on every paginated route; malformed page parameters;
//! - tickets: single use under a race, expired, forged; every bad credential at the handshake;
//! - oversized and malformed bodies on every route that takes one, and malformed WebSocket frames
//!   on every WebSocket route: the contract's 4xx, nothing written.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use aws_sdk_dynamodb::types::AttributeValue;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use futures::SinkExt;
use reqwest::Method;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::{self, Message};

use crate::support::{self, LocalApi, Socket, urlencode};

// ---- the contract's routes ----------------------------------------------------------------

/// One route as `openapi.yaml` describes it.
#[derive(Debug, Clone)]
struct SpecRoute {
    /// `PATCH /conversations/{id}`: API Gateway's route key.
    key: String,
    /// The request body's schema (resolved), when the route takes one.
    body: Option<Value>,
    /// The status codes it may answer.
    statuses: BTreeSet<String>,
    /// Its query parameters.
    query: BTreeSet<String>,
}

fn repository_file(name: &str) -> String {
    std::fs::read_to_string(format!("{}/../{name}", env!("CARGO_MANIFEST_DIR"))).unwrap()
}

fn resolve<'a>(doc: &'a Value, node: &'a Value) -> &'a Value {
    match node.get("$ref").and_then(Value::as_str) {
        Some(reference) => {
            let pointer = reference.trim_start_matches('#');
            resolve(doc, doc.pointer(pointer).unwrap_or(&Value::Null))
        }
        None => node,
    }
}

/// Every route of `openapi.yaml`.
fn spec_routes() -> Vec<SpecRoute> {
    let doc: Value = serde_norway::from_str(&repository_file("openapi.yaml")).unwrap();
    let mut routes = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        let shared: Vec<&Value> = item["parameters"]
            .as_array()
            .map(|p| p.iter().collect())
            .unwrap_or_default();
        for (method, operation) in item.as_object().unwrap() {
            if method == "parameters" {
                continue;
            }
            let own: Vec<&Value> = operation["parameters"]
                .as_array()
                .map(|p| p.iter().collect())
                .unwrap_or_default();
            let query = shared
                .iter()
                .chain(&own)
                .map(|p| resolve(&doc, p))
                .filter(|p| p["in"] == "query")
                .map(|p| p["name"].as_str().unwrap().to_owned())
                .collect();
            let body = operation.get("requestBody").map(|b| {
                resolve(
                    &doc,
                    &resolve(&doc, b)["content"]["application/json"]["schema"],
                )
                .clone()
            });
            routes.push(SpecRoute {
                key: format!("{} {path}", method.to_uppercase()),
                body,
                statuses: operation["responses"]
                    .as_object()
                    .unwrap()
                    .keys()
                    .cloned()
                    .collect(),
                query,
            });
        }
    }
    routes.sort_by(|a, b| a.key.cmp(&b.key));
    routes
}

fn spec(key: &str) -> SpecRoute {
    spec_routes()
        .into_iter()
        .find(|r| r.key == key)
        .unwrap_or_else(|| panic!("{key} is not in openapi.yaml"))
}

/// A conversation route: its path names a conversation, and a non-member gets 404 for it.
fn is_conversation_route(key: &str) -> bool {
    key.split_once(' ')
        .is_some_and(|(_, path)| path.starts_with("/conversations/{id}"))
}

// ---- how the suite calls each route -------------------------------------------------------

/// How the suite calls one route on its fixture, and what the contract gives each caller.
#[derive(Debug, Clone)]
struct Case {
    key: &'static str,
    /// A valid body (the routes that take one).
    body: Option<Value>,
    /// The message `{seq}` names: 1 is ada's, 2 is bob's.
    seq: u64,
    /// The user `{userId}` names.
    user: &'static str,
    /// The member-only right (`openapi.yaml`'s route descriptions), when the route has one: ada has it, bob does not.
    right: Option<&'static str>,
    /// The success status with the right.
    ok: u16,
}

const OWNER: &str = "ada";
const MEMBER: &str = "bob";
/// A member the owner may remove.
const TARGET: &str = "dan";
const OUTSIDER: &str = "eve";
/// A user with a profile, in no conversation.
const STRANGER: &str = "carol";

/// Every route of the contract, in the gateway's order.
fn cases() -> Vec<Case> {
    let case = |key, body: Option<Value>, ok| Case {
        key,
        body,
        seq: 1,
        user: MEMBER,
        right: None,
        ok,
    };
    vec![
        case("GET /me", None, 200),
        case("GET /me/unread", None, 200),
        case("PATCH /me", Some(json!({"displayName": "Renamed"})), 200),
        case("GET /users/{userId}", None, 200),
        case(
            "POST /conversations",
            Some(json!({"participantIds": [MEMBER], "kind": "group", "title": "Another"})),
            201,
        ),
        case("GET /conversations", None, 200),
        case("GET /conversations/{id}", None, 200),
        case(
            "PATCH /conversations/{id}",
            Some(json!({"title": "Renamed"})),
            200,
        ),
        case(
            "PATCH /conversations/{id}/settings",
            Some(json!({"muted": true, "archived": true})),
            200,
        ),
        // An outsider adding themselves is the attempt that matters.
        case(
            "POST /conversations/{id}/members",
            Some(json!({"userIds": [OUTSIDER]})),
            200,
        ),
        Case {
            user: TARGET,
            right: Some("only the owner removes another member"),
            ..case("DELETE /conversations/{id}/members/{userId}", None, 204)
        },
        case(
            "POST /conversations/{id}/messages",
            Some(json!({"body": "hello again", "clientMessageId": "sec-1"})),
            201,
        ),
        case("GET /conversations/{id}/messages", None, 200),
        case(
            "POST /conversations/{id}/read",
            Some(json!({"seq": 2})),
            200,
        ),
        Case {
            right: Some("only the sender edits a message"),
            ..case(
                "PATCH /conversations/{id}/messages/{seq}",
                Some(json!({"body": "edited"})),
                200,
            )
        },
        Case {
            right: Some("only the sender unsends a message"),
            ..case("DELETE /conversations/{id}/messages/{seq}", None, 200)
        },
        Case {
            seq: 2,
            ..case(
                "PUT /conversations/{id}/messages/{seq}/reactions/{emoji}",
                None,
                200,
            )
        },
        Case {
            seq: 2,
            ..case(
                "DELETE /conversations/{id}/messages/{seq}/reactions/{emoji}",
                None,
                200,
            )
        },
        case("GET /conversations/{id}/changes", None, 200),
        case("POST /realtime/tickets", None, 201),
    ]
}

impl Case {
    fn method(&self) -> Method {
        self.key.split_once(' ').unwrap().0.parse().unwrap()
    }

    /// The path on conversation `id`.
    fn path(&self, id: &str) -> String {
        self.key
            .split_once(' ')
            .unwrap()
            .1
            .replace("{id}", id)
            .replace("{seq}", &self.seq.to_string())
            .replace("{userId}", self.user)
            .replace("{emoji}", "%F0%9F%91%8D")
    }
}

/// The paginated routes whose cursors [`cursors_forged_tampered_or_foreign_are_invalid_cursor`]
/// knows how to obtain.
const CURSOR_ROUTES: &[&str] = &["GET /conversations"];

/// Bad values of every query parameter of the contract (the cursor has its own test), each with
/// the parameter the error must name.
fn bad_query_values(name: &str) -> Option<Vec<(String, &'static str)>> {
    let numbers = |field: &'static str| {
        ["-1", "x", "1.5", "18446744073709551616", "", "0x10", " 1"]
            .iter()
            .map(|v| (format!("{name}={}", urlencode(v)), field))
            .collect::<Vec<_>>()
    };
    Some(match name {
        "limit" => ["0", "101", "-1", "x", "1.5", "99999999999999999999", ""]
            .iter()
            .map(|v| (format!("limit={v}"), "limit"))
            .collect(),
        "beforeSeq" => {
            let mut bad = numbers("beforeSeq");
            bad.push(("beforeSeq=2&afterSeq=1".to_owned(), "beforeSeq"));
            bad
        }
        "afterSeq" => numbers("afterSeq"),
        "sinceRev" => numbers("sinceRev"),
        "archived" => ["yes", "1", "TRUE", ""]
            .iter()
            .map(|v| (format!("archived={v}"), "archived"))
            .collect(),
        "q" => vec![(format!("q={}", "a".repeat(101)), "q")],
        "cursor" => Vec::new(),
        _ => return None,
    })
}

/// The contract, the gateway and the template name the same routes, and the suite has a case
/// for each that agrees with the contract: a body exactly where one is taken, a right exactly
/// where 403 may be answered, 404 on every conversation route, a way to get a cursor on every
/// route that takes one, bad values for every query parameter.
#[test]
fn the_suite_covers_every_route_of_the_contract() {
    let described: BTreeSet<String> = spec_routes().into_iter().map(|r| r.key).collect();
    let gateway: BTreeSet<String> = local_gateway::routes::LAMBDA_ROUTES
        .iter()
        .map(|r| r.route_key())
        .collect();
    let template: BTreeSet<String> =
        local_stack::template::http_api_routes(&repository_file("template.yaml"))
            .unwrap()
            .into_iter()
            .map(|r| format!("{} {}", r.method, r.path))
            .collect();
    let covered: BTreeSet<String> = cases().iter().map(|c| c.key.to_owned()).collect();
    assert_eq!(gateway, described, "the gateway's routes and openapi.yaml");
    assert_eq!(template, described, "template.yaml and openapi.yaml");
    assert_eq!(covered, described, "the security cases and openapi.yaml");
    assert_eq!(cases().len(), described.len(), "one case per route");

    for case in cases() {
        let route = spec(case.key);
        assert_eq!(
            case.body.is_some(),
            route.body.is_some(),
            "{}: a body",
            case.key
        );
        assert_eq!(
            case.right.is_some(),
            route.statuses.contains("403"),
            "{}: a right (403)",
            case.key
        );
        assert!(route.statuses.contains("401"), "{}: 401", case.key);
        if is_conversation_route(case.key) {
            assert!(route.statuses.contains("404"), "{}: 404", case.key);
        }
        if route.body.is_some() {
            assert!(route.statuses.contains("413"), "{}: 413", case.key);
            assert!(route.statuses.contains("400"), "{}: 400", case.key);
        }
        assert_eq!(
            route.query.contains("cursor"),
            CURSOR_ROUTES.contains(&case.key),
            "{}: a cursor",
            case.key
        );
        for name in &route.query {
            assert!(
                bad_query_values(name).is_some(),
                "{}: no bad values for {name}",
                case.key
            );
        }
        if let (Some(body), Some(schema)) = (&case.body, &route.body) {
            let known: BTreeSet<&str> = schema["properties"]
                .as_object()
                .unwrap()
                .keys()
                .map(String::as_str)
                .collect();
            for key in body.as_object().unwrap().keys() {
                assert!(known.contains(key.as_str()), "{}: {key}", case.key);
            }
            for required in schema["required"].as_array().into_iter().flatten() {
                assert!(
                    body.get(required.as_str().unwrap()).is_some(),
                    "{}: {required}",
                    case.key
                );
            }
        }
    }
    // The WebSocket routes, as the gateway selects them (held to template.yaml by its own test).
    let ws: BTreeSet<&str> = local_gateway::websocket::ROUTE_KEYS
        .iter()
        .copied()
        .collect();
    let frames: BTreeSet<&str> = ws_cases().iter().map(|(action, _)| *action).collect();
    assert_eq!(frames, ws, "a frame case per WebSocket route");
}

// ---- the fixture --------------------------------------------------------------------------

/// A gateway on a fresh table, with limits high enough that no answer under test is a 429.
async fn start() -> LocalApi {
    let mut deps = support::fresh_deps().await;
    let env = chat_shared::platform::config::Env::new(|name: &str| {
        name.starts_with("RATE_LIMIT_")
            .then(|| "100000/60".to_owned())
    });
    deps.limiter = Arc::new(chat_shared::adapters::rate_limiter::RateLimiter::new(
        deps.redis.clone(),
        chat_shared::domain::limits::Limits::from_env(&env).unwrap(),
    ));
    LocalApi::start_with(deps).await
}

/// A group of ada (owner), bob and dan; message 1 is ada's, 2 is bob's. eve and carol have
/// profiles and are in no conversation. Its id.
async fn fixture(api: &LocalApi) -> String {
    api.sign_up(&[OWNER, MEMBER, TARGET, OUTSIDER, STRANGER].map(String::from))
        .await;
    let id = api.group(OWNER, &[MEMBER, TARGET]).await;
    for (user, body, cmid) in [(OWNER, "hello", "f-1"), (MEMBER, "hi", "f-2")] {
        let (status, sent) = api
            .call(
                Method::POST,
                &format!("/conversations/{id}/messages"),
                user,
                Some(json!({"body": body, "clientMessageId": cmid})),
            )
            .await;
        assert_eq!(status, 201, "{sent}");
    }
    id
}

/// A DynamoDB value as plain JSON, maps sorted: comparable across reads.
fn plain(value: &AttributeValue) -> Value {
    match value {
        AttributeValue::S(s) => json!({"S": s}),
        AttributeValue::N(n) => json!({"N": n}),
        AttributeValue::Bool(b) => json!(b),
        AttributeValue::Null(_) => Value::Null,
        AttributeValue::M(m) => {
            let sorted: BTreeMap<&String, Value> = m.iter().map(|(k, v)| (k, plain(v))).collect();
            json!(sorted)
        }
        AttributeValue::L(l) => Value::Array(l.iter().map(plain).collect()),
        AttributeValue::Ss(s) | AttributeValue::Ns(s) => {
            let sorted: BTreeSet<&String> = s.iter().collect();
            json!(sorted)
        }
        other => json!(format!("{other:?}")),
    }
}

/// Every item of the test's table, sorted: what "nothing was written" compares.
async fn table(api: &LocalApi) -> Vec<Value> {
    let store = &api.gateway.deps.store;
    let mut items = Vec::new();
    let mut start = None;
    loop {
        let page = store
            .client()
            .scan()
            .table_name(store.table().as_str())
            .consistent_read(true)
            .set_exclusive_start_key(start)
            .send()
            .await
            .unwrap();
        for item in page.items() {
            let sorted: BTreeMap<&String, Value> =
                item.iter().map(|(k, v)| (k, plain(v))).collect();
            items.push(json!(sorted));
        }
        start = page.last_evaluated_key().cloned();
        if start.is_none() {
            break;
        }
    }
    items.sort_by_key(|item| (item["PK"].to_string(), item["SK"].to_string()));
    items
}

/// What a call answered.
#[derive(Debug)]
struct Answer {
    status: u16,
    body: Value,
    headers: reqwest::header::HeaderMap,
}

impl Answer {
    fn code(&self) -> &str {
        self.body["error"]["code"].as_str().unwrap_or_default()
    }

    /// The body without its request id: what two answers must share to be indistinguishable.
    fn without_request_id(&self) -> Value {
        let mut body = self.body.clone();
        if let Some(map) = body.as_object_mut() {
            map.remove("requestId");
        }
        body
    }

    fn header_names(&self) -> BTreeSet<String> {
        self.headers
            .keys()
            .map(|k| k.as_str().to_owned())
            .filter(|k| k != "date")
            .collect()
    }

    /// The contract's error: `{"error": {code, message, field?, details?}, "requestId"}`, from a
    /// function (it carries `x-request-id`).
    fn assert_error(&self, status: u16, code: &str, context: &str) {
        assert_eq!(
            (self.status, self.code()),
            (status, code),
            "{context}: {}",
            self.body
        );
        assert!(
            self.body["error"]["message"].is_string(),
            "{context}: {}",
            self.body
        );
        assert!(
            self.body["requestId"].is_string(),
            "{context}: {}",
            self.body
        );
        assert!(self.headers.contains_key("x-request-id"), "{context}");
    }
}

async fn answer(request: reqwest::RequestBuilder) -> Answer {
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let text = response.text().await.unwrap();
    let body = serde_json::from_str(&text).unwrap_or(Value::Null);
    Answer {
        status,
        body,
        headers,
    }
}

/// `user` calls `case` on conversation `id`, with `body` as raw bytes (JSON).
async fn call_raw(
    api: &LocalApi,
    case: &Case,
    id: &str,
    user: &str,
    body: Option<Vec<u8>>,
) -> Answer {
    let token = api.token(user, Some(user));
    let mut request = api.request(case.method(), &case.path(id), &token);
    if let Some(body) = body {
        request = request
            .header("content-type", "application/json")
            .body(body);
    }
    answer(request).await
}

/// `user` calls `case` on conversation `id` with its valid body.
async fn call(api: &LocalApi, case: &Case, id: &str, user: &str) -> Answer {
    let body = case.body.as_ref().map(|b| b.to_string().into_bytes());
    call_raw(api, case, id, user, body).await
}

// ---- bad credentials ----------------------------------------------------------------------

/// How a request can come without a token the authorizer accepts: every refused token (as the
/// owner of the fixture, so that a mistake would act on their group), no header, other schemes,
/// an empty bearer, a good token where the authorizer does not look.
fn bad_credentials(api: &LocalApi) -> Vec<(String, reqwest::header::HeaderMap, &'static str)> {
    use reqwest::header::{AUTHORIZATION, COOKIE, HeaderMap, HeaderValue};
    let good = api.token(OWNER, None);
    let header = |name: reqwest::header::HeaderName, value: String| {
        let mut map = HeaderMap::new();
        map.insert(name, HeaderValue::from_str(&value).unwrap());
        map
    };
    let mut out: Vec<(String, HeaderMap, &'static str)> =
        support::refused_tokens_for(&api.gateway.issuer, OWNER)
            .into_iter()
            .map(|(name, token)| {
                (
                    format!("token: {name}"),
                    header(AUTHORIZATION, format!("Bearer {token}")),
                    "",
                )
            })
            .collect();
    out.push(("no Authorization".to_owned(), HeaderMap::new(), ""));
    for (name, value) in [
        ("Basic", "Basic YWRhOnNlY3JldA==".to_owned()),
        ("another scheme", format!("Token {good}")),
        ("no scheme", good.clone()),
        ("no space", format!("Bearer{good}")),
        ("bare Bearer", "Bearer".to_owned()),
        ("empty bearer", "Bearer ".to_owned()),
        ("two tokens", format!("Bearer {good} {good}")),
    ] {
        out.push((name.to_owned(), header(AUTHORIZATION, value), ""));
    }
    out.push((
        "token in a cookie".to_owned(),
        header(COOKIE, format!("token={good}")),
        "",
    ));
    out.push((
        "token in the query".to_owned(),
        HeaderMap::new(),
        "access_token",
    ));
    out
}

#[tokio::test]
async fn every_route_refuses_every_bad_credential_and_writes_nothing() {
    let api = start().await;
    let id = fixture(&api).await;
    let before = table(&api).await;
    let good = api.token(OWNER, None);
    let credentials = bad_credentials(&api);
    assert!(credentials.len() >= 20, "{}", credentials.len());
    let mut refused = 0;
    for case in cases() {
        for (name, headers, query) in &credentials {
            let mut path = case.path(&id);
            if !query.is_empty() {
                path = format!("{path}?{query}={good}");
            }
            let mut request = api
                .http
                .request(case.method(), format!("{}{path}", api.url))
                .headers(headers.clone());
            if let Some(body) = &case.body {
                request = request.json(body);
            }
            let got = answer(request).await;
            let context = format!("{} with {name}", case.key);
            assert_eq!(got.status, 401, "{context}: {}", got.body);
            assert_eq!(got.body, json!({"message": "Unauthorized"}), "{context}");
            // The gateway answered: no function ran.
            assert!(!got.headers.contains_key("x-request-id"), "{context}");
            refused += 1;
        }
    }
    assert_eq!(refused, cases().len() * credentials.len());
    assert_eq!(table(&api).await, before, "a refused request wrote");
    // The same requests with the owner's good token succeed: the credential was all that was
    // wrong.
    for case in cases() {
        let done = call(&api, &case, &id, OWNER).await;
        assert_eq!(
            done.status, case.ok,
            "{} with a good token: {}",
            case.key, done.body
        );
    }
}

// ---- membership and rights ----------------------------------------------------------------

#[tokio::test]
async fn every_conversation_route_is_404_for_a_non_member_as_for_no_conversation() {
    let api = start().await;
    let id = fixture(&api).await;
    let missing = chat_shared::domain::ConversationId::generate().to_string();
    let conversation_cases: Vec<Case> = cases()
        .into_iter()
        .filter(|c| is_conversation_route(c.key))
        .collect();
    assert_eq!(conversation_cases.len(), 13);
    let before = table(&api).await;
    for case in &conversation_cases {
        let outsider = call(&api, case, &id, OUTSIDER).await;
        outsider.assert_error(404, "not_found", &format!("{} as an outsider", case.key));
        // Exactly the answer a member gets for a conversation that does not exist.
        let nothing = call(&api, case, &missing, OWNER).await;
        nothing.assert_error(
            404,
            "not_found",
            &format!("{} on no conversation", case.key),
        );
        assert_eq!(
            outsider.without_request_id(),
            nothing.without_request_id(),
            "{}",
            case.key
        );
        assert_eq!(
            outsider.header_names(),
            nothing.header_names(),
            "{}",
            case.key
        );
        // A bad body is refused before membership is looked at: the same 400 either way.
        if case.body.is_some() {
            let bad = || Some(b"{".to_vec());
            let outsider = call_raw(&api, case, &id, OUTSIDER, bad()).await;
            let nothing = call_raw(&api, case, &missing, OWNER, bad()).await;
            outsider.assert_error(400, "invalid_json", case.key);
            assert_eq!(outsider.without_request_id(), nothing.without_request_id());
        }
        // A malformed id names no conversation either: 404, never 400.
        for bad in [
            "not-a-ulid",
            "8ZZZZZZZZZZZZZZZZZZZZZZZZZ",
            "%00",
            "01JDQ7Z8K3M4N5P6Q7R8S9T0V%2F",
        ] {
            let malformed = call(&api, case, bad, OWNER).await;
            malformed.assert_error(404, "not_found", &format!("{} on {bad}", case.key));
            assert_eq!(malformed.without_request_id(), nothing.without_request_id());
        }
    }
    // The outsider leaving, or removing the owner: 404 too.
    let remove = cases()
        .into_iter()
        .find(|c| c.key == "DELETE /conversations/{id}/members/{userId}")
        .unwrap();
    for user in ["me", OUTSIDER, OWNER] {
        let case = Case {
            user,
            ..remove.clone()
        };
        call(&api, &case, &id, OUTSIDER).await.assert_error(
            404,
            "not_found",
            &format!("an outsider removing {user}"),
        );
    }
    assert_eq!(table(&api).await, before, "a non-member's request wrote");
    let (_, group) = api
        .call(Method::GET, &format!("/conversations/{id}"), OWNER, None)
        .await;
    assert_eq!(group["memberCount"], 3);

    // With the right, each request succeeds: the refusals above were the membership.
    for case in &conversation_cases {
        let done = call(&api, case, &id, OWNER).await;
        assert_eq!(
            done.status, case.ok,
            "{} as the owner: {}",
            case.key, done.body
        );
    }
    // dan was removed by the owner above: a former member is a non-member.
    for case in &conversation_cases {
        call(&api, case, &id, TARGET).await.assert_error(
            404,
            "not_found",
            &format!("{} as a former member", case.key),
        );
    }
}

#[tokio::test]
async fn a_member_without_the_right_gets_403_and_changes_nothing() {
    let api = start().await;
    let id = fixture(&api).await;
    let with_rights: Vec<Case> = cases().into_iter().filter(|c| c.right.is_some()).collect();
    assert_eq!(with_rights.len(), 3);
    let before = table(&api).await;
    for case in &with_rights {
        let refused = call(&api, case, &id, MEMBER).await;
        refused.assert_error(403, "forbidden", &format!("{} as a member", case.key));
    }
    assert_eq!(
        table(&api).await,
        before,
        "a refused member's request wrote"
    );
    // Read back as the members see it: message 1 is as sent, dan is still in.
    let (_, history) = api
        .call(
            Method::GET,
            &format!("/conversations/{id}/messages"),
            TARGET,
            None,
        )
        .await;
    assert_eq!(history["items"][0]["body"], "hello");
    assert_eq!(history["items"][0]["deleted"], false);
    assert_eq!(history["items"][0]["editedAt"], Value::Null);
    let (_, group) = api
        .call(Method::GET, &format!("/conversations/{id}"), TARGET, None)
        .await;
    assert_eq!(group["memberCount"], 3);

    // Every other conversation route is any member's: bob succeeds where he has no right to lack.
    for case in cases()
        .into_iter()
        .filter(|c| is_conversation_route(c.key) && c.right.is_none())
    {
        let done = call(&api, &case, &id, MEMBER).await;
        assert_eq!(
            done.status, case.ok,
            "{} as a member: {}",
            case.key, done.body
        );
    }
    // With the right, the refused requests succeed.
    for case in &with_rights {
        let done = call(&api, case, &id, OWNER).await;
        assert_eq!(
            done.status, case.ok,
            "{} with the right: {}",
            case.key, done.body
        );
    }
}

// ---- cursors and page parameters ----------------------------------------------------------

/// A cursor changed into another of the same alphabet at `at`.
fn flipped(cursor: &str, at: usize) -> String {
    let mut bytes = cursor.as_bytes().to_vec();
    bytes[at] = match bytes[at] {
        b'.' => b'A',
        b'A' => b'B',
        _ => b'A',
    };
    String::from_utf8(bytes).unwrap()
}

#[tokio::test]
async fn cursors_forged_tampered_or_foreign_are_invalid_cursor() {
    let cursor_routes: Vec<String> = spec_routes()
        .into_iter()
        .filter(|r| r.query.contains("cursor"))
        .map(|r| r.key)
        .collect();
    assert_eq!(cursor_routes, CURSOR_ROUTES);

    let api = start().await;
    fixture(&api).await;
    for title in ["Two", "Three"] {
        let body = json!({"participantIds": [MEMBER], "kind": "group", "title": title});
        let (status, _) = api
            .call(Method::POST, "/conversations", OWNER, Some(body))
            .await;
        assert_eq!(status, 201);
    }
    let page = |user: &'static str, query: String| {
        let api = &api;
        async move {
            let token = api.token(user, None);
            answer(api.request(Method::GET, &format!("/conversations?{query}"), &token)).await
        }
    };
    let first = page(OWNER, "limit=1".into()).await;
    let mine = first.body["nextCursor"].as_str().unwrap().to_owned();
    let theirs = page(MEMBER, "limit=1".into()).await.body["nextCursor"]
        .as_str()
        .unwrap()
        .to_owned();
    let (payload, tag) = mine.split_once('.').unwrap();
    let (their_payload, their_tag) = theirs.split_once('.').unwrap();

    // Their position, relabelled as mine under their tag; my payload under a guessed key.
    let mut relabelled: Value =
        serde_json::from_slice(&B64.decode(their_payload).unwrap()).unwrap();
    let owner_in_cursor = serde_json::from_slice::<Value>(&B64.decode(payload).unwrap()).unwrap();
    relabelled["u"] = owner_in_cursor["u"].clone();
    let relabelled = format!("{}.{their_tag}", B64.encode(relabelled.to_string()));
    let guessed = {
        let key = aws_lc_rs::hmac::Key::new(
            aws_lc_rs::hmac::HMAC_SHA256,
            b"a guessed cursor secret of 32 bytes",
        );
        let json = B64.decode(payload).unwrap();
        format!(
            "{payload}.{}",
            B64.encode(aws_lc_rs::hmac::sign(&key, &json).as_ref())
        )
    };

    let mut bad: Vec<(String, &'static str, String)> = vec![
        ("another user's".into(), OWNER, theirs.clone()),
        ("the owner's, used by another".into(), MEMBER, mine.clone()),
        ("relabelled".into(), OWNER, relabelled),
        ("signed with a guessed key".into(), OWNER, guessed),
        ("no tag".into(), OWNER, payload.to_owned()),
        ("an empty tag".into(), OWNER, format!("{payload}.")),
        ("only a tag".into(), OWNER, format!(".{tag}")),
        ("swapped".into(), OWNER, format!("{tag}.{payload}")),
        (
            "another tag".into(),
            OWNER,
            format!("{payload}.{their_tag}"),
        ),
        ("cut short".into(), OWNER, mine[..mine.len() - 1].to_owned()),
        ("extended".into(), OWNER, format!("{mine}A")),
        ("a third part".into(), OWNER, format!("{mine}.{tag}")),
        ("padded".into(), OWNER, format!("{mine}==")),
        ("empty".into(), OWNER, String::new()),
        ("a dot".into(), OWNER, ".".into()),
        ("not base64".into(), OWNER, "!!!.???".into()),
        ("JSON".into(), OWNER, r#"{"u":"ada"}"#.into()),
        ("huge".into(), OWNER, "A".repeat(8_000)),
        ("invalid UTF-8".into(), OWNER, "\u{fffd}".into()),
    ];
    // One character changed, all along the cursor.
    let step = (mine.len() / 24).max(1);
    for at in (0..mine.len()).step_by(step).chain([mine.len() - 1]) {
        bad.push((format!("changed at {at}"), OWNER, flipped(&mine, at)));
    }
    for (name, user, cursor) in &bad {
        let got = page(user, format!("limit=1&cursor={}", urlencode(cursor))).await;
        got.assert_error(400, "invalid_cursor", &format!("a cursor {name}"));
        assert!(got.body.get("items").is_none());
    }
    // Raw bytes that are not UTF-8 once decoded.
    let got = page(OWNER, "cursor=%FF%FE.%C0".into()).await;
    got.assert_error(400, "invalid_cursor", "a cursor of invalid UTF-8");
    // Another filter's: the cursor is bound to archived and q.
    for filters in ["archived=true", "q=room", "archived=false&q=two"] {
        let got = page(OWNER, format!("{filters}&cursor={}", urlencode(&mine))).await;
        got.assert_error(
            400,
            "invalid_cursor",
            &format!("a cursor used with {filters}"),
        );
    }
    // My own cursor, with the filters it was made for, goes on to the next page (the limit is not
    // a filter).
    for limit in [1, 5] {
        let next = page(OWNER, format!("limit={limit}&cursor={}", urlencode(&mine))).await;
        assert_eq!(next.status, 200, "{}", next.body);
        let items = next.body["items"].as_array().unwrap();
        assert!(!items.is_empty());
        assert!(
            items
                .iter()
                .all(|c| c["id"] != first.body["items"][0]["id"])
        );
    }
}

#[tokio::test]
async fn malformed_page_parameters_are_400_naming_them_on_every_paginated_route() {
    let api = start().await;
    let id = fixture(&api).await;
    let token = api.token(OWNER, None);
    let mut checked = 0;
    for route in spec_routes().into_iter().filter(|r| !r.query.is_empty()) {
        let case = cases().into_iter().find(|c| c.key == route.key).unwrap();
        for name in &route.query {
            for (query, field) in bad_query_values(name).unwrap() {
                let path = format!("{}?{query}", case.path(&id));
                let got = answer(api.request(case.method(), &path, &token)).await;
                let context = format!("{} ?{query}", route.key);
                got.assert_error(400, "validation_failed", &context);
                assert_eq!(got.body["error"]["field"], field, "{context}");
                checked += 1;
            }
        }
    }
    assert!(checked >= 30, "{checked}");
}

// ---- tickets and the WebSocket handshake --------------------------------------------------

async fn handshake(api: &LocalApi, query: &str) -> Result<Socket, u16> {
    let url = format!("{}/local?{query}", api.url.replacen("http://", "ws://", 1));
    match tokio_tungstenite::connect_async(url).await {
        Ok((socket, _)) => Ok(socket),
        Err(tungstenite::Error::Http(response)) => Err(response.status().as_u16()),
        Err(other) => panic!("handshake failed: {other}"),
    }
}

async fn ticket(api: &LocalApi, user: &str) -> String {
    let (status, body) = api
        .call(Method::POST, "/realtime/tickets", user, None)
        .await;
    assert_eq!(status, 201, "{body}");
    body["ticket"].as_str().unwrap().to_owned()
}

async fn connections_of(
    api: &LocalApi,
    user: &str,
) -> Vec<chat_shared::services::connections::ConnectionItem> {
    chat_shared::services::connections::of_user(&api.gateway.deps.store, &user.parse().unwrap())
        .await
        .unwrap()
}

#[tokio::test]
async fn a_ticket_opens_one_connection_and_every_bad_credential_is_refused_at_the_handshake() {
    let api = start().await;
    api.sign_up(&[OWNER.to_owned(), MEMBER.to_owned()]).await;

    // One ticket, five handshakes at once: one opens.
    let raced = ticket(&api, OWNER).await;
    let query = format!("ticket={raced}");
    let tries = support::join_all((0..5).map(|_| handshake(&api, &query))).await;
    let (mut open, refused): (Vec<_>, Vec<_>) = tries.into_iter().partition(Result::is_ok);
    assert_eq!((open.len(), refused.len()), (1, 4));
    assert!(refused.iter().all(|r| matches!(r, Err(401))));
    // Used: refused again, while its connection is open and after it closed.
    assert_eq!(handshake(&api, &query).await.err(), Some(401));
    let mut socket = open.pop().unwrap().unwrap();
    socket.close(None).await.unwrap();
    // Closed: once its $disconnect has removed the record, the ticket is refused still.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !connections_of(&api, OWNER).await.is_empty() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "$disconnect did not run"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(handshake(&api, &query).await.err(), Some(401));

    // Expired: DynamoDB may keep it past its TTL, the authorizer must not take it.
    let late = ticket(&api, OWNER).await;
    let hash: String = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, late.as_bytes())
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let store = &api.gateway.deps.store;
    let key = chat_shared::adapters::store::keys::ticket(&hash);
    let mut item: chat_shared::services::realtime::TicketItem = store
        .get(&key, chat_shared::adapters::store::Consistency::Strong)
        .await
        .unwrap()
        .unwrap();
    item.expires_at -= 61;
    store.put(&item, None).await.unwrap();
    assert_eq!(
        handshake(&api, &format!("ticket={late}")).await.err(),
        Some(401),
        "an expired ticket"
    );

    let good = api.token(OWNER, None);
    let unused = ticket(&api, MEMBER).await;
    let forged = B64.encode([7u8; 32]);
    let mut queries: Vec<(String, String)> = vec![
        ("no credential".into(), String::new()),
        ("an empty ticket".into(), "ticket=".into()),
        ("an empty token".into(), "token=".into()),
        ("a forged ticket".into(), format!("ticket={forged}")),
        (
            "a ticket cut short".into(),
            format!("ticket={}", &unused[..unused.len() - 1]),
        ),
        (
            "a huge ticket".into(),
            format!("ticket={}", "A".repeat(4_000)),
        ),
        ("a token as a ticket".into(), format!("ticket={good}")),
        ("a ticket as a token".into(), format!("token={unused}")),
        (
            "a bad ticket beside a good token".into(),
            format!("ticket={forged}&token={good}"),
        ),
        ("another parameter".into(), format!("access_token={good}")),
    ];
    for (name, token) in support::refused_tokens_for(&api.gateway.issuer, OWNER) {
        queries.push((
            format!("token: {name}"),
            format!("token={}", urlencode(&token)),
        ));
    }
    for (name, query) in &queries {
        assert_eq!(handshake(&api, query).await.err(), Some(401), "{name}");
    }
    // The refusals opened nothing (each was answered before any $connect); bob's ticket, which
    // was only ever offered as a token, still opens bob's connection once.
    assert!(connections_of(&api, OWNER).await.is_empty());
    let bobs = handshake(&api, &format!("ticket={unused}")).await;
    assert!(bobs.is_ok(), "an unused ticket");
    let records = connections_of(&api, MEMBER).await;
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].user_id.as_str(), MEMBER);
}

// ---- bodies -------------------------------------------------------------------------------

/// A body of the wrong shape, and what the contract answers it.
struct Malformed {
    name: String,
    bytes: Vec<u8>,
    status: u16,
    /// The error code; empty where two are right (see the caller).
    code: &'static str,
    /// The field the error must name (a prefix of it, for paths into a field).
    field: Option<String>,
}

/// Bodies of the wrong shape for a route.
fn malformed_bodies(case: &Case, schema: &Value) -> Vec<Malformed> {
    let valid = case.body.clone().unwrap();
    let text = valid.to_string();
    let first_key = valid.as_object().unwrap().keys().next().unwrap().clone();
    let mut out: Vec<Malformed> = Vec::new();
    let mut push = |name: String, bytes: Vec<u8>, status, code, field: Option<String>| {
        out.push(Malformed {
            name,
            bytes,
            status,
            code,
            field,
        });
    };
    // Size: one byte over 64 KiB, as white space after a valid body or inside a value.
    let over = format!("{text}{}", " ".repeat(64 * 1024 + 1 - text.len()));
    push(
        "over 64 KiB of white space".into(),
        over.into_bytes(),
        413,
        "payload_too_large",
        None,
    );
    let mut padded = valid.clone();
    padded["padding"] = json!("x".repeat(70 * 1024));
    push(
        "over 64 KiB in a field".into(),
        padded.to_string().into_bytes(),
        413,
        "payload_too_large",
        None,
    );
    // Not JSON at all.
    let not_json: [&[u8]; 9] = [
        b"{",
        b"hello",
        b"",
        b"{\"a\":1}x",
        b"{'single': 1}",
        b"NaN",
        b"\xef\xbb\xbf{}",
        b"{\"body\": \"\xff\xfe\"}",
        b"\xff\xfe\xfd",
    ];
    for raw in not_json {
        push(
            format!("not JSON: {}", String::from_utf8_lossy(raw)),
            raw.to_vec(),
            400,
            "invalid_json",
            None,
        );
    }
    let deep = format!(
        "{{\"{first_key}\": {}{}}}",
        "[".repeat(5_000),
        "]".repeat(5_000)
    );
    push(
        "nested 5000 deep".into(),
        deep.into_bytes(),
        400,
        "invalid_json",
        None,
    );
    // JSON, but not an object.
    let wrapped = format!("[{text}]");
    for raw in ["[]", "null", "3", "\"text\"", "true", wrapped.as_str()] {
        push(
            format!("not an object: {raw}"),
            raw.as_bytes().to_vec(),
            400,
            "validation_failed",
            None,
        );
    }
    // Unknown fields, the mass-assignment ones first.
    let known: BTreeSet<&str> = schema["properties"]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    for extra in [
        "userId",
        "senderId",
        "role",
        "createdBy",
        "id",
        "__proto__",
        "isAdmin",
    ] {
        if known.contains(extra) {
            continue;
        }
        let mut body = valid.clone();
        body[extra] = json!(OUTSIDER);
        push(
            format!("unknown field {extra}"),
            body.to_string().into_bytes(),
            400,
            "validation_failed",
            Some(extra.to_owned()),
        );
    }
    // Each required field missing.
    for required in schema["required"].as_array().into_iter().flatten() {
        let name = required.as_str().unwrap();
        let mut body = valid.clone();
        body.as_object_mut().unwrap().remove(name);
        push(
            format!("no {name}"),
            body.to_string().into_bytes(),
            400,
            "validation_failed",
            Some(name.to_owned()),
        );
    }
    // Each field with values of every other type, and numbers no field can hold.
    for (key, value) in valid.as_object().unwrap() {
        let candidates: Vec<(&str, String)> = vec![
            ("null", "null".into()),
            ("a boolean", "true".into()),
            ("a number", "42".into()),
            ("a negative number", "-1".into()),
            ("a fraction", "1.5".into()),
            ("past u64", "18446744073709551616".into()),
            ("a string", "\"7\"".into()),
            ("an array", "[7]".into()),
            ("an object", "{\"a\": 1}".into()),
        ];
        for (what, raw) in candidates {
            let replacement: Value = serde_json::from_str(&raw).unwrap();
            let same_type = match (value, &replacement) {
                (Value::String(_), Value::String(_)) | (Value::Bool(_), Value::Bool(_)) => true,
                (Value::Number(_), Value::Number(n)) => n.as_u64().is_some(),
                (Value::Array(_), Value::Array(_)) => false,
                _ => false,
            };
            if same_type {
                continue;
            }
            let mut body = valid.clone();
            body[key] = replacement;
            push(
                format!("{key} as {what}"),
                body.to_string().into_bytes(),
                400,
                "validation_failed",
                Some(key.clone()),
            );
        }
        // A number too large for any JSON reader here.
        let huge = text.replacen(
            &format!("\"{key}\":{value}"),
            &format!("\"{key}\":1e400"),
            1,
        );
        push(format!("{key} as 1e400"), huge.into_bytes(), 400, "", None);
    }
    out
}

#[tokio::test]
async fn oversized_and_malformed_bodies_get_the_contract_4xx_and_write_nothing() {
    let api = start().await;
    let id = fixture(&api).await;
    let body_cases: Vec<Case> = cases().into_iter().filter(|c| c.body.is_some()).collect();
    assert_eq!(body_cases.len(), 8);
    let before = table(&api).await;
    let mut checked = 0;
    for case in &body_cases {
        let schema = spec(case.key).body.unwrap();
        for Malformed {
            name,
            bytes,
            status,
            code,
            field,
        } in malformed_bodies(case, &schema)
        {
            let got = call_raw(&api, case, &id, OWNER, Some(bytes)).await;
            let context = format!("{} with {name}", case.key);
            if code.is_empty() {
                // Out of every reader's range: not JSON to one, a wrong value to another.
                assert_eq!(got.status, 400, "{context}: {}", got.body);
                assert!(
                    matches!(got.code(), "invalid_json" | "validation_failed"),
                    "{context}"
                );
            } else {
                got.assert_error(status, code, &context);
            }
            if let Some(field) = field {
                let named = got.body["error"]["field"].as_str().unwrap_or_default();
                assert!(named.starts_with(&field), "{context}: field {named:?}");
            }
            checked += 1;
        }
        // Past API Gateway's own limit (10 MiB): refused before any function runs.
        let huge = vec![b' '; 10 * 1024 * 1024 + 1];
        let got = call_raw(&api, case, &id, OWNER, Some(huge)).await;
        assert_eq!(got.status, 413, "{}: over 10 MiB", case.key);
    }
    assert!(checked > 150, "{checked}");
    assert_eq!(table(&api).await, before, "a refused body wrote");

    // The valid bodies, padded to exactly 64 KiB, are taken: the refusals were the bodies.
    for case in &body_cases {
        let text = case.body.as_ref().unwrap().to_string();
        let exact = format!("{text}{}", " ".repeat(64 * 1024 - text.len()));
        let done = call_raw(&api, case, &id, OWNER, Some(exact.into_bytes())).await;
        assert_eq!(done.status, case.ok, "{}: {}", case.key, done.body);
    }
}

// ---- WebSocket frames ---------------------------------------------------------------------

/// Every WebSocket route with a valid frame on conversation `{id}` (`None` for a route without
/// a conversation).
fn ws_cases() -> Vec<(&'static str, Option<Value>)> {
    vec![
        ("ping", None),
        (
            "sendMessage",
            Some(
                json!({"action": "sendMessage", "conversationId": "{id}", "body": "over ws",
                        "clientMessageId": "ws-sec-1"}),
            ),
        ),
        (
            "markRead",
            Some(json!({"action": "markRead", "conversationId": "{id}", "seq": 2})),
        ),
        (
            "typing",
            Some(json!({"action": "typing", "conversationId": "{id}", "isTyping": true})),
        ),
    ]
}

fn frame_for(frame: &Value, id: &str) -> String {
    frame.to_string().replace("{id}", id)
}

/// Sends `text` as one message, in frames of at most 16 KB (API Gateway takes frames of up to
/// 32 KB and messages of up to 128 KB), and reads the answer.
async fn send_frame(socket: &mut Socket, text: String) -> Option<Value> {
    use tungstenite::protocol::frame::Frame;
    use tungstenite::protocol::frame::coding::{Data, OpCode};
    let bytes = text.into_bytes();
    let chunks: Vec<&[u8]> = bytes.chunks(16 * 1024).collect();
    if chunks.len() <= 1 {
        let text = String::from_utf8(bytes.clone()).unwrap();
        socket.send(Message::Text(text.into())).await.unwrap();
    } else {
        for (i, chunk) in chunks.iter().enumerate() {
            let opcode = OpCode::Data(if i == 0 { Data::Text } else { Data::Continue });
            let frame = Frame::message(chunk.to_vec(), opcode, i + 1 == chunks.len());
            socket.send(Message::Frame(frame)).await.unwrap();
        }
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    support::next_frame(socket, deadline).await
}

#[tokio::test]
async fn websocket_frames_from_a_non_member_or_of_the_wrong_shape_are_refused() {
    let api = start().await;
    let id = fixture(&api).await;
    let mut outsider = handshake(&api, &format!("ticket={}", ticket(&api, OUTSIDER).await))
        .await
        .unwrap();
    let before = table(&api).await;
    for (action, frame) in ws_cases() {
        let Some(frame) = frame else { continue };
        // A non-member: `not_found`, as for a conversation that does not exist.
        let answer = send_frame(&mut outsider, frame_for(&frame, &id))
            .await
            .unwrap();
        assert_eq!(
            (
                answer["type"].as_str(),
                answer["action"].as_str(),
                answer["error"]["code"].as_str()
            ),
            (Some("error"), Some(action), Some("not_found")),
            "{action} as an outsider: {answer}"
        );
        // Frames of the wrong shape.
        let valid = frame.as_object().unwrap().clone();
        let mut shapes: Vec<(String, String, &str)> = Vec::new();
        for (key, _) in valid.iter().filter(|(k, _)| *k != "action") {
            for wrong in [json!(null), json!([1]), json!({"a": 1}), json!(-1)] {
                let mut bad = Value::Object(valid.clone());
                bad[key] = wrong.clone();
                shapes.push((
                    format!("{key} = {wrong}"),
                    frame_for(&bad, &id),
                    "validation_failed",
                ));
            }
        }
        let mut unknown = Value::Object(valid.clone());
        unknown["senderId"] = json!(MEMBER);
        shapes.push((
            "an unknown field".into(),
            frame_for(&unknown, &id),
            "validation_failed",
        ));
        let mut big = Value::Object(valid.clone());
        big["padding"] = json!("x".repeat(70 * 1024));
        shapes.push((
            "over 64 KiB".into(),
            frame_for(&big, &id),
            "payload_too_large",
        ));
        for (name, text, code) in shapes {
            let answer = send_frame(&mut outsider, text).await.unwrap();
            assert_eq!(
                (answer["type"].as_str(), answer["error"]["code"].as_str()),
                (Some("error"), Some(code)),
                "{action} with {name}: {answer}"
            );
        }
    }
    // Not JSON, or no action a route knows: `unknown_action` from `$default`.
    for text in [
        "not json",
        "{\"action\": 7}",
        "[]",
        "{\"action\": \"sendMessage\"",
    ] {
        let answer = send_frame(&mut outsider, text.to_owned()).await.unwrap();
        assert_eq!(answer["error"]["code"], "unknown_action", "{text}");
    }
    assert_eq!(table(&api).await, before, "a refused frame wrote");
}

/// Findings of the review of the running API (issue 18, item 5), each failing before its fix.
mod review {
    use super::*;

    /// `me` always names the caller in the member routes, so it can be no user: a token whose
    /// `sub` is `me` is refused, and so is `me` as someone else's id.
    #[tokio::test]
    async fn the_word_me_is_no_user_id() {
        let api = LocalApi::start().await;
        let token = api.token("me", Some("Mallory"));
        let refused = api
            .request(Method::GET, "/me", &token)
            .send()
            .await
            .unwrap();
        assert_eq!(refused.status(), 401);
        api.sign_up(&[OWNER.to_owned()]).await;
        let (status, body) = api
            .call(
                Method::POST,
                "/conversations",
                OWNER,
                Some(json!({"participantIds": ["me"]})),
            )
            .await;
        assert_eq!(
            (status, body["error"]["field"].as_str()),
            (400, Some("participantIds[0]")),
            "{body}"
        );
    }

    /// Names read as written: an override of the reading order (U+202E), a name of nothing but
    /// invisible characters, and a name that differs from another only in normalization.
    #[tokio::test]
    async fn names_that_deceive_are_refused_and_names_are_kept_in_nfc() {
        let api = LocalApi::start().await;
        api.sign_up(&[OWNER.to_owned()]).await;
        for name in ["\u{202e}nimda", "\u{200b}\u{200b}", "\u{3164}"] {
            let (status, body) = api
                .call(
                    Method::PATCH,
                    "/me",
                    OWNER,
                    Some(json!({"displayName": name})),
                )
                .await;
            assert_eq!(
                (status, body["error"]["field"].as_str()),
                (400, Some("displayName")),
                "{name:?}"
            );
        }
        let (status, me) = api
            .call(
                Method::PATCH,
                "/me",
                OWNER,
                Some(json!({"displayName": "Ade\u{301}le"})),
            )
            .await;
        assert_eq!(
            (status, me["displayName"].as_str()),
            (200, Some("Ad\u{e9}le"))
        );
    }

    /// An unknown key is the client's text: not echoed (a newline or an escape sequence forged log
    /// lines; a 60 KB key made a 120 KB answer).
    #[tokio::test]
    async fn an_unknown_key_is_not_echoed() {
        let api = LocalApi::start().await;
        api.sign_up(&[OWNER.to_owned()]).await;
        let key = format!(
            "x\n2026-12-07T00:00:00Z INFO forged\u{1b}[31m{}",
            "k".repeat(60_000)
        );
        let token = api.token(OWNER, None);
        let resp = api
            .request(Method::PATCH, "/me", &token)
            .json(&json!({"displayName": "Ada", key: 1}))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 400);
        let text = resp.text().await.unwrap();
        assert!(text.len() < 1_000, "{} bytes", text.len());
        assert!(!text.contains("forged") && !text.contains("kkkk"), "{text}");
        let body: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(body["error"]["field"], "?");
    }

    /// The development token route answers pages of this machine only: a page of a site whose
    /// name resolves to 127.0.0.1 (DNS rebinding) sends its own `Host`.
    #[tokio::test]
    async fn the_token_route_answers_loopback_hosts_only() {
        let api = LocalApi::start().await;
        let url = format!("{}/_local/token?user=ada", api.url);
        let port = api.url.rsplit(':').next().unwrap().to_owned();
        for (host, status) in [
            (format!("127.0.0.1:{port}"), 200),
            (format!("localhost:{port}"), 200),
            (format!("evil.example:{port}"), 403),
            ("evil.example".to_owned(), 403),
        ] {
            let resp = api
                .http
                .get(&url)
                .header("host", &host)
                .send()
                .await
                .unwrap();
            assert_eq!(resp.status(), status, "{host}");
        }
    }

    /// API Gateway's WebSocket quotas: frames of at most 32 KB, messages of at most 128 KB; a
    /// client that sends more is disconnected.
    #[tokio::test]
    async fn frames_over_32_kb_end_the_connection() {
        let api = LocalApi::start().await;
        api.sign_up(&[OWNER.to_owned()]).await;
        let mut socket = api.socket(OWNER).await;
        let big = json!({"action": "ping", "pad": "x".repeat(33 * 1024)}).to_string();
        socket.send(Message::Text(big.into())).await.unwrap();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            match support::next_event(&mut socket, deadline).await {
                support::SocketEvent::Closed => break,
                support::SocketEvent::Quiet => panic!("the connection stayed open"),
                support::SocketEvent::Frame(frame) => {
                    assert_ne!(frame["type"], "pong", "the frame was served: {frame}");
                }
            }
        }
        // A small frame on a new connection is served.
        let mut socket = api.socket(OWNER).await;
        socket
            .send(Message::Text(json!({"action": "ping"}).to_string().into()))
            .await
            .unwrap();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        assert_eq!(
            support::next_frame(&mut socket, deadline).await,
            Some(json!({"type": "pong"}))
        );
    }
}

/// The typing limit opened an allowance (a Redis key) for any conversation id a client made up,
/// before checking membership: now a frame counts against the default limit first, and the typing
/// limit is keyed by conversations the user is in only.
#[tokio::test]
async fn typing_in_made_up_conversations_opens_no_allowance() {
    let redis = support::OwnRedis::start();
    let api = LocalApi::start_with(
        support::deps_with(support::fresh_store().await, redis.link(&[])).await,
    )
    .await;
    api.sign_up(&[OWNER.to_owned()]).await;
    let mut socket = api.socket(OWNER).await;
    for _ in 0..5 {
        let made_up = chat_shared::domain::ConversationId::generate();
        socket
            .send(Message::Text(
                json!({"action": "typing", "conversationId": made_up, "isTyping": true})
                    .to_string()
                    .into(),
            ))
            .await
            .unwrap();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        let answer = support::next_frame(&mut socket, deadline).await.unwrap();
        assert_eq!(answer["error"]["code"], "not_found", "{answer}");
    }
    let client = redis::Client::open(redis.url()).unwrap();
    let mut connection = client.get_multiplexed_async_connection().await.unwrap();
    let typing: Vec<String> = redis::AsyncCommands::keys(&mut connection, "*:typing")
        .await
        .unwrap();
    assert!(typing.is_empty(), "{typing:?}");
    let default: Vec<String> = redis::AsyncCommands::keys(&mut connection, "*:default")
        .await
        .unwrap();
    assert!(
        !default.is_empty(),
        "each frame counted against the default limit"
    );
}
