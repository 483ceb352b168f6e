//! The analytics events: from the table's stream through `stream-publisher` to Kinesis, in order
//! per conversation, with no message body, and none lost while Kinesis is frozen.

use std::collections::HashSet;
use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};

use crate::support::{LocalApi, OwnKinesis, Pipeline, join_all};

/// The events of one conversation, duplicates (same id) dropped, in stream order.
fn of_conversation<'a>(records: &'a [(String, Value)], id: &str) -> Vec<&'a Value> {
    let mut seen = HashSet::new();
    records
        .iter()
        .filter(|(key, _)| key == id)
        .map(|(_, event)| event)
        .filter(|event| seen.insert(event["id"].as_str().unwrap().to_owned()))
        .collect()
}

#[tokio::test]
async fn a_create_and_member_changes_arrive_in_order_as_cloudevents() {
    let api = LocalApi::start().await;
    let pipeline = Pipeline::start(&api.gateway.deps.store, None).await;
    api.sign_up(&["ada".into(), "bob".into(), "cy".into()])
        .await;
    let (_, group) = api
        .call(
            Method::POST,
            "/conversations",
            "ada",
            Some(json!({"participantIds": ["bob"], "kind": "group", "title": "Secret title"})),
        )
        .await;
    let id = group["id"].as_str().unwrap().to_owned();
    let c = format!("/conversations/{id}");
    api.call(
        Method::POST,
        &format!("{c}/members"),
        "bob",
        Some(json!({"userIds": ["cy"]})),
    )
    .await;
    api.call(Method::DELETE, &format!("{c}/members/bob"), "ada", None)
        .await;
    api.call(Method::DELETE, &format!("{c}/members/me"), "cy", None)
        .await;

    let records = pipeline.wait_for(4, 30).await;
    let events = of_conversation(&records, &id);
    let kinds: Vec<&str> = events.iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert_eq!(
        kinds,
        [
            "chat.conversation.created",
            "chat.member.added",
            "chat.member.removed",
            "chat.member.removed"
        ]
    );
    let created = events[0];
    assert_eq!(created["specversion"], "1.0");
    assert_eq!(created["source"], "chat");
    assert_eq!(created["subject"], id.as_str());
    assert_eq!(created["datacontenttype"], "application/json");
    assert_eq!(
        created["data"],
        json!({"conversationId": id, "kind": "group", "createdBy": "ada", "memberCount": 2})
    );
    assert_eq!(events[1]["data"]["userId"], "cy");
    assert_eq!(events[1]["data"]["addedBy"], "bob");
    assert_eq!(events[2]["data"]["userId"], "bob");
    assert_eq!(events[3]["data"]["userId"], "cy");
    assert!(created["time"].as_str().unwrap().ends_with('Z'));
    let text = serde_json::to_string(&records).unwrap();
    assert!(
        !text.contains("Secret title"),
        "events carry ids and counts, not content"
    );
}

#[tokio::test]
async fn with_kinesis_frozen_writes_succeed_and_every_event_arrives_after_the_thaw() {
    let kinesis = OwnKinesis::start();
    let api = LocalApi::start().await;
    let pipeline = Pipeline::start(&api.gateway.deps.store, Some(&kinesis.url())).await;
    api.sign_up(&["ada".into(), "bob".into(), "cy".into(), "dee".into()])
        .await;

    kinesis.signal("-STOP");
    let creators = ["ada", "bob", "cy", "dee"];
    let groups = join_all(creators.iter().map(|creator| {
        let others: Vec<&str> = creators
            .iter()
            .copied()
            .filter(|c| c != creator)
            .take(1)
            .collect();
        api.call(
            Method::POST,
            "/conversations",
            creator,
            Some(json!({"participantIds": others, "kind": "group"})),
        )
    }))
    .await;
    let mut ids = Vec::new();
    for (status, group) in &groups {
        assert_eq!(*status, 201);
        let id = group["id"].as_str().unwrap().to_owned();
        let c = format!("/conversations/{id}");
        let owner = group["createdBy"].as_str().unwrap();
        let newcomer = creators
            .iter()
            .find(|u| {
                !group["members"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|m| m["userId"] == **u)
            })
            .unwrap();
        let (status, _) = api
            .call(
                Method::POST,
                &format!("{c}/members"),
                owner,
                Some(json!({"userIds": [newcomer]})),
            )
            .await;
        assert_eq!(status, 200);
        let (status, _) = api
            .call(
                Method::DELETE,
                &format!("{c}/members/{newcomer}"),
                owner,
                None,
            )
            .await;
        assert_eq!(status, 204);
        ids.push(id);
    }
    // Every write above answered while Kinesis was frozen: the stream is not on the write path.
    // The freeze goes on a little longer, so that the publisher runs into it (the fault's
    // duration, not a wait for something to finish).
    tokio::time::sleep(Duration::from_secs(3)).await;
    kinesis.signal("-CONT");

    let records = pipeline.wait_for(12, 90).await;
    let mut all_ids = HashSet::new();
    for id in &ids {
        let events = of_conversation(&records, id);
        let kinds: Vec<&str> = events.iter().map(|e| e["type"].as_str().unwrap()).collect();
        assert_eq!(
            kinds,
            [
                "chat.conversation.created",
                "chat.member.added",
                "chat.member.removed"
            ],
            "{id}"
        );
        all_ids.extend(events.iter().map(|e| e["id"].as_str().unwrap().to_owned()));
    }
    assert_eq!(
        all_ids.len(),
        12,
        "every event once, after dropping duplicates by id"
    );
}

#[tokio::test]
async fn edits_unsends_and_reactions_reach_the_stream() {
    let api = LocalApi::start().await;
    let pipeline = Pipeline::start(&api.gateway.deps.store, None).await;
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
    let m = format!("/conversations/{id}/messages/1");
    api.call(
        Method::POST,
        &format!("/conversations/{id}/messages"),
        "ada",
        Some(json!({"body": "secret words", "clientMessageId": "m1"})),
    )
    .await;
    api.call(
        Method::PATCH,
        &m,
        "ada",
        Some(json!({"body": "other secret words"})),
    )
    .await;
    api.call(
        Method::PUT,
        &format!("{m}/reactions/%F0%9F%91%8D"),
        "bob",
        None,
    )
    .await;
    api.call(
        Method::PUT,
        &format!("{m}/reactions/%F0%9F%8E%89"),
        "bob",
        None,
    )
    .await;
    api.call(Method::DELETE, &m, "ada", None).await;
    let records = pipeline.wait_for(7, 30).await;
    let events = of_conversation(&records, &id);
    let kinds: Vec<&str> = events.iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert_eq!(
        kinds,
        [
            "chat.conversation.created",
            "chat.message.created",
            "chat.message.edited",
            "chat.reaction.added",
            "chat.reaction.removed",
            "chat.reaction.added",
            "chat.message.deleted",
        ]
    );
    assert_eq!(events[3]["data"]["emoji"], "👍");
    assert_eq!(events[5]["data"]["emoji"], "🎉");
    assert_eq!(events[2]["data"]["length"], 18);
    let ids: HashSet<&str> = events.iter().map(|e| e["id"].as_str().unwrap()).collect();
    assert_eq!(ids.len(), 7, "one record with two events gives two ids");
    assert!(!serde_json::to_string(&records).unwrap().contains("secret"));
}

#[tokio::test]
async fn connections_opening_and_closing_are_user_events() {
    let api = LocalApi::start().await;
    let pipeline = Pipeline::start(&api.gateway.deps.store, None).await;
    let deps = &api.gateway.deps;
    let ada = "ada".parse().unwrap();
    chat_shared::services::connections::open(&deps.store, "conn-1", &ada)
        .await
        .unwrap();
    chat_shared::services::connections::close(&deps.store, "conn-1")
        .await
        .unwrap();
    let records = pipeline.wait_for(2, 30).await;
    let events: Vec<(&str, &str)> = records
        .iter()
        .map(|(k, e)| (k.as_str(), e["type"].as_str().unwrap()))
        .collect();
    assert_eq!(
        events,
        [
            ("ada", "chat.connection.opened"),
            ("ada", "chat.connection.closed")
        ]
    );
    assert_eq!(records[1].1["data"]["connectionId"], "conn-1");
}
