//! Push fan-out with real WebSocket clients against the local gateway: every write reaches every
//! connection of every member concerned, gone connections are pruned, a reconnecting client
//! catches up, a removed member hears nothing more.

use std::collections::BTreeMap;
use std::time::Duration;

use futures::SinkExt;
use reqwest::Method;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

use crate::support::{self, LocalApi, Socket};

/// The next frame that matches, skipping others (events may arrive in any order). Every frame
/// read, skipped or not, is checked against `asyncapi.yaml` by `support::next_frame`.
async fn expect(socket: &mut Socket, what: impl Fn(&Value) -> bool) -> Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        match support::next_frame(socket, deadline).await {
            Some(value) if what(&value) => return value,
            Some(_) => {}
            None => assert!(
                tokio::time::Instant::now() < deadline,
                "the expected frame in time"
            ),
        }
    }
}

/// Nothing matching arrives for a while, on a socket that stays open (a closed socket would be
/// silent for the wrong reason). Frames that do arrive are checked against `asyncapi.yaml`.
async fn silent(socket: &mut Socket, what: impl Fn(&Value) -> bool) {
    let until = tokio::time::Instant::now() + Duration::from_millis(800);
    loop {
        match support::next_event(socket, until).await {
            support::SocketEvent::Frame(value) => {
                if let Err(violations) = crate::ws_schema::check_server_frame(&value) {
                    panic!("{violations}");
                }
                assert!(!what(&value), "unexpected {value}");
            }
            support::SocketEvent::Quiet => return,
            support::SocketEvent::Closed => panic!("the socket closed: its silence proves nothing"),
        }
    }
}

fn typed(kind: &'static str) -> impl Fn(&Value) -> bool {
    move |v| v["type"] == kind
}

#[tokio::test]
async fn http_and_websocket_sends_reach_every_socket_and_the_sender_gets_its_ack() {
    let api = LocalApi::start().await;
    api.sign_up(&["ada".into(), "bob".into()]).await;
    let (mut a1, mut a2, mut b1) = (
        api.socket("ada").await,
        api.socket("ada").await,
        api.socket("bob").await,
    );
    let id = api.group("ada", &["bob"]).await;
    for s in [&mut a1, &mut a2, &mut b1] {
        let created = expect(s, typed("conversation.created")).await;
        assert_eq!(created["conversation"]["id"], id.as_str());
    }

    api.call(
        Method::POST,
        &format!("/conversations/{id}/messages"),
        "ada",
        Some(json!({"body": "over http", "clientMessageId": "h1"})),
    )
    .await;
    for s in [&mut a1, &mut a2, &mut b1] {
        let event = expect(s, typed("message.created")).await;
        assert_eq!(
            (event["message"]["body"].as_str(), event["rev"].as_u64()),
            (Some("over http"), Some(1))
        );
    }

    let frame = json!({"action": "sendMessage", "conversationId": id, "body": "over ws", "clientMessageId": "w1"});
    a1.send(Message::Text(frame.to_string().into()))
        .await
        .unwrap();
    let ack = expect(&mut a1, typed("ack")).await;
    assert_eq!(
        (
            ack["action"].as_str(),
            ack["clientMessageId"].as_str(),
            ack["message"]["seq"].as_u64()
        ),
        (Some("sendMessage"), Some("w1"), Some(2))
    );
    silent(&mut a1, |v| {
        v["type"] == "message.created" && v["message"]["seq"] == 2
    })
    .await;
    for s in [&mut a2, &mut b1] {
        assert_eq!(
            expect(s, typed("message.created")).await["message"]["body"],
            "over ws"
        );
    }

    // A failed action answers an error with the contract's code.
    let bad = json!({"action": "sendMessage", "conversationId": id, "body": " ", "clientMessageId": "w2"});
    a1.send(Message::Text(bad.to_string().into()))
        .await
        .unwrap();
    let error = expect(&mut a1, typed("error")).await;
    assert_eq!(
        (
            error["error"]["code"].as_str(),
            error["clientMessageId"].as_str()
        ),
        (Some("validation_failed"), Some("w2"))
    );

    // markRead over WebSocket: an ack, and a read event to the members.
    let read = json!({"action": "markRead", "conversationId": id, "seq": 2});
    b1.send(Message::Text(read.to_string().into()))
        .await
        .unwrap();
    let ack = expect(&mut b1, typed("ack")).await;
    assert_eq!(
        (ack["lastReadSeq"].as_u64(), ack["unreadCount"].as_u64()),
        (Some(2), Some(0))
    );
    let event = expect(&mut a2, typed("read")).await;
    assert_eq!(
        (event["userId"].as_str(), event["lastReadSeq"].as_u64()),
        (Some("bob"), Some(2))
    );
}

#[tokio::test]
async fn every_kind_of_change_arrives_as_the_contract_event() {
    let api = LocalApi::start().await;
    api.sign_up(&["ada".into(), "bob".into(), "cy".into()])
        .await;
    let mut b = api.socket("bob").await;
    let id = api.group("ada", &["bob"]).await;
    let c = format!("/conversations/{id}");
    api.call(
        Method::POST,
        &format!("{c}/messages"),
        "ada",
        Some(json!({"body": "first", "clientMessageId": "m1"})),
    )
    .await;
    expect(&mut b, typed("message.created")).await;

    api.call(
        Method::PATCH,
        &format!("{c}/messages/1"),
        "ada",
        Some(json!({"body": "edited"})),
    )
    .await;
    let edited = expect(&mut b, typed("message.updated")).await;
    assert_eq!(
        (edited["message"]["body"].as_str(), edited["rev"].as_u64()),
        (Some("edited"), Some(2))
    );
    api.call(
        Method::PUT,
        &format!("{c}/messages/1/reactions/%F0%9F%91%8D"),
        "ada",
        None,
    )
    .await;
    let reacted = expect(&mut b, typed("message.updated")).await;
    assert_eq!(reacted["message"]["reactions"], json!({"👍": ["ada"]}));
    api.call(Method::DELETE, &format!("{c}/messages/1"), "ada", None)
        .await;
    let deleted = expect(&mut b, typed("message.deleted")).await;
    assert_eq!(
        (
            deleted["message"]["deleted"].as_bool(),
            deleted["rev"].as_u64()
        ),
        (Some(true), Some(4))
    );
    api.call(
        Method::POST,
        &format!("{c}/read"),
        "ada",
        Some(json!({"seq": 1})),
    )
    .await;
    // ada read to 1 by sending already: a read that moves nothing pushes nothing.
    silent(&mut b, typed("read")).await;

    let mut a = api.socket("ada").await;
    b.send(Message::Text(
        json!({"action": "typing", "conversationId": id, "isTyping": true})
            .to_string()
            .into(),
    ))
    .await
    .unwrap();
    let typing = expect(&mut a, typed("typing")).await;
    assert_eq!(
        (typing["userId"].as_str(), typing["isTyping"].as_bool()),
        (Some("bob"), Some(true))
    );
    silent(&mut b, typed("typing")).await;
    // More than one per 2 s is dropped silently.
    b.send(Message::Text(
        json!({"action": "typing", "conversationId": id, "isTyping": false})
            .to_string()
            .into(),
    ))
    .await
    .unwrap();
    silent(&mut a, typed("typing")).await;

    api.call(Method::PATCH, &c, "bob", Some(json!({"title": "Renamed"})))
        .await;
    let updated = expect(&mut a, typed("conversation.updated")).await;
    assert_eq!(updated["conversation"]["title"], "Renamed");
    assert_eq!(
        updated["conversation"]["me"]["lastReadSeq"], 1,
        "the recipient's own me"
    );

    let mut cy = api.socket("cy").await;
    api.call(
        Method::POST,
        &format!("{c}/members"),
        "bob",
        Some(json!({"userIds": ["cy"]})),
    )
    .await;
    let added = expect(&mut a, typed("member.added")).await;
    assert_eq!(added["userIds"], json!(["cy"]));
    let welcome = expect(&mut cy, typed("conversation.created")).await;
    assert_eq!(
        (
            welcome["conversation"]["id"].as_str(),
            welcome["conversation"]["memberCount"].as_u64()
        ),
        (Some(id.as_str()), Some(3))
    );
}

/// A user's live connection ids (`LIVE#u`, what the fan-out reads), sorted.
async fn live_ids(
    store: &chat_shared::adapters::store::DynamoStore,
    user: &chat_shared::domain::UserId,
) -> Vec<String> {
    let mut ids = chat_shared::services::connections::of_users(store, std::slice::from_ref(user))
        .await
        .unwrap()
        .remove(user)
        .unwrap_or_default();
    ids.sort();
    ids
}

#[tokio::test]
async fn gone_connections_are_pruned_and_everyone_else_still_hears() {
    let api = LocalApi::start().await;
    api.sign_up(&["ada".into(), "bob".into()]).await;
    let id = api.group("ada", &["bob"]).await;
    let mut live = api.socket("bob").await;
    let mut closed = api.socket("bob").await;
    let store = &api.gateway.deps.store;
    let bob = "bob".parse().unwrap();
    // A socket that closed without its $disconnect: its record is put back as if the call was lost.
    let records_before = chat_shared::services::connections::of_user(store, &bob)
        .await
        .unwrap();
    closed.close(None).await.unwrap();
    // Its $disconnect has run once one of bob's records is gone.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let still_open: Vec<String> = loop {
        let now: Vec<String> = chat_shared::services::connections::of_user(store, &bob)
            .await
            .unwrap()
            .into_iter()
            .map(|c| c.connection_id)
            .collect();
        if now.len() < records_before.len() {
            break now;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "$disconnect did not remove the closed socket's record"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    // $disconnect took the closed socket's id out of bob's live ones too (what the fan-out reads).
    assert_eq!(live_ids(store, &bob).await, still_open);
    let lost = records_before
        .iter()
        .find(|r| !still_open.contains(&r.connection_id))
        .unwrap();
    chat_shared::services::connections::open(store, &lost.connection_id, &bob)
        .await
        .unwrap();
    chat_shared::services::connections::open(store, "never-existed", &bob)
        .await
        .unwrap();
    assert_eq!(
        chat_shared::services::connections::of_user(store, &bob)
            .await
            .unwrap()
            .len(),
        3
    );

    api.call(
        Method::POST,
        &format!("/conversations/{id}/messages"),
        "ada",
        Some(json!({"body": "still here?", "clientMessageId": "m1"})),
    )
    .await;
    assert_eq!(
        expect(&mut live, typed("message.created")).await["message"]["body"],
        "still here?"
    );
    // The fan-out prunes after its posts: wait for it.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let left: Vec<String> = chat_shared::services::connections::of_user(store, &bob)
            .await
            .unwrap()
            .into_iter()
            .map(|c| c.connection_id)
            .collect();
        let live = live_ids(store, &bob).await;
        if left.len() == 1 && live == left {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "both dead records and their live ids were deleted: records {left:?}, live {live:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn a_reconnecting_client_catches_up_and_a_removed_member_hears_nothing_more() {
    let api = LocalApi::start().await;
    api.sign_up(&["ada".into(), "bob".into(), "cy".into()])
        .await;
    let id = api.group("ada", &["bob", "cy"]).await;
    let c = format!("/conversations/{id}");
    let mut bob = api.socket("bob").await;
    api.call(
        Method::POST,
        &format!("{c}/messages"),
        "ada",
        Some(json!({"body": "one", "clientMessageId": "m1"})),
    )
    .await;
    let first = expect(&mut bob, typed("message.created")).await;
    // bob's view, kept by rev, as a client keeps it.
    let mut view: BTreeMap<u64, Value> = BTreeMap::from([(1, first["message"].clone())]);
    let mut rev = first["rev"].as_u64().unwrap();

    // Offline: misses a send, an edit, a reaction and an unsend.
    bob.close(None).await.unwrap();
    for (n, body) in ["two", "three"].iter().enumerate() {
        api.call(
            Method::POST,
            &format!("{c}/messages"),
            "cy",
            Some(json!({"body": body, "clientMessageId": format!("c{n}")})),
        )
        .await;
    }
    api.call(
        Method::PATCH,
        &format!("{c}/messages/1"),
        "ada",
        Some(json!({"body": "one, edited"})),
    )
    .await;
    api.call(
        Method::PUT,
        &format!("{c}/messages/2/reactions/%F0%9F%91%8D"),
        "ada",
        None,
    )
    .await;
    api.call(Method::DELETE, &format!("{c}/messages/3"), "cy", None)
        .await;

    // Reconnect, then the contract's steps: the first page of the list, /changes where rev moved.
    let mut bob = api.socket("bob").await;
    let (_, list) = api.call(Method::GET, "/conversations", "bob", None).await;
    let listed = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["id"] == id.as_str())
        .unwrap();
    assert!(listed["rev"].as_u64().unwrap() > rev);
    loop {
        let (_, page) = api
            .call(
                Method::GET,
                &format!("{c}/changes?sinceRev={rev}"),
                "bob",
                None,
            )
            .await;
        for m in page["items"].as_array().unwrap() {
            view.insert(m["seq"].as_u64().unwrap(), m.clone());
        }
        rev = page["rev"].as_u64().unwrap();
        if !page["hasMore"].as_bool().unwrap() {
            break;
        }
    }
    let (_, history) = api
        .call(Method::GET, &format!("{c}/messages"), "bob", None)
        .await;
    let server: BTreeMap<u64, Value> = history["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| (m["seq"].as_u64().unwrap(), m.clone()))
        .collect();
    assert_eq!(view, server, "the caught-up view is the server's timeline");

    // Removed: bob hears member.removed, then nothing of the group.
    let (status, _) = api
        .call(Method::DELETE, &format!("{c}/members/bob"), "ada", None)
        .await;
    assert_eq!(status, 204);
    let removed = expect(&mut bob, typed("member.removed")).await;
    assert_eq!(removed["userIds"], json!(["bob"]));
    let (status, sent) = api
        .call(
            Method::POST,
            &format!("{c}/messages"),
            "ada",
            Some(json!({"body": "without bob", "clientMessageId": "m9"})),
        )
        .await;
    assert_eq!(status, 201, "{sent}");
    silent(&mut bob, |v| v["conversationId"] == id.as_str()).await;
}

#[tokio::test]
async fn a_message_event_over_32_kib_is_pushed_truncated() {
    let event = json!({"type": "message.created", "conversationId": "c", "rev": 7,
                       "message": {"seq": 3, "body": "x".repeat(40 * 1024)}});
    assert_eq!(
        chat_shared::adapters::push::fit(event),
        json!({"type": "message.created", "conversationId": "c", "rev": 7, "seq": 3, "truncated": true})
    );
    let small =
        json!({"type": "message.created", "conversationId": "c", "rev": 1, "message": {"seq": 1}});
    assert_eq!(chat_shared::adapters::push::fit(small.clone()), small);
}
