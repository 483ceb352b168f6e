//! The Redis cache in use, and every change a reader would see shown through it.

use redis::AsyncCommands;
use reqwest::Method;
use serde_json::{Value, json};

use crate::support::LocalApi;

/// The keys this test's gateway has stored (its own prefix).
async fn cached_keys(api: &LocalApi) -> Vec<String> {
    let prefix = api.gateway.deps.redis.prefix().to_owned();
    let client = redis::Client::open(std::env::var("REDIS_URL").unwrap()).unwrap();
    let mut connection = client.get_multiplexed_async_connection().await.unwrap();
    let mut keys: Vec<String> = connection.keys(format!("{prefix}*")).await.unwrap();
    keys.iter_mut()
        .for_each(|k| *k = k.trim_start_matches(&prefix).to_owned());
    keys.sort();
    keys
}

fn member_ids(conversation: &Value) -> Vec<&str> {
    let mut ids: Vec<&str> = conversation["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["userId"].as_str().unwrap())
        .collect();
    ids.sort();
    ids
}

#[tokio::test]
async fn cached_conversations_and_lists_show_title_member_settings_and_name_changes() {
    let api = LocalApi::start().await;
    api.sign_up(&["ada".into(), "bob".into(), "cy".into(), "dee".into()])
        .await;
    let (_, group) = api
        .call(
            Method::POST,
            "/conversations",
            "ada",
            Some(json!({"participantIds": ["bob", "cy"], "title": "Before"})),
        )
        .await;
    let id = group["id"].as_str().unwrap().to_owned();
    let c = format!("/conversations/{id}");

    // Reads fill the cache: the member list, the profiles, ada's list page and generation.
    let (_, first) = api.call(Method::GET, &c, "ada", None).await;
    let (_, list) = api.call(Method::GET, "/conversations", "ada", None).await;
    assert_eq!(list["items"][0]["title"], "Before");
    let keys = cached_keys(&api).await;
    assert!(keys.contains(&format!("conv:{{{id}}}:members")), "{keys:?}");
    assert!(keys.contains(&"user:{ada}:profile".to_owned()), "{keys:?}");
    assert!(
        keys.iter().any(|k| k.starts_with("user:{ada}:inbox:")),
        "{keys:?}"
    );
    let (_, again) = api.call(Method::GET, &c, "ada", None).await;
    assert_eq!(first, again, "a cached read is the same read");

    // Title.
    api.call(Method::PATCH, &c, "bob", Some(json!({"title": "After"})))
        .await;
    let (_, one) = api.call(Method::GET, &c, "ada", None).await;
    assert_eq!(one["title"], "After");
    let (_, list) = api.call(Method::GET, "/conversations", "ada", None).await;
    assert_eq!(list["items"][0]["title"], "After");

    // Members: added, then removed.
    let (_, dee_before) = api.call(Method::GET, "/conversations", "dee", None).await;
    assert_eq!(dee_before["items"], json!([]));
    api.call(
        Method::POST,
        &format!("{c}/members"),
        "cy",
        Some(json!({"userIds": ["dee"]})),
    )
    .await;
    let (_, one) = api.call(Method::GET, &c, "ada", None).await;
    assert_eq!(member_ids(&one), ["ada", "bob", "cy", "dee"]);
    let (_, dee_after) = api.call(Method::GET, "/conversations", "dee", None).await;
    assert_eq!(
        dee_after["items"][0]["id"],
        id.as_str(),
        "dee's cached empty list moved on"
    );
    let (_, list) = api.call(Method::GET, "/conversations", "ada", None).await;
    assert_eq!(list["items"][0]["memberCount"], 4);
    api.call(Method::DELETE, &format!("{c}/members/bob"), "ada", None)
        .await;
    let (_, one) = api.call(Method::GET, &c, "cy", None).await;
    assert_eq!(member_ids(&one), ["ada", "cy", "dee"]);
    let (_, bob_list) = api.call(Method::GET, "/conversations", "bob", None).await;
    assert_eq!(bob_list["items"], json!([]));

    // Settings: archived leaves the cached default list and joins the archived one.
    api.call(
        Method::PATCH,
        &format!("{c}/settings"),
        "ada",
        Some(json!({"archived": true})),
    )
    .await;
    let (_, list) = api.call(Method::GET, "/conversations", "ada", None).await;
    assert_eq!(list["items"], json!([]));
    let (_, archived) = api
        .call(Method::GET, "/conversations?archived=true", "ada", None)
        .await;
    assert_eq!(archived["items"][0]["me"]["archived"], true);

    // A new display name shows in the member list.
    let token = api.token("cy", None);
    api.request(Method::PATCH, "/me", &token)
        .json(&json!({"displayName": "Cy Renamed"}))
        .send()
        .await
        .unwrap();
    let (_, one) = api.call(Method::GET, &c, "ada", None).await;
    let cy = one["members"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["userId"] == "cy")
        .unwrap();
    assert_eq!(cy["displayName"], "Cy Renamed");
}
