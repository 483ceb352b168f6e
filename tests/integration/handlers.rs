//! Each function's handler fed with its `events/` files, as Lambda would feed it, against
//! DynamoDB Local.

use chat_shared::deps::HttpDeps;
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

async fn profile_exists(deps: &HttpDeps, user: &str) -> bool {
    chat_shared::profiles::ProfileStore::get(&deps.store, &user.parse().unwrap())
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
