//! Rate limits against a real redis-server, and what happens when it is stopped or frozen.

use std::time::{Duration, Instant};

use chat_shared::limits::Limits;
use reqwest::Method;
use serde_json::json;

use crate::support::{LocalApi, OwnRedis, deps_with, fresh_store, join_all};

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

#[tokio::test]
async fn the_21st_creation_in_an_hour_is_429_but_finding_a_direct_is_never_limited() {
    let redis = OwnRedis::start();
    let api = LocalApi::start_with(deps_with(fresh_store().await, redis.link(&[])).await).await;
    api.sign_up(&["ada".into(), "bob".into()]).await;
    let (status, _) = api
        .call(
            Method::POST,
            "/conversations",
            "ada",
            Some(json!({"participantIds": ["bob"]})),
        )
        .await;
    assert_eq!(status, 201);
    for n in 1..20 {
        let (status, headers) = create_group(&api, "ada", n).await;
        assert_eq!(status, 201, "creation {n}");
        assert_eq!(headers["ratelimit-limit"], "20");
        assert_eq!(
            headers["ratelimit-remaining"],
            (19 - n).to_string().as_str()
        );
    }
    let (status, headers) = create_group(&api, "ada", 21).await;
    assert_eq!(status, 429);
    let retry_after: u64 = headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=180).contains(&retry_after), "{retry_after}");
    assert_eq!(headers["ratelimit-remaining"], "0");

    // The existing direct conversation is still returned, as often as asked.
    for _ in 0..3 {
        let (status, direct) = api
            .call(
                Method::POST,
                "/conversations",
                "ada",
                Some(json!({"participantIds": ["bob"]})),
            )
            .await;
        assert_eq!((status, &direct["kind"]), (200, &json!("direct")));
    }
    // Other routes have their own, larger limit.
    let token = api.token("ada", None);
    let resp = api
        .request(Method::GET, "/conversations", &token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["ratelimit-limit"], "600");
}

#[tokio::test]
async fn with_redis_stopped_or_frozen_the_local_limiter_takes_over_and_redis_comes_back() {
    let mut redis = OwnRedis::start();
    let limits = [("RATE_LIMIT_CREATE_CONVERSATION", "5/3600")];
    let env = chat_shared::config::Env::new(|name: &str| {
        (name == limits[0].0).then(|| limits[0].1.to_owned())
    });
    let deps = chat_shared::deps::HttpDeps::new(
        fresh_store().await,
        chat_shared::cursor::CursorKey::new(b"integration-tests-cursor-secret-32+").unwrap(),
        redis.link(&limits),
        Limits::from_env(&env).unwrap(),
        chat_shared::push::Pusher::for_endpoint("http://127.0.0.1:9/local")
            .await
            .unwrap(),
    );
    let api = LocalApi::start_with(deps).await;
    api.sign_up(&["ada".into(), "bob".into(), "cy".into()])
        .await;

    // Redis counts: five pass, the sixth is refused.
    for n in 0..5 {
        assert_eq!(create_group(&api, "ada", n).await.0, 201);
    }
    assert_eq!(create_group(&api, "ada", 5).await.0, 429);

    // Stopped: creations go on, each within a bounded time, and the per-instance limiter stops a
    // burst of its own.
    redis.kill();
    let started = Instant::now();
    let burst = join_all((0..8).map(|n| create_group(&api, "bob", n))).await;
    let passed = burst.iter().filter(|(s, _)| *s == 201).count();
    let refused = burst.iter().filter(|(s, _)| *s == 429).count();
    assert_eq!(
        (passed, refused),
        (5, 3),
        "{:?}",
        burst.iter().map(|b| b.0).collect::<Vec<_>>()
    );
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "took {:?}",
        started.elapsed()
    );

    // Restarted: after the link's rest, Redis counts again (a fresh Redis: bob may create again,
    // which the spent local limiter would refuse).
    redis.restart();
    tokio::time::sleep(Duration::from_millis(1_200)).await;
    for n in 0..5 {
        assert_eq!(
            create_group(&api, "bob", 10 + n).await.0,
            201,
            "after restart {n}"
        );
    }
    assert_eq!(create_group(&api, "bob", 20).await.0, 429);

    // Frozen (SIGSTOP): connections hang instead of failing; the short timeouts bound the wait.
    redis.signal("-STOP");
    let started = Instant::now();
    let (status, _) = create_group(&api, "cy", 0).await;
    let elapsed = started.elapsed();
    redis.signal("-CONT");
    assert_eq!(status, 201);
    assert!(
        elapsed < Duration::from_secs(3),
        "a frozen Redis held the request {elapsed:?}"
    );
}
