//! Profiles through the local gateway over real HTTP.

use reqwest::Method;
use serde_json::json;

use crate::support::{LocalApi, status_json};

#[tokio::test]
async fn a_profile_is_created_updated_and_read_by_another_user() {
    let api = LocalApi::start().await;
    let ada = api.token("auth0|ada#1", Some("Ada Lovelace"));
    let bob = api.token("bob", Some("Bob"));

    let resp = api.request(Method::GET, "/me", &ada).send().await.unwrap();
    assert!(resp.headers().contains_key("x-request-id"));
    let (status, me) = status_json(resp).await;
    assert_eq!(status, 200);
    assert_eq!(me["userId"], "auth0|ada#1");
    assert_eq!(me["displayName"], "Ada Lovelace");
    assert_eq!(me["lastSeenAt"], serde_json::Value::Null);
    let created_at = me["createdAt"].as_str().unwrap().to_owned();
    assert_eq!(created_at.len(), "2026-11-25T13:14:50.123Z".len());

    let (status, updated) = status_json(
        api.request(Method::PATCH, "/me", &ada)
            .json(&json!({"displayName": "Countess", "avatarUrl": "https://img.example.com/a.png"}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(updated["displayName"], "Countess");
    assert_eq!(updated["createdAt"], created_at.as_str());

    // Bob reads Ada's profile; her id holds `|` and `#`, percent-encoded in the path.
    let (status, seen) = status_json(
        api.request(Method::GET, "/users/auth0%7Cada%231", &bob)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(seen["displayName"], "Countess");
    assert_eq!(seen["avatarUrl"], "https://img.example.com/a.png");

    // Removing the avatar.
    let (status, cleared) = status_json(
        api.request(Method::PATCH, "/me", &ada)
            .json(&json!({"avatarUrl": null}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(cleared["avatarUrl"], serde_json::Value::Null);
    assert_eq!(cleared["displayName"], "Countess");

    let (status, body) = status_json(
        api.request(Method::GET, "/users/nobody", &bob)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!((status, &body["error"]["code"]), (404, &json!("not_found")));
}

#[tokio::test]
async fn concurrent_first_calls_create_one_profile() {
    let api = LocalApi::start().await;
    let token = api.token("racer", Some("Racer"));
    let calls = (0..10).map(|_| api.request(Method::GET, "/me", &token).send());
    let answers = futures_join(calls).await;
    let created: Vec<String> = answers
        .iter()
        .map(|(s, b)| {
            assert_eq!(*s, 200);
            b["createdAt"].as_str().unwrap().to_owned()
        })
        .collect();
    assert!(
        created.windows(2).all(|w| w[0] == w[1]),
        "one profile: {created:?}"
    );
}

async fn futures_join<F>(calls: impl Iterator<Item = F>) -> Vec<(u16, serde_json::Value)>
where
    F: Future<Output = reqwest::Result<reqwest::Response>> + Send + 'static,
{
    let handles: Vec<_> = calls.map(tokio::spawn).collect();
    let mut out = Vec::new();
    for h in handles {
        out.push(status_json(h.await.unwrap().unwrap()).await);
    }
    out
}

#[tokio::test]
async fn invalid_profile_changes_are_400_with_the_field_and_change_nothing() {
    let api = LocalApi::start().await;
    let ada = api.token("ada", Some("Ada"));
    api.request(Method::GET, "/me", &ada).send().await.unwrap();

    let cases = [
        (json!({"displayName": ""}), "displayName"),
        (json!({"displayName": "x".repeat(65)}), "displayName"),
        (json!({"displayName": "   "}), "displayName"),
        (json!({"displayName": 42}), "displayName"),
        (json!({"displayName": null}), "displayName"),
        (
            json!({"avatarUrl": "http://img.example.com/a.png"}),
            "avatarUrl",
        ),
        (
            json!({"avatarUrl": format!("https://e.com/{}", "a".repeat(2048))}),
            "avatarUrl",
        ),
        (json!({"userId": "mallory"}), "userId"),
    ];
    for (body, field) in cases {
        let (status, answer) = status_json(
            api.request(Method::PATCH, "/me", &ada)
                .json(&body)
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(status, 400, "{body}");
        assert_eq!(answer["error"]["code"], "validation_failed", "{body}");
        assert_eq!(answer["error"]["field"], field, "{body}");
        assert!(answer["requestId"].is_string());
    }

    let (status, answer) = status_json(
        api.request(Method::PATCH, "/me", &ada)
            .body("{not json")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        (status, &answer["error"]["code"]),
        (400, &json!("invalid_json"))
    );

    let big = format!(r#"{{"displayName":"{}"}}"#, "a".repeat(70 * 1024));
    let (status, answer) = status_json(
        api.request(Method::PATCH, "/me", &ada)
            .body(big)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        (status, &answer["error"]["code"]),
        (413, &json!("payload_too_large"))
    );

    let (_, me) = status_json(api.request(Method::GET, "/me", &ada).send().await.unwrap()).await;
    assert_eq!(
        me["displayName"], "Ada",
        "no refused request changed the profile"
    );
}

#[tokio::test]
async fn unknown_routes_get_the_gateways_404_and_preflight_is_answered() {
    let api = LocalApi::start().await;
    let token = api.token("ada", None);
    let (status, body) = status_json(
        api.request(Method::GET, "/nowhere", &token)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!((status, body), (404, json!({"message": "Not Found"})));

    let preflight = api
        .http
        .request(Method::OPTIONS, format!("{}/me", api.url))
        .header("origin", "http://localhost:5173")
        .header("access-control-request-method", "PATCH")
        .send()
        .await
        .unwrap();
    assert_eq!(preflight.status(), 204);
    assert_eq!(
        preflight.headers()["access-control-allow-origin"],
        "http://localhost:5173"
    );
}
