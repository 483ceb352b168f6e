//! Messages over real HTTP: ordering under concurrent writers, idempotent retries, read state,
//! history, the inbox, and refusals.

use std::collections::{HashMap, HashSet};

use reqwest::Method;
use serde_json::{Value, json};

use crate::support::{self, LocalApi, Pipeline, join_all};

/// Sends as a client would: retrying the same `clientMessageId` after a 503, with backoff.
async fn send(api: &LocalApi, user: &str, id: &str, body: &str, cmid: &str) -> (u16, Value) {
    let answer = api
        .call_retrying(
            Method::POST,
            &format!("/conversations/{id}/messages"),
            user,
            Some(json!({"body": body, "clientMessageId": cmid})),
        )
        .await;
    assert_ne!(
        answer.0,
        503,
        "still 503 after {} retries",
        support::RETRIES
    );
    answer
}

#[tokio::test]
async fn fifty_concurrent_sends_get_seq_and_rev_1_to_50_and_history_reads_them_in_order() {
    let api = LocalApi::start().await;
    let users = ["u1", "u2", "u3", "u4", "u5"];
    api.sign_up(&users.map(String::from)).await;
    let id = api.group("u1", &users[1..]).await;
    let sends = users
        .iter()
        .flat_map(|u| (0..10).map(move |n| (*u, n)))
        .map(|(u, n)| {
            let api = &api;
            let id = &id;
            async move {
                (
                    u,
                    n,
                    send(api, u, id, &format!("{u} says {n}"), &format!("{u}-{n}")).await,
                )
            }
        });
    let results = join_all(sends).await;
    let mut seqs = Vec::new();
    let mut revs = Vec::new();
    for (u, n, (status, message)) in &results {
        // 200 is right too: under this much contention a send can time out after it was stored,
        // and its retry (by the SDK or the client, same clientMessageId) finds it.
        assert!(*status == 201 || *status == 200, "{u} {n}: {message}");
        assert_eq!(message["body"], format!("{u} says {n}"));
        seqs.push(message["seq"].as_u64().unwrap());
        revs.push(message["rev"].as_u64().unwrap());
    }
    seqs.sort_unstable();
    revs.sort_unstable();
    assert_eq!(seqs, (1..=50).collect::<Vec<_>>());
    assert_eq!(revs, (1..=50).collect::<Vec<_>>());

    // History: the newest page, then older pages, all 50 in ascending order, each once.
    let mut read = Vec::new();
    let (status, page) = api
        .call(
            Method::GET,
            &format!("/conversations/{id}/messages?limit=20"),
            "u3",
            None,
        )
        .await;
    assert_eq!(status, 200);
    let mut page = page;
    loop {
        let items = page["items"].as_array().unwrap().clone();
        let mut seqs: Vec<u64> = items.iter().map(|m| m["seq"].as_u64().unwrap()).collect();
        assert!(
            seqs.windows(2).all(|w| w[0] + 1 == w[1]),
            "ascending, gap-free: {seqs:?}"
        );
        seqs.append(&mut read);
        read = seqs;
        if !page["hasMore"].as_bool().unwrap() {
            break;
        }
        let oldest = items[0]["seq"].as_u64().unwrap();
        page = api
            .call(
                Method::GET,
                &format!("/conversations/{id}/messages?limit=20&beforeSeq={oldest}"),
                "u3",
                None,
            )
            .await
            .1;
    }
    assert_eq!(read, (1..=50).collect::<Vec<_>>());
    let (_, after) = api
        .call(
            Method::GET,
            &format!("/conversations/{id}/messages?afterSeq=45"),
            "u3",
            None,
        )
        .await;
    let tail: Vec<u64> = after["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["seq"].as_u64().unwrap())
        .collect();
    assert_eq!(
        (tail, after["hasMore"].as_bool()),
        (vec![46, 47, 48, 49, 50], Some(false))
    );
    let bodies: HashSet<String> = results
        .iter()
        .map(|(_, _, (_, m))| m["clientMessageId"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(bodies.len(), 50, "nothing doubled");
}

#[tokio::test]
async fn ten_concurrent_retries_of_one_client_message_id_store_one_message() {
    let api = LocalApi::start().await;
    api.sign_up(&["ada".into(), "bob".into()]).await;
    let (_, direct) = api
        .call(
            Method::POST,
            "/conversations",
            "ada",
            Some(json!({"participantIds": ["bob"]})),
        )
        .await;
    let id = direct["id"].as_str().unwrap().to_owned();
    let answers = join_all((0..10).map(|_| send(&api, "ada", &id, "only once", "c-123"))).await;
    assert_eq!(
        answers.iter().filter(|(s, _)| *s == 201).count(),
        1,
        "{answers:?}"
    );
    assert_eq!(answers.iter().filter(|(s, _)| *s == 200).count(), 9);
    let ids: HashSet<&str> = answers
        .iter()
        .map(|(_, m)| m["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids.len(), 1);
    let (_, history) = api
        .call(
            Method::GET,
            &format!("/conversations/{id}/messages"),
            "bob",
            None,
        )
        .await;
    // Concurrent retries that lost to the first may leave voids behind (their numbers were
    // taken before they found the key); never a second message, and voids are not unread.
    let items = history["items"].as_array().unwrap();
    let texts: Vec<&Value> = items.iter().filter(|m| m["kind"] == "text").collect();
    assert_eq!(texts.len(), 1, "{history}");
    assert!(
        items
            .iter()
            .all(|m| m["kind"] == "text" || m["kind"] == "void")
    );
    assert_eq!(me(&api, "bob", &id).await["unreadCount"], 1);

    let (status, body) = send(&api, "ada", &id, "another body", "c-123").await;
    assert_eq!((status, &body["error"]["code"]), (409, &json!("conflict")));
    // A retry is validated like a first send: no message has seq 0.
    let (status, body) = api
        .call(
            Method::POST,
            &format!("/conversations/{id}/messages"),
            "ada",
            Some(json!({"body": "only once", "clientMessageId": "c-123", "replyToSeq": 0})),
        )
        .await;
    assert_eq!(
        (status, &body["error"]["field"]),
        (400, &json!("replyToSeq"))
    );
    // The same id from another sender is another message.
    let (status, _) = send(&api, "bob", &id, "only once", "c-123").await;
    assert_eq!(status, 201);
}

async fn me(api: &LocalApi, user: &str, id: &str) -> Value {
    api.call(Method::GET, &format!("/conversations/{id}"), user, None)
        .await
        .1["me"]
        .clone()
}

#[tokio::test]
async fn unread_counts_follow_sends_and_reads_and_reads_never_go_back() {
    let api = LocalApi::start().await;
    api.sign_up(&["ada".into(), "bob".into(), "cy".into()])
        .await;
    let id = api.group("ada", &["bob", "cy"]).await;
    for n in 0..3 {
        send(&api, "ada", &id, &format!("a{n}"), &format!("a{n}")).await;
    }
    send(&api, "bob", &id, "b0", "b0").await;
    assert_eq!(me(&api, "ada", &id).await["unreadCount"], 1);
    assert_eq!(
        me(&api, "bob", &id).await["unreadCount"],
        0,
        "sending reads up to one's own message"
    );
    assert_eq!(me(&api, "cy", &id).await["unreadCount"], 4);

    let read = |user: &'static str, seq: u64| {
        let api = &api;
        let id = id.clone();
        async move {
            api.call(
                Method::POST,
                &format!("/conversations/{id}/read"),
                user,
                Some(json!({"seq": seq})),
            )
            .await
        }
    };
    let (status, state) = read("cy", 2).await;
    assert_eq!(
        (status, state),
        (200, json!({"lastReadSeq": 2, "unreadCount": 2}))
    );
    let (_, state) = read("cy", 1).await;
    assert_eq!(
        state,
        json!({"lastReadSeq": 2, "unreadCount": 2}),
        "never backwards"
    );
    let (status, body) = read("cy", 5).await;
    assert_eq!((status, &body["error"]["field"]), (400, &json!("seq")));
    let (_, state) = read("cy", 4).await;
    assert_eq!(state["unreadCount"], 0);

    // The list shows the counts and the last message.
    let (_, list) = api.call(Method::GET, "/conversations", "ada", None).await;
    let item = &list["items"][0];
    assert_eq!(item["me"]["unreadCount"], 1);
    assert_eq!(item["lastSeq"], 4);
    assert_eq!(item["lastMessage"]["seq"], 4);
    assert_eq!(item["lastMessage"]["senderId"], "bob");
    assert_eq!(item["lastMessage"]["preview"], "b0");
    let (_, view) = api
        .call(Method::GET, &format!("/conversations/{id}"), "ada", None)
        .await;
    let members: HashMap<String, u64> = view["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["userId"].as_str().unwrap().to_owned(),
                m["lastReadSeq"].as_u64().unwrap(),
            )
        })
        .collect();
    let expected = [("ada", 3), ("bob", 4), ("cy", 4)].map(|(u, n)| (u.to_owned(), n));
    assert_eq!(members, HashMap::from(expected));
}

#[tokio::test]
async fn a_send_moves_the_conversation_to_the_top_and_unarchives_it() {
    let api = LocalApi::start().await;
    api.sign_up(&["ada".into(), "bob".into(), "cy".into()])
        .await;
    let first = api.group("ada", &["bob"]).await;
    let second = api.group("ada", &["cy"]).await;
    let (status, archived) = api
        .call(
            Method::PATCH,
            &format!("/conversations/{first}/settings"),
            "bob",
            Some(json!({"archived": true})),
        )
        .await;
    assert_eq!(status, 200, "{archived}");
    assert_eq!(archived["me"]["archived"], true, "{archived}");
    let (_, list) = api.call(Method::GET, "/conversations", "ada", None).await;
    assert_eq!(list["items"][0]["id"], second.as_str());
    send(&api, "ada", &first, "back to the top", "m1").await;
    let (_, list) = api.call(Method::GET, "/conversations", "ada", None).await;
    assert_eq!(list["items"][0]["id"], first.as_str());
    let (_, bobs) = api.call(Method::GET, "/conversations", "bob", None).await;
    assert_eq!(bobs["items"][0]["id"], first.as_str(), "unarchived for bob");
    assert_eq!(bobs["items"][0]["me"]["archived"], false);
}

#[tokio::test]
async fn non_members_get_404_and_bad_input_stores_nothing() {
    let api = LocalApi::start().await;
    api.sign_up(&["ada".into(), "bob".into(), "eve".into()])
        .await;
    let id = api.group("ada", &["bob"]).await;
    send(&api, "ada", &id, "hello", "m1").await;
    let c = format!("/conversations/{id}");
    for (method, path, body) in [
        (
            Method::POST,
            format!("{c}/messages"),
            Some(json!({"body": "hi", "clientMessageId": "e1"})),
        ),
        (Method::GET, format!("{c}/messages"), None),
        (Method::POST, format!("{c}/read"), Some(json!({"seq": 1}))),
    ] {
        let (status, answer) = api.call(method.clone(), &path, "eve", body).await;
        assert_eq!(
            (status, &answer["error"]["code"]),
            (404, &json!("not_found")),
            "{method} {path}"
        );
    }
    let cases = [
        (json!({"body": "", "clientMessageId": "x1"}), "body"),
        (json!({"body": " \n\t ", "clientMessageId": "x2"}), "body"),
        (
            json!({"body": "é".repeat(4_001), "clientMessageId": "x3"}),
            "body",
        ),
        (
            json!({"body": "ok", "clientMessageId": "not ok!"}),
            "clientMessageId",
        ),
        (
            json!({"body": "ok", "clientMessageId": "a".repeat(65)}),
            "clientMessageId",
        ),
        (json!({"body": "ok"}), "clientMessageId"),
        (
            json!({"body": "ok", "clientMessageId": "x4", "replyToSeq": 9}),
            "replyToSeq",
        ),
        (
            json!({"body": "ok", "clientMessageId": "x5", "replyToSeq": 0}),
            "replyToSeq",
        ),
        (
            json!({"body": "ok", "clientMessageId": "x6", "senderId": "bob"}),
            "senderId",
        ),
        (json!({"body": 5, "clientMessageId": "x7"}), "body"),
    ];
    for (body, field) in cases {
        let (status, answer) = api
            .call(
                Method::POST,
                &format!("{c}/messages"),
                "ada",
                Some(body.clone()),
            )
            .await;
        assert_eq!(
            (status, &answer["error"]["field"]),
            (400, &json!(field)),
            "{body}"
        );
    }
    let (ok, _) = send(&api, "ada", &id, &"é".repeat(4_000), "max").await;
    assert_eq!(
        ok, 201,
        "4,000 characters (8,000 bytes) is within the limit"
    );
    let huge = json!({"body": "x".repeat(70_000), "clientMessageId": "big"});
    let (status, answer) = api
        .call(Method::POST, &format!("{c}/messages"), "ada", Some(huge))
        .await;
    assert_eq!(
        (status, &answer["error"]["code"]),
        (413, &json!("payload_too_large"))
    );
    for query in [
        "beforeSeq=3&afterSeq=1",
        "limit=0",
        "limit=101",
        "beforeSeq=-1",
    ] {
        let (status, _) = api
            .call(Method::GET, &format!("{c}/messages?{query}"), "ada", None)
            .await;
        assert_eq!(status, 400, "{query}");
    }
    let (_, history) = api
        .call(Method::GET, &format!("{c}/messages"), "bob", None)
        .await;
    let seqs: Vec<u64> = history["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["seq"].as_u64().unwrap())
        .collect();
    assert_eq!(seqs, [1, 2], "only the two good messages were stored");
}

#[tokio::test]
async fn message_and_read_events_reach_the_stream_without_bodies() {
    let api = LocalApi::start().await;
    let pipeline = Pipeline::start(&api.gateway.deps.store, None).await;
    api.sign_up(&["ada".into(), "bob".into()]).await;
    let id = api.group("ada", &["bob"]).await;
    send(&api, "ada", &id, "a very private body", "m1").await;
    send(&api, "ada", &id, "another private body", "m2").await;
    api.call(
        Method::POST,
        &format!("/conversations/{id}/read"),
        "bob",
        Some(json!({"seq": 2})),
    )
    .await;
    let records = pipeline.wait_for(4, 30).await;
    let kinds: Vec<&str> = records
        .iter()
        .filter(|(k, _)| k == &id)
        .map(|(_, e)| e["type"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        [
            "chat.conversation.created",
            "chat.message.created",
            "chat.message.created",
            "chat.message.read"
        ]
    );
    let created = records
        .iter()
        .find(|(_, e)| e["type"] == "chat.message.created")
        .unwrap();
    assert_eq!(created.1["data"]["length"], 19);
    assert_eq!(created.1["data"]["seq"], 1);
    let read = records
        .iter()
        .find(|(_, e)| e["type"] == "chat.message.read")
        .unwrap();
    assert_eq!(
        read.1["data"],
        json!({"conversationId": id, "userId": "bob", "lastReadSeq": 2})
    );
    let text = serde_json::to_string(&records).unwrap();
    assert!(!text.contains("private body"));
}
