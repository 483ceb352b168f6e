//! The cost benchmark (BENCHMARKS.md, "Cost per operation"; `tools/bench-cost.sh` runs it and
//! keeps the table): every HTTP route and WebSocket event once, in a group of three members who
//! each hold a socket, on a table of its own. Per route it counts
//! - DynamoDB calls and the capacity units DynamoDB Local reports for them
//!   (`ReturnConsumedCapacity: TOTAL`, asked for by the interceptor in `dynamo_meter`). Local
//!   reports reads as AWS bills them, but not writes: a transaction of seven 1 KB items reports
//!   2 units where AWS bills 14, and index entries are not counted. So write units are priced
//!   from the stream instead (see [`WriteModel`]), and Local's figure is shown beside them;
//! - the table's stream records (read from the table's own stream) and the Kinesis records
//!   `stream-publisher` writes for them (each route's records handed to it, as its mapping
//!   would, with its role; the records read back from a Kinesis stream of the test's own);
//! - Redis round trips (`RedisLink::round_trips`) and `@connections` posts (frames that reach
//!   the sockets: every post here is delivered);
//!
//! and prices it per million at AWS list prices, beside the least the route could cost.
//! The table is printed, and written to `$CHAT_COST_TABLE` when that is set.

use chat_functions::stream_publisher;
use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use chat_shared::adapters::store::DynamoStore;
use futures::stream::SplitSink;
use futures::{SinkExt, StreamExt};
use reqwest::Method;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

use crate::dynamo_meter::{Call, DynamoMeter, Metered};
use crate::support::{self, LocalApi, Socket, StreamReader};

/// AWS list prices, us-east-1, as of 2026-11 (USD).
mod price {
    /// Lambda, per request and per GB-second on arm64.
    pub const LAMBDA_REQUEST: f64 = 0.20e-6;
    pub const LAMBDA_GB_SECOND_ARM64: f64 = 0.000_013_333_4;
    /// Assumed billed duration of one invocation at the template's 256 MB: most routes are a few
    /// DynamoDB round trips of single-digit milliseconds each.
    pub const LAMBDA_MS: f64 = 20.0;
    pub const LAMBDA_GB: f64 = 0.25;
    /// API Gateway: an HTTP API request; a WebSocket message, in or out (32 KB units).
    pub const HTTP_REQUEST: f64 = 1.00e-6;
    pub const WEBSOCKET_MESSAGE: f64 = 1.00e-6;
    /// DynamoDB on-demand, per request unit.
    pub const WRITE_UNIT: f64 = 0.625e-6;
    pub const READ_UNIT: f64 = 0.125e-6;
    /// Kinesis on-demand, per record of at most 1 KB: $0.08/GB in, $0.04/GB out, 1 KB metered.
    pub const KINESIS_RECORD: f64 = 0.12 / 1_048_576.0;

    pub fn lambda(invocations: f64) -> f64 {
        invocations * (LAMBDA_REQUEST + LAMBDA_GB * LAMBDA_MS / 1000.0 * LAMBDA_GB_SECOND_ARM64)
    }
}

/// What one route costs once.
#[derive(Debug, Clone, Default)]
struct Usage {
    calls: usize,
    read_units: f64,
    /// As DynamoDB Local reports them.
    reported_write_units: f64,
    /// As AWS bills them ([`WriteModel`]).
    write_units: f64,
    stream_records: usize,
    kinesis_records: usize,
    redis_round_trips: u64,
    posts: usize,
    /// Lambda invocations (the authorizer and `ws-connect` make `$connect` two).
    invocations: usize,
    /// An HTTP API request (1) or an inbound WebSocket message (1), or neither (0).
    gateway_requests: usize,
}

impl Usage {
    /// Dollars per million operations.
    fn per_million(&self) -> f64 {
        1e6 * (price::lambda(self.invocations as f64)
            + self.gateway_requests as f64 * price::HTTP_REQUEST
            + self.posts as f64 * price::WEBSOCKET_MESSAGE
            + self.read_units * price::READ_UNIT
            + self.write_units * price::WRITE_UNIT
            + self.kinesis_records as f64 * price::KINESIS_RECORD)
    }
}

/// The least a route could do, and what that is: its reads and writes of the items the contract
/// makes it read or change (1 KB items: a strongly consistent read is 1 unit, a transactional
/// write 2), a post to every socket that must hear of it, a Kinesis record per domain event.
struct Least {
    read_units: f64,
    write_units: f64,
    posts: usize,
    kinesis_records: usize,
    why: &'static str,
}

/// AWS's billed write units, from what the writes put in the stream (new and old images): each
/// changed item costs a unit per started KB of the larger image, twice in a transaction; each
/// index entry it writes or removes costs the same once more (all three indexes project every
/// attribute); a write refused by its condition costs a unit and leaves no record; a transaction's
/// `ConditionCheck` costs two (its items here are under 1 KB) and leaves no record either.
struct WriteModel {
    /// The key attributes of each index (an item is in the index when it has all of them).
    indexes: Vec<Vec<String>>,
}

type Image = HashMap<String, aws_sdk_dynamodbstreams::types::AttributeValue>;

impl WriteModel {
    fn of_template() -> Self {
        let table = local_stack::Template::of_this_repository().unwrap().table;
        let indexes = table
            .global_secondary_indexes
            .iter()
            .chain(&table.local_secondary_indexes)
            .map(|i| {
                i.key_schema
                    .iter()
                    .map(|k| k.attribute_name.clone())
                    .collect()
            })
            .collect();
        Self { indexes }
    }

    fn units(&self, records: &[aws_sdk_dynamodbstreams::types::Record], metered: &Metered) -> f64 {
        let transactional: std::collections::HashSet<&(String, String)> = metered
            .calls
            .iter()
            .flat_map(|c| &c.transactional_keys)
            .collect();
        let refused = metered.failed_conditions as f64;
        let checks: usize = metered.calls.iter().map(|c| c.condition_checks).sum();
        let mut units = refused + 2.0 * checks as f64;
        for record in records {
            let Some(change) = record.dynamodb() else {
                continue;
            };
            let text = |name: &str| {
                change
                    .keys()
                    .and_then(|k| k.get(name))
                    .and_then(|v| v.as_s().ok())
                    .cloned()
                    .unwrap_or_default()
            };
            let (old, new) = (change.old_image(), change.new_image());
            let kb = |image: Option<&Image>| {
                image.map_or(0.0, |i| (item_size(i).max(1)).div_ceil(1024) as f64)
            };
            let double = if transactional.contains(&(text("PK"), text("SK"))) {
                2.0
            } else {
                1.0
            };
            units += kb(old).max(kb(new)) * double;
            for keys in &self.indexes {
                let key_of = |image: Option<&Image>| {
                    let image = image?;
                    keys.iter()
                        .map(|k| image.get(k).cloned())
                        .collect::<Option<Vec<_>>>()
                };
                match (key_of(old), key_of(new)) {
                    (None, None) => {}
                    (Some(a), Some(b)) if a == b => units += kb(new),
                    (a, b) => {
                        if a.is_some() {
                            units += kb(old);
                        }
                        if b.is_some() {
                            units += kb(new);
                        }
                    }
                }
            }
        }
        units
    }
}

/// An item's size as DynamoDB counts it: names plus values (numbers about a byte per two digits).
fn item_size(item: &Image) -> usize {
    use aws_sdk_dynamodbstreams::types::AttributeValue as V;
    fn value(v: &V) -> usize {
        match v {
            V::S(s) => s.len(),
            V::N(n) => n.len() / 2 + 1,
            V::B(b) => b.as_ref().len(),
            V::Bool(_) | V::Null(_) => 1,
            V::Ss(items) => items.iter().map(String::len).sum(),
            V::Ns(items) => items.iter().map(|n| n.len() / 2 + 1).sum(),
            V::Bs(items) => items.iter().map(|b| b.as_ref().len()).sum(),
            V::L(items) => 3 + items.iter().map(|i| 1 + value(i)).sum::<usize>(),
            V::M(map) => {
                3 + map
                    .iter()
                    .map(|(k, v)| 1 + k.len() + value(v))
                    .sum::<usize>()
            }
            _ => 0,
        }
    }
    item.iter().map(|(k, v)| k.len() + value(v)).sum()
}

type Sink = SplitSink<Socket, Message>;

/// Polls `done` until it holds (30 s at most: then the test fails, naming `what`).
async fn wait_until(done: impl Fn() -> bool, what: &str) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while !done() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{what}: its invocation did not return"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

struct Bench {
    api: LocalApi,
    model: WriteModel,
    meter: DynamoMeter,
    redis: Arc<chat_shared::adapters::redis_link::RedisLink>,
    stream: StreamReader,
    /// `stream-publisher` writing to the test's event stream, a reader of it, and how many
    /// records it held at the last count.
    publisher: chat_shared::services::events::KinesisSink,
    /// `stream-fan-out`'s deps (its role): each route's records are handed to it, as its mapping
    /// would, and what it reads and posts is the route's.
    fan_out: chat_shared::services::deps::RouteDeps,
    events: support::Pipeline,
    events_seen: usize,
    /// Frames that reached any of the bench's sockets.
    frames: Arc<AtomicUsize>,
    sinks: HashMap<String, Sink>,
    readers: HashMap<String, tokio::task::JoinHandle<()>>,
    marks: (u64, usize),
    rows: Vec<(String, Vec<Call>, Usage)>,
}

impl Bench {
    /// Waits until no frame has arrived for 150 ms: the pushes of the last call are in.
    async fn settle(&self) {
        let mut last = self.frames.load(Ordering::SeqCst);
        loop {
            tokio::time::sleep(Duration::from_millis(150)).await;
            let now = self.frames.load(Ordering::SeqCst);
            if now == last {
                return;
            }
            last = now;
        }
    }

    async fn begin(&mut self) {
        self.settle().await;
        self.stream.drain().await;
        self.meter.take();
        self.marks = (self.redis.round_trips(), self.frames.load(Ordering::SeqCst));
    }

    async fn end(&mut self, route: &str, invocations: usize, gateway_requests: usize) {
        self.settle().await;
        let mut metered = self.meter.take();
        let records = self.stream.drain().await;
        let mut batch = aws_lambda_events::event::dynamodb::Event::default();
        batch.records = records
            .iter()
            .map(|r| local_gateway::stream_poller::lambda_record(r, &self.stream.arn))
            .collect();
        // The fan-out's share: one invocation for a batch that holds a push (its mapping's
        // filter hands it no other), its reads, its posts.
        let pushes = batch
            .records
            .iter()
            .any(|r| matches!(chat_shared::services::delivery::push_of(r), Ok(Some(_))));
        let delivered = chat_shared::services::delivery::deliver(&self.fan_out, &batch).await;
        assert!(
            delivered.batch_item_failures.is_empty(),
            "{route}: {delivered:?}"
        );
        self.settle().await;
        let fanned = self.meter.take();
        metered.read_units += fanned.read_units;
        metered.write_units += fanned.write_units;
        metered.failed_conditions += fanned.failed_conditions;
        metered.calls.extend(fanned.calls);
        let invocations = invocations + usize::from(pushes);
        let published = stream_publisher::publish_batch(&self.publisher, batch).await;
        assert!(
            published.batch_item_failures.is_empty(),
            "{route}: {published:?}"
        );
        let in_stream = self.events.read_all().await.len();
        let kinesis_records = in_stream - self.events_seen;
        self.events_seen = in_stream;
        let usage = Usage {
            calls: metered.calls.len(),
            read_units: metered.read_units,
            reported_write_units: metered.write_units,
            write_units: self.model.units(&records, &metered),
            stream_records: records.len(),
            kinesis_records,
            redis_round_trips: self.redis.round_trips() - self.marks.0,
            posts: self.frames.load(Ordering::SeqCst) - self.marks.1,
            invocations,
            gateway_requests,
        };
        self.rows.push((route.to_owned(), metered.calls, usage));
    }

    /// One HTTP route, measured.
    async fn http(
        &mut self,
        route: &str,
        method: Method,
        path: &str,
        user: &str,
        body: Option<Value>,
    ) -> Value {
        self.begin().await;
        let (status, answer) = self.api.call(method, path, user, body).await;
        assert!(status < 300, "{route}: {status} {answer}");
        self.end(route, 1, 1).await;
        answer
    }

    /// One WebSocket frame from `user`'s socket, measured once its route's invocation has
    /// returned (on a loaded machine it may not have begun 150 ms after the frame was sent).
    async fn frame(&mut self, route: &str, user: &str, frame: Value) {
        self.begin().await;
        let returned = &self.api.gateway.ws.returned.frames;
        let before = returned.load(Ordering::SeqCst);
        let sink = self.sinks.get_mut(user).unwrap();
        sink.send(Message::Text(frame.to_string().into()))
            .await
            .unwrap();
        wait_until(|| returned.load(Ordering::SeqCst) > before, route).await;
        self.end(route, 1, 1).await;
    }

    /// A socket for `user` (ticket, then handshake), its frames counted.
    async fn connect(&mut self, user: &str, measured: bool) {
        if measured {
            self.begin().await;
        }
        let (status, ticket) = self
            .api
            .call(Method::POST, "/realtime/tickets", user, None)
            .await;
        assert_eq!(status, 201, "{ticket}");
        if measured {
            self.end("POST /realtime/tickets", 1, 1).await;
            self.begin().await;
        }
        let url = format!(
            "{}/local?ticket={}",
            self.api.url.replacen("http://", "ws://", 1),
            ticket["ticket"].as_str().unwrap()
        );
        let (socket, _) = tokio_tungstenite::connect_async(url).await.unwrap();
        if measured {
            // The authorizer and ws-connect; the handshake is not a billed message.
            self.end("$connect (ws-authorizer, ws-connect)", 2, 0).await;
        }
        let (sink, mut stream) = socket.split();
        let frames = self.frames.clone();
        let reader = tokio::spawn(async move {
            while let Some(Ok(message)) = stream.next().await {
                if matches!(message, Message::Text(_)) {
                    frames.fetch_add(1, Ordering::SeqCst);
                }
            }
        });
        self.sinks.insert(user.to_owned(), sink);
        self.readers.insert(user.to_owned(), reader);
    }

    async fn disconnect(&mut self, user: &str) {
        self.begin().await;
        let disconnects = self
            .api
            .gateway
            .ws
            .returned
            .disconnects
            .load(Ordering::SeqCst);
        let mut sink = self.sinks.remove(user).unwrap();
        sink.close().await.unwrap();
        if let Some(reader) = self.readers.remove(user) {
            let _ = tokio::time::timeout(Duration::from_secs(5), reader).await;
        }
        // ws-disconnect runs after the close: measured once it has returned.
        let returned = &self.api.gateway.ws.returned.disconnects;
        wait_until(
            || returned.load(Ordering::SeqCst) > disconnects,
            "$disconnect",
        )
        .await;
        self.end("$disconnect (ws-disconnect)", 1, 0).await;
    }
}

fn summary(calls: &[Call]) -> String {
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for call in calls {
        *counts.entry(call.operation).or_default() += 1;
    }
    counts
        .iter()
        .map(|(op, n)| {
            if *n == 1 {
                (*op).to_owned()
            } else {
                format!("{op} ×{n}")
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}

#[tokio::test]
#[allow(clippy::print_stdout, reason = "the benchmark's table is its output")]
async fn every_route_priced_against_the_least_it_could_cost() {
    let meter = DynamoMeter::default();
    let client = meter.client(support::sdk_config().await);
    let table = support::fresh_store().await.table().clone();
    let store = DynamoStore::new(client, table, support::clock());
    let stream = StreamReader::new(&store).await;
    let deps = support::deps_with(store, support::redis_link()).await;
    let redis = deps.redis.clone();
    let (api, events) = LocalApi::start_with_event_stream_and_no_fan_out(deps, "cost-events").await;
    let fan_out = local_gateway::fan_out::deps(&api.gateway).unwrap();
    let kinesis = support::kinesis().await;
    let publisher = chat_shared::services::events::KinesisSink::new(
        api.gateway
            .functions
            .kinesis("stream-publisher", support::sdk_config().await),
        events.clone(),
    );
    let mut b = Bench {
        api,
        model: WriteModel::of_template(),
        meter,
        redis,
        stream,
        publisher,
        fan_out,
        events: support::Pipeline::reader(kinesis, events),
        events_seen: 0,
        frames: Arc::new(AtomicUsize::new(0)),
        sinks: HashMap::new(),
        readers: HashMap::new(),
        marks: (0, 0),
        rows: Vec::new(),
    };
    let (ada, bob, cy, dan) = ("ada", "bob", "cy", "dan");

    b.http(
        "GET /me (first call: makes the profile)",
        Method::GET,
        "/me",
        ada,
        None,
    )
    .await;
    b.api.sign_up(&[bob.into(), cy.into(), dan.into()]).await;
    b.connect(ada, true).await;
    b.connect(bob, false).await;
    b.connect(cy, false).await;
    b.http("GET /me", Method::GET, "/me", ada, None).await;
    b.http(
        "PATCH /me",
        Method::PATCH,
        "/me",
        ada,
        Some(json!({"displayName": "Ada"})),
    )
    .await;
    b.http("GET /users/{userId}", Method::GET, "/users/bob", ada, None)
        .await;
    let group = b
        .http(
            "POST /conversations (group of 3)",
            Method::POST,
            "/conversations",
            ada,
            Some(json!({"participantIds": [bob, cy], "title": "cost"})),
        )
        .await;
    b.http(
        "POST /conversations (direct, new)",
        Method::POST,
        "/conversations",
        ada,
        Some(json!({"participantIds": [bob]})),
    )
    .await;
    b.http(
        "POST /conversations (direct, existing)",
        Method::POST,
        "/conversations",
        ada,
        Some(json!({"participantIds": [bob]})),
    )
    .await;
    let id = group["id"].as_str().unwrap().to_owned();
    let c = format!("/conversations/{id}");
    // The steady state: an instance that has read the cursor keys (one GetItem per instance
    // every 5 minutes, and once per table the PutItem that makes them, are not per request).
    let gateway = &b.api.gateway;
    gateway
        .deps
        .cursor_keys
        .ring(&gateway.deps.store)
        .await
        .unwrap();
    b.http(
        "GET /conversations",
        Method::GET,
        "/conversations",
        ada,
        None,
    )
    .await;
    b.http(
        "GET /conversations (cached)",
        Method::GET,
        "/conversations",
        ada,
        None,
    )
    .await;
    b.http("GET /conversations/{id}", Method::GET, &c, ada, None)
        .await;
    b.http(
        "GET /conversations/{id} (cached)",
        Method::GET,
        &c,
        ada,
        None,
    )
    .await;
    b.http(
        "PATCH /conversations/{id}",
        Method::PATCH,
        &c,
        ada,
        Some(json!({"title": "T"})),
    )
    .await;
    b.http(
        "PATCH /conversations/{id}/settings",
        Method::PATCH,
        &format!("{c}/settings"),
        ada,
        Some(json!({"muted": true})),
    )
    .await;
    let messages = format!("{c}/messages");
    b.http(
        "POST /conversations/{id}/messages",
        Method::POST,
        &messages,
        ada,
        Some(json!({"body": "hi", "clientMessageId": "m1"})),
    )
    .await;
    b.http(
        "POST /conversations/{id}/messages (retry)",
        Method::POST,
        &messages,
        ada,
        Some(json!({"body": "hi", "clientMessageId": "m1"})),
    )
    .await;
    b.frame(
        "WebSocket sendMessage",
        bob,
        json!({"action": "sendMessage", "conversationId": id, "body": "yo", "clientMessageId": "w1"}),
    )
    .await;
    b.http(
        "GET /conversations/{id}/messages",
        Method::GET,
        &messages,
        cy,
        None,
    )
    .await;
    b.http(
        "GET /conversations/{id}/changes",
        Method::GET,
        &format!("{c}/changes?sinceRev=0"),
        cy,
        None,
    )
    .await;
    b.http(
        "POST /conversations/{id}/read",
        Method::POST,
        &format!("{c}/read"),
        cy,
        Some(json!({"seq": 1})),
    )
    .await;
    // cy has one conversation with unread messages: its META and membership are read.
    b.http("GET /me/unread", Method::GET, "/me/unread", cy, None)
        .await;
    b.frame(
        "WebSocket markRead",
        cy,
        json!({"action": "markRead", "conversationId": id, "seq": 2}),
    )
    .await;
    b.frame(
        "WebSocket typing",
        bob,
        json!({"action": "typing", "conversationId": id, "isTyping": true}),
    )
    .await;
    b.frame("WebSocket ping", bob, json!({"action": "ping"}))
        .await;
    b.frame(
        "WebSocket $default (unknown action)",
        bob,
        json!({"action": "dance"}),
    )
    .await;
    b.http(
        "PATCH /conversations/{id}/messages/{seq}",
        Method::PATCH,
        &format!("{messages}/1"),
        ada,
        Some(json!({"body": "hello"})),
    )
    .await;
    let reaction = format!("{messages}/1/reactions/%F0%9F%91%8D");
    b.http("PUT …/reactions/{emoji}", Method::PUT, &reaction, bob, None)
        .await;
    b.http(
        "DELETE …/reactions/{emoji}",
        Method::DELETE,
        &reaction,
        bob,
        None,
    )
    .await;
    b.http(
        "DELETE /conversations/{id}/messages/{seq} (unsend)",
        Method::DELETE,
        &format!("{messages}/1"),
        ada,
        None,
    )
    .await;
    b.http(
        "POST /conversations/{id}/members",
        Method::POST,
        &format!("{c}/members"),
        ada,
        Some(json!({"userIds": [dan]})),
    )
    .await;
    b.http(
        "DELETE /conversations/{id}/members/{userId} (owner removes)",
        Method::DELETE,
        &format!("{c}/members/{dan}"),
        ada,
        None,
    )
    .await;
    b.http(
        "DELETE /conversations/{id}/members/me (leave)",
        Method::DELETE,
        &format!("{c}/members/me"),
        cy,
        None,
    )
    .await;
    b.disconnect(cy).await;

    let table = render(&b.rows);
    println!("{table}");
    if let Ok(path) = std::env::var("CHAT_COST_TABLE") {
        std::fs::write(path, &table).unwrap();
    } else {
        // Every route's counts are the recorded ones: a change that costs more or less is seen
        // (and, if meant, recorded again with tools/bench-cost.sh).
        let recorded = std::fs::read_to_string(format!(
            "{}/../docs/benchmarks/cost.md",
            env!("CARGO_MANIFEST_DIR")
        ))
        .unwrap();
        let (now, then) = (counts(&table), counts(&recorded));
        let changed: Vec<String> = now
            .iter()
            .filter(|(route, cells)| then.get(*route) != Some(cells))
            .map(|(route, cells)| format!("{route}: {cells:?}, recorded {:?}", then.get(route)))
            .chain(
                then.keys()
                    .filter(|r| !now.contains_key(*r))
                    .map(|r| format!("{r}: recorded, not measured")),
            )
            .collect();
        assert!(
            changed.is_empty(),
            "counts differ from docs/benchmarks/cost.md (run tools/bench-cost.sh if the change is meant):\n{}",
            changed.join("\n")
        );
    }

    // DynamoDB Local reports capacity, so the units are measured, not assumed.
    for (route, calls, usage) in &b.rows {
        if !calls.is_empty() {
            assert!(
                usage.read_units + usage.reported_write_units > 0.0,
                "{route}: no capacity reported"
            );
        }
    }
    let send = &b
        .rows
        .iter()
        .find(|r| r.0 == "POST /conversations/{id}/messages")
        .unwrap()
        .2;
    // The message, its ledger entry, the idempotency key, META twice (the counter, then
    // `lastMessage`), the sender's read position and three inbox moves.
    assert_eq!(send.stream_records, 9, "{send:?}");
    // message.sent; and a push to each of the three members' sockets.
    assert_eq!((send.kinesis_records, send.posts), (1, 3), "{send:?}");
}

/// The least each route could do (see [`Least`]): (RRU, WRU, posts, Kinesis records, what).
/// Reads: eventually consistent 0.5 a 4 KB item, 1 where a condition needs it strong. Writes
/// include the index entries the item must have. Posts: every socket that must hear, here one per
/// member, and the answer to a frame.
fn least(route: &str) -> Least {
    let (read_units, write_units, posts, kinesis_records, why) = match route {
        r if r.starts_with("GET /me (first") => (
            1.0,
            1.0,
            0,
            0,
            "read the profile (absent) and connections; put it",
        ),
        "POST /realtime/tickets" => (0.0, 1.0, 0, 0, "put the ticket"),
        r if r.starts_with("$connect") => (
            1.0,
            6.0,
            0,
            1,
            "consume the ticket; read the socket slots; claim one with the connection (+GSI1)",
        ),
        "GET /me" | "GET /users/{userId}" => {
            (1.0, 0.0, 0, 0, "read the profile and the connections")
        }
        "PATCH /me" => (
            0.5,
            1.0,
            0,
            0,
            "update the profile, returning it; read connections",
        ),
        r if r.starts_with("POST /conversations (group") => (
            1.5,
            10.0,
            3,
            1,
            "read 3 profiles; write META, 3 members, 3 inbox entries (+LSI)",
        ),
        "POST /conversations (direct, new)" => (
            1.0,
            10.0,
            2,
            1,
            "read 2 profiles; DIRECT key and META in a transaction; 2 members, 2 inbox entries (+LSI)",
        ),
        "POST /conversations (direct, existing)" => (
            2.0,
            0.0,
            0,
            0,
            "read the DIRECT key, META, my membership, the members",
        ),
        "GET /conversations" => (
            2.5,
            0.0,
            0,
            0,
            "one inbox page; META and membership of each",
        ),
        "GET /conversations/{id}" => (1.5, 0.0, 0, 0, "read META, my membership, the members"),
        r if r.ends_with("(cached)") => (0.0, 0.0, 0, 0, "everything from the cache"),
        "PATCH /conversations/{id}" => (1.0, 1.0, 3, 0, "read META and my membership; update META"),
        "PATCH /conversations/{id}/settings" => (
            0.5,
            3.0,
            0,
            0,
            "update my membership and its copy on my inbox entry (+LSI)",
        ),
        "GET /me/unread" => (
            1.0,
            0.0,
            0,
            0,
            "query my inbox entries; META and membership of the one with unread messages",
        ),
        "POST /conversations/{id}/messages" | "WebSocket sendMessage" => (
            1.0,
            9.0,
            3,
            1,
            "read META strongly; one transaction: META, message (+LSI), idempotency key, my read position",
        ),
        "POST /conversations/{id}/messages (retry)" => (
            1.5,
            0.0,
            0,
            0,
            "read the idempotency key strongly and the message",
        ),
        "GET /conversations/{id}/messages" | "GET /conversations/{id}/changes" => {
            (1.0, 0.0, 0, 0, "read my membership and one page")
        }
        "POST /conversations/{id}/read" | "WebSocket markRead" => (
            0.5,
            3.0,
            3,
            1,
            "update my read position (conditioned on membership) and its copy on my inbox entry (+LSI)",
        ),
        "WebSocket typing" => (
            1.0,
            1.0,
            2,
            0,
            "read my membership; put the typing item the fan-out reads; read the members; post to the others",
        ),
        r if r.starts_with("WebSocket ") => (0.0, 0.0, 1, 0, "answer the frame"),
        r if r.starts_with("PATCH /conversations/{id}/messages")
            || r.contains("reactions")
            || r.contains("(unsend)") =>
        {
            (
                1.0,
                6.0,
                3,
                1,
                "read message and membership; META and message (+LSI move) in a transaction",
            )
        }
        "POST /conversations/{id}/members" => (
            1.5,
            6.0,
            3,
            1,
            "read membership, profile; META and member in a transaction; inbox entry (+LSI)",
        ),
        r if r.contains("(owner removes)") => (
            1.0,
            6.0,
            3,
            1,
            "read both memberships; META and member in a transaction; inbox entry (+LSI)",
        ),
        r if r.contains("(leave)") => (
            0.5,
            6.0,
            3,
            1,
            "read my membership; META and member in a transaction; inbox entry (+LSI)",
        ),
        r if r.starts_with("$disconnect") => (
            0.0,
            4.0,
            0,
            1,
            "delete the connection (+GSI1) and its slot; keep lastSeenAt",
        ),
        _ => (0.0, 0.0, 0, 0, "not costed"),
    };
    Least {
        read_units,
        write_units,
        posts,
        kinesis_records,
        why,
    }
}

fn render(rows: &[(String, Vec<Call>, Usage)]) -> String {
    let mut out = String::from(
        "| route | DynamoDB calls | RRU | WRU (Local reports) | WRU (AWS bills) | stream records | Kinesis records | Redis round trips | posts | $ per million | least: RRU / WRU / posts / Kinesis | least $ per million | ratio | the least it must do |\n\
         |---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|\n",
    );
    for (route, calls, usage) in rows {
        let floor = least(route);
        let least_cost = Usage {
            read_units: floor.read_units,
            write_units: floor.write_units,
            posts: floor.posts,
            kinesis_records: floor.kinesis_records,
            invocations: usage.invocations,
            gateway_requests: usage.gateway_requests,
            ..Usage::default()
        }
        .per_million();
        let _ = writeln!(
            out,
            "| {route} | {} ({}) | {:.1} | {:.1} | {:.1} | {} | {} | {} | {} | {:.2} | {} / {} / {} / {} | {least_cost:.2} | {:.2} | {} |",
            usage.calls,
            summary(calls),
            usage.read_units,
            usage.reported_write_units,
            usage.write_units,
            usage.stream_records,
            usage.kinesis_records,
            usage.redis_round_trips,
            usage.posts,
            usage.per_million(),
            floor.read_units,
            floor.write_units,
            floor.posts,
            floor.kinesis_records,
            usage.per_million() / least_cost,
            floor.why,
        );
    }
    let _ = writeln!(
        out,
        "\nPrices (USD, us-east-1, list, 2026-11): Lambda arm64 $0.20 per million requests and \
         $0.0000133334 per GB-s, at 256 MB and an assumed {} ms billed per invocation; HTTP API \
         $1.00 per million requests; WebSocket API $1.00 per million messages (each post and each \
         inbound frame); DynamoDB on-demand $0.625 per million WRU and $0.125 per million RRU; \
         Kinesis on-demand $0.08 per GB in and $0.04 per GB out, 1 KB per record. Not per \
         operation, so not in the figures: ElastiCache node-hours (Redis round trips cost \
         latency, not money), WebSocket connection minutes, the Kinesis stream-hour, and \
         `stream-publisher` and `stream-analytics`, which take up to 100 records an invocation; \
         reading the table's stream from Lambda is free. `stream-fan-out` is in the figures: \
         its reads and posts, and one invocation for each operation that pushes through it (an \
         upper bound: one invocation takes up to 100 records).",
        price::LAMBDA_MS
    );
    out
}

/// The counts of each route of a cost table (DynamoDB calls, RRU, both WRU, stream and Kinesis
/// records, Redis round trips, posts): its columns before the prices.
fn counts(table: &str) -> BTreeMap<String, Vec<String>> {
    table
        .lines()
        .filter(|l| l.starts_with("| ") && !l.starts_with("| route "))
        .map(|l| {
            let cells: Vec<String> = l
                .split(" | ")
                .map(|c| c.trim_matches(['|', ' ']).to_owned())
                .collect();
            (cells[0].clone(), cells[1..9].to_vec())
        })
        .collect()
}
