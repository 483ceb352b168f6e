//! Rate limits against a real redis-server, and what happens when it is stopped or frozen. "N per
//! window" is exact: at most N accepted in any window of that length, HTTP and WebSocket together.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chat_shared::adapters::redis_link::RedisLink;
use chat_shared::domain::limits::{LimitKind, Limits, Rate};
use futures::SinkExt;
use reqwest::Method;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

use crate::support::{self, LocalApi, OwnRedis, deps_with, fresh_store, join_all};

async fn create_group(api: &LocalApi, user: &str, n: usize) -> (u16, reqwest::header::HeaderMap) {
    let token = api.token(user, None);
    let other = if user == "bob" { "ada" } else { "bob" };
    let resp = api
        .request(Method::POST, "/conversations", &token)
        .json(&json!({"participantIds": [other], "kind": "group", "title": format!("G{n}")}))
        .send()
        .await
        .unwrap();
    (resp.status().as_u16(), resp.headers().clone())
}

/// A link to `redis` that waits up to 5 s for an answer. The exact counts hold while Redis is up;
/// with the functions' 100 ms response timeout, a slow answer on a loaded machine (seen in CI)
/// counts as Redis down, and the per-instance fallback (the stopped-or-frozen test's subject)
/// then admits more than the limit across instances.
fn patient(redis: &OwnRedis) -> Arc<RedisLink> {
    redis.link(&[("REDIS_TIMEOUT_MS", "5000")])
}

/// A gateway whose `kind` limit is `rate`, on a Redis of its own, with a patient link.
async fn limited(redis: &OwnRedis, kind: LimitKind, rate: Rate) -> LocalApi {
    limited_on(patient(redis), kind, rate).await
}

/// A gateway whose `kind` limit is `rate`, on `link`.
async fn limited_on(link: Arc<RedisLink>, kind: LimitKind, rate: Rate) -> LocalApi {
    let deps = deps_with(fresh_store().await, link).await;
    let deps = chat_shared::services::deps::RouteDeps::new(
        deps.store,
        deps.cursor_keys,
        deps.redis,
        Limits::default().with(kind, rate),
        deps.pusher,
    );
    LocalApi::start_with(deps).await
}

fn header(headers: &reqwest::header::HeaderMap, name: &str) -> String {
    headers[name].to_str().unwrap().to_owned()
}

async fn send(api: &LocalApi, user: &str, c: &str, n: usize) -> (u16, reqwest::header::HeaderMap) {
    let token = api.token(user, None);
    let resp = api
        .request(
            Method::POST,
            &format!("/conversations/{c}/messages"),
            &token,
        )
        .json(&json!({"body": format!("message {n}"), "clientMessageId": format!("m{n}")}))
        .send()
        .await
        .unwrap();
    (resp.status().as_u16(), resp.headers().clone())
}

/// `user`'s notes-to-self conversation (signed up first).
async fn notes_to_self(api: &LocalApi, user: &str) -> String {
    api.sign_up(&[user.to_owned()]).await;
    let (status, me) = api
        .call(
            Method::POST,
            "/conversations",
            user,
            Some(json!({"participantIds": []})),
        )
        .await;
    assert_eq!(status, 201, "{me}");
    me["id"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn sixty_one_sends_in_a_burst_store_sixty_and_the_61st_waits_exactly_its_retry_after() {
    let redis = OwnRedis::start();
    let api = LocalApi::start_with(deps_with(fresh_store().await, patient(&redis)).await).await;
    let c = notes_to_self(&api, "ada").await;
    let first = Instant::now();
    for n in 0..60 {
        let (status, headers) = send(&api, "ada", &c, n).await;
        assert_eq!(status, 201, "send {n}");
        assert_eq!(header(&headers, "ratelimit-policy"), "60;w=60");
        assert_eq!(
            header(&headers, "ratelimit-remaining"),
            (59 - n).to_string()
        );
    }
    let (status, headers) = send(&api, "ada", &c, 60).await;
    assert_eq!(status, 429);
    assert_eq!(header(&headers, "ratelimit-remaining"), "0");
    // Exactly when the first send leaves the minute: no later than 60 s, no earlier than what
    // is left of it.
    let retry_after: u64 = header(&headers, "retry-after").parse().unwrap();
    let spent = first.elapsed().as_secs();
    assert!(
        (60 - spent - 1..=60).contains(&retry_after),
        "Retry-After {retry_after} after {spent} s"
    );
    let (_, history) = api
        .call(
            Method::GET,
            &format!("/conversations/{c}/messages?limit=100"),
            "ada",
            None,
        )
        .await;
    assert_eq!(history["items"].as_array().unwrap().len(), 60);
}

#[tokio::test]
async fn past_the_window_a_request_is_accepted_again_exactly_after_its_retry_after() {
    let redis = OwnRedis::start();
    // Three sends per four seconds.
    let api = limited(&redis, LimitKind::SendMessage, Rate::new(3, 4)).await;
    let c = notes_to_self(&api, "ada").await;
    for n in 0..3 {
        assert_eq!(send(&api, "ada", &c, n).await.0, 201);
    }
    let (status, headers) = send(&api, "ada", &c, 3).await;
    assert_eq!(status, 429);
    assert_eq!(header(&headers, "ratelimit-policy"), "3;w=4");
    let retry_after: u64 = header(&headers, "retry-after").parse().unwrap();
    assert!((1..=4).contains(&retry_after), "{retry_after}");
    // Refused requests count nothing: asking again and again does not push the time back.
    for n in 4..8 {
        assert_eq!(send(&api, "ada", &c, n).await.0, 429);
    }
    tokio::time::sleep(Duration::from_secs(retry_after)).await;
    let (status, _) = send(&api, "ada", &c, 8).await;
    assert_eq!(status, 201, "accepted once Retry-After has passed");
}

/// A frame's outcome: `ack`, or the error's code.
fn outcome(frame: &Value) -> String {
    match frame["type"].as_str() {
        Some("ack") => "ack".to_owned(),
        Some("error") => frame["error"]["code"]
            .as_str()
            .unwrap_or_default()
            .to_owned(),
        other => panic!("not an answer: {other:?} {frame}"),
    }
}

#[tokio::test]
async fn a_hundred_sends_at_once_over_http_and_websocket_against_twenty_accept_exactly_twenty() {
    let redis = OwnRedis::start();
    let api = limited(&redis, LimitKind::SendMessage, Rate::new(20, 3_600)).await;
    api.sign_up(&["ada".into(), "bob".into()]).await;
    // Sends into several conversations, so that storing them does not contend.
    let mut conversations = Vec::new();
    for _ in 0..10 {
        conversations.push(api.group("ada", &["bob"]).await);
    }
    let mut socket = api.socket("ada").await;
    let frames: Vec<String> = (0..50)
        .map(|n| {
            json!({"action": "sendMessage", "conversationId": conversations[n % 10],
                   "body": format!("ws {n}"), "clientMessageId": format!("ws{n}")})
            .to_string()
        })
        .collect();
    let http = join_all((0..50).map(|n| send(&api, "ada", &conversations[n % 10], n)));
    let over_socket = async {
        for frame in &frames {
            socket
                .send(Message::Text(frame.clone().into()))
                .await
                .unwrap();
        }
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        let mut answers = Vec::new();
        while answers.len() < 50 {
            let frame = support::next_frame(&mut socket, deadline)
                .await
                .expect("an answer to every frame");
            if matches!(frame["type"].as_str(), Some("ack" | "error")) {
                answers.push(outcome(&frame));
            }
        }
        answers
    };
    let (http, answers) = tokio::join!(http, over_socket);
    let http_accepted = http.iter().filter(|(s, _)| *s != 429).count();
    let ws_accepted = answers.iter().filter(|a| *a != "rate_limited").count();
    assert_eq!(
        http_accepted + ws_accepted,
        20,
        "HTTP {:?}, WebSocket {answers:?}",
        http.iter().map(|(s, _)| *s).collect::<Vec<_>>()
    );
    assert_eq!(
        http.iter().filter(|(s, _)| *s == 429).count() + (50 - ws_accepted),
        80
    );
}

#[tokio::test]
async fn creations_are_limited_with_their_refusals_and_finding_a_direct_counts_as_a_read() {
    let redis = OwnRedis::start();
    let api = limited(&redis, LimitKind::CreateConversation, Rate::new(4, 3_600)).await;
    api.sign_up(&["ada".into(), "bob".into()]).await;
    // A creation, and two refused ones (unknown users, a title on a direct): three counted.
    let (status, _) = api
        .call(
            Method::POST,
            "/conversations",
            "ada",
            Some(json!({"participantIds": ["bob"]})),
        )
        .await;
    assert_eq!(status, 201);
    let (status, _) = api
        .call(
            Method::POST,
            "/conversations",
            "ada",
            Some(json!({"participantIds": ["nobody-1", "nobody-2"], "kind": "group"})),
        )
        .await;
    assert_eq!(status, 422);
    let token = api.token("ada", None);
    let bad = api
        .request(Method::POST, "/conversations", &token)
        .body("{not json")
        .header("content-type", "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);
    // One left: a group, then 429 (the probe of ids ends here too).
    let (status, headers) = create_group(&api, "ada", 1).await;
    assert_eq!(
        (status, header(&headers, "ratelimit-remaining")),
        (201, "0".to_owned())
    );
    assert_eq!(header(&headers, "ratelimit-policy"), "4;w=3600");
    let (status, headers) = create_group(&api, "ada", 2).await;
    assert_eq!(status, 429);
    let retry_after: u64 = header(&headers, "retry-after").parse().unwrap();
    assert!((3_500..=3_600).contains(&retry_after), "{retry_after}");
    let (status, probe) = api
        .call(
            Method::POST,
            "/conversations",
            "ada",
            Some(json!({"participantIds": ["nobody-3"], "kind": "group"})),
        )
        .await;
    assert_eq!(
        (status, probe["error"]["code"].as_str()),
        (429, Some("rate_limited"))
    );
    // The existing direct conversation is still returned, against the default limit.
    for n in 0..3u32 {
        let resp = api
            .request(Method::POST, "/conversations", &token)
            .json(&json!({"participantIds": ["bob"]}))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        assert_eq!(header(resp.headers(), "ratelimit-policy"), "600;w=60");
        let remaining: u32 = header(resp.headers(), "ratelimit-remaining")
            .parse()
            .unwrap();
        assert!(
            remaining < 600 - n,
            "a lookup counts against the default limit"
        );
        let direct: Value = resp.json().await.unwrap();
        assert_eq!(direct["kind"], "direct");
    }
}

#[tokio::test]
async fn with_redis_stopped_or_frozen_the_local_log_takes_over_and_redis_comes_back() {
    let mut redis = OwnRedis::start();
    // The functions' own response timeout (100 ms): a frozen Redis must count as down in time.
    let link = redis.link(&[]);
    let api = limited_on(link, LimitKind::CreateConversation, Rate::new(5, 3_600)).await;
    api.sign_up(&["ada".into(), "bob".into(), "cy".into()])
        .await;

    // Redis counts: five pass, the sixth is refused.
    for n in 0..5 {
        assert_eq!(create_group(&api, "ada", n).await.0, 201);
    }
    assert_eq!(create_group(&api, "ada", 5).await.0, 429);

    // Stopped: creations go on, and this instance's own log stops a burst at the same number.
    redis.kill();
    let burst = join_all((0..8).map(|n| create_group(&api, "bob", n))).await;
    let passed = burst.iter().filter(|(s, _)| *s == 201).count();
    let refused = burst.iter().filter(|(s, _)| *s == 429).count();
    assert_eq!(
        (passed, refused),
        (5, 3),
        "{:?}",
        burst.iter().map(|b| b.0).collect::<Vec<_>>()
    );

    // Restarted: once the link's rest is over, Redis counts again (a fresh Redis: bob may create
    // again, which the spent local log would refuse). Reads tell when the link is back: they
    // write the default limit's log to Redis.
    redis.restart();
    let client = redis::Client::open(redis.url()).unwrap();
    let mut connection = client.get_multiplexed_async_connection().await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        api.call(Method::GET, "/me", "cy", None).await;
        let logged: Vec<String> = redis::AsyncCommands::keys(&mut connection, "*rl:{cy}:default")
            .await
            .unwrap();
        if !logged.is_empty() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "Redis was not used again within 10 s"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for n in 0..5 {
        assert_eq!(
            create_group(&api, "bob", 10 + n).await.0,
            201,
            "after restart {n}"
        );
    }
    assert_eq!(create_group(&api, "bob", 20).await.0, 429);

    // Frozen (SIGSTOP): connections hang instead of failing; the short timeouts end the wait and
    // the request goes on (a test's deadline, not a benchmark: the bound is the 100 ms timeout).
    redis.signal("-STOP");
    let answered = tokio::time::timeout(Duration::from_secs(30), create_group(&api, "cy", 0)).await;
    redis.signal("-CONT");
    assert_eq!(answered.map(|(status, _)| status).ok(), Some(201));
}

/// A ping counts against the default limit: past it, the answer is a `rate_limited` error and no
/// pong (before, a client could make the stack post without bound).
#[tokio::test]
async fn pings_count_against_the_default_limit() {
    let redis = OwnRedis::start();
    let api = limited(&redis, LimitKind::Default, Rate::new(3, 3_600)).await;
    // A connect counts against the real-time limit, not the default one.
    let url = format!(
        "{}/local?token={}",
        api.url.replacen("http://", "ws://", 1),
        api.token("ada", None)
    );
    let (mut socket, _) = tokio_tungstenite::connect_async(url).await.unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let mut answers = Vec::new();
    for _ in 0..4 {
        socket
            .send(Message::Text(json!({"action": "ping"}).to_string().into()))
            .await
            .unwrap();
        let frame = support::next_frame(&mut socket, deadline)
            .await
            .expect("an answer to every ping");
        answers.push(match frame["type"].as_str() {
            Some("pong") => "pong".to_owned(),
            _ => format!(
                "{}:{}",
                frame["action"].as_str().unwrap_or("?"),
                frame["error"]["code"].as_str().unwrap_or("?")
            ),
        });
    }
    assert_eq!(answers, ["pong", "pong", "pong", "ping:rate_limited"]);
}
