//! Each function's handler fed with its `events/` files, as Lambda would feed it, against
//! DynamoDB Local.

use chat_functions::{
    http_add_members, http_create_conversation, http_create_realtime_ticket, http_delete_reaction,
    http_edit_message, http_get_conversation, http_get_me, http_get_user, http_list_changes,
    http_list_conversations, http_list_messages, http_mark_read, http_put_reaction,
    http_remove_member, http_send_message, http_unsend_message, http_update_conversation,
    http_update_conversation_settings, http_update_me, stream_analytics, stream_publisher,
};
use chat_shared::services::deps::RouteDeps;
use lambda_http::{Body, Request, Response};
use serde_json::Value;

use crate::support;

fn event(name: &str) -> Request {
    let path = format!("{}/../events/http/{name}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap();
    lambda_http::request::from_str(&text).unwrap()
}

fn json(resp: &Response<Body>) -> Value {
    match resp.body() {
        Body::Text(text) => serde_json::from_str(text).unwrap(),
        other => panic!("expected a JSON text body, got {other:?}"),
    }
}

fn request_id(resp: &Response<Body>) -> &str {
    resp.headers()["x-request-id"].to_str().unwrap()
}

async fn profile_exists(deps: &RouteDeps, user: &str) -> bool {
    chat_shared::services::profiles::ProfileStore::get(&deps.store, &user.parse().unwrap())
        .await
        .unwrap()
        .is_some()
}

#[tokio::test]
async fn http_get_me_creates_the_profile_from_the_claims() {
    let deps = support::fresh_deps().await;
    let resp = http_get_me::handle(&deps, event("get-me.json"))
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(request_id(&resp), "Jk2mPh8rIAMEV-Q=");
    assert_eq!(resp.headers()["content-type"], "application/json");
    let user = json(&resp);
    assert_eq!(user["userId"], "ada");
    assert_eq!(user["displayName"], "Ada Lovelace");
    assert_eq!(user["avatarUrl"], Value::Null);
    assert_eq!(user["online"], false);
    assert!(profile_exists(&deps, "ada").await);
}

#[tokio::test]
async fn http_update_me_applies_valid_changes_and_refuses_invalid_ones_writing_nothing() {
    let deps = support::fresh_deps().await;

    let refused = http_update_me::handle(&deps, event("update-me-invalid.json"))
        .await
        .unwrap();
    assert_eq!(refused.status(), 400);
    let body = json(&refused);
    assert_eq!(body["error"]["code"], "validation_failed");
    assert_eq!(body["error"]["field"], "displayName");
    assert_eq!(body["requestId"], "Jk2mQg2DIAMEb1x=");
    assert!(
        !profile_exists(&deps, "ada").await,
        "a refused request writes nothing"
    );

    let resp = http_update_me::handle(&deps, event("update-me.json"))
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let user = json(&resp);
    assert_eq!(user["displayName"], "Ada");
    assert_eq!(user["avatarUrl"], "https://images.example.com/ada.png");
    let me = json(
        &http_get_me::handle(&deps, event("get-me.json"))
            .await
            .unwrap(),
    );
    assert_eq!(me["displayName"], "Ada");
}

#[tokio::test]
async fn http_get_user_finds_a_known_user_and_404s_an_unknown_one() {
    let deps = support::fresh_deps().await;
    let missing = http_get_user::handle(&deps, event("get-user.json"))
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);
    assert_eq!(json(&missing)["error"]["code"], "not_found");

    http_get_me::handle(&deps, event("get-me.json"))
        .await
        .unwrap();
    let found = http_get_user::handle(&deps, event("get-user.json"))
        .await
        .unwrap();
    assert_eq!(found.status(), 200);
    assert_eq!(json(&found)["displayName"], "Ada Lovelace");
}

/// The conversation id that the conversation events name.
pub const EVENT_CONVERSATION: &str = "01JDQ7Z8K3M4N5P6Q7R8S9T0VW";

/// Profiles for these users, as their first `GET /me` would make them.
async fn profiles(deps: &RouteDeps, users: &[&str]) {
    use chat_shared::services::profiles::{Profile, ProfileStore};
    for user in users {
        let now = support::clock().now();
        let profile = Profile {
            user_id: user.parse().unwrap(),
            display_name: format!("Name of {user}").parse().unwrap(),
            avatar_url: None,
            created_at: now,
            updated_at: now,
            last_seen_at: None,
        };
        deps.store.insert_new(&profile).await.unwrap();
    }
}

/// The group the conversation events act on: ada (owner), bob and cy, with that fixed id.
pub async fn seed_event_group(deps: &RouteDeps) {
    use chat_shared::services::conversations::model::{
        InboxItem, Kind, MemberItem, MetaItem, Role,
    };
    profiles(deps, &["ada", "bob", "cy", "dee"]).await;
    let id: chat_shared::domain::ConversationId = EVENT_CONVERSATION.parse().unwrap();
    let now = support::clock().now();
    let members = ["ada", "bob", "cy"];
    let key = chat_shared::adapters::store::keys::conversation_meta(&id);
    let meta = MetaItem {
        pk: key.pk,
        sk: key.sk,
        id: id.clone(),
        kind: Kind::Group,
        title: Some("Weekend trip".parse().unwrap()),
        created_by: "ada".parse().unwrap(),
        created_at: now,
        updated_at: now,
        last_activity_at: now,
        last_seq: 0,
        rev: 0,
        last_message: None,
        member_count: 3,
        issued_at: None,
        settled_rev: None,
        void_seqs: Vec::new(),
        big: false,
        legacy_member_names: None,
    };
    deps.store.put(&meta, None).await.unwrap();
    for (i, m) in members.iter().enumerate() {
        let user = m.parse().unwrap();
        let role = if i == 0 { Role::Owner } else { Role::Member };
        deps.store
            .put(&MemberItem::new(&id, &user, role, now, 0), None)
            .await
            .unwrap();
        deps.store
            .put(&InboxItem::new(&user, &id, now, 0, false), None)
            .await
            .unwrap();
    }
}

#[tokio::test]
async fn http_create_conversation_creates_then_finds_and_groups_are_retry_safe() {
    let deps = support::fresh_deps().await;
    profiles(&deps, &["bob", "cy"]).await;
    let first = http_create_conversation::handle(&deps, event("create-conversation.json"))
        .await
        .unwrap();
    assert_eq!(first.status(), 201);
    let again = http_create_conversation::handle(&deps, event("create-conversation.json"))
        .await
        .unwrap();
    assert_eq!(again.status(), 200);
    assert_eq!(json(&first)["id"], json(&again)["id"]);
    assert_eq!(json(&first)["kind"], "direct");

    let group = http_create_conversation::handle(&deps, event("create-group.json"))
        .await
        .unwrap();
    assert_eq!(group.status(), 201);
    let retried = http_create_conversation::handle(&deps, event("create-group.json"))
        .await
        .unwrap();
    assert_eq!(retried.status(), 200);
    assert_eq!(json(&group)["id"], json(&retried)["id"]);
    assert_eq!(json(&group)["title"], "Weekend trip");
}

#[tokio::test]
async fn http_list_and_get_conversation_show_the_callers_view() {
    let deps = support::fresh_deps().await;
    seed_event_group(&deps).await;
    let list = http_list_conversations::handle(&deps, event("list-conversations.json"))
        .await
        .unwrap();
    assert_eq!(list.status(), 200);
    let page = json(&list);
    assert_eq!(page["items"][0]["id"], EVENT_CONVERSATION);
    assert_eq!(page["nextCursor"], Value::Null);
    let one = http_get_conversation::handle(&deps, event("get-conversation.json"))
        .await
        .unwrap();
    assert_eq!(one.status(), 200);
    let conversation = json(&one);
    assert_eq!(conversation["memberCount"], 3);
    assert_eq!(conversation["me"]["unreadCount"], 0);
    assert_eq!(conversation["members"][0]["displayName"], "Name of ada");
}

#[tokio::test]
async fn http_update_conversation_and_settings_change_title_and_my_state() {
    let deps = support::fresh_deps().await;
    seed_event_group(&deps).await;
    let renamed = http_update_conversation::handle(&deps, event("update-conversation.json"))
        .await
        .unwrap();
    assert_eq!(renamed.status(), 200);
    assert_eq!(json(&renamed)["title"], "Renamed trip");
    let settings = http_update_conversation_settings::handle(
        &deps,
        event("update-conversation-settings.json"),
    )
    .await
    .unwrap();
    assert_eq!(settings.status(), 200);
    assert_eq!(
        json(&settings)["me"],
        serde_json::json!({"lastReadSeq": 0, "unreadCount": 0, "muted": true, "archived": true})
    );
}

#[tokio::test]
async fn http_add_members_and_remove_member_change_the_group() {
    let deps = support::fresh_deps().await;
    seed_event_group(&deps).await;
    let added = http_add_members::handle(&deps, event("add-members.json"))
        .await
        .unwrap();
    assert_eq!(added.status(), 200);
    assert_eq!(json(&added)["memberCount"], 4);
    let left = http_remove_member::handle(&deps, event("remove-member.json"))
        .await
        .unwrap();
    assert_eq!(left.status(), 204);
    assert_eq!(left.body(), &Body::Empty);
    let view = json(
        &http_get_conversation::handle(&deps, event("get-conversation.json"))
            .await
            .unwrap(),
    );
    assert_eq!(view["memberCount"], 3);
    assert!(
        view["members"]
            .as_array()
            .unwrap()
            .iter()
            .all(|m| m["userId"] != "bob")
    );
}

#[tokio::test]
async fn stream_publisher_turns_a_stream_batch_into_ordered_cloudevents() {
    use chat_shared::services::events::KinesisSink;
    let path = format!(
        "{}/../events/stream/table-changes.json",
        env!("CARGO_MANIFEST_DIR")
    );
    let batch: aws_lambda_events::event::dynamodb::Event =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let kinesis = support::kinesis().await;
    let stream = support::unique_name("events");
    let template = local_stack::Template::of_this_repository().unwrap();
    local_stack::create_stream(&kinesis, &stream, &template.stream)
        .await
        .unwrap();
    let deps = stream_publisher::Deps {
        sink: KinesisSink::new(kinesis, stream.clone()),
    };

    let response = stream_publisher::handle(
        &deps,
        lambda_runtime::LambdaEvent::new(batch, Default::default()),
    )
    .await
    .unwrap();
    assert!(response.batch_item_failures.is_empty());

    let pipeline = support::Pipeline::reader(support::kinesis().await, stream);
    let records = pipeline.read_all().await;
    let kinds: Vec<(&str, &str)> = records
        .iter()
        .map(|(key, e)| (key.as_str(), e["type"].as_str().unwrap()))
        .collect();
    assert_eq!(
        kinds,
        [
            (EVENT_CONVERSATION, "chat.conversation.created"),
            (EVENT_CONVERSATION, "chat.member.added"),
            (EVENT_CONVERSATION, "chat.member.removed"),
        ]
    );
    assert_eq!(
        records[0].1["id"], "c1a5e6f0a1b2c3d4e5f60718293a4b5c",
        "ids derive from the stream record"
    );
    assert_eq!(records[0].1["time"], "2026-11-25T13:14:50.000Z");
}

#[tokio::test]
async fn http_send_list_and_mark_read_handle_their_events() {
    let deps = support::fresh_deps().await;
    seed_event_group(&deps).await;
    let sent = http_send_message::handle(&deps, event("send-message.json"))
        .await
        .unwrap();
    assert_eq!(sent.status(), 201);
    assert_eq!(sent.headers()["ratelimit-limit"], "60");
    let message = json(&sent);
    assert_eq!(
        (message["seq"].as_u64(), message["rev"].as_u64()),
        (Some(1), Some(1))
    );
    let again = http_send_message::handle(&deps, event("send-message.json"))
        .await
        .unwrap();
    assert_eq!(again.status(), 200);
    assert_eq!(json(&again)["id"], message["id"]);

    let page = json(
        &http_list_messages::handle(&deps, event("list-messages.json"))
            .await
            .unwrap(),
    );
    assert_eq!(page["items"][0]["body"], "See you at the station at 9");
    assert_eq!(page["hasMore"], false);

    let read = http_mark_read::handle(&deps, event("mark-read.json"))
        .await
        .unwrap();
    assert_eq!(read.status(), 200);
    assert_eq!(
        json(&read),
        serde_json::json!({"lastReadSeq": 1, "unreadCount": 0})
    );
}

#[tokio::test]
async fn http_edit_react_unsend_and_list_changes_handle_their_events() {
    let deps = support::fresh_deps().await;
    seed_event_group(&deps).await;
    http_send_message::handle(&deps, event("send-message.json"))
        .await
        .unwrap();

    let edited = json(
        &http_edit_message::handle(&deps, event("edit-message.json"))
            .await
            .unwrap(),
    );
    assert_eq!(
        (edited["body"].as_str(), edited["rev"].as_u64()),
        (Some("See you at the station at 9:30"), Some(2))
    );
    let reacted = json(
        &http_put_reaction::handle(&deps, event("put-reaction.json"))
            .await
            .unwrap(),
    );
    assert_eq!(reacted["reactions"], serde_json::json!({"👍": ["bob"]}));
    let unreacted = json(
        &http_delete_reaction::handle(&deps, event("delete-reaction.json"))
            .await
            .unwrap(),
    );
    assert_eq!(
        (unreacted["reactions"].clone(), unreacted["rev"].as_u64()),
        (serde_json::json!({}), Some(4))
    );
    let unsent = json(
        &http_unsend_message::handle(&deps, event("unsend-message.json"))
            .await
            .unwrap(),
    );
    assert_eq!(
        (unsent["deleted"].as_bool(), unsent["rev"].as_u64()),
        (Some(true), Some(5))
    );

    let changes = json(
        &http_list_changes::handle(&deps, event("list-changes.json"))
            .await
            .unwrap(),
    );
    assert_eq!(changes["items"].as_array().unwrap().len(), 1);
    assert_eq!(
        (changes["rev"].as_u64(), changes["hasMore"].as_bool()),
        (Some(5), Some(false))
    );
}

#[tokio::test]
async fn http_create_realtime_ticket_issues_a_single_use_ticket() {
    let deps = support::fresh_deps().await;
    let resp = http_create_realtime_ticket::handle(&deps, event("create-realtime-ticket.json"))
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
    assert_eq!(resp.headers()["ratelimit-limit"], "30");
    let ticket = json(&resp);
    let raw = ticket["ticket"].as_str().unwrap();
    assert_eq!(raw.len(), 43, "32 random bytes, base64url");
    let expires =
        chat_shared::platform::time::Timestamp::parse(ticket["expiresAt"].as_str().unwrap())
            .unwrap();
    let ahead = expires.unix_seconds() - support::clock().now().unix_seconds();
    assert!((58..=60).contains(&ahead), "{ahead}");

    // The first handshake consumes it; any later one finds nothing.
    let user = chat_shared::services::realtime::consume(&deps.store, raw)
        .await
        .unwrap();
    assert_eq!(user.map(String::from).as_deref(), Some("ada"));
    assert_eq!(
        chat_shared::services::realtime::consume(&deps.store, raw)
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        chat_shared::services::realtime::consume(&deps.store, "forged")
            .await
            .unwrap(),
        None
    );
}

#[tokio::test]
async fn stream_analytics_counts_its_sample_batch_once_however_often_it_comes() {
    use aws_lambda_events::event::kinesis::KinesisEvent;
    let path = format!(
        "{}/../events/kinesis/analytics-events.json",
        env!("CARGO_MANIFEST_DIR")
    );
    let batch: KinesisEvent =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    // The sample holds CloudEvents byte for byte as stream-publisher writes them.
    for record in &batch.records {
        let event: chat_shared::services::events::CloudEvent =
            serde_json::from_slice(&record.kinesis.data).unwrap();
        assert_eq!(
            serde_json::to_vec(&event).unwrap(),
            *record.kinesis.data,
            "{}",
            event.id
        );
    }
    let deps = stream_analytics::Deps {
        store: support::fresh_store().await,
        window: chat_shared::services::analytics::DedupeWindow::for_retention_hours(24),
    };
    for _ in 0..2 {
        let response = stream_analytics::handle(
            &deps,
            lambda_runtime::LambdaEvent::new(batch.clone(), Default::default()),
        )
        .await
        .unwrap();
        assert!(response.batch_item_failures.is_empty(), "{response:?}");
    }
    let report =
        chat_shared::services::analytics::report(&deps.store, "2026-11-25".parse().unwrap())
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
    assert_eq!(
        report.conversations,
        [chat_shared::services::analytics::ConversationDay {
            conversation_id: EVENT_CONVERSATION.to_owned(),
            messages: 3,
            created: true,
        }]
    );
}
