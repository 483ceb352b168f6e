//! WebSocket events (`shared/src/edge/ws.rs`): a frame's body of any bytes is read with the HTTP
//! routes' rules (413, `invalid_json`, `validation_failed`), and the caller comes from the
//! authorizer's context only when it holds a user id.

use aws_lambda_events::event::apigw::ApiGatewayWebsocketProxyRequest;
use proptest::prelude::*;
use serde::Deserialize;
use serde_json::{Value, json};

use super::{CASES, cases, json_value, text_near};
use crate::domain::error::ApiError;
use crate::edge::http::MAX_BODY_BYTES;
use crate::edge::ws;

/// The shape of a `sendMessage` frame (the function's own type is private to it).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[allow(dead_code, reason = "fields are read by the deserializer only")]
struct SendFrame {
    action: String,
    conversation_id: crate::domain::ConversationId,
    body: crate::domain::MessageBody,
    client_message_id: crate::domain::ClientMessageId,
    #[serde(default)]
    reply_to_seq: Option<u64>,
}

fn sample() -> Value {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../events/websocket/send-message.json"
    );
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn event(edit: impl FnOnce(&mut Value)) -> ApiGatewayWebsocketProxyRequest {
    let mut event = sample();
    edit(&mut event);
    serde_json::from_value(event).unwrap()
}

proptest! {
    #![proptest_config(cases(CASES))]

    #[test]
    fn any_frame_body_is_a_frame_or_the_http_routes_error(
        body in prop_oneof![
            any::<String>(),
            json_value(&["action", "conversationId", "body", "clientMessageId", "replyToSeq"]).prop_map(|v| v.to_string()),
            (MAX_BODY_BYTES - 4..MAX_BODY_BYTES + 4).prop_map(|n| format!("{{}}{}", " ".repeat(n - 2))),
        ],
        absent in any::<bool>(),
    ) {
        let request = event(|e| e["body"] = if absent { Value::Null } else { json!(body) });
        let text = if absent { "" } else { body.as_str() };
        match ws::frame::<SendFrame>(&request) {
            Ok(_) => prop_assert!(text.len() <= MAX_BODY_BYTES),
            Err(ApiError::PayloadTooLarge) => prop_assert!(text.len() > MAX_BODY_BYTES),
            Err(ApiError::InvalidJson) => prop_assert!(serde_json::from_str::<Value>(text).is_err()),
            Err(ApiError::Validation(_)) => prop_assert!(serde_json::from_str::<Value>(text).is_ok()),
            Err(other) => prop_assert!(false, "{}", other),
        }
    }

    #[test]
    fn the_caller_comes_from_the_authorizer_context(
        user_id in proptest::option::of(prop_oneof![text_near(256), text_near(4).prop_map(|s| json!(s).to_string())]),
        principal in proptest::option::of(text_near(6)),
        other in proptest::option::of(json_value(&["userId"])),
    ) {
        let request = event(|e| {
            let mut context = json!({"integrationLatency": 3});
            if let Some(u) = &user_id {
                context["userId"] = json!(u);
            }
            if let Some(p) = &principal {
                context["principalId"] = json!(p);
            }
            if let Some(o) = &other {
                context["other"] = o.clone();
            }
            e["requestContext"]["authorizer"] = context;
        });
        let valid = |s: &str| super::user_id_allowed(s);
        // `userId`, else the principal; never anything that is not a user id.
        let expected = match (&user_id, &principal) {
            (Some(u), _) => Some(u.clone()).filter(|u| valid(u)),
            (None, Some(p)) => Some(p.clone()).filter(|p| valid(p)),
            (None, None) => None,
        };
        prop_assert_eq!(ws::user(&request).map(String::from), expected.clone());
        let caller = ws::caller(&request);
        prop_assert_eq!(caller.map(|(u, c)| (String::from(u), c.to_owned())), expected.map(|u| (u, "Jk3eAcX1IAMCJ2Q=".to_owned())));
    }
}

/// No authorizer context at all, or no connection id: no caller, no panic.
#[test]
fn events_without_context_have_no_caller() {
    let bare = event(|e| {
        e["requestContext"]
            .as_object_mut()
            .unwrap()
            .remove("authorizer");
    });
    assert_eq!(ws::user(&bare), None);
    let unconnected = event(|e| {
        e["requestContext"]
            .as_object_mut()
            .unwrap()
            .remove("connectionId");
    });
    assert!(ws::caller(&unconnected).is_none());
    assert!(ws::user(&unconnected).is_some());
}
