//! Real WebSocket clients against the local gateway's WebSocket side.

use chat_functions::{ws_default, ws_mark_read, ws_ping, ws_send_message, ws_typing};
use std::time::Duration;

use aws_lambda_events::event::apigw::ApiGatewayProxyResponse;
use chat_shared::adapters::push::PushError;
use futures::SinkExt;
use reqwest::Method;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::{self, Message};

use crate::support::{self, LocalApi, Socket};

fn ws_url(api: &LocalApi, query: &str) -> String {
    format!("{}/local?{query}", api.url.replacen("http://", "ws://", 1))
}

async fn connect(api: &LocalApi, query: &str) -> Result<Socket, u16> {
    match tokio_tungstenite::connect_async(ws_url(api, query)).await {
        Ok((socket, _)) => Ok(socket),
        Err(tungstenite::Error::Http(response)) => Err(response.status().as_u16()),
        Err(other) => panic!("handshake failed: {other}"),
    }
}

async fn ticket(api: &LocalApi, user: &str) -> String {
    let (status, body) = api
        .call(Method::POST, "/realtime/tickets", user, None)
        .await;
    assert_eq!(status, 201);
    body["ticket"].as_str().unwrap().to_owned()
}

/// A handler's answer: its response's body (the two-way route sends it back on the frame's
/// connection), checked against `asyncapi.yaml` as a frame the server sends.
fn answered(response: ApiGatewayProxyResponse) -> Value {
    assert_eq!(response.status_code, 200);
    let Some(aws_lambda_events::encodings::Body::Text(text)) = response.body else {
        panic!("no answer in the response");
    };
    let frame: Value = serde_json::from_str(&text).unwrap();
    if let Err(violations) = crate::ws_schema::check_server_frame(&frame) {
        panic!("{violations}");
    }
    frame
}

/// The next frame of type `kind`, skipping others (the fan-out also tells of the conversation a
/// test seeds), each checked against `asyncapi.yaml`.
async fn next_typed(socket: &mut Socket, kind: &str) -> Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let frame = support::next_frame(socket, deadline)
            .await
            .unwrap_or_else(|| panic!("a {kind} frame in time"));
        if frame["type"] == kind {
            return frame;
        }
    }
}

/// The next frame, checked against `asyncapi.yaml` (`support::next_frame`).
async fn next_json(socket: &mut Socket) -> Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    support::next_frame(socket, deadline)
        .await
        .expect("a text frame in time")
}

#[tokio::test]
async fn a_ticket_connects_once_and_bad_credentials_are_refused_at_the_handshake() {
    let api = LocalApi::start().await;
    let t = ticket(&api, "ada").await;
    let socket = connect(&api, &format!("ticket={t}")).await;
    assert!(socket.is_ok(), "a fresh ticket connects");
    assert_eq!(
        connect(&api, &format!("ticket={t}")).await.err(),
        Some(401),
        "a used ticket"
    );
    assert_eq!(connect(&api, "").await.err(), Some(401), "no credential");

    let good = api.token("bob", None);
    assert!(
        connect(&api, &format!("token={good}")).await.is_ok(),
        "a good JWT connects"
    );
    let issuer = &api.gateway.issuer;
    for (case, token) in support::refused_tokens(issuer) {
        assert_eq!(
            connect(&api, &format!("token={token}")).await.err(),
            Some(401),
            "{case}"
        );
    }
}

#[tokio::test]
async fn ping_pongs_unknown_actions_are_refused_and_a_closed_socket_is_gone() {
    let api = LocalApi::start().await;
    api.sign_up(&["ada".into(), "bob".into()]).await;
    let t = ticket(&api, "ada").await;
    let mut socket = connect(&api, &format!("ticket={t}")).await.unwrap();

    socket
        .send(Message::Text(r#"{"action":"ping"}"#.into()))
        .await
        .unwrap();
    assert_eq!(next_json(&mut socket).await, json!({"type": "pong"}));
    socket
        .send(Message::Text(r#"{"action":"dance"}"#.into()))
        .await
        .unwrap();
    let answer = next_json(&mut socket).await;
    assert_eq!(
        (answer["type"].as_str(), answer["error"]["code"].as_str()),
        (Some("error"), Some("unknown_action"))
    );
    socket.send(Message::Text("not json".into())).await.unwrap();
    assert_eq!(
        next_json(&mut socket).await["error"]["code"],
        "unknown_action"
    );

    // Online while the socket is open; the record names the connection.
    let (_, ada) = api.call(Method::GET, "/users/ada", "bob", None).await;
    assert_eq!(ada["online"], true);
    let records = chat_shared::services::connections::of_user(
        &api.gateway.deps.store,
        &"ada".parse().unwrap(),
    )
    .await
    .unwrap();
    let id = records[0].connection_id.clone();
    // `GET @connections` as the stack's owner: no function's role allows it.
    let owner = api.connections_client(None);
    let info = owner
        .get_connection()
        .connection_id(&id)
        .send()
        .await
        .unwrap();
    assert!(info.connected_at().is_some());
    assert_eq!(
        info.identity().and_then(|i| i.source_ip()),
        Some("127.0.0.1"),
        "{info:?}"
    );

    // A function's real management client reaches the socket, then meets a typed GoneException.
    let pusher = api.gateway.functions.ws("stream-fan-out").unwrap().pusher;
    pusher.post(&id, &json!({"type": "hello"})).await.unwrap();
    // Not a frame of the contract: the transport carries whatever it is given.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    assert_eq!(
        support::next_unchecked_frame(&mut socket, deadline).await,
        Some(json!({"type": "hello"}))
    );
    let big = json!({"type": "big", "pad": "x".repeat(130 * 1024)});
    assert!(matches!(
        pusher.post(&id, &big).await,
        Err(PushError::PayloadTooLarge)
    ));

    socket.close(None).await.unwrap();
    let is_gone = |answer: &Result<_, aws_sdk_apigatewaymanagement::error::SdkError<_>>| matches!(answer, Err(e) if e.as_service_error().is_some_and(|e: &aws_sdk_apigatewaymanagement::operation::get_connection::GetConnectionError| e.is_gone_exception()));
    for _ in 0..50 {
        if is_gone(&owner.get_connection().connection_id(&id).send().await) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(is_gone(
        &owner.get_connection().connection_id(&id).send().await
    ));
    assert!(matches!(
        pusher.post(&id, &json!({"type": "late"})).await,
        Err(PushError::Gone)
    ));
    assert!(matches!(
        pusher.post("never-existed", &json!({})).await,
        Err(PushError::Gone)
    ));
    // $disconnect ran: the record is gone and ada is offline.
    let (_, ada) = api.call(Method::GET, "/users/ada", "bob", None).await;
    assert_eq!(ada["online"], false);
}

/// `@connections` needs SigV4 and the role's `execute-api:ManageConnections` on the connection, as
/// on AWS: a page of any origin cannot push forged frames or close sockets.
#[tokio::test]
async fn connections_need_a_signature_and_a_role_that_allows_them() {
    let api = LocalApi::start().await;
    let t = ticket(&api, "ada").await;
    let _socket = connect(&api, &format!("ticket={t}")).await.unwrap();
    let records = chat_shared::services::connections::of_user(
        &api.gateway.deps.store,
        &"ada".parse().unwrap(),
    )
    .await
    .unwrap();
    let id = records[0].connection_id.clone();
    let at = format!("{}/local/@connections/{id}", api.url);
    let http = reqwest::Client::new();
    for method in [Method::POST, Method::GET, Method::DELETE] {
        let answer = http
            .request(method.clone(), &at)
            .body("{}")
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), 403, "{method} unsigned");
        assert_eq!(
            answer.headers()["x-amzn-errortype"],
            "MissingAuthenticationTokenException"
        );
    }
    // Signed, by a function whose role has no ManageConnections (GET /me pushes nothing).
    let get_me = api.connections_client(Some("http-get-me"));
    let refused = get_me
        .post_to_connection()
        .connection_id(&id)
        .data(aws_sdk_apigatewaymanagement::primitives::Blob::new("{}"))
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        refused.raw_response().map(|r| r.status().as_u16()),
        Some(403),
        "{refused:?}"
    );
    assert_eq!(
        aws_sdk_apigatewaymanagement::error::ProvideErrorMetadata::code(&refused),
        Some("AccessDeniedException")
    );
    // Signed with a secret that is not the stack's.
    let forged =
        aws_credential_types::Credentials::new("http-send-message", "guess", None, None, "t");
    let config = api
        .connections_client(None)
        .config()
        .to_builder()
        .credentials_provider(
            aws_credential_types::provider::SharedCredentialsProvider::new(forged),
        )
        .build();
    let refused = aws_sdk_apigatewaymanagement::Client::from_conf(config)
        .delete_connection()
        .connection_id(&id)
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        aws_sdk_apigatewaymanagement::error::ProvideErrorMetadata::code(&refused),
        Some("InvalidSignatureException")
    );
    // A role that allows POST does not allow DELETE (closing a socket).
    let send = api.connections_client(Some("stream-fan-out"));
    let refused = send
        .delete_connection()
        .connection_id(&id)
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        aws_sdk_apigatewaymanagement::error::ProvideErrorMetadata::code(&refused),
        Some("AccessDeniedException")
    );
    send.post_to_connection()
        .connection_id(&id)
        .data(aws_sdk_apigatewaymanagement::primitives::Blob::new(
            r#"{"type":"x"}"#,
        ))
        .send()
        .await
        .unwrap();
}

/// `ws-ping` and `ws-default` fed with their event files, naming a live socket of the gateway.
#[tokio::test]
async fn ping_and_default_handlers_answer_in_their_response() {
    let api = LocalApi::start().await;
    let t = ticket(&api, "ada").await;
    let mut socket = connect(&api, &format!("ticket={t}")).await.unwrap();
    let records = chat_shared::services::connections::of_user(
        &api.gateway.deps.store,
        &"ada".parse().unwrap(),
    )
    .await
    .unwrap();
    let id = records[0].connection_id.clone();
    let ping = api.gateway.functions.http("ws-ping").unwrap().clone();
    let default = api.gateway.functions.ws("ws-default").unwrap();
    let event = |name: &str| {
        let path = format!("{}/../events/websocket/{name}", env!("CARGO_MANIFEST_DIR"));
        let text = std::fs::read_to_string(path)
            .unwrap()
            .replace("Jk3eAcX1IAMCJ2Q=", &id);
        lambda_runtime::LambdaEvent::new(serde_json::from_str(&text).unwrap(), Default::default())
    };
    assert_eq!(
        answered(ws_ping::handle(&ping, event("ping.json")).await.unwrap()),
        json!({"type": "pong"})
    );
    assert_eq!(
        answered(
            ws_default::handle(&default, event("default.json"))
                .await
                .unwrap()
        )["error"]["code"],
        "unknown_action"
    );
    // Called directly, the handlers posted nothing: the answer is the gateway's to send.
    let until = tokio::time::Instant::now() + Duration::from_millis(500);
    assert!(matches!(
        support::next_event(&mut socket, until).await,
        support::SocketEvent::Quiet
    ));
    // Through the gateway, the same frames come back on the socket.
    for (frame, expected) in [
        (json!({"action": "ping"}), "pong"),
        (json!({"action": "dance"}), "error"),
    ] {
        socket
            .send(Message::Text(frame.to_string().into()))
            .await
            .unwrap();
        assert_eq!(next_json(&mut socket).await["type"], expected);
    }
}

/// `ws-send-message`, `ws-mark-read` and `ws-typing` fed with their event files, naming a live
/// socket of ada's in the group the events name: each answers in its response, and bob's socket
/// hears the events (from the fan-out).
#[tokio::test]
async fn message_route_handlers_answer_and_push() {
    let api = LocalApi::start().await;
    api.sign_up(&["ada".into(), "bob".into()]).await;
    let deps = &api.gateway.deps;
    let id: chat_shared::domain::ConversationId = "01JDQ7Z8K3M4N5P6Q7R8S9T0VW".parse().unwrap();
    // The group the events name: ada and bob.
    let now = support::clock().now();
    let meta_key = chat_shared::adapters::store::keys::conversation_meta(&id);
    let meta = chat_shared::services::conversations::MetaItem {
        pk: meta_key.pk,
        sk: meta_key.sk,
        id: id.clone(),
        kind: chat_shared::services::conversations::Kind::Group,
        title: None,
        created_by: "ada".parse().unwrap(),
        created_at: now,
        updated_at: now,
        last_activity_at: now,
        last_seq: 0,
        rev: 0,
        last_message: None,
        member_count: 2,
        issued_at: None,
        settled_rev: None,
        void_seqs: Vec::new(),
        big: false,
        legacy_member_names: None,
    };
    deps.store.put(&meta, None).await.unwrap();
    for (user, role) in [
        ("ada", chat_shared::services::conversations::Role::Owner),
        ("bob", chat_shared::services::conversations::Role::Member),
    ] {
        let user: chat_shared::domain::UserId = user.parse().unwrap();
        deps.store
            .put(
                &chat_shared::services::conversations::MemberItem::new(&id, &user, role, now, 0),
                None,
            )
            .await
            .unwrap();
        deps.store
            .put(
                &chat_shared::services::conversations::model::InboxItem::new(
                    &user, &id, now, 0, false,
                ),
                None,
            )
            .await
            .unwrap();
    }
    let mut ada = connect(&api, &format!("ticket={}", ticket(&api, "ada").await))
        .await
        .unwrap();
    let mut bob = connect(&api, &format!("ticket={}", ticket(&api, "bob").await))
        .await
        .unwrap();
    let records = chat_shared::services::connections::of_user(&deps.store, &"ada".parse().unwrap())
        .await
        .unwrap();
    let ada_id = records[0].connection_id.clone();
    // Each handler with its own function's deps: its calls are checked against its role.
    let function = |name: &str| api.gateway.functions.http(name).unwrap();
    let event = |name: &str| {
        let path = format!("{}/../events/websocket/{name}", env!("CARGO_MANIFEST_DIR"));
        let text = std::fs::read_to_string(path)
            .unwrap()
            .replace("Jk3eAcX1IAMCJ2Q=", &ada_id);
        lambda_runtime::LambdaEvent::new(serde_json::from_str(&text).unwrap(), Default::default())
    };

    let ack = answered(
        ws_send_message::handle(function("ws-send-message"), event("send-message.json"))
            .await
            .unwrap(),
    );
    assert_eq!(
        (ack["type"].as_str(), ack["message"]["body"].as_str()),
        (Some("ack"), Some("On my way"))
    );
    let created = next_typed(&mut bob, "message.created").await;
    assert_eq!(
        (created["type"].as_str(), created["message"]["seq"].as_u64()),
        (Some("message.created"), Some(1))
    );

    let typing = ws_typing::handle(function("ws-typing"), event("typing.json"))
        .await
        .unwrap();
    assert_eq!(
        (typing.status_code, typing.body),
        (200, None),
        "typing answers nothing"
    );
    next_typed(&mut bob, "typing").await;

    let records = chat_shared::services::connections::of_user(&deps.store, &"bob".parse().unwrap())
        .await
        .unwrap();
    let bob_id = records[0].connection_id.clone();
    let path = format!(
        "{}/../events/websocket/mark-read.json",
        env!("CARGO_MANIFEST_DIR")
    );
    let text = std::fs::read_to_string(path)
        .unwrap()
        .replace("Jk3eAcX1IAMCJ2Q=", &bob_id)
        .replace(r#""userId": "ada""#, r#""userId": "bob""#)
        .replace(r#""principalId": "ada""#, r#""principalId": "bob""#);
    let ack = answered(
        ws_mark_read::handle(
            function("ws-mark-read"),
            lambda_runtime::LambdaEvent::new(
                serde_json::from_str(&text).unwrap(),
                Default::default(),
            ),
        )
        .await
        .unwrap(),
    );
    // bob hears the read event too (every member does).
    next_typed(&mut bob, "read").await;
    assert_eq!(
        (ack["action"].as_str(), ack["lastReadSeq"].as_u64()),
        (Some("markRead"), Some(1))
    );
    let seen = next_typed(&mut ada, "read").await;
    assert_eq!(
        (seen["type"].as_str(), seen["userId"].as_str()),
        (Some("read"), Some("bob"))
    );
}

/// At most 10 sockets per user, however the connects race: 12 at once open exactly 10 and the
/// others are refused with 429. A closed socket gives its slot back, and so does a connection
/// whose record a 410 removed (its slot is taken over by the next connect); another user is not
/// affected.
#[tokio::test]
async fn a_user_holds_at_most_ten_sockets() {
    let api = LocalApi::start().await;
    let ada = format!("token={}", api.token("ada", None));
    let attempts = support::join_all((0..12).map(|_| connect(&api, &ada))).await;
    let refused: Vec<_> = attempts.iter().filter_map(|a| a.as_ref().err()).collect();
    assert_eq!(refused, [&429, &429], "12 racing connects");
    let mut sockets: Vec<Socket> = attempts.into_iter().filter_map(Result::ok).collect();
    assert_eq!(sockets.len(), 10);
    assert!(
        connect(&api, &format!("token={}", api.token("bob", None)))
            .await
            .is_ok(),
        "bob has slots of his own"
    );
    let store = &api.gateway.deps.store;
    let user: chat_shared::domain::UserId = "ada".parse().unwrap();
    let open_records = || async {
        chat_shared::services::connections::of_user(store, &user)
            .await
            .unwrap()
    };

    // A socket closed by its client: $disconnect gives the slot back.
    let mut closing = sockets.pop().unwrap();
    closing.close(None).await.unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while open_records().await.len() > 9 {
        assert!(tokio::time::Instant::now() < deadline, "$disconnect ran");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    sockets.push(connect(&api, &ada).await.expect("the freed slot"));
    assert_eq!(connect(&api, &ada).await.err(), Some(429), "ten again");

    // A record removed as a 410 removes it, without $disconnect: its slot is taken over.
    let dead = open_records().await[0].connection_id.clone();
    chat_shared::services::connections::close(store, &dead)
        .await
        .unwrap();
    sockets.push(connect(&api, &ada).await.expect("the dead holder's slot"));
    assert_eq!(connect(&api, &ada).await.err(), Some(429), "ten again");
    assert_eq!(open_records().await.len(), 10);
}
