//! Degradation on the real services, each of the test's own: Redis stopped in the middle of a
//! load of sends (then reads bypass the cache, and fill it again after a restart), DynamoDB Local frozen (`kill -STOP`) during a send loop and thawed, and an
//! `@connections` endpoint that refuses, fails or hangs. (kinesis-local frozen: events.rs.)

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use chat_shared::adapters::store::DynamoStore;
use chat_shared::services::deps::RouteDeps;
use reqwest::Method;
use serde_json::{Value, json};

use crate::support::{self, LocalApi, OwnRedis, join_all};

/// A DynamoDB Local of the test's own, that it may freeze and thaw.
struct OwnDynamo {
    port: u16,
    child: std::process::Child,
}

impl OwnDynamo {
    fn start() -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut child = std::process::Command::new(format!(
            "{}/../tools/emulators/dynamodb-local.sh",
            env!("CARGO_MANIFEST_DIR")
        ))
        .args([&port.to_string(), "-Xmx256m"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("DynamoDB Local (tools/install.sh installs it)");
        for _ in 0..600 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return Self { port, child };
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = child.kill();
        let _ = child.wait();
        panic!("DynamoDB Local did not start on {port}");
    }

    fn signal(&self, signal: &str) {
        let status = std::process::Command::new("kill")
            .args([signal, &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// A fresh table on this instance, behind the store adapter, with the functions' SDK settings
    /// (timeouts and retries) but this endpoint.
    async fn fresh_store(&self) -> DynamoStore {
        let config = aws_sdk_dynamodb::config::Builder::from(support::sdk_config().await)
            .endpoint_url(format!("http://127.0.0.1:{}", self.port))
            .build();
        let client = aws_sdk_dynamodb::Client::from_conf(config.clone());
        // The table is made with patience and no retry: a JVM's first answers can take longer
        // than the functions' 2 s attempt, and a retried CreateTable finds its own table.
        let setup = aws_sdk_dynamodb::Client::from_conf(
            config
                .to_builder()
                .timeout_config(
                    aws_config::timeout::TimeoutConfig::builder()
                        .connect_timeout(Duration::from_secs(10))
                        .operation_attempt_timeout(Duration::from_secs(60))
                        .operation_timeout(Duration::from_secs(60))
                        .build(),
                )
                .retry_config(aws_config::retry::RetryConfig::disabled())
                .build(),
        );
        let template = local_stack::Template::of_this_repository().unwrap();
        let name = support::unique_name("faults");
        local_stack::create_table(&setup, &name, &template.table)
            .await
            .unwrap();
        DynamoStore::new(client, name.parse().unwrap(), support::clock())
    }
}

impl Drop for OwnDynamo {
    fn drop(&mut self) {
        let _ = std::process::Command::new("kill")
            .args(["-CONT", &self.child.id().to_string()])
            .status();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Sends `count` messages as `user`, one after another, each with its own `clientMessageId`;
/// returns each send's id, status and time taken.
async fn send_loop(
    api: &LocalApi,
    conversation: &str,
    user: &str,
    count: usize,
    pause: Duration,
) -> Vec<(String, u16, Duration)> {
    let mut out = Vec::new();
    for i in 0..count {
        let id = format!("{user}-{i}");
        let started = Instant::now();
        let (status, body) = api
            .call(
                Method::POST,
                &format!("/conversations/{conversation}/messages"),
                user,
                Some(json!({"clientMessageId": id, "body": format!("message {i} of {user}")})),
            )
            .await;
        if status >= 500 {
            assert_eq!(
                (status, body["error"]["code"].as_str()),
                (503, Some("unavailable")),
                "{body}"
            );
        }
        out.push((id, status, started.elapsed()));
        tokio::time::sleep(pause).await;
    }
    out
}

#[tokio::test]
async fn redis_stopped_in_the_middle_of_a_load_of_sends_fails_no_request() {
    let mut redis = OwnRedis::start();
    let deps = support::deps_with(support::fresh_store().await, redis.link(&[])).await;
    let api = LocalApi::start_with(deps).await;
    let users = ["ann", "ben", "cat", "dan"];
    api.sign_up(&users.map(String::from)).await;
    let conversation = api.group(users[0], &users[1..]).await;

    let load = join_all(
        users
            .iter()
            .map(|u| send_loop(&api, &conversation, u, 40, Duration::from_millis(10))),
    );
    let stop = async {
        tokio::time::sleep(Duration::from_millis(600)).await;
        redis.kill();
    };
    let (results, ()) = tokio::join!(load, stop);
    let statuses: BTreeMap<u16, usize> =
        results
            .iter()
            .flatten()
            .fold(BTreeMap::new(), |mut m, (_, status, _)| {
                *m.entry(*status).or_default() += 1;
                m
            });
    assert_eq!(
        statuses,
        BTreeMap::from([(201, 160)]),
        "every send succeeds"
    );

    let (_, page) = api
        .call(
            Method::GET,
            &format!("/conversations/{conversation}/messages?limit=100&afterSeq=60"),
            "ann",
            None,
        )
        .await;
    assert_eq!(page["items"].as_array().unwrap().len(), 100);

    // Still down: the cache is bypassed, so a change made now is what every reader sees.
    let path = format!("/conversations/{conversation}");
    let (status, _) = api
        .call(
            Method::PATCH,
            &path,
            "ann",
            Some(json!({"title": "Renamed while down"})),
        )
        .await;
    assert_eq!(status, 200);
    for user in users {
        let (_, seen) = api.call(Method::GET, &path, user, None).await;
        assert_eq!(seen["title"], "Renamed while down", "{user}");
    }

    // Restarted: once the link's rest is over, reads fill the cache again: the conversation's
    // member list is cached (rate-limit keys, which every request writes, do not count).
    redis.restart();
    let client = redis::Client::open(redis.url()).unwrap();
    let mut connection = client.get_multiplexed_async_connection().await.unwrap();
    let members_key = format!("*conv:{{{conversation}}}:members");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        for user in users {
            let (status, seen) = api.call(Method::GET, &path, user, None).await;
            assert_eq!(
                (status, seen["title"].as_str()),
                (200, Some("Renamed while down"))
            );
        }
        let cached: Vec<String> = redis::AsyncCommands::keys(&mut connection, &members_key)
            .await
            .unwrap();
        if !cached.is_empty() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the member list was not cached again within 10 s of the restart"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Every message and idempotency record of the conversation, read straight from the table.
/// What `conversation` holds in the table: every message slot's `seq` (voids included), the
/// `seq` of each real message (not a void), and each idempotency record's `seq`.
struct Stored {
    slots: Vec<u64>,
    messages: BTreeSet<u64>,
    keys: BTreeMap<String, u64>,
}

async fn stored(store: &DynamoStore, conversation: &str) -> Stored {
    let items = store
        .client()
        .query()
        .table_name(store.table().to_string())
        .key_condition_expression("PK = :pk")
        .expression_attribute_values(
            ":pk",
            aws_sdk_dynamodb::types::AttributeValue::S(format!("CONV#{conversation}")),
        )
        .consistent_read(true)
        .into_paginator()
        .items()
        .send()
        .collect::<Vec<_>>()
        .await;
    let mut out = Stored {
        slots: Vec::new(),
        messages: BTreeSet::new(),
        keys: BTreeMap::new(),
    };
    for item in items {
        let item = item.unwrap();
        let sk = item["SK"].as_s().unwrap().clone();
        let number = |name: &str| item[name].as_n().unwrap().parse::<u64>().unwrap();
        if sk.starts_with("MSG#") {
            out.slots.push(number("seq"));
            if item
                .get("kind")
                .and_then(|k| k.as_s().ok())
                .map(String::as_str)
                != Some("void")
            {
                out.messages.insert(number("seq"));
            }
        } else if sk.starts_with("CMID#") {
            out.keys.insert(sk, number("seq"));
        }
    }
    out.slots.sort_unstable();
    out
}

#[tokio::test]
async fn dynamodb_frozen_during_a_send_loop_answers_503_in_bounded_time_and_leaves_no_gap() {
    let dynamo = OwnDynamo::start();
    let store = dynamo.fresh_store().await;
    let api = LocalApi::start_on(
        support::deps_with(store, support::redis_link()).await,
        local_gateway::functions::LocalStack {
            dynamodb: format!("http://127.0.0.1:{}", dynamo.port),
            ..support::local_stack()
        },
    )
    .await;
    let users = ["ann", "ben", "cat", "dan"];
    api.sign_up(&users.map(String::from)).await;
    let conversation = api.group(users[0], &users[1..]).await;

    // Four users send in loops; DynamoDB Local freezes for 8 s in the middle, then thaws. Which
    // of the loops' sends meet the freeze is up to timing (one that waits less than its 5 s
    // time-out gets through after the thaw), so one more send starts right after the freeze
    // began: it must meet it, and answer 503 in bounded time.
    let load = join_all(
        users
            .iter()
            .map(|u| send_loop(&api, &conversation, u, 12, Duration::from_millis(150))),
    );
    let freeze = async {
        tokio::time::sleep(Duration::from_millis(700)).await;
        dynamo.signal("-STOP");
        let frozen = Instant::now();
        let (status, body) = api
            .call(
                Method::POST,
                &format!("/conversations/{conversation}/messages"),
                "ann",
                Some(json!({"clientMessageId": "ann-12", "body": "message 12 of ann"})),
            )
            .await;
        let took = frozen.elapsed();
        assert_eq!(status, 503, "a send during the freeze: {body}");
        tokio::time::sleep(Duration::from_secs(8).saturating_sub(frozen.elapsed())).await;
        dynamo.signal("-CONT");
        ("ann-12".to_owned(), status, took)
    };
    let (results, during) = tokio::join!(load, freeze);
    let results: Vec<(String, u16, Duration)> = results
        .into_iter()
        .flatten()
        .chain(std::iter::once(during))
        .collect();
    let unavailable: Vec<&(String, u16, Duration)> =
        results.iter().filter(|(_, s, _)| *s == 503).collect();
    let slowest = results.iter().map(|(_, _, d)| *d).max().unwrap();
    eprintln!(
        "{} sends, {} answered 503, the slowest in {slowest:?}",
        results.len(),
        unavailable.len()
    );
    // A send's calls each have a 5 s operation timeout (chat_shared::platform::aws); a freeze that starts
    // between two of them costs at most two, and the push after a write is bounded the same way.
    assert!(
        slowest <= Duration::from_secs(12),
        "the slowest answer took {slowest:?}"
    );
    for (_, status, _) in &results {
        assert!(matches!(status, 201 | 503), "{status}");
    }

    // After the thaw, each client retries its unanswered sends with the same clientMessageId,
    // as the contract says it may: each finds its message (200) or makes it (201), never twice.
    for (id, _, _) in &unavailable {
        let user = id.split('-').next().unwrap();
        let i: usize = id.rsplit('-').next().unwrap().parse().unwrap();
        let (status, body) = api
            .call(
                Method::POST,
                &format!("/conversations/{conversation}/messages"),
                user,
                Some(json!({"clientMessageId": id, "body": format!("message {i} of {user}")})),
            )
            .await;
        assert!(matches!(status, 200 | 201), "{status} {body}");
    }

    // A number taken while DynamoDB was frozen and never written (the writer's own void timed
    // out too, or its counter update applied but the answer was lost) is filled with a void by the
    // first history read 5 s after it was issued: here a gateway whose clock runs 6 s ahead, over
    // the same table.
    let deps: &RouteDeps = &api.gateway.deps;
    let later = LocalApi::start_beside(
        RouteDeps {
            store: deps.store.at_clock(support::clock().later_by(6)),
            ..deps.clone()
        },
        local_gateway::functions::LocalStack {
            dynamodb: format!("http://127.0.0.1:{}", dynamo.port),
            ..support::local_stack()
        },
    )
    .await;
    let (status, page) = later
        .call(
            Method::GET,
            &format!("/conversations/{conversation}/messages?limit=100"),
            "ann",
            None,
        )
        .await;
    assert_eq!(status, 200, "{page}");
    assert_eq!(page["hasMore"], false, "{page}");
    let (_, meta) = api
        .call(
            Method::GET,
            &format!("/conversations/{conversation}"),
            "ann",
            None,
        )
        .await;
    let last_seq = meta["lastSeq"].as_u64().unwrap();
    let read: Vec<u64> = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["seq"].as_u64().unwrap())
        .collect();
    assert_eq!(
        read,
        (1..=last_seq).collect::<Vec<_>>(),
        "history reads every slot"
    );

    // Twelve from each loop, and the one sent during the freeze.
    let sent = users.len() * 12 + 1;
    let table = stored(&deps.store, &conversation).await;
    eprintln!(
        "{} voids among {last_seq} numbers",
        last_seq as usize - sent
    );
    assert_eq!(
        table.slots,
        (1..=last_seq).collect::<Vec<_>>(),
        "seq 1..{last_seq} without a gap, voids filling the numbers never written"
    );
    assert_eq!(
        table.messages.len(),
        sent,
        "one message per clientMessageId ({} voids)",
        last_seq as usize - sent
    );
    assert_eq!(table.keys.len(), sent, "one idempotency record per message");
    let pointed: BTreeSet<u64> = table.keys.values().copied().collect();
    assert_eq!(
        pointed, table.messages,
        "every idempotency record names a stored message, and every message has one"
    );
    assert_eq!(meta["lastMessage"]["seq"], *table.messages.last().unwrap());
}

/// An `@connections` stand-in that answers every post with `status`, or never answers.
async fn connections_endpoint(status: Option<u16>) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((mut stream, _)) = listener.accept().await else {
                return;
            };
            tokio::spawn(async move {
                use tokio::io::{AsyncReadExt, AsyncWriteExt};
                let mut buf = vec![0_u8; 64 * 1024];
                let _ = stream.read(&mut buf).await;
                match status {
                    Some(code) => {
                        let body = r#"{"message":"Internal server error"}"#;
                        let answer = format!(
                            "HTTP/1.1 {code} Failure\r\ncontent-type: application/json\r\n\
                             content-length: {}\r\nconnection: close\r\n\r\n{body}",
                            body.len()
                        );
                        let _ = stream.write_all(answer.as_bytes()).await;
                    }
                    None => tokio::time::sleep(Duration::from_secs(60)).await,
                }
            });
        }
    });
    format!("http://{address}/local")
}

#[tokio::test]
async fn a_failing_connections_endpoint_never_fails_a_write() {
    let refusing = {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        format!("http://127.0.0.1:{port}/local")
    };
    for (name, endpoint) in [
        ("refusing", refusing),
        ("failing with 500", connections_endpoint(Some(500)).await),
        ("throttling with 429", connections_endpoint(Some(429)).await),
        ("hanging", connections_endpoint(None).await),
    ] {
        let mut deps = support::fresh_deps().await;
        deps.pusher = chat_shared::adapters::push::Pusher::for_endpoint(&endpoint)
            .await
            .unwrap();
        // Both members have a live connection record, so every write has posts to make.
        for user in ["ann", "ben"] {
            chat_shared::services::connections::open(
                &deps.store,
                &format!("conn-{user}"),
                &user.parse().unwrap(),
            )
            .await
            .unwrap();
        }
        let api = LocalApi::start_keeping_pusher(deps).await;
        api.sign_up(&["ann".to_owned(), "ben".to_owned()]).await;
        let conversation = api.group("ann", &["ben"]).await;
        let started = Instant::now();
        let (status, body) = api
            .call(
                Method::POST,
                &format!("/conversations/{conversation}/messages"),
                "ann",
                Some(json!({"clientMessageId": "c1", "body": "hello"})),
            )
            .await;
        eprintln!(
            "@connections {name}: the send answered in {:?}",
            started.elapsed()
        );
        assert_eq!(status, 201, "{name}: {body}");
        // The pushes are `stream-fan-out`'s, outside the send's invocation: a hanging endpoint
        // would cost a send that pushed its 5 s operation timeout.
        assert!(
            started.elapsed() < Duration::from_secs(4),
            "{name}: the send took {:?}",
            started.elapsed()
        );
        let (status, page) = api
            .call(
                Method::GET,
                &format!("/conversations/{conversation}/messages"),
                "ben",
                None,
            )
            .await;
        assert_eq!(
            (status, page["items"][0]["body"].clone()),
            (200, Value::from("hello")),
            "{name}"
        );
    }
}
