//! The WebSocket functions fed with their `events/websocket/` files: the `$connect` authorizer
//! (tickets and JWTs, against the local gateway's JWKS), connect, disconnect, and presence.

use aws_lambda_events::event::apigw::{
    ApiGatewayCustomAuthorizerRequestTypeRequest, ApiGatewayWebsocketProxyRequest,
};
use chat_functions::{ws_authorizer, ws_connect, ws_disconnect};
use chat_shared::edge::jwt::{JwksCache, JwtPolicy};
use lambda_runtime::LambdaEvent;
use local_gateway::issuer::{LOCAL_AUDIENCE, LOCAL_ISSUER};
use reqwest::Method;
use serde_json::json;

use crate::support::{self, LocalApi};

fn file(name: &str) -> String {
    std::fs::read_to_string(format!(
        "{}/../events/websocket/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

fn authorizer_event(
    name: &str,
    placeholder: &str,
    value: &str,
) -> LambdaEvent<ApiGatewayCustomAuthorizerRequestTypeRequest> {
    let text = file(name).replace(placeholder, value);
    LambdaEvent::new(serde_json::from_str(&text).unwrap(), Default::default())
}

fn ws_event(name: &str) -> LambdaEvent<ApiGatewayWebsocketProxyRequest> {
    LambdaEvent::new(
        serde_json::from_str(&file(name)).unwrap(),
        Default::default(),
    )
}

async fn authorizer(api: &LocalApi) -> ws_authorizer::Deps {
    ws_authorizer::Deps {
        store: api.gateway.deps.store.clone(),
        jwks: JwksCache::new(format!("{}/_local/jwks.json", api.url)),
        policy: JwtPolicy {
            issuer: LOCAL_ISSUER.to_owned(),
            audiences: vec![LOCAL_AUDIENCE.to_owned()],
        },
    }
}

#[tokio::test]
async fn the_authorizer_lets_in_a_ticket_once_and_a_good_token_and_refuses_the_rest() {
    let api = LocalApi::start().await;
    let deps = authorizer(&api).await;
    let (status, ticket) = api
        .call(Method::POST, "/realtime/tickets", "ada", None)
        .await;
    assert_eq!(status, 201);
    let ticket = ticket["ticket"].as_str().unwrap().to_owned();
    let placeholder = "REPLACE-WITH-A-TICKET-FROM-POST-realtime-tickets";

    let allowed = ws_authorizer::handle(
        &deps,
        authorizer_event("authorizer-ticket.json", placeholder, &ticket),
    )
    .await
    .unwrap();
    let allowed = serde_json::to_value(&allowed).unwrap();
    assert_eq!(allowed["principalId"], "ada");
    assert_eq!(allowed["context"], json!({"userId": "ada"}));
    assert_eq!(allowed["policyDocument"]["Statement"][0]["Effect"], "Allow");
    assert_eq!(
        allowed["policyDocument"]["Statement"][0]["Resource"][0],
        "arn:aws:execute-api:us-east-1:123456789012:abc123ws/dev/$connect"
    );

    let used = ws_authorizer::handle(
        &deps,
        authorizer_event("authorizer-ticket.json", placeholder, &ticket),
    )
    .await;
    assert_eq!(
        used.unwrap_err().to_string(),
        "Unauthorized",
        "a ticket is single-use"
    );

    let issuer = &api.gateway.issuer;
    let token = api.token("bob", Some("Bob"));
    let allowed = ws_authorizer::handle(
        &deps,
        authorizer_event("authorizer-token.json", "REPLACE-WITH-A-JWT", &token),
    )
    .await
    .unwrap();
    assert_eq!(allowed.principal_id.as_deref(), Some("bob"));

    let refused = support::refused_tokens(issuer);
    for (case, token) in refused {
        let answer = ws_authorizer::handle(
            &deps,
            authorizer_event("authorizer-token.json", "REPLACE-WITH-A-JWT", &token),
        )
        .await;
        assert_eq!(answer.unwrap_err().to_string(), "Unauthorized", "{case}");
    }
    let none = file("authorizer-ticket.json").replace(
        r#""ticket": "REPLACE-WITH-A-TICKET-FROM-POST-realtime-tickets""#,
        r#""other": "x""#,
    );
    let none: ApiGatewayCustomAuthorizerRequestTypeRequest = serde_json::from_str(&none).unwrap();
    let answer = ws_authorizer::handle(&deps, LambdaEvent::new(none, Default::default())).await;
    assert_eq!(
        answer.unwrap_err().to_string(),
        "Unauthorized",
        "no credential"
    );
}

/// `ws-authorizer`'s deps as its bootstrap makes them, from `vars` (the variables that say where
/// the keys are are these only) and else this process's environment.
async fn authorizer_from_env(vars: &[(&str, String)]) -> ws_authorizer::Deps {
    let vars: Vec<(String, String)> = vars
        .iter()
        .map(|(k, v)| ((*k).to_owned(), v.clone()))
        .collect();
    let env = chat_shared::platform::config::Env::new(move |name: &str| {
        let given = vars.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
        match name {
            "JWT_ISSUER" | "JWT_AUDIENCE" | "JWKS_URL" | "OIDC_DISCOVERY_URL" => given,
            _ => given.or_else(|| std::env::var(name).ok()),
        }
    });
    ws_authorizer::Deps::from_env(&env).await.unwrap()
}

#[tokio::test]
async fn the_authorizer_finds_the_keys_by_discovery_unless_jwks_url_names_them() {
    let api = LocalApi::start().await;
    let token = api.token("bob", Some("Bob"));
    let event = || authorizer_event("authorizer-token.json", "REPLACE-WITH-A-JWT", &token);
    let kid = api.gateway.issuer.kid().to_owned();
    let local = |extra: &[(&'static str, String)]| {
        let mut vars = vec![
            ("JWT_ISSUER", LOCAL_ISSUER.to_owned()),
            ("JWT_AUDIENCE", LOCAL_AUDIENCE.to_owned()),
        ];
        vars.extend_from_slice(extra);
        vars
    };
    let discovery = format!("{}{}", api.url, local_gateway::issuer::DISCOVERY_PATH);
    let nowhere = format!("{}/_local/nowhere", api.url);

    // By the document the gateway serves for the local issuer: its jwks_uri, then the keys.
    let deps = authorizer_from_env(&local(&[("OIDC_DISCOVERY_URL", discovery.clone())])).await;
    let allowed = ws_authorizer::handle(&deps, event()).await.unwrap();
    assert_eq!(allowed.principal_id.as_deref(), Some("bob"));

    // A document that cannot be fetched: no keys, the token is refused.
    let deps = authorizer_from_env(&local(&[("OIDC_DISCOVERY_URL", nowhere.clone())])).await;
    let refused = ws_authorizer::handle(&deps, event()).await;
    assert_eq!(refused.unwrap_err().to_string(), "Unauthorized");

    // JWKS_URL wins over discovery.
    let deps = authorizer_from_env(&local(&[
        ("OIDC_DISCOVERY_URL", nowhere),
        ("JWKS_URL", format!("{}/_local/jwks.json", api.url)),
    ]))
    .await;
    let allowed = ws_authorizer::handle(&deps, event()).await.unwrap();
    assert_eq!(allowed.principal_id.as_deref(), Some("bob"));

    // By default the document is under the issuer: for an issuer `<gateway>/_local/` that is the
    // gateway's document, which is another issuer's (`LOCAL_ISSUER`): its keys are not taken.
    let deps = authorizer_from_env(&[
        ("JWT_ISSUER", format!("{}/_local/", api.url)),
        ("JWT_AUDIENCE", LOCAL_AUDIENCE.to_owned()),
    ])
    .await;
    assert!(deps.jwks.keys_for(Some(&kid)).await.is_empty());
    // ... while the local issuer's own deps do take them from it.
    let deps = authorizer_from_env(&local(&[("OIDC_DISCOVERY_URL", discovery)])).await;
    assert!(deps.jwks.keys_for(Some(&kid)).await.contains(&kid));
}

#[tokio::test]
async fn connect_and_disconnect_keep_the_record_and_presence() {
    let api = LocalApi::start().await;
    let deps = &api.gateway.deps;
    let (_, before) = api.call(Method::GET, "/me", "ada", None).await;
    assert_eq!(
        (before["online"].as_bool(), before["lastSeenAt"].is_null()),
        (Some(false), true)
    );

    let connected = ws_connect::handle(deps, ws_event("connect.json"))
        .await
        .unwrap();
    assert_eq!(connected.status_code, 200);
    let records = chat_shared::services::connections::of_user(&deps.store, &"ada".parse().unwrap())
        .await
        .unwrap();
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].connection_id, "Jk3eAcX1IAMCJ2Q=");
    let ttl = records[0].expires_at - support::clock().now().unix_seconds();
    assert!(
        (7_700..=7_800).contains(&ttl),
        "a little past two hours: {ttl}"
    );
    let (_, bob_sees) = api.call(Method::GET, "/users/ada", "bob", None).await;
    assert_eq!(bob_sees["online"], true);

    let gone = ws_disconnect::handle(deps, ws_event("disconnect.json"))
        .await
        .unwrap();
    assert_eq!(gone.status_code, 200);
    let (_, after) = api.call(Method::GET, "/users/ada", "bob", None).await;
    assert_eq!(after["online"], false);
    assert!(after["lastSeenAt"].is_string());
    // Disconnecting twice is harmless ($disconnect is best-effort and may repeat).
    assert_eq!(
        ws_disconnect::handle(deps, ws_event("disconnect.json"))
            .await
            .unwrap()
            .status_code,
        200
    );
}
