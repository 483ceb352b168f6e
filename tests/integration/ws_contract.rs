//! Every server message of `asyncapi.yaml`, made to happen over real sockets against the local
//! gateway: each frame read is checked against the description (`support::next_frame`), and the
//! test ends by comparing the messages seen with every message the description says the server
//! sends, so a message added to either side without the other fails here.

use std::collections::BTreeSet;
use std::time::Duration;

use futures::SinkExt;
use reqwest::Method;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

use crate::support::{self, LocalApi, Socket};
use crate::ws_schema::{self, Side};
use chat_shared::services::delivery::PushEvent;

/// The description's name of every frame read.
#[derive(Debug, Default)]
struct Seen(BTreeSet<&'static str>);

impl Seen {
    /// The next frame that matches, skipping (and recording) others.
    async fn expect(&mut self, socket: &mut Socket, what: impl Fn(&Value) -> bool) -> Value {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            match support::next_frame(socket, deadline).await {
                Some(frame) => {
                    // next_frame has checked it; this names the message it is.
                    let name = ws_schema::check_server_frame(&frame).unwrap();
                    self.0.insert(name);
                    if what(&frame) {
                        return frame;
                    }
                }
                None => assert!(
                    tokio::time::Instant::now() < deadline,
                    "the expected frame in time"
                ),
            }
        }
    }
}

fn typed(kind: &'static str) -> impl Fn(&Value) -> bool {
    move |v| v["type"] == kind
}

/// Sends a client frame, first checked to be the description's `message` (`None` for a frame
/// that is wrong on purpose).
async fn send(socket: &mut Socket, frame: Value, message: Option<&str>) {
    match (ws_schema::check_client_frame(&frame), message) {
        (Ok(name), Some(expected)) => assert_eq!(name, expected),
        (Err(_), None) => {}
        (outcome, expected) => panic!("{frame}: {outcome:?}, expected {expected:?}"),
    }
    socket
        .send(Message::Text(frame.to_string().into()))
        .await
        .unwrap();
}

#[tokio::test]
async fn every_server_message_of_asyncapi_yaml_arrives_valid_over_real_sockets() {
    let api = LocalApi::start().await;
    api.sign_up(&["ada".into(), "bob".into(), "cy".into()])
        .await;
    let (mut a, mut b, mut c) = (
        api.socket("ada").await,
        api.socket("bob").await,
        api.socket("cy").await,
    );
    let mut seen = Seen::default();

    let id = api.group("ada", &["bob"]).await;
    let conv = format!("/conversations/{id}");
    seen.expect(&mut a, typed("conversation.created")).await;
    seen.expect(&mut b, typed("conversation.created")).await;

    send(&mut a, json!({"action": "ping"}), Some("ping")).await;
    seen.expect(&mut a, typed("pong")).await;

    let frame = json!({"action": "sendMessage", "conversationId": id, "body": "hello",
                       "clientMessageId": "w1"});
    send(&mut a, frame, Some("sendMessage")).await;
    let ack = seen.expect(&mut a, typed("ack")).await;
    assert_eq!(ack["action"], "sendMessage");
    seen.expect(&mut b, typed("message.created")).await;

    // Failed actions: a wrong frame, and frames about a conversation cy is not in.
    let frame = json!({"action": "sendMessage", "conversationId": id, "body": " ",
                       "clientMessageId": "w2"});
    send(&mut a, frame, None).await;
    let error = seen.expect(&mut a, typed("error")).await;
    assert_eq!(
        (
            error["error"]["code"].as_str(),
            error["clientMessageId"].as_str()
        ),
        (Some("validation_failed"), Some("w2"))
    );
    let read = json!({"action": "markRead", "conversationId": id, "seq": 1});
    send(&mut c, read, Some("markRead")).await;
    let error = seen.expect(&mut c, typed("error")).await;
    assert_eq!(
        (error["action"].as_str(), error["error"]["code"].as_str()),
        (Some("markRead"), Some("not_found"))
    );
    let typing = json!({"action": "typing", "conversationId": id, "isTyping": true});
    send(&mut c, typing, Some("typing")).await;
    let error = seen.expect(&mut c, typed("error")).await;
    assert_eq!(
        (error["action"].as_str(), error["error"]["code"].as_str()),
        (Some("typing"), Some("not_found"))
    );

    // What no route takes.
    send(&mut a, json!({"action": "dance"}), Some("unknownAction")).await;
    let error = seen.expect(&mut a, typed("error")).await;
    assert_eq!(error["error"]["code"], "unknown_action");
    a.send(Message::Text("not json".into())).await.unwrap();
    let error = seen.expect(&mut a, typed("error")).await;
    assert_eq!(error["error"]["code"], "unknown_action");

    let read = json!({"action": "markRead", "conversationId": id, "seq": 1});
    send(&mut b, read, Some("markRead")).await;
    let ack = seen.expect(&mut b, typed("ack")).await;
    assert_eq!(ack["action"], "markRead");
    seen.expect(&mut a, typed("read")).await;

    let typing = json!({"action": "typing", "conversationId": id, "isTyping": true});
    send(&mut b, typing, Some("typing")).await;
    seen.expect(&mut a, typed("typing")).await;

    // Edits, reactions and unsends over HTTP.
    let (status, _) = api
        .call(
            Method::PATCH,
            &format!("{conv}/messages/1"),
            "ada",
            Some(json!({"body": "edited"})),
        )
        .await;
    assert_eq!(status, 200);
    let edited = seen.expect(&mut b, typed("message.updated")).await;
    assert_eq!(edited["message"]["body"], "edited");
    let reaction = format!("{conv}/messages/1/reactions/%F0%9F%91%8D");
    let (status, _) = api.call(Method::PUT, &reaction, "bob", None).await;
    assert_eq!(status, 200);
    // ada's socket heard her own edit first (an HTTP write reaches all the writer's sockets).
    let reacted = seen
        .expect(&mut a, |v| {
            v["type"] == "message.updated" && v["message"]["reactions"] != json!({})
        })
        .await;
    assert_eq!(reacted["message"]["reactions"], json!({"👍": ["bob"]}));
    let (status, _) = api
        .call(Method::DELETE, &format!("{conv}/messages/1"), "ada", None)
        .await;
    assert_eq!(status, 200);
    seen.expect(&mut b, typed("message.deleted")).await;

    let (status, _) = api
        .call(
            Method::PATCH,
            &conv,
            "bob",
            Some(json!({"title": "Renamed"})),
        )
        .await;
    assert_eq!(status, 200);
    seen.expect(&mut a, typed("conversation.updated")).await;

    let (status, _) = api
        .call(
            Method::POST,
            &format!("{conv}/members"),
            "bob",
            Some(json!({"userIds": ["cy"]})),
        )
        .await;
    assert_eq!(status, 200);
    seen.expect(&mut a, typed("member.added")).await;
    seen.expect(&mut c, typed("conversation.created")).await;
    let (status, _) = api
        .call(Method::DELETE, &format!("{conv}/members/cy"), "ada", None)
        .await;
    assert_eq!(status, 204);
    seen.expect(&mut c, typed("member.removed")).await;
    seen.expect(&mut a, typed("member.removed")).await;

    // A message event over 32 KiB goes out truncated. No message the limits allow is that large
    // by its body (4,000 characters), so this one is made here and posted as the fan-out posts
    // every push (`fit`).
    let big = chat_shared::services::messages::Message {
        id: ulid::Ulid::new().to_string().parse().unwrap(),
        conversation_id: id.parse().unwrap(),
        seq: 7,
        rev: 9,
        kind: chat_shared::services::messages::model::MessageKind::Text,
        sender_id: Some("ada".parse().unwrap()),
        body: "x".repeat(40 * 1024),
        client_message_id: Some("big".parse().unwrap()),
        reply_to_seq: None,
        created_at: support::clock().now(),
        edited_at: None,
        deleted: false,
        reactions: Default::default(),
    };
    let bob = ["bob".parse().unwrap()];
    let event = chat_shared::services::delivery::message_event(PushEvent::MessageUpdated, &big);
    api.gateway
        .deps
        .pusher
        .fan_out(&api.gateway.deps.store, &bob, &event, |_, _| false)
        .await
        .unwrap();
    let truncated = seen.expect(&mut b, |v| v["truncated"] == true).await;
    assert_eq!(
        (truncated["seq"].as_u64(), truncated["rev"].as_u64()),
        (Some(7), Some(9))
    );

    let described = ws_schema::description().names(Side::Server);
    assert_eq!(
        seen.0, described,
        "every server message of asyncapi.yaml, and nothing else, was seen"
    );
}

/// The check in `support::next_frame` can fail: a frame that breaks the description, posted to a
/// real socket, fails the test that reads it, naming what is wrong.
#[tokio::test]
async fn a_frame_that_breaks_the_description_fails_the_test_that_reads_it() {
    let api = LocalApi::start().await;
    api.sign_up(&["ada".into()]).await;
    let mut socket = api.socket("ada").await;
    let store = &api.gateway.deps.store;
    let records = chat_shared::services::connections::of_user(store, &"ada".parse().unwrap())
        .await
        .unwrap();
    let wrong = json!({"type": "read", "conversationId": "01JDQ7Z8K3M4N5P6Q7R8S9T0VW",
                       "userId": "bob", "lastReadSeq": "1"});
    api.gateway
        .deps
        .pusher
        .post(&records[0].connection_id, &wrong)
        .await
        .unwrap();
    let reader = tokio::spawn(async move {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        support::next_frame(&mut socket, deadline).await
    });
    let panic = reader.await.unwrap_err().into_panic();
    let message = panic.downcast_ref::<String>().cloned().unwrap_or_default();
    assert!(
        message.contains("at /lastReadSeq") && message.contains("integer"),
        "{message}"
    );
}
