//! The HTTP adapter (`shared/src/edge/http.rs`) and the routes' request types: `parse_json` on any
//! bytes and any JSON, the path and query helpers, the caller from the authorizer's claims.

use std::collections::HashMap;

use lambda_http::RequestExt;
use proptest::prelude::*;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use super::{CASES, cases, json_value, text_near};
use crate::domain::UserId;
use crate::domain::error::ApiError;
use crate::edge::http::{self as adapter, MAX_BODY_BYTES, parse_json};
use crate::services::conversations::{
    AddMembers, CreateConversation, ListParams, MemberTarget, SettingsChanges, TitleChange,
};
use crate::services::messages::{EditMessage, HistoryParams, MarkRead, SendMessage};
use crate::services::profiles::ProfileChanges;

/// Every request body of the contract, by route, with the fields it takes.
const BODIES: &[(&str, &[&str])] = &[
    ("PATCH /me", &["displayName", "avatarUrl"]),
    (
        "POST /conversations",
        &["participantIds", "kind", "title", "clientRequestId"],
    ),
    ("PATCH /conversations/{id}", &["title"]),
    ("PATCH /conversations/{id}/settings", &["muted", "archived"]),
    ("POST /conversations/{id}/members", &["userIds"]),
    (
        "POST /conversations/{id}/messages",
        &["body", "clientMessageId", "replyToSeq"],
    ),
    ("PATCH /conversations/{id}/messages/{seq}", &["body"]),
    ("POST /conversations/{id}/read", &["seq"]),
];

const ALL_KEYS: &[&str] = &[
    "displayName",
    "avatarUrl",
    "participantIds",
    "kind",
    "title",
    "clientRequestId",
    "muted",
    "archived",
    "userIds",
    "body",
    "clientMessageId",
    "replyToSeq",
    "seq",
];

/// A marker in string values: no error message may echo a value (messages are logged).
const MARKER: &str = "zq9";

/// What `parse_json` must answer for these bytes, whatever the target type: 413 over 64 KiB,
/// `invalid_json` for what is not JSON, `validation_failed` without a field for JSON that is not
/// an object, and for an object either the value or `validation_failed` naming a field that the
/// object has or the type needs. Never anything else, never a value echoed in the message.
fn expect_outcome<T: DeserializeOwned>(bytes: &[u8], keys: &[&str]) -> Result<(), TestCaseError> {
    let result = parse_json::<T>(bytes);
    if let Err(error) = &result {
        prop_assert!(
            matches!(error.status(), 400 | 413),
            "{}: {}",
            error.status(),
            error
        );
        prop_assert!(!error.to_string().contains(MARKER), "echoed: {}", error);
    }
    if bytes.len() > MAX_BODY_BYTES {
        prop_assert!(matches!(result, Err(ApiError::PayloadTooLarge)));
        return Ok(());
    }
    let Ok(value) = serde_json::from_slice::<Value>(bytes) else {
        prop_assert!(matches!(result, Err(ApiError::InvalidJson)));
        return Ok(());
    };
    let Value::Object(map) = value else {
        prop_assert!(
            matches!(&result, Err(ApiError::Validation(v)) if v.field.is_none()),
            "{:?}",
            result.err()
        );
        return Ok(());
    };
    match result {
        Ok(_) => {
            for key in map.keys() {
                prop_assert!(keys.contains(&key.as_str()), "accepted unknown {}", key);
            }
        }
        Err(ApiError::Validation(v)) => {
            // The field is a key of the object, or a path into one, or a field the type needs;
            // a key that is not a plain name is never echoed: it is `?`.
            let field = v.field.clone().unwrap_or_default();
            let plain = |k: &&str| {
                (1..=64).contains(&k.len())
                    && k.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
            };
            let names = map
                .keys()
                .map(String::as_str)
                .filter(plain)
                .chain(keys.iter().copied())
                .chain(std::iter::once("?"));
            let named = names.into_iter().any(|k| {
                field == k
                    || field
                        .strip_prefix(k)
                        .is_some_and(|rest| rest.starts_with(['.', '[']))
            });
            prop_assert!(named, "field {:?} of {:?}", field, map);
        }
        Err(other) => prop_assert!(false, "{}", other),
    }
    Ok(())
}

/// [`expect_outcome`] for the request type of `route`.
fn expect_for_route(route: &str, bytes: &[u8]) -> Result<(), TestCaseError> {
    let keys = BODIES
        .iter()
        .find(|(r, _)| *r == route)
        .map(|(_, k)| *k)
        .unwrap_or_default();
    match route {
        "PATCH /me" => expect_outcome::<ProfileChanges>(bytes, keys),
        "POST /conversations" => expect_outcome::<CreateConversation>(bytes, keys),
        "PATCH /conversations/{id}" => expect_outcome::<TitleChange>(bytes, keys),
        "PATCH /conversations/{id}/settings" => expect_outcome::<SettingsChanges>(bytes, keys),
        "POST /conversations/{id}/members" => expect_outcome::<AddMembers>(bytes, keys),
        "POST /conversations/{id}/messages" => expect_outcome::<SendMessage>(bytes, keys),
        "PATCH /conversations/{id}/messages/{seq}" => expect_outcome::<EditMessage>(bytes, keys),
        "POST /conversations/{id}/read" => expect_outcome::<MarkRead>(bytes, keys),
        other => {
            prop_assert!(false, "no request type for {}", other);
            Ok(())
        }
    }
}

fn route() -> impl Strategy<Value = &'static str> {
    prop::sample::select(BODIES.iter().map(|(r, _)| *r).collect::<Vec<_>>())
}

/// Bytes that are sometimes JSON: random bytes, JSON-ish text, text with invalid UTF-8.
fn body_bytes() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..64),
        "[\\[\\]{}\":,0-9a-z \\\\-]{0,40}".prop_map(String::into_bytes),
        json_value(ALL_KEYS).prop_map(|v| {
            let mut bytes = v.to_string().into_bytes();
            bytes.push(b'}');
            bytes
        }),
        (
            json_value(ALL_KEYS),
            any::<u8>(),
            any::<prop::sample::Index>()
        )
            .prop_map(|(v, b, i)| {
                let mut bytes = v.to_string().into_bytes();
                let at = i.index(bytes.len() + 1);
                bytes.insert(at, b);
                bytes
            }),
    ]
}

/// A JSON object with some of a route's fields and sometimes others, values of any type, string
/// values carrying [`MARKER`].
fn object_for(keys: &'static [&'static str]) -> impl Strategy<Value = Value> {
    let value = prop_oneof![
        3 => json_value(ALL_KEYS),
        1 => "[a-z]{0,6}".prop_map(|s| json!(format!("{MARKER}{s}"))),
        1 => proptest::collection::vec("[a-z]{0,6}".prop_map(|s| json!(format!("{MARKER}{s}"))), 0..3).prop_map(Value::Array),
    ];
    let key = prop_oneof![
        4 => prop::sample::select(keys.to_vec()).prop_map(str::to_owned),
        1 => prop::sample::select(ALL_KEYS.to_vec()).prop_map(str::to_owned),
        1 => "[a-zA-Z]{1,10}",
    ];
    proptest::collection::btree_map(key, value, 0..5)
        .prop_map(|m| Value::Object(m.into_iter().collect()))
}

/// A request whose only path parameter is `name` = `value`.
fn with_path(name: &str, value: &str) -> lambda_http::Request {
    lambda_http::Request::default()
        .with_path_parameters(HashMap::from([(name.to_owned(), value.to_owned())]))
}

/// The sample `GET /me` event with these claims.
fn request_with_claims(claims: &HashMap<String, String>) -> lambda_http::Request {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../events/http/get-me.json");
    let mut event: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    event["requestContext"]["authorizer"]["jwt"]["claims"] = json!(claims);
    lambda_http::request::from_str(&event.to_string()).unwrap()
}

fn query_of(pairs: &[(String, String)]) -> impl Fn(&str) -> Option<String> + '_ {
    |name| {
        pairs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    }
}

fn query_pairs(names: &'static [&'static str]) -> impl Strategy<Value = Vec<(String, String)>> {
    let value = prop_oneof![
        "[0-9]{1,3}",
        "[+-]?[0-9]{1,25}",
        Just("true".to_owned()),
        Just("false".to_owned()),
        text_near(100),
        any::<String>(),
    ];
    proptest::collection::vec(
        (
            prop::sample::select(names.to_vec()).prop_map(str::to_owned),
            value,
        ),
        0..5,
    )
}

/// `^\+?[0-9]+$` read as a number: what Rust's unsigned parse accepts, no more.
fn decimal(raw: &str) -> Option<u128> {
    let digits = raw.strip_prefix('+').unwrap_or(raw);
    if digits.is_empty() || !digits.chars().all(|c| c.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

proptest! {
    #![proptest_config(cases(CASES))]

    #[test]
    fn any_bytes_get_413_invalid_json_or_validation_failed(route in route(), bytes in body_bytes()) {
        expect_for_route(route, &bytes)?;
    }

    #[test]
    fn any_json_object_is_a_value_or_names_its_culprit(
        (route, object) in route().prop_flat_map(|r| {
            let keys = BODIES.iter().find(|(k, _)| *k == r).map(|(_, k)| *k).unwrap_or_default();
            (Just(r), object_for(keys))
        })
    ) {
        expect_for_route(route, object.to_string().as_bytes())?;
    }

    #[test]
    fn deep_nesting_is_refused_without_overflowing(depth in 1..4_000usize, object in any::<bool>(), route in route()) {
        let (open, close) = if object { (r#"{"body":"#, "}") } else { ("[", "]") };
        let text = format!("{}1{}", open.repeat(depth), close.repeat(depth));
        expect_for_route(route, text.as_bytes())?;
        prop_assert!(parse_json::<SendMessage>(text.as_bytes()).is_err());
    }

    #[test]
    fn the_size_limit_is_64_kib_of_bytes(pad in (MAX_BODY_BYTES - 40)..=(MAX_BODY_BYTES + 8), wide in any::<bool>()) {
        // Padding inside the value (multi-byte or not) or around the object: the limit counts bytes.
        let valid = json!({"body": "hello", "clientMessageId": "c-1"}).to_string();
        let text = if wide {
            let body = "é".repeat(pad.saturating_sub(40) / 2);
            json!({"body": "x", "clientMessageId": "c-1", "extra": body}).to_string()
        } else {
            format!("{valid}{}", " ".repeat(pad.saturating_sub(valid.len())))
        };
        let result = parse_json::<SendMessage>(text.as_bytes());
        if text.len() > MAX_BODY_BYTES {
            prop_assert!(matches!(result, Err(ApiError::PayloadTooLarge)));
        } else if wide {
            prop_assert!(matches!(&result, Err(ApiError::Validation(v)) if v.field.as_deref() == Some("extra")));
        } else {
            prop_assert!(result.is_ok());
        }
    }

    #[test]
    fn a_valid_send_is_read_as_sent_and_one_unknown_field_is_named(
        body in "[a-zA-Z0-9 ]{0,20}[a-z][\\n a-z]{0,20}",
        cmid in "[A-Za-z0-9_-]{1,64}",
        reply in proptest::option::of(1..u64::MAX),
        extra in "[a-zA-Z]{1,12}",
    ) {
        let mut value = json!({"body": body, "clientMessageId": cmid});
        if let Some(reply) = reply {
            value["replyToSeq"] = json!(reply);
        }
        let sent: SendMessage = parse_json(value.to_string().as_bytes()).unwrap();
        prop_assert_eq!(sent.body.as_str(), body.as_str());
        prop_assert_eq!(sent.client_message_id.as_str(), cmid.as_str());
        prop_assert_eq!(sent.reply_to_seq, reply);
        if !["body", "clientMessageId", "replyToSeq"].contains(&extra.as_str()) {
            value[extra.as_str()] = json!(true);
            match parse_json::<SendMessage>(value.to_string().as_bytes()) {
                Err(ApiError::Validation(v)) => prop_assert_eq!(v.field, Some(extra)),
                other => prop_assert!(false, "{:?}", other.map(|_| ())),
            }
        }
    }

    #[test]
    fn path_ids_are_conversations_or_404(raw in prop_oneof![
        "[0-7][0-9A-HJKMNP-TV-Za-z]{25}",
        "[0-9A-Za-z]{25,27}",
        text_near(26),
    ]) {
        match adapter::conversation_id(&with_path("id", &raw)) {
            Ok(id) => prop_assert_eq!(Some(id), raw.parse().ok()),
            Err(error) => {
                prop_assert!(matches!(error, ApiError::NotFound), "{}", error);
                prop_assert!(raw.parse::<crate::domain::ConversationId>().is_err());
            }
        }
    }

    #[test]
    fn path_seqs_are_positive_integers_or_404(raw in prop_oneof![
        "[+-]?[0-9]{1,22}",
        Just(u64::MAX.to_string()),
        Just("18446744073709551616".to_owned()),
        text_near(4),
    ]) {
        let expected = decimal(&raw).and_then(|n| u64::try_from(n).ok()).filter(|n| *n >= 1);
        match adapter::message_seq(&with_path("seq", &raw)) {
            Ok(seq) => prop_assert_eq!(Some(seq), expected),
            Err(error) => {
                prop_assert!(matches!(error, ApiError::NotFound), "{}", error);
                prop_assert_eq!(expected, None);
            }
        }
    }

    #[test]
    fn path_emoji_are_reactions_or_400_naming_emoji(raw in prop_oneof![
        prop::sample::select(emojis::iter().map(|e| e.as_str().to_owned()).collect::<Vec<_>>()),
        text_near(2),
    ]) {
        match adapter::emoji(&with_path("emoji", &raw)) {
            Ok(emoji) => prop_assert_eq!(emoji.as_str(), raw.as_str()),
            Err(ApiError::Validation(v)) => prop_assert_eq!(v.field.as_deref(), Some("emoji")),
            Err(other) => prop_assert!(false, "{}", other),
        }
        // A missing parameter is a 400 naming it, never a panic.
        let missing = adapter::emoji(&lambda_http::Request::default());
        prop_assert!(matches!(missing, Err(ApiError::Validation(v)) if v.field.as_deref() == Some("emoji")));
    }

    #[test]
    fn the_caller_is_the_sub_claim_when_it_is_a_user_id(
        sub in proptest::option::of(prop_oneof![text_near(256), text_near(4)]),
        others in proptest::collection::hash_map("[a-z_]{1,8}", any::<String>(), 0..4),
    ) {
        let mut claims = others;
        claims.remove("sub");
        if let Some(sub) = &sub {
            claims.insert("sub".to_owned(), sub.clone());
        }
        let request = request_with_claims(&claims);
        let valid = sub.as_deref().filter(|s| super::user_id_allowed(s));
        match adapter::caller(&request) {
            Ok(caller) => prop_assert_eq!(Some(caller.user_id.as_str()), valid),
            Err(adapter::Unauthorized) => prop_assert_eq!(valid, None),
        }
        // A request without any authorizer context is the gateway's 401, never a panic.
        prop_assert!(adapter::caller(&lambda_http::Request::default()).is_err());
    }

    #[test]
    fn inbox_query_parameters(pairs in query_pairs(&["limit", "cursor", "q", "archived", "other"])) {
        let get = query_of(&pairs);
        match ListParams::parse(&get) {
            Ok(params) => {
                prop_assert!((1..=100).contains(&params.limit.get()));
                prop_assert_eq!(params.archived, get("archived").as_deref() == Some("true"));
                prop_assert!(matches!(get("archived").as_deref(), None | Some("true" | "false")));
                prop_assert!(get("q").is_none_or(|q| q.chars().count() <= 100));
                prop_assert!(params.q.is_none_or(|q| !q.is_empty() && q == q.trim()));
                prop_assert_eq!(params.cursor, get("cursor"));
            }
            Err(ApiError::Validation(v)) => {
                prop_assert!(matches!(v.field.as_deref(), Some("limit" | "q" | "archived")), "{:?}", v);
            }
            Err(other) => prop_assert!(false, "{}", other),
        }
    }

    #[test]
    fn history_query_parameters(pairs in query_pairs(&["limit", "beforeSeq", "afterSeq", "other"])) {
        let get = query_of(&pairs);
        let seq = |name: &str| get(name).map(|raw| decimal(&raw).and_then(|n| u64::try_from(n).ok()));
        let limit_ok = get("limit").is_none_or(|l| decimal(&l).is_some_and(|n| (1..=100).contains(&n)));
        let (before, after) = (seq("beforeSeq"), seq("afterSeq"));
        let valid = limit_ok
            && before.is_none_or(|s| s.is_some())
            && after.is_none_or(|s| s.is_some())
            && !(before.is_some() && after.is_some());
        match HistoryParams::parse(&get) {
            Ok(params) => {
                prop_assert!(valid, "{:?} accepted as {:?}", pairs, params);
                let expected = match (before.flatten(), after.flatten()) {
                    (Some(b), None) => Some(b),
                    (None, Some(a)) => Some(a),
                    _ => None,
                };
                let got = match params {
                    HistoryParams::Before(b, _) => Some(b),
                    HistoryParams::After(a, _) => Some(a),
                    HistoryParams::Newest(_) => None,
                };
                prop_assert_eq!(got, expected);
            }
            Err(ApiError::Validation(v)) => {
                prop_assert!(!valid, "{:?} refused: {:?}", pairs, v);
                prop_assert!(matches!(v.field.as_deref(), Some("limit" | "beforeSeq" | "afterSeq")), "{:?}", v);
            }
            Err(other) => prop_assert!(false, "{}", other),
        }
    }

    #[test]
    fn member_targets(raw in prop_oneof![Just("me".to_owned()), Just("ada".to_owned()), text_near(256), text_near(3)]) {
        let caller: UserId = "ada".parse().unwrap();
        match MemberTarget::parse(&raw, &caller) {
            Ok(MemberTarget::Me) => prop_assert!(raw == "me" || raw == "ada"),
            Ok(MemberTarget::Other(user)) => {
                prop_assert_eq!(user.as_str(), raw.as_str());
                prop_assert!(raw != "me" && raw != "ada");
            }
            Err(ApiError::Validation(v)) => {
                prop_assert_eq!(v.field.as_deref(), Some("userId"));
                prop_assert!(raw.parse::<UserId>().is_err());
            }
            Err(other) => prop_assert!(false, "{}", other),
        }
    }
}

/// A body of `]` or `}` nested far past serde's recursion limit: refused, and no stack overflow
/// (the default thread stack of a Lambda is what runs this).
#[test]
fn a_megabyte_of_nesting_is_refused_without_overflowing() {
    for open in ["[", r#"{"a":"#] {
        let text = open.repeat(60_000);
        assert!(matches!(
            parse_json::<SendMessage>(text.as_bytes()),
            Err(ApiError::PayloadTooLarge | ApiError::InvalidJson)
        ));
        let within = open.repeat(MAX_BODY_BYTES / open.len());
        assert!(matches!(
            parse_json::<SendMessage>(within.as_bytes()),
            Err(ApiError::InvalidJson)
        ));
    }
}
