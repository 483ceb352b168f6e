//! `stream-fan-out` on the real table stream: the route functions push no message, read or typing
//! themselves; the fan-out reads them off the table's stream and posts them to every connection
//! concerned, in `rev` order within a batch, and a batch it could not deliver is handed again from
//! its first undelivered record, losing nothing.

use std::collections::BTreeMap;
use std::time::Duration;

use aws_lambda_events::event::dynamodb::Event;
use reqwest::Method;
use serde_json::{Value, json};

use crate::support::{self, LocalApi, Socket};

/// Every frame of `socket` until it has been quiet for a second (or 20 s have passed).
async fn frames_until_quiet(socket: &mut Socket) -> Vec<Value> {
    let (mut frames, end) = (
        Vec::new(),
        tokio::time::Instant::now() + Duration::from_secs(20),
    );
    loop {
        let quiet = (tokio::time::Instant::now() + Duration::from_secs(1)).min(end);
        match support::next_frame(socket, quiet).await {
            Some(frame) => frames.push(frame),
            None => return frames,
        }
    }
}

/// Frames of `socket` until `count` of them match `what` (20 s at most).
async fn collect(socket: &mut Socket, count: usize, what: impl Fn(&Value) -> bool) -> Vec<Value> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    let mut found = Vec::new();
    while found.len() < count {
        match support::next_frame(socket, deadline).await {
            Some(frame) if what(&frame) => found.push(frame),
            Some(_) => {}
            None => panic!("{} of {count} frames arrived: {found:?}", found.len()),
        }
    }
    found
}

/// Every record of the table's stream so far, as the mapping hands them to the function.
async fn table_stream(api: &LocalApi) -> Event {
    let mut reader = support::StreamReader::new(&api.gateway.deps.store).await;
    let mut batch = Event::default();
    batch.records = reader
        .drain()
        .await
        .iter()
        .map(|r| local_gateway::stream_poller::lambda_record(r, &reader.arn))
        .collect();
    batch
}

#[tokio::test]
async fn concurrent_sends_reach_every_other_socket_once_each_with_its_rev() {
    let api = LocalApi::start().await;
    let users = ["ada", "bob", "cy", "dan"];
    api.sign_up(&users.map(String::from)).await;
    let id = api.group("ada", &users[1..]).await;
    let mut watcher = api.socket("bob").await;
    // Five messages from each member at once, over HTTP.
    let (api, id) = (&api, &id);
    let sends = users.iter().flat_map(|user| {
        (0..5).map(move |i| async move {
            api.call(
                Method::POST,
                &format!("/conversations/{id}/messages"),
                user,
                Some(json!({"clientMessageId": format!("{user}-{i}"), "body": format!("{i}")})),
            )
            .await
        })
    });
    for (status, body) in support::join_all(sends).await {
        assert_eq!(status, 201, "{body}");
    }
    let created = collect(&mut watcher, 20, |f| f["type"] == "message.created").await;
    let revs: Vec<u64> = {
        let mut revs: Vec<u64> = created.iter().map(|f| f["rev"].as_u64().unwrap()).collect();
        revs.sort_unstable();
        revs
    };
    assert_eq!(
        revs,
        (1..=20).collect::<Vec<_>>(),
        "each message once, with its rev"
    );
    for frame in &created {
        assert_eq!(frame["rev"], frame["message"]["rev"], "{frame}");
    }
    // Nothing more (no message twice) once the fan-out is done.
    let rest = frames_until_quiet(&mut watcher).await;
    assert!(
        rest.iter().all(|f| f["type"] != "message.created"),
        "{rest:?}"
    );
}

#[tokio::test]
async fn the_sending_socket_gets_its_ack_and_every_other_socket_the_message() {
    let api = LocalApi::start().await;
    api.sign_up(&["ada".into(), "bob".into()]).await;
    let id = api.group("ada", &["bob"]).await;
    let (mut sending, mut other, mut bob) = (
        api.socket("ada").await,
        api.socket("ada").await,
        api.socket("bob").await,
    );
    use futures::SinkExt;
    sending
        .send(tokio_tungstenite::tungstenite::Message::Text(
            json!({"action": "sendMessage", "conversationId": id, "body": "hi",
                   "clientMessageId": "w1"})
            .to_string()
            .into(),
        ))
        .await
        .unwrap();
    for socket in [&mut other, &mut bob] {
        let created = collect(socket, 1, |f| f["type"] == "message.created").await;
        assert_eq!(created[0]["message"]["body"], "hi");
    }
    let heard = frames_until_quiet(&mut sending).await;
    let kinds: Vec<&str> = heard.iter().filter_map(|f| f["type"].as_str()).collect();
    assert_eq!(kinds, ["ack"], "the sending socket: its ack only");
}

#[tokio::test]
async fn typing_and_reads_reach_the_others_through_the_stream() {
    let api = LocalApi::start().await;
    api.sign_up(&["ada".into(), "bob".into()]).await;
    let id = api.group("ada", &["bob"]).await;
    let (mut ada, mut bob) = (api.socket("ada").await, api.socket("bob").await);
    use futures::SinkExt;
    ada.send(tokio_tungstenite::tungstenite::Message::Text(
        json!({"action": "typing", "conversationId": id, "isTyping": true})
            .to_string()
            .into(),
    ))
    .await
    .unwrap();
    let typing = collect(&mut bob, 1, |f| f["type"] == "typing").await;
    assert_eq!(
        (
            typing[0]["userId"].as_str(),
            typing[0]["isTyping"].as_bool()
        ),
        (Some("ada"), Some(true))
    );
    // The typing item is the stream's trigger, short-lived (the table's TTL removes it).
    let item: chat_shared::services::delivery::TypingItem = api
        .gateway
        .deps
        .store
        .get(
            &chat_shared::adapters::store::keys::typing(
                &id.parse().unwrap(),
                &"ada".parse().unwrap(),
            ),
            chat_shared::adapters::store::Consistency::Strong,
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        item.expires_at,
        item.at.unix_seconds() + chat_shared::services::delivery::TYPING_ITEM_SECONDS
    );

    let (status, _) = api
        .call(
            Method::POST,
            &format!("/conversations/{id}/messages"),
            "bob",
            Some(json!({"clientMessageId": "b1", "body": "there?"})),
        )
        .await;
    assert_eq!(status, 201);
    let (status, _) = api
        .call(
            Method::POST,
            &format!("/conversations/{id}/read"),
            "ada",
            Some(json!({"seq": 1})),
        )
        .await;
    assert_eq!(status, 200);
    let read = collect(&mut bob, 1, |f| f["type"] == "read").await;
    assert_eq!(
        (read[0]["userId"].as_str(), read[0]["lastReadSeq"].as_u64()),
        (Some("ada"), Some(1))
    );
    // The typist hears nothing of their own typing, and bob's send moved bob's read position
    // without a `read` event (only a read the member makes is one).
    let heard = frames_until_quiet(&mut ada).await;
    assert!(heard.iter().all(|f| f["type"] != "typing"), "{heard:?}");
    let heard_by_bob = frames_until_quiet(&mut bob).await;
    assert!(
        heard_by_bob.iter().all(|f| f["type"] != "read"),
        "{heard_by_bob:?}"
    );
}

/// A batch the fan-out could not deliver (DynamoDB unreachable: members and connections cannot be
/// read) names its first record; handed again from there, as the mapping does, every push
/// arrives, in `rev` order, with nothing lost.
#[tokio::test]
async fn a_batch_that_could_not_be_delivered_is_handed_again_from_its_first_record() {
    // No mapping of its own: the test plays it, with the function's role.
    let api = LocalApi::start_beside(support::fresh_deps().await, support::local_stack()).await;
    api.sign_up(&["ada".into(), "bob".into()]).await;
    let id = api.group("ada", &["bob"]).await;
    let mut bob = api.socket("bob").await;
    for i in 1..=3 {
        let (status, _) = api
            .call(
                Method::POST,
                &format!("/conversations/{id}/messages"),
                "ada",
                Some(json!({"clientMessageId": format!("m{i}"), "body": format!("{i}")})),
            )
            .await;
        assert_eq!(status, 201);
    }
    let batch = table_stream(&api).await;
    let fan_out = local_gateway::fan_out::deps(&api.gateway).unwrap();

    // DynamoDB unreachable for the fan-out (a port nothing listens on).
    let dead = {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let config = fan_out
            .store
            .client()
            .config()
            .to_builder()
            .endpoint_url(format!("http://127.0.0.1:{port}"))
            .build();
        chat_shared::adapters::store::DynamoStore::new(
            aws_sdk_dynamodb::Client::from_conf(config),
            fan_out.store.table().clone(),
            support::clock(),
        )
    };
    let dead = chat_shared::services::deps::RouteDeps {
        store: dead,
        ..fan_out.clone()
    };
    let failed = chat_shared::services::delivery::deliver(&dead, &batch).await;
    let first_push = batch
        .records
        .iter()
        .find(|r| matches!(chat_shared::services::delivery::push_of(r), Ok(Some(_))))
        .and_then(|r| r.change.sequence_number.clone())
        .unwrap();
    let named: Vec<Option<String>> = failed
        .batch_item_failures
        .iter()
        .map(|f| f.item_identifier.clone())
        .collect();
    assert_eq!(
        named,
        [Some(first_push.clone())],
        "the first record with a push"
    );
    let heard = frames_until_quiet(&mut bob).await;
    assert!(
        heard.iter().all(|f| f["type"] != "message.created"),
        "nothing was posted: {heard:?}"
    );

    // Handed again from that record.
    let mut again = Event::default();
    again.records = batch
        .records
        .iter()
        .skip_while(|r| r.change.sequence_number.as_deref() != Some(first_push.as_str()))
        .cloned()
        .collect();
    let delivered = chat_shared::services::delivery::deliver(&fan_out, &again).await;
    assert!(delivered.batch_item_failures.is_empty(), "{delivered:?}");
    let created = collect(&mut bob, 3, |f| f["type"] == "message.created").await;
    let by_rev: BTreeMap<u64, String> = created
        .iter()
        .map(|f| {
            (
                f["rev"].as_u64().unwrap(),
                f["message"]["body"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let revs: Vec<u64> = created.iter().map(|f| f["rev"].as_u64().unwrap()).collect();
    assert_eq!(revs, [1, 2, 3], "in rev order");
    assert_eq!(by_rev.values().collect::<Vec<_>>(), ["1", "2", "3"]);
}
