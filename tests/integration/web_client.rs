//! The local gateway serves the web client's built files at `/` where no API route matches, and
//! answers every API route as before: the JWT authorizer, the functions' answers, the 404 JSON
//! for unknown API paths, CORS for a page served from another origin.

use std::path::PathBuf;
use std::sync::Arc;

use local_gateway::event::ApiFacts;
use local_gateway::issuer::LocalIssuer;
use local_gateway::server::Gateway;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::support::fresh_deps;

/// A directory shaped like `examples/web-client/dist`, with a file beside it that must stay out
/// of reach.
fn web_root() -> PathBuf {
    let base = std::env::temp_dir().join(crate::support::unique_name("web-client"));
    let root = base.join("dist");
    std::fs::create_dir_all(root.join("assets")).unwrap();
    std::fs::write(
        root.join("index.html"),
        "<!doctype html><title>chat</title>",
    )
    .unwrap();
    std::fs::write(root.join("assets/index-abc.js"), "console.log(1)").unwrap();
    std::fs::write(root.join(".env"), "SECRET=1").unwrap();
    std::fs::write(base.join("secret.txt"), "outside the web root").unwrap();
    root
}

/// A gateway on its own port serving `web` (or no web client), CORS for one other origin.
async fn start(web: Option<PathBuf>) -> (String, Arc<Gateway>) {
    let mut deps = fresh_deps().await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    deps.pusher =
        chat_shared::adapters::push::Pusher::for_endpoint(&format!("http://{address}/local"))
            .await
            .unwrap();
    let facts = ApiFacts {
        api_id: "local".to_owned(),
        stage: "$default".to_owned(),
        domain_name: address.to_string(),
    };
    let gateway = Arc::new(
        Gateway::new(
            deps,
            &crate::support::local_stack(),
            LocalIssuer::ephemeral(crate::support::clock()).unwrap(),
            facts,
            vec!["http://127.0.0.1:5999".to_owned()],
        )
        .await
        .unwrap()
        .with_web_root(web),
    );
    let serving = gateway.clone();
    tokio::spawn(async move {
        local_gateway::server::serve(listener, serving, std::future::pending()).await
    });
    (format!("http://{address}"), gateway)
}

async fn not_found_json(response: reqwest::Response, what: &str) {
    assert_eq!(response.status(), StatusCode::NOT_FOUND, "{what}");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body, json!({"message": "Not Found"}), "{what}");
}

#[tokio::test]
async fn serves_the_page_and_every_api_route_as_before() {
    let root = web_root();
    let (url, gateway) = start(Some(root.clone())).await;
    let http = reqwest::Client::new();

    // The page and its assets.
    let page = http.get(format!("{url}/")).send().await.unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    assert_eq!(
        page.headers()["content-type"],
        "text/html; charset=utf-8",
        "index.html"
    );
    assert_eq!(page.headers()["cache-control"], "no-cache");
    assert_eq!(
        page.text().await.unwrap(),
        "<!doctype html><title>chat</title>"
    );
    let script = http
        .get(format!("{url}/assets/index-abc.js"))
        .send()
        .await
        .unwrap();
    assert_eq!(script.status(), StatusCode::OK);
    assert_eq!(
        script.headers()["content-type"],
        "text/javascript; charset=utf-8"
    );
    assert_eq!(script.text().await.unwrap(), "console.log(1)");
    let head = http.head(format!("{url}/")).send().await.unwrap();
    assert_eq!(head.status(), StatusCode::OK);
    assert_eq!(head.headers()["content-length"], "34");

    // Unknown paths, other methods, hidden files and ways out of the root: the API's 404 JSON.
    for path in [
        "/nope",
        "/assets/missing.js",
        "/.env",
        "/../secret.txt",
        "/%2e%2e/secret.txt",
        "/assets/..%2F..%2Fsecret.txt",
        "/conversations/x/y/z",
    ] {
        let response = http.get(format!("{url}{path}")).send().await.unwrap();
        not_found_json(response, path).await;
    }
    let posted = http.post(format!("{url}/")).send().await.unwrap();
    not_found_json(posted, "POST /").await;

    // API routes: the authorizer first, then the function's answer.
    let refused = http.get(format!("{url}/me")).send().await.unwrap();
    assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        refused.json::<Value>().await.unwrap(),
        json!({"message": "Unauthorized"})
    );
    let token = gateway.issuer.mint("web-ada", Some("Ada"), 600).unwrap();
    let me = http
        .get(format!("{url}/me"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(me.status(), StatusCode::OK);
    assert!(me.headers().contains_key("x-request-id"));
    let me: Value = me.json().await.unwrap();
    assert_eq!(me["userId"], "web-ada");
    assert_eq!(me["displayName"], "Ada");
    let listed = http
        .get(format!("{url}/conversations"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(listed.status(), StatusCode::OK);
    assert_eq!(
        listed.json::<Value>().await.unwrap(),
        json!({"items": [], "nextCursor": null})
    );
    // The dev token route the page uses.
    let dev = http
        .get(format!("{url}/_local/token?user=web-bo&name=Bo"))
        .send()
        .await
        .unwrap();
    assert_eq!(dev.status(), StatusCode::OK);
    assert_eq!(dev.json::<Value>().await.unwrap()["userId"], "web-bo");

    // CORS for the page served from another origin: the preflight and the answer's headers.
    let preflight = http
        .request(reqwest::Method::OPTIONS, format!("{url}/conversations"))
        .header("origin", "http://127.0.0.1:5999")
        .header("access-control-request-method", "POST")
        .header(
            "access-control-request-headers",
            "authorization,content-type",
        )
        .send()
        .await
        .unwrap();
    assert_eq!(preflight.status(), StatusCode::NO_CONTENT);
    assert_eq!(
        preflight.headers()["access-control-allow-origin"],
        "http://127.0.0.1:5999"
    );
    let across = http
        .get(format!("{url}/me"))
        .header("origin", "http://127.0.0.1:5999")
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(across.status(), StatusCode::OK);
    assert_eq!(
        across.headers()["access-control-allow-origin"],
        "http://127.0.0.1:5999"
    );

    std::fs::remove_dir_all(root.parent().unwrap()).ok();
}

#[tokio::test]
async fn without_a_web_root_the_root_path_is_the_apis_404() {
    let (url, _gateway) = start(None).await;
    let response = reqwest::get(format!("{url}/")).await.unwrap();
    not_found_json(response, "GET / without a web client").await;
}
