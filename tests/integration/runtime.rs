//! Every compiled bootstrap under AWS's Runtime Interface Emulator (what `sam local invoke` runs
//! in its container), fed each of its `events/` files, with the environment `template.yaml` gives
//! the function pointed at the local stack and at a local gateway on its own port. Then the logs of
//! the whole run are scanned: JSON lines, the request id, metrics, and no token, ticket, secret
//! or message body anywhere.
//!
//! The bootstrap is `target/ci/chat-lambda` (the one binary of every function, which runs the
//! function `_HANDLER` names), or the one in
//! `CHAT_BOOTSTRAP_DIR`: tools/test.sh sets `CHAT_BOOTSTRAP_DIR=target/lambda`, so that CI runs
//! the release build of tools/build-release.sh, as it ships (fat LTO, `panic = "abort"`).

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::time::Duration;

use local_invoke::{Emulator, FunctionDef, Invocation};
use reqwest::Method;
use serde_json::{Value, json};

use crate::handlers::{EVENT_CONVERSATION, seed_event_group};
use crate::support::{self, LocalApi, Socket};

/// Each function and its event files, in the order they are invoked (later events act on what
/// earlier ones wrote). Every function of the template and every file in `events/` is here.
const CASES: &[(&str, &[&str])] = &[
    ("http-get-me", &["http/get-me.json"]),
    (
        "http-update-me",
        &["http/update-me.json", "http/update-me-invalid.json"],
    ),
    ("http-get-user", &["http/get-user.json"]),
    (
        "http-create-conversation",
        &["http/create-conversation.json", "http/create-group.json"],
    ),
    ("http-list-conversations", &["http/list-conversations.json"]),
    ("http-get-conversation", &["http/get-conversation.json"]),
    ("http-send-message", &["http/send-message.json"]),
    ("http-list-messages", &["http/list-messages.json"]),
    ("http-mark-read", &["http/mark-read.json"]),
    ("http-get-unread", &["http/get-unread.json"]),
    ("http-edit-message", &["http/edit-message.json"]),
    ("http-put-reaction", &["http/put-reaction.json"]),
    ("http-delete-reaction", &["http/delete-reaction.json"]),
    ("http-list-changes", &["http/list-changes.json"]),
    ("http-unsend-message", &["http/unsend-message.json"]),
    (
        "http-update-conversation",
        &["http/update-conversation.json"],
    ),
    (
        "http-update-conversation-settings",
        &["http/update-conversation-settings.json"],
    ),
    ("http-add-members", &["http/add-members.json"]),
    ("http-remove-member", &["http/remove-member.json"]),
    (
        "http-create-realtime-ticket",
        &["http/create-realtime-ticket.json"],
    ),
    (
        "ws-authorizer",
        &[
            "websocket/authorizer-ticket.json",
            "websocket/authorizer-token.json",
        ],
    ),
    ("ws-connect", &["websocket/connect.json"]),
    ("ws-ping", &["websocket/ping.json"]),
    ("ws-default", &["websocket/default.json"]),
    ("ws-send-message", &["websocket/send-message.json"]),
    ("ws-mark-read", &["websocket/mark-read.json"]),
    ("ws-typing", &["websocket/typing.json"]),
    ("ws-disconnect", &["websocket/disconnect.json"]),
    ("stream-publisher", &["stream/table-changes.json"]),
    ("stream-fan-out", &["stream/fan-out.json"]),
    ("stream-analytics", &["kinesis/analytics-events.json"]),
    ("rotate-cursor-keys", &["schedule/rotate-cursor-keys.json"]),
];

fn root() -> PathBuf {
    local_invoke::repository_root()
}

/// `<dir>/<binary>` (cargo's layout) or `<dir>/<binary>/bootstrap` (cargo lambda's).
fn bootstrap(binary: &str) -> PathBuf {
    let dir = std::env::var_os("CHAT_BOOTSTRAP_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join("target/ci"));
    let packaged = dir.join(binary).join("bootstrap");
    if packaged.is_file() {
        packaged
    } else {
        dir.join(binary)
    }
}

fn template_functions() -> Vec<FunctionDef> {
    let text = std::fs::read_to_string(root().join("template.yaml")).unwrap();
    local_invoke::functions(&text).unwrap()
}

fn event_files() -> BTreeSet<String> {
    let mut files = BTreeSet::new();
    // Every directory of events/, so that a new one cannot go unnoticed.
    let dirs = std::fs::read_dir(root().join("events")).unwrap();
    for dir in dirs.map(|d| d.unwrap().path()).filter(|d| d.is_dir()) {
        let name = dir.file_name().unwrap().to_string_lossy().into_owned();
        for entry in std::fs::read_dir(&dir).unwrap() {
            let file = entry.unwrap().file_name().into_string().unwrap();
            if file.ends_with(".json") {
                files.insert(format!("{name}/{file}"));
            }
        }
    }
    files
}

/// A `Handler` the binary does not know fails the start, with the name in the log, rather than
/// running some other function.
#[tokio::test]
async fn a_handler_the_binary_does_not_have_fails_the_start() {
    let log = std::env::temp_dir().join(support::unique_name("rie-unknown-handler"));
    let env = [
        ("_HANDLER", "http-no-such-route"),
        ("AWS_LAMBDA_FUNCTION_NAME", "http-no-such-route"),
        ("AWS_REGION", "us-east-1"),
    ]
    .map(|(name, value)| (name.to_owned(), value.to_owned()));
    let emulator = Emulator::start(
        &local_invoke::emulator_path().unwrap(),
        &bootstrap("chat-lambda"),
        &env,
        &log,
    )
    .await
    .unwrap();
    let invocation = emulator.invoke(b"{}").await;
    let printed = emulator.stop().await.unwrap();
    let failed = match &invocation {
        Ok(answer) => {
            answer.status >= 500 || answer.json().is_some_and(|a| a.get("errorType").is_some())
        }
        Err(_) => true,
    };
    assert!(failed, "the start did not fail: {invocation:?}");
    assert!(
        printed.contains("_HANDLER names no function of this binary: http-no-such-route"),
        "{printed}"
    );
}

#[test]
fn every_function_and_every_event_file_has_a_runtime_case() {
    let functions: BTreeSet<String> = template_functions()
        .into_iter()
        .map(|f| f.handler)
        .collect();
    let cased: BTreeSet<String> = CASES.iter().map(|(f, _)| (*f).to_owned()).collect();
    assert_eq!(functions, cased, "template functions vs runtime cases");
    let events: BTreeSet<String> = CASES
        .iter()
        .flat_map(|(_, e)| e.iter().map(|s| (*s).to_owned()))
        .collect();
    assert_eq!(event_files(), events, "events/ files vs runtime cases");
}

/// The local stack's value of each variable the template gives a function.
struct LocalValues {
    values: BTreeMap<&'static str, String>,
    extra: Vec<(String, String)>,
    functions: std::sync::Arc<local_gateway::server::Gateway>,
}

impl LocalValues {
    /// `redis_url`: another Redis than the gateway's IAM front of the stack's.
    fn new(api: &LocalApi, table: &str, stream: &str, redis_url: Option<&str>) -> Self {
        let door = api.gateway.functions.door();
        let redis = |name: &str| door.redis_value(name).unwrap();
        let values = BTreeMap::from([
            ("TABLE_NAME", table.to_owned()),
            ("EVENT_STREAM_NAME", stream.to_owned()),
            ("EVENT_STREAM_RETENTION_HOURS", "24".to_owned()),
            (
                "REDIS_URL",
                redis_url.map_or_else(|| redis("REDIS_URL"), str::to_owned),
            ),
            // Each bootstrap signs its IAM token with its own credentials (the door's).
            ("REDIS_IAM_USER", redis("REDIS_IAM_USER")),
            ("REDIS_IAM_CACHE", redis("REDIS_IAM_CACHE")),
            (
                "AWS_ENDPOINT_URL_APIGATEWAYMANAGEMENTAPI",
                format!("{}/local", api.url),
            ),
            ("JWT_ISSUER", local_gateway::issuer::LOCAL_ISSUER.to_owned()),
            (
                "JWT_AUDIENCE",
                local_gateway::issuer::LOCAL_AUDIENCE.to_owned(),
            ),
        ]);
        let mut extra: Vec<(String, String)> = vec![(
            "AWS_REGION".to_owned(),
            std::env::var("AWS_REGION").unwrap(),
        )];
        // The application clock's offset, when the suite runs with one, as every process has it.
        if let Ok(offset) = std::env::var(chat_shared::platform::time::Clock::OFFSET_ENV) {
            extra.push((
                chat_shared::platform::time::Clock::OFFSET_ENV.to_owned(),
                offset,
            ));
        }
        extra.extend([
            ("AWS_EC2_METADATA_DISABLED".to_owned(), "true".to_owned()),
            // The issuer's keys by discovery, from the document the gateway serves for it.
            (
                "OIDC_DISCOVERY_URL".to_owned(),
                format!("{}{}", api.url, local_gateway::issuer::DISCOVERY_PATH),
            ),
            // Rate-limit keys of this run only.
            (
                "REDIS_KEY_PREFIX".to_owned(),
                format!("{}:", support::unique_name("rie")),
            ),
        ]);
        Self {
            values,
            extra,
            functions: api.gateway.clone(),
        }
    }

    /// The template's variables, and the function's own credentials and endpoints: the gateway's
    /// IAM proxy, as that function.
    fn environment(&self, function: &FunctionDef) -> Vec<(String, String)> {
        let mut extra = self.extra.clone();
        extra.extend(
            self.functions
                .functions
                .door()
                .sdk_environment(&function.handler),
        );
        local_invoke::environment(function, |name| self.values.get(name).cloned(), &extra).unwrap()
    }
}

/// Warm emulators by function, started on first use, and everything they printed.
struct Functions {
    defs: Vec<FunctionDef>,
    local: LocalValues,
    running: BTreeMap<String, Emulator>,
    logs: BTreeMap<String, String>,
    dir: PathBuf,
}

impl Functions {
    fn new(local: LocalValues) -> Self {
        let dir = std::env::temp_dir().join(support::unique_name("rie-logs"));
        std::fs::create_dir_all(&dir).unwrap();
        Self {
            defs: template_functions(),
            local,
            running: BTreeMap::new(),
            logs: BTreeMap::new(),
            dir,
        }
    }

    async fn invoke(&mut self, handler: &str, event: &Value) -> Invocation {
        if !self.running.contains_key(handler) {
            let def = self.defs.iter().find(|d| d.handler == handler).unwrap();
            let emulator = Emulator::start(
                &local_invoke::emulator_path().unwrap(),
                &bootstrap(&def.binary),
                &self.local.environment(def),
                &self.dir.join(format!("{handler}.log")),
            )
            .await
            .unwrap();
            self.running.insert(handler.to_owned(), emulator);
        }
        let invocation = self.running[handler]
            .invoke(event.to_string().as_bytes())
            .await
            .unwrap();
        assert_eq!(
            invocation.status,
            200,
            "{handler}: the emulator answered {} {}",
            invocation.status,
            String::from_utf8_lossy(&invocation.body)
        );
        invocation
    }

    async fn stop_all(&mut self) {
        for (handler, emulator) in std::mem::take(&mut self.running) {
            self.logs.insert(handler, emulator.stop().await.unwrap());
        }
    }
}

fn event_file(name: &str) -> Value {
    let text = std::fs::read_to_string(root().join("events").join(name)).unwrap();
    serde_json::from_str(&text).unwrap()
}

/// An HTTP function's answer: status and JSON body.
fn http_answer(invocation: &Invocation) -> (u64, Value) {
    let answer = invocation.json().unwrap();
    assert!(
        answer.get("errorType").is_none(),
        "the handler failed: {answer}"
    );
    let status = answer["statusCode"].as_u64().unwrap();
    let body = answer["body"]
        .as_str()
        .map(|b| serde_json::from_str(b).unwrap_or(Value::Null))
        .unwrap_or(Value::Null);
    (status, body)
}

/// The statuses the HTTP events must get, in `CASES` order, on the seeded group.
fn expected_status(event: &str) -> u64 {
    match event {
        "http/update-me-invalid.json" => 400,
        "http/create-conversation.json"
        | "http/create-group.json"
        | "http/send-message.json"
        | "http/create-realtime-ticket.json" => 201,
        "http/remove-member.json" => 204,
        _ => 200,
    }
}

/// The next frame that matches, within a few seconds (each frame checked against asyncapi.yaml).
async fn frame(socket: &mut Socket, what: impl Fn(&Value) -> bool) -> Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let frame = support::next_frame(socket, deadline)
            .await
            .expect("the expected frame in time");
        if what(&frame) {
            return frame;
        }
    }
}

#[tokio::test]
async fn every_bootstrap_answers_its_events_under_the_runtime_interface_emulator() {
    // The gateway's IAM stands between every bootstrap and the emulators: each signs as itself
    // and is held to its role, the stream being the stack's `EventStream`.
    let (api, stream) =
        LocalApi::start_with_event_stream(support::fresh_deps().await, "rie-events").await;
    let deps = &api.gateway.deps;
    seed_event_group(deps).await;
    let table = deps.store.table().to_string();
    let local = LocalValues::new(&api, &table, &stream, None);
    let mut functions = Functions::new(local);

    // Secrets and bodies that must never reach a log line.
    let mut secrets: Vec<String> = Vec::new();
    let mut ticket = String::new();

    for (handler, events) in CASES.iter().filter(|(b, _)| b.starts_with("http-")) {
        for name in *events {
            let event = event_file(name);
            if let Some(body) = event["body"].as_str().filter(|b| b.contains("\"body\"")) {
                let body: Value = serde_json::from_str(body).unwrap();
                secrets.push(body["body"].as_str().unwrap().to_owned());
            }
            let (status, body) = http_answer(&functions.invoke(handler, &event).await);
            assert_eq!(status, expected_status(name), "{name}: {body}");
            match *name {
                "http/send-message.json" => assert_eq!(body["seq"], 1),
                "http/list-messages.json" => {
                    assert_eq!(body["items"][0]["body"], "See you at the station at 9")
                }
                "http/edit-message.json" => assert_eq!(body["rev"], 2),
                "http/unsend-message.json" => assert_eq!(body["deleted"], true),
                "http/update-me-invalid.json" => {
                    assert_eq!(body["error"]["code"], "validation_failed")
                }
                "http/create-realtime-ticket.json" => {
                    ticket = body["ticket"].as_str().unwrap().to_owned();
                }
                _ => {}
            }
        }
    }
    // What the HTTP functions wrote is what the in-process services read.
    let (_, page) = api
        .call(
            Method::GET,
            &format!("/conversations/{EVENT_CONVERSATION}"),
            "ada",
            None,
        )
        .await;
    assert_eq!(page["title"], "Renamed trip");

    // The authorizer: the ticket from the ticket function lets ada in once; a token of the local
    // issuer (served by the gateway's JWKS) too.
    let token = api.token("ada", Some("Ada"));
    secrets.extend([ticket.clone(), token.clone()]);
    for (name, placeholder, credential) in [
        (
            "websocket/authorizer-ticket.json",
            "REPLACE-WITH-A-TICKET-FROM-POST-realtime-tickets",
            &ticket,
        ),
        (
            "websocket/authorizer-token.json",
            "REPLACE-WITH-A-JWT",
            &token,
        ),
    ] {
        let event = event_file(name)
            .to_string()
            .replace(placeholder, credential);
        let event: Value = serde_json::from_str(&event).unwrap();
        let answer = functions
            .invoke("ws-authorizer", &event)
            .await
            .json()
            .unwrap();
        assert_eq!(answer["principalId"], "ada", "{name}: {answer}");
        assert_eq!(
            answer["policyDocument"]["Statement"][0]["Effect"], "Allow",
            "{name}"
        );
    }
    let replayed = event_file("websocket/authorizer-ticket.json")
        .to_string()
        .replace("REPLACE-WITH-A-TICKET-FROM-POST-realtime-tickets", &ticket);
    let answer = functions
        .invoke("ws-authorizer", &serde_json::from_str(&replayed).unwrap())
        .await
        .json()
        .unwrap();
    assert_ne!(
        answer["principalId"], "ada",
        "a ticket works once: {answer}"
    );

    // A real socket of ada's on the gateway: the WebSocket events are pointed at its connection,
    // so what the bootstraps post to @connections arrives at a real client.
    let mut socket = api.socket("ada").await;
    let ada = "ada".parse().unwrap();
    let connections = chat_shared::services::connections::of_user(&deps.store, &ada)
        .await
        .unwrap();
    assert_eq!(connections.len(), 1);
    let connection_id = connections[0].connection_id.clone();

    for (handler, events) in CASES.iter().filter(|(b, _)| b.starts_with("ws-")) {
        if *handler == "ws-authorizer" {
            continue;
        }
        for name in *events {
            let mut event = event_file(name);
            // $connect and $disconnect act on the event's own connection, the rest on the socket's.
            if !matches!(*handler, "ws-connect" | "ws-disconnect") {
                event["requestContext"]["connectionId"] = json!(connection_id);
            }
            if let Some(body) = event["body"].as_str().map(str::to_owned) {
                let body: Value = serde_json::from_str(&body).unwrap();
                if let Some(text) = body["body"].as_str() {
                    secrets.push(text.to_owned());
                }
            }
            let answer = functions.invoke(handler, &event).await.json().unwrap();
            assert!(answer.get("errorType").is_none(), "{name}: {answer}");
            assert_eq!(answer["statusCode"], 200, "{name}: {answer}");
            // A message route's answer is its response's body (the route is two-way: API
            // Gateway sends it back on the frame's connection).
            let answered = || -> Value {
                serde_json::from_str(answer["body"].as_str().unwrap_or_default())
                    .unwrap_or_else(|e| panic!("{name}: no answer ({e}): {answer}"))
            };
            match *handler {
                "ws-ping" => assert_eq!(answered(), json!({"type": "pong"}), "{name}"),
                "ws-default" => {
                    assert_eq!(answered()["error"]["code"], "unknown_action", "{name}");
                }
                "ws-send-message" | "ws-mark-read" => {
                    let ack = answered();
                    assert_eq!(ack["type"], "ack", "{name}: {ack}");
                }
                "ws-typing" => assert!(answer.get("body").is_none(), "{name}: {answer}"),
                _ => {}
            }
        }
    }

    // The fan-out pushes the sample batch (bob typing) to ada's socket.
    let answer = functions
        .invoke("stream-fan-out", &event_file("stream/fan-out.json"))
        .await
        .json()
        .unwrap();
    assert_eq!(answer["batchItemFailures"], json!([]), "{answer}");
    let typing = frame(&mut socket, |f| {
        f["type"] == "typing" && f["userId"] == "bob"
    })
    .await;
    assert_eq!(typing["isTyping"], true, "{typing}");

    // The stream publisher turns the sample batch into CloudEvents on the stream.
    let answer = functions
        .invoke("stream-publisher", &event_file("stream/table-changes.json"))
        .await
        .json()
        .unwrap();
    assert_eq!(answer["batchItemFailures"], json!([]), "{answer}");
    let records = support::Pipeline::reader(support::kinesis().await, stream)
        .wait_for(1, 10)
        .await;
    assert!(!records.is_empty(), "events on the stream");

    // The analytics consumer counts the sample batch (one event delivered twice) into the table.
    let answer = functions
        .invoke(
            "stream-analytics",
            &event_file("kinesis/analytics-events.json"),
        )
        .await
        .json()
        .unwrap();
    assert_eq!(answer["batchItemFailures"], json!([]), "{answer}");
    let day = "2026-11-25".parse().unwrap();
    let report = chat_shared::services::analytics::report(&deps.store, day)
        .await
        .unwrap();
    assert_eq!(
        (
            report.messages,
            report.active_senders,
            report.new_conversations
        ),
        (3, 2, 1),
        "{report:?}"
    );

    // The scheduled rotation of the cursor keys that http-list-conversations made: the key it
    // made is kept as previous, and neither key may reach a log line.
    let read_keys = || async {
        deps.store
            .get::<chat_shared::adapters::cursor_keys::CursorKeysItem>(
                &chat_shared::adapters::store::keys::cursor_keys(),
                chat_shared::adapters::store::Consistency::Strong,
            )
            .await
            .unwrap()
            .expect("http-list-conversations made the cursor keys")
    };
    let made = read_keys().await;
    let answer = functions
        .invoke(
            "rotate-cursor-keys",
            &event_file("schedule/rotate-cursor-keys.json"),
        )
        .await
        .json()
        .unwrap();
    assert!(answer["rotatedAt"].is_string(), "{answer}");
    let rotated = read_keys().await;
    assert_eq!(rotated.previous.as_deref(), Some(made.current.as_str()));
    assert_ne!(rotated.current, made.current);

    functions.stop_all().await;
    secrets.extend([made.current, rotated.current]);
    scan_logs(&functions.logs, &secrets);
}

/// The logs of the whole run, function by function: every line is JSON or Lambda's own (the
/// emulator's, `START`/`END`/`REPORT`); every line written during an invocation carries that
/// invocation's request id; metrics are Embedded Metric Format; and no secret or message body
/// appears anywhere.
fn scan_logs(logs: &BTreeMap<String, String>, secrets: &[String]) {
    let metrics = check_lines(logs, secrets);
    let metric = |handler: &str, name: &str| {
        metrics
            .get(&(handler.to_owned(), name.to_owned()))
            .copied()
            .unwrap_or(0)
    };
    assert_eq!(
        metric("http-send-message", "MessagesSent"),
        1,
        "{metrics:?}"
    );
    assert_eq!(metric("ws-send-message", "MessagesSent"), 1, "{metrics:?}");
    // Pushes are the fan-out's (bob's typing to ada's socket); a route answers in its response
    // and pushes nothing.
    assert!(
        metric("stream-fan-out", "PushesDelivered") >= 1,
        "{metrics:?}"
    );
    for route in ["http-send-message", "ws-send-message", "ws-ping"] {
        assert_eq!(metric(route, "PushesDelivered"), 0, "{route}: {metrics:?}");
    }
    assert_eq!(
        metric("stream-analytics", "EventsCounted"),
        4,
        "{metrics:?}"
    );
}

/// The line checks of [`scan_logs`]; the metrics' totals by function and name.
fn check_lines(
    logs: &BTreeMap<String, String>,
    secrets: &[String],
) -> BTreeMap<(String, String), u64> {
    let mut metrics: BTreeMap<(String, String), u64> = BTreeMap::new();
    for (handler, text) in logs {
        for secret in secrets.iter().filter(|s| !s.is_empty()) {
            assert!(
                !text.contains(secret.as_str()),
                "{handler}'s log contains a secret or a message body ({} chars)",
                secret.len()
            );
        }
        let lines: Vec<&str> = text.lines().collect();
        // The last platform line: after it, only the bootstrap's exit when the emulator stops
        // (the runtime API's connection closes under it), which Lambda never shows.
        let last_report = lines
            .iter()
            .rposition(|l| l.starts_with("REPORT RequestId: "));
        // The invocation a line is written in: from the emulator's INVOKE START to END.
        let mut invocation: Option<String> = None;
        let mut invoked = 0;
        for (n, line) in lines.iter().enumerate() {
            if let Some(rest) = line.split("(rapid) INVOKE START(requestId: ").nth(1) {
                invocation = Some(rest.trim_end_matches(')').to_owned());
                invoked += 1;
                continue;
            }
            if line.starts_with("END RequestId: ") {
                invocation = None;
                continue;
            }
            if !line.starts_with('{') {
                let platform = line.starts_with("START RequestId: ")
                    || line.starts_with("REPORT RequestId: ")
                    || is_emulator_line(line);
                let shutdown = last_report.is_some_and(|r| n > r) && line.starts_with("Error: ");
                assert!(
                    platform || shutdown,
                    "{handler}: a line that is neither JSON nor Lambda's own: {line}"
                );
                continue;
            }
            let value: Value = serde_json::from_str(line)
                .unwrap_or_else(|e| panic!("{handler}: a line that is not JSON ({e}): {line}"));
            if let Some(directive) = value["_aws"]["CloudWatchMetrics"][0].as_object() {
                let name = directive["Metrics"][0]["Name"].as_str().unwrap();
                assert_eq!(value["Function"], handler.as_str(), "{line}");
                *metrics
                    .entry((handler.clone(), name.to_owned()))
                    .or_default() += value[name].as_u64().unwrap();
                continue;
            }
            assert!(value["level"].is_string(), "{handler}: {line}");
            if let Some(request) = &invocation {
                assert_eq!(
                    value["span"]["requestId"].as_str(),
                    Some(request.as_str()),
                    "{handler}: a line written during an invocation carries its request id: {line}"
                );
            }
        }
        assert!(invoked > 0, "{handler} was invoked");
    }
    metrics
}

#[tokio::test]
async fn a_bootstrap_with_redis_down_still_answers_and_counts_the_degradation() {
    let api = LocalApi::start().await;
    let deps = &api.gateway.deps;
    let table = deps.store.table().to_string();
    // Nothing listens on port 9 (discard) here: Redis is down from the start.
    let local = LocalValues::new(&api, &table, "unused", Some("redis://127.0.0.1:9"));
    let mut functions = Functions::new(local);
    let (status, body) = http_answer(
        &functions
            .invoke("http-get-me", &event_file("http/get-me.json"))
            .await,
    );
    assert_eq!(
        (status, body["userId"].as_str()),
        (200, Some("ada")),
        "{body}"
    );
    functions.stop_all().await;
    let degraded: Vec<Value> = functions.logs["http-get-me"]
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v["Dependency"] == "redis")
        .collect();
    assert!(
        !degraded.is_empty() && degraded.iter().all(|v| v["DependencyDegraded"] == 1),
        "{:?}",
        functions.logs["http-get-me"]
    );
}

/// A line the Runtime Interface Emulator writes itself: `07 Dec 2026 01:47:49,840 [INFO] (rapid) …`.
fn is_emulator_line(line: &str) -> bool {
    line.split_once(" (rapid) ").is_some_and(|(head, _)| {
        head.len() == "07 Dec 2026 01:47:49,840 [INFO]".len()
            || head.ends_with("[WARNING]")
            || head.ends_with("[ERROR]")
            || head.ends_with("[DEBUG]")
    }) && line.as_bytes().first().is_some_and(u8::is_ascii_digit)
}

/// The scan can fail: synthetic logs as the emulator writes them, each with one fault.
#[test]
fn the_log_scan_refuses_text_lines_and_lines_without_their_request_id() {
    let good = "07 Dec 2026 01:47:49,840 [INFO] (rapid) exec 'x'\n\
        START RequestId: r1 Version: $LATEST\n\
        {\"level\":\"INFO\",\"message\":\"at init\"}\n\
        07 Dec 2026 01:47:49,961 [INFO] (rapid) INVOKE START(requestId: r1)\n\
        {\"level\":\"INFO\",\"message\":\"m\",\"span\":{\"requestId\":\"r1\"}}\n\
        END RequestId: r1\n\
        REPORT RequestId: r1\tDuration: 1 ms\n\
        Error: hyper_util::client::legacy::Error(SendRequest)\n";
    let logs = |text: &str| BTreeMap::from([("f".to_owned(), text.to_owned())]);
    check_lines(&logs(good), &[]);
    let faults = [
        (
            "a text line",
            good.replace("{\"level\":\"INFO\",\"message\":\"m\"", "INFO m {\"x\":1"),
        ),
        (
            "another request's id",
            good.replace("{\"requestId\":\"r1\"}", "{\"requestId\":\"r0\"}"),
        ),
        (
            "no request id",
            good.replace(",\"span\":{\"requestId\":\"r1\"}", ""),
        ),
        (
            "an error line before the end",
            good.replace("END RequestId: r1\n", "Error: boom\nEND RequestId: r1\n"),
        ),
        ("a secret", good.replace("at init", "s3cret")),
    ];
    for (fault, text) in faults {
        let caught = std::panic::catch_unwind(|| check_lines(&logs(&text), &["s3cret".to_owned()]));
        assert!(caught.is_err(), "{fault} passed the scan");
    }
}
