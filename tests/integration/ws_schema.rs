//! The WebSocket frames against `asyncapi.yaml`, the description of the WebSocket API.
//!
//! The document is read once. Its operations say who sends which message: a `receive`
//! operation's messages come from clients, its reply's and every `send` operation's messages from
//! the server. A frame is matched as API Gateway routes it: a client frame by `action` (a frame
//! whose `action` no message names is the `$default` route's), a server frame by `type`; where
//! several messages share that value (the two `ack`s, the two `error`s, a `message.*` event and its
//! truncated form) the frame must fit one of them. Payloads are JSON Schema (AsyncAPI's schema
//! format is a superset of draft 7), checked with formats.
//!
//! `support::next_frame` checks every frame a test reads from a socket here, so every WebSocket
//! test is also a check of the description.

use std::collections::BTreeSet;
use std::fmt;
use std::sync::OnceLock;

use serde_json::{Value, json};

/// Who sends a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Side {
    Client,
    Server,
}

impl Side {
    /// The field a frame of this side is routed on.
    fn key(self) -> &'static str {
        match self {
            Self::Client => "action",
            Self::Server => "type",
        }
    }
}

struct Message {
    /// The message's key under `components/messages`.
    name: String,
    side: Side,
    /// The values of the routing field this message's payload allows; `None`: any (`$default`).
    keys: Option<BTreeSet<String>>,
    validator: jsonschema::Validator,
    examples: Vec<Value>,
}

/// `asyncapi.yaml`, ready to check frames.
pub struct Description {
    messages: Vec<Message>,
}

impl fmt::Debug for Description {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(self.messages.iter().map(|m| (&m.name, m.side)))
            .finish()
    }
}

/// Why a frame does not fit the description: every violation, for every message it could be.
#[derive(Debug)]
pub struct Violations {
    side: Side,
    frame: String,
    reasons: Vec<String>,
}

impl Violations {
    pub fn reasons(&self) -> &[String] {
        &self.reasons
    }
}

impl fmt::Display for Violations {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let side = match self.side {
            Side::Client => "client",
            Side::Server => "server",
        };
        writeln!(f, "a {side} frame that asyncapi.yaml does not allow:")?;
        writeln!(f, "  {}", self.frame)?;
        for reason in &self.reasons {
            writeln!(f, "  - {reason}")?;
        }
        Ok(())
    }
}

/// The repository's `asyncapi.yaml`, loaded and compiled on first use.
pub fn description() -> &'static Description {
    static DESCRIPTION: OnceLock<Description> = OnceLock::new();
    DESCRIPTION.get_or_init(|| {
        let path = format!("{}/../asyncapi.yaml", env!("CARGO_MANIFEST_DIR"));
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
        Description::parse(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
    })
}

/// Checks a frame the server sent; the name of the message it is.
pub fn check_server_frame(frame: &Value) -> Result<&'static str, Violations> {
    description().check(Side::Server, frame)
}

/// Checks a frame a client sends; the name of the message it is.
pub fn check_client_frame(frame: &Value) -> Result<&'static str, Violations> {
    description().check(Side::Client, frame)
}

/// The target of a local `$ref` (`#/a/b`).
fn resolve<'a>(doc: &'a Value, reference: &str) -> Result<&'a Value, String> {
    reference
        .strip_prefix('#')
        .and_then(|pointer| doc.pointer(pointer))
        .ok_or_else(|| format!("$ref {reference} points nowhere"))
}

/// Follows `$ref`s from `reference` to an object that is not one; its pointer.
fn follow(doc: &Value, reference: &str) -> Result<String, String> {
    let mut at = reference.to_owned();
    for _ in 0..8 {
        match resolve(doc, &at)?.get("$ref").and_then(Value::as_str) {
            Some(next) => at = next.to_owned(),
            None => return Ok(at),
        }
    }
    Err(format!("$ref {reference}: too many hops"))
}

/// Every `$ref` in the document, each checked to resolve.
fn check_refs(doc: &Value, node: &Value, problems: &mut Vec<String>) {
    match node {
        Value::Object(map) => {
            for (key, value) in map {
                if key == "$ref" {
                    match value.as_str() {
                        Some(reference) => {
                            if let Err(problem) = resolve(doc, reference) {
                                problems.push(problem);
                            }
                        }
                        None => problems.push(format!("$ref {value} is not a string")),
                    }
                } else {
                    check_refs(doc, value, problems);
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|v| check_refs(doc, v, problems)),
        _ => {}
    }
}

/// The values a schema allows for `properties.<field>` (`const` or `enum`), through `$ref` and
/// `allOf`; `None` when it does not constrain the field.
fn allowed_values(doc: &Value, schema: &Value, field: &str) -> Option<BTreeSet<String>> {
    if let Some(reference) = schema.get("$ref").and_then(Value::as_str) {
        return allowed_values(doc, resolve(doc, reference).ok()?, field);
    }
    let own = schema
        .pointer(&format!("/properties/{field}"))
        .and_then(
            |property| match (property.get("const"), property.get("enum")) {
                (Some(Value::String(one)), _) => Some(BTreeSet::from([one.clone()])),
                (_, Some(Value::Array(many))) => Some(
                    many.iter()
                        .filter_map(Value::as_str)
                        .map(str::to_owned)
                        .collect(),
                ),
                _ => None,
            },
        );
    let parts = schema
        .get("allOf")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|part| allowed_values(doc, part, field));
    std::iter::once(own)
        .chain(parts)
        .flatten()
        .reduce(|a, b| a.intersection(&b).cloned().collect())
}

impl Description {
    /// Reads an AsyncAPI 3.0 document and compiles the payload of every message its operations
    /// name.
    pub fn parse(yaml: &str) -> Result<Self, String> {
        let doc: Value = serde_norway::from_str(yaml).map_err(|e| e.to_string())?;
        if doc["asyncapi"] != "3.0.0" {
            return Err(format!("asyncapi is {}, not 3.0.0", doc["asyncapi"]));
        }
        let mut problems = Vec::new();
        check_refs(&doc, &doc, &mut problems);
        if !problems.is_empty() {
            return Err(problems.join("; "));
        }

        // (message pointer, side), in the operations' order, each once.
        let mut sent: Vec<(String, Side)> = Vec::new();
        let operations = doc["operations"].as_object().ok_or("no operations")?;
        for (name, operation) in operations {
            let (asked, answered) = match operation["action"].as_str() {
                Some("receive") => (Side::Client, Side::Server),
                Some("send") => (Side::Server, Side::Server),
                other => return Err(format!("operation {name}: action {other:?}")),
            };
            let lists = [
                (asked, &operation["messages"]),
                (answered, &operation["reply"]["messages"]),
            ];
            for (side, list) in lists {
                for reference in list.as_array().into_iter().flatten() {
                    let reference = reference["$ref"]
                        .as_str()
                        .ok_or_else(|| format!("operation {name}: a message that is not a $ref"))?;
                    let pointer = follow(&doc, reference)?;
                    match sent.iter().find(|(p, _)| *p == pointer) {
                        Some((_, s)) if *s != side => {
                            return Err(format!("{pointer} is sent by both sides"));
                        }
                        Some(_) => {}
                        None => sent.push((pointer, side)),
                    }
                }
            }
        }
        // Every message of the channels is some operation's.
        for (channel, body) in doc["channels"].as_object().into_iter().flatten() {
            for (key, message) in body["messages"].as_object().into_iter().flatten() {
                let reference = message["$ref"]
                    .as_str()
                    .ok_or_else(|| format!("channel {channel}: message {key} is not a $ref"))?;
                let pointer = follow(&doc, reference)?;
                if !sent.iter().any(|(p, _)| *p == pointer) {
                    return Err(format!(
                        "channel {channel}: message {key} is in no operation"
                    ));
                }
            }
        }

        let mut messages = Vec::new();
        for (pointer, side) in sent {
            let name = pointer.rsplit('/').next().unwrap_or_default().to_owned();
            let message = resolve(&doc, &pointer)?;
            let payload = message
                .get("payload")
                .ok_or_else(|| format!("message {name} has no payload"))?;
            let keys = allowed_values(&doc, payload, side.key());
            if side == Side::Server && keys.is_none() {
                return Err(format!("server message {name} does not fix `type`"));
            }
            // The payload, with the document's components beside it for its `$ref`s.
            let root =
                json!({"$ref": format!("{pointer}/payload"), "components": doc["components"]});
            let validator = jsonschema::options()
                .with_draft(jsonschema::Draft::Draft7)
                .should_validate_formats(true)
                .build(&root)
                .map_err(|e| format!("message {name}: {e}"))?;
            let examples = message["examples"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|example| example.get("payload").cloned())
                .collect();
            messages.push(Message {
                name,
                side,
                keys,
                validator,
                examples,
            });
        }
        Ok(Self { messages })
    }

    /// Checks one frame of `side`: the name of the message it is, or every violation.
    pub fn check(&self, side: Side, frame: &Value) -> Result<&str, Violations> {
        let field = side.key();
        let value = frame.get(field).and_then(Value::as_str);
        let of_side = || self.messages.iter().filter(move |m| m.side == side);
        let mut candidates: Vec<&Message> = of_side()
            .filter(|m| {
                m.keys
                    .as_ref()
                    .is_some_and(|keys| value.is_some_and(|v| keys.contains(v)))
            })
            .collect();
        if candidates.is_empty() {
            // API Gateway's `$default`: what no route key matches.
            candidates = of_side().filter(|m| m.keys.is_none()).collect();
        }
        let violations = |reasons: Vec<String>| Violations {
            side,
            frame: abbreviated(&frame.to_string(), 600),
            reasons,
        };
        if candidates.is_empty() {
            let found = value.map_or_else(|| "no string".to_owned(), |v| format!("{v:?}"));
            return Err(violations(vec![format!(
                "`{field}` is {found}: no {side:?} message of asyncapi.yaml has it"
            )]));
        }
        let mut reasons = Vec::new();
        for candidate in &candidates {
            let errors: Vec<String> = candidate
                .validator
                .iter_errors(frame)
                .map(|error| {
                    let at = error.instance_path().to_string();
                    let at = if at.is_empty() { "(the frame)" } else { &at };
                    // A long value (a message body …) is named by its start, so that what
                    // is wrong with it stays in sight.
                    let value = error.instance().to_string();
                    let text = if value.len() > 80 {
                        let start = abbreviated(&value, 40);
                        error.masked_with(start).to_string()
                    } else {
                        error.to_string()
                    };
                    abbreviated(&format!("at {at}: {text}"), 400)
                })
                .collect();
            if errors.is_empty() {
                return Ok(&candidate.name);
            }
            let prefix = if candidates.len() > 1 {
                format!("as {}: ", candidate.name)
            } else {
                format!("{}: ", candidate.name)
            };
            reasons.extend(errors.into_iter().map(|e| format!("{prefix}{e}")));
        }
        Err(violations(reasons))
    }

    /// The names of the messages `side` sends.
    pub fn names(&self, side: Side) -> BTreeSet<&str> {
        self.messages
            .iter()
            .filter(|m| m.side == side)
            .map(|m| m.name.as_str())
            .collect()
    }

    /// Every message's examples: (side, name, payload).
    pub fn examples(&self) -> Vec<(Side, &str, &Value)> {
        self.messages
            .iter()
            .flat_map(|m| m.examples.iter().map(move |e| (m.side, m.name.as_str(), e)))
            .collect()
    }
}

fn abbreviated(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((cut, _)) => format!("{}… ({} bytes)", &text[..cut], text.len()),
        None => text.to_owned(),
    }
}

#[test]
fn asyncapi_yaml_names_every_frame_and_its_examples_fit() {
    let description = description();
    assert_eq!(
        description.names(Side::Client),
        BTreeSet::from(["ping", "sendMessage", "markRead", "typing", "unknownAction"]),
        "one client message per route of the WebSocket API, $default included"
    );
    // The server's messages are what `ws_contract` produces over real sockets, one by one.
    assert!(description.names(Side::Server).len() >= 15);
    let examples = description.examples();
    for (side, name, _) in &examples {
        assert!(!name.is_empty(), "{side:?}");
    }
    for (side, name) in description
        .messages
        .iter()
        .map(|m| (m.side, m.name.as_str()))
    {
        if name != "unknownAction" {
            assert!(
                examples.iter().any(|(_, n, _)| *n == name),
                "{side:?} message {name} has no example"
            );
        }
    }
    for (side, name, example) in examples {
        match description.check(side, example) {
            Ok(matched) => assert_eq!(matched, name, "the example of {name} reads as {matched}"),
            Err(violations) => panic!("the example of {name}: {violations}"),
        }
    }
}

#[test]
fn the_event_files_hold_the_frames_of_their_routes() {
    let dir = format!("{}/../events/websocket", env!("CARGO_MANIFEST_DIR"));
    let mut checked = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let event: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        let Some(body) = event["body"].as_str() else {
            continue;
        };
        let frame: Value = serde_json::from_str(body)
            .unwrap_or_else(|e| panic!("{}: body is not JSON: {e}", path.display()));
        let route = event["requestContext"]["routeKey"].as_str().unwrap();
        let expected = if route == "$default" {
            "unknownAction"
        } else {
            route
        };
        match check_client_frame(&frame) {
            Ok(name) => assert_eq!(name, expected, "{}", path.display()),
            Err(violations) => panic!("{}: {violations}", path.display()),
        }
        checked += 1;
    }
    assert!(
        checked >= 5,
        "ping, sendMessage, markRead, typing, $default: {checked}"
    );
}

#[test]
fn frames_that_break_the_description_are_refused_with_every_violation() {
    let id = "01JDQ7Z8K3M4N5P6Q7R8S9T0VW";
    let message = json!({"id": "01JDQ8A1B2C3D4E5F6G7H8J9KM", "conversationId": id, "seq": 1,
        "rev": 1, "kind": "text", "senderId": "ada", "body": "hi", "clientMessageId": "c1", "replyToSeq": null,
        "createdAt": "2026-11-25T13:14:50.123Z", "editedAt": null, "deleted": false,
        "reactions": {}});
    let good =
        json!({"type": "message.created", "conversationId": id, "rev": 1, "message": message});
    assert_eq!(check_server_frame(&good).unwrap(), "messageCreated");
    assert_eq!(
        check_server_frame(&json!({"type": "pong"})).unwrap(),
        "pong"
    );

    // Each wrong frame, and what its violations must name.
    let mut wrong_message = message.clone();
    wrong_message["seq"] = json!(0);
    wrong_message["createdAt"] = json!("yesterday");
    let mut unusual = message.clone();
    unusual["senderId"] = json!("a\u{1}b");
    unusual["createdAt"] = json!("2026-11-25T13:14:50Z");
    let mut tombstone_updated = message.clone();
    tombstone_updated["deleted"] = json!(true);
    let cases: Vec<(&str, Value, Vec<&str>)> = vec![
        (
            "missing required field",
            json!({"type": "read", "conversationId": id, "userId": "bob"}),
            vec!["\"lastReadSeq\" is a required property"],
        ),
        (
            "unknown type",
            json!({"type": "hello"}),
            vec!["`type` is \"hello\""],
        ),
        (
            "no type",
            json!({"message": "hi"}),
            vec!["`type` is no string"],
        ),
        (
            "wrong field type",
            json!({"type": "typing", "conversationId": id, "userId": "bob", "isTyping": "yes"}),
            vec!["at /isTyping", "boolean"],
        ),
        (
            "unexpected field",
            json!({"type": "pong", "extra": 1}),
            vec!["'extra'"],
        ),
        (
            "every violation of a nested object",
            json!({"type": "message.created", "conversationId": id, "rev": 1, "message": wrong_message}),
            vec!["at /message/seq", "at /message/createdAt"],
        ),
        (
            "a user id with a control character, a time without milliseconds",
            json!({"type": "message.created", "conversationId": id, "rev": 1, "message": unusual}),
            vec!["at /message/senderId", "at /message/createdAt"],
        ),
        (
            "a tombstone pushed as an update, with its body",
            json!({"type": "message.updated", "conversationId": id, "rev": 2, "message": tombstone_updated}),
            vec!["at /message/deleted", "at /message/body"],
        ),
        (
            "an ack that fits neither ack",
            json!({"type": "ack", "action": "markRead", "lastReadSeq": 1}),
            vec![
                "as markReadAck: at (the frame): \"unreadCount\" is a required property",
                "as sendMessageAck:",
            ],
        ),
        (
            "an error code the contract does not have",
            json!({"type": "error", "action": "sendMessage", "error": {"code": "oops", "message": "x"}}),
            vec!["as actionError: at /error/code"],
        ),
    ];
    for (case, frame, expected) in cases {
        let violations = match check_server_frame(&frame) {
            Ok(name) => panic!("{case}: accepted as {name}"),
            Err(violations) => violations.to_string(),
        };
        for needle in expected {
            assert!(
                violations.contains(needle),
                "{case}: no {needle:?} in\n{violations}"
            );
        }
    }

    let send = json!({"action": "sendMessage", "conversationId": id, "body": "hi", "clientMessageId": "c1"});
    assert_eq!(check_client_frame(&send).unwrap(), "sendMessage");
    let client_cases: Vec<(&str, Value, Vec<&str>)> = vec![
        (
            "missing fields",
            json!({"action": "sendMessage", "conversationId": id}),
            vec!["\"body\" is a required property", "\"clientMessageId\""],
        ),
        (
            "only whitespace, a bad id, a seq of 0",
            json!({"action": "sendMessage", "conversationId": id, "body": " \n ",
                   "clientMessageId": "has space", "replyToSeq": 0}),
            vec!["at /body", "at /clientMessageId", "at /replyToSeq"],
        ),
        (
            "a control character, too long",
            json!({"action": "sendMessage", "conversationId": id,
                   "body": format!("a\u{7}{}", "b".repeat(4000)), "clientMessageId": "c1"}),
            vec![
                "is not allowed for \"a\\u0007b",
                "longer than 4000 characters",
            ],
        ),
        (
            "not a ULID",
            json!({"action": "markRead", "conversationId": "conv-1", "seq": 1}),
            vec!["at /conversationId"],
        ),
        (
            "wrong type",
            json!({"action": "typing", "conversationId": id, "isTyping": 1}),
            vec!["at /isTyping"],
        ),
    ];
    for (case, frame, expected) in client_cases {
        let violations = match check_client_frame(&frame) {
            Ok(name) => panic!("{case}: accepted as {name}"),
            Err(violations) => violations,
        };
        let text = violations.to_string();
        assert!(!violations.reasons().is_empty());
        for needle in expected {
            assert!(text.contains(needle), "{case}: no {needle:?} in\n{text}");
        }
    }
    // API Gateway routes an unknown action to `$default`, as the description does.
    assert_eq!(
        check_client_frame(&json!({"action": "dance"})).unwrap(),
        "unknownAction"
    );
}
