//! The client side: the HTTP API with dev tokens from the local gateway, and WebSocket clients
//! that log what they receive, with the time it arrived.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use futures::stream::SplitSink;
use futures::{SinkExt, StreamExt};
use serde_json::Value;
use tokio::net::TcpStream;
use tokio::sync::Notify;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

pub type Error = Box<dyn std::error::Error + Send + Sync>;

/// The HTTP API of one gateway (`http://127.0.0.1:3000`), its WebSocket API at `/local`.
#[derive(Debug, Clone)]
pub struct Api {
    base: String,
    http: reqwest::Client,
}

impl Api {
    pub fn new(base: &str) -> Result<Self, Error> {
        Self::with_timeout(base, Duration::from_secs(30))
    }

    /// A client of its own (its own connection pool), whose calls give up after `timeout`.
    pub fn with_timeout(base: &str, timeout: Duration) -> Result<Self, Error> {
        let http = reqwest::Client::builder().timeout(timeout).build()?;
        Ok(Self {
            base: base.trim_end_matches('/').to_owned(),
            http,
        })
    }

    /// A token from the local gateway's development issuer (`/_local/token`); user names here
    /// are `[a-z0-9]` only, so they need no escaping.
    pub async fn token(&self, user: &str) -> Result<String, Error> {
        let url = format!("{}/_local/token?user={user}&name={user}", self.base);
        let answer: Value = self
            .http
            .get(url)
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        answer["token"]
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| "the token answer has no token".into())
    }

    /// One call; any status is returned, with the body as JSON (`null` when it is empty).
    pub async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        token: &str,
        body: Option<&Value>,
    ) -> Result<(u16, Value), Error> {
        let mut request = self
            .http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(token);
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request.send().await?;
        let status = response.status().as_u16();
        let bytes = response.bytes().await?;
        let value = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes)?
        };
        Ok((status, value))
    }

    /// A call that must answer 2xx.
    pub async fn ok(
        &self,
        method: reqwest::Method,
        path: &str,
        token: &str,
        body: Option<&Value>,
    ) -> Result<Value, Error> {
        let (status, value) = self.call(method.clone(), path, token, body).await?;
        two_xx(&method, path, status, value)
    }

    /// [`Self::ok`] for set-up calls, retrying a 503 as a client should (up to 5 times, 100 ms
    /// doubling): a local store under a benchmark's load times out now and then, and a set-up
    /// step is not what is measured.
    pub async fn ok_retrying(
        &self,
        method: reqwest::Method,
        path: &str,
        token: &str,
        body: Option<&Value>,
    ) -> Result<Value, Error> {
        let mut pause = Duration::from_millis(100);
        let mut answer = self.call(method.clone(), path, token, body).await?;
        for _ in 0..5 {
            if answer.0 != 503 {
                break;
            }
            tokio::time::sleep(pause).await;
            pause *= 2;
            answer = self.call(method.clone(), path, token, body).await?;
        }
        two_xx(&method, path, answer.0, answer.1)
    }

    /// Every message of a conversation whose latest change is above `since_rev`, through
    /// `/changes` to the last page, with the revision they bring the reader to.
    pub async fn changes(
        &self,
        conversation: &str,
        token: &str,
        since_rev: u64,
    ) -> Result<(Vec<Value>, u64), Error> {
        let (mut items, mut rev) = (Vec::new(), since_rev);
        loop {
            let page = self
                .ok(
                    reqwest::Method::GET,
                    &format!("/conversations/{conversation}/changes?sinceRev={rev}&limit=100"),
                    token,
                    None,
                )
                .await?;
            rev = page["rev"].as_u64().ok_or("a /changes page without rev")?;
            items.extend(page["items"].as_array().cloned().unwrap_or_default());
            if page["hasMore"] != Value::Bool(true) {
                return Ok((items, rev));
            }
        }
    }

    pub fn websocket_url(&self, token: &str) -> String {
        format!(
            "{}/local?token={token}",
            self.base.replacen("http", "ws", 1)
        )
    }

    /// The URL of a socket opened as the web client opens it: with a single-use ticket from
    /// `POST /realtime/tickets`.
    pub async fn websocket_ticket_url(&self, token: &str) -> Result<String, Error> {
        let answer = self
            .ok(reqwest::Method::POST, "/realtime/tickets", token, None)
            .await?;
        let ticket = answer["ticket"]
            .as_str()
            .ok_or("the ticket answer has no ticket")?;
        // URL-safe base64 today; anything else would need escaping in the query.
        if ticket.is_empty()
            || !ticket
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return Err(format!("a ticket that is not URL-safe: {ticket:?}").into());
        }
        Ok(format!(
            "{}/local?ticket={ticket}",
            self.base.replacen("http", "ws", 1)
        ))
    }
}

/// What a client saw of one frame that matters here.
#[derive(Debug, Clone)]
pub struct Seen {
    pub at: Instant,
    pub kind: SeenKind,
    pub conversation: String,
    pub seq: u64,
    pub rev: u64,
    pub message_id: String,
    pub client_message_id: String,
    /// The error code of a `Refused` frame (`unavailable`, `rate_limited`, …); empty otherwise.
    pub error: String,
    /// The frame as it came: the fan-out run's bare client posts these very bytes again.
    pub text: Arc<str>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SeenKind {
    /// The answer to this socket's own `sendMessage`.
    Ack,
    /// A `message.created` push.
    Created,
    /// An `error` answer to this socket's frame.
    Refused,
    /// The answer to a `ping`.
    Pong,
}

impl Seen {
    fn from_frame(at: Instant, raw: &str) -> Option<Self> {
        let frame: Value = serde_json::from_str(raw).unwrap_or_default();
        let kind = match (frame["type"].as_str()?, frame["action"].as_str()) {
            ("ack", Some("sendMessage")) => SeenKind::Ack,
            ("message.created", _) => SeenKind::Created,
            ("error", _) => SeenKind::Refused,
            ("pong", _) => SeenKind::Pong,
            _ => return None,
        };
        let message = &frame["message"];
        let text = |v: &Value| v.as_str().unwrap_or_default().to_owned();
        Some(Self {
            at,
            kind,
            conversation: text(if kind == SeenKind::Ack {
                &message["conversationId"]
            } else {
                &frame["conversationId"]
            }),
            seq: message["seq"].as_u64().unwrap_or_default(),
            rev: message["rev"].as_u64().unwrap_or_default(),
            message_id: text(&message["id"]),
            client_message_id: if kind == SeenKind::Refused {
                text(&frame["clientMessageId"])
            } else {
                text(&message["clientMessageId"])
            },
            error: text(&frame["error"]["code"]),
            text: Arc::from(raw),
        })
    }
}

type Sink = SplitSink<WebSocketStream<MaybeTlsStream<TcpStream>>, Message>;

/// One WebSocket client: frames go out through `send`, and a reader task logs every frame that
/// arrives, timed on arrival (and wakes whoever waits for one in [`Socket::first`]).
#[derive(Debug)]
pub struct Socket {
    sink: tokio::sync::Mutex<Sink>,
    seen: Arc<Mutex<Vec<Seen>>>,
    arrived: Arc<Notify>,
    reader: tokio::task::JoinHandle<()>,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Socket {
    pub async fn connect(url: &str) -> Result<Self, Error> {
        let (ws, _) = tokio_tungstenite::connect_async(url).await?;
        let (sink, mut stream) = ws.split();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let arrived = Arc::new(Notify::new());
        let (log, wake) = (seen.clone(), arrived.clone());
        let reader = tokio::spawn(async move {
            while let Some(Ok(message)) = stream.next().await {
                let at = Instant::now();
                if let Message::Text(text) = message
                    && let Some(seen) = Seen::from_frame(at, &text)
                {
                    lock(&log).push(seen);
                    wake.notify_waiters();
                }
            }
            // Closed: nothing more will come, so no waiter should wait for its deadline.
            wake.notify_waiters();
        });
        Ok(Self {
            sink: tokio::sync::Mutex::new(sink),
            seen,
            arrived,
            reader,
        })
    }

    pub async fn send(&self, frame: &Value) -> Result<(), Error> {
        self.sink
            .lock()
            .await
            .send(Message::Text(frame.to_string().into()))
            .await?;
        Ok(())
    }

    /// What has arrived so far, in arrival order.
    pub fn seen(&self) -> Vec<Seen> {
        lock(&self.seen).clone()
    }

    /// Whether a `message.created` with this `clientMessageId` has arrived, and when.
    pub fn created_at(&self, client_message_id: &str) -> Option<Instant> {
        lock(&self.seen)
            .iter()
            .find(|s| s.kind == SeenKind::Created && s.client_message_id == client_message_id)
            .map(|s| s.at)
    }

    /// The `message.created` with this `clientMessageId`, as it came.
    pub fn created(&self, client_message_id: &str) -> Option<Seen> {
        lock(&self.seen)
            .iter()
            .find(|s| s.kind == SeenKind::Created && s.client_message_id == client_message_id)
            .cloned()
    }

    pub fn count(&self, kind: SeenKind) -> usize {
        lock(&self.seen).iter().filter(|s| s.kind == kind).count()
    }

    /// The first frame (in arrival order) that `matches`, waiting for it until `deadline`;
    /// `None` when none has come by then or the socket has closed without one.
    pub async fn first(&self, deadline: Instant, matches: impl Fn(&Seen) -> bool) -> Option<Seen> {
        loop {
            // Registered before the log is read, so a frame logged in between still wakes it.
            let notified = self.arrived.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if let Some(seen) = lock(&self.seen).iter().find(|s| matches(s)) {
                return Some(seen.clone());
            }
            if self.reader.is_finished() {
                return None;
            }
            if tokio::time::timeout_at(deadline.into(), notified)
                .await
                .is_err()
            {
                return None;
            }
        }
    }

    pub async fn close(&self) {
        let _ = self.sink.lock().await.close().await;
        self.reader.abort();
    }
}

/// Runs `f` over `items`, `in_flight` at a time, in order of `items`.
pub async fn bounded<T, R, F, Fut>(items: Vec<T>, in_flight: usize, f: F) -> Result<Vec<R>, Error>
where
    F: Fn(T) -> Fut,
    Fut: Future<Output = Result<R, Error>>,
{
    futures::stream::iter(items)
        .map(f)
        .buffered(in_flight)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect()
}

/// A run id that keeps each run's users, conversations and direct pairs apart from earlier runs.
/// The answer's body when its status is 2xx, else the error naming the call.
fn two_xx(method: &reqwest::Method, path: &str, status: u16, value: Value) -> Result<Value, Error> {
    if (200..300).contains(&status) {
        Ok(value)
    } else {
        Err(format!("{method} {path}: {status} {value}").into())
    }
}

pub fn run_id() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    let mut n = (nanos / 1_000_000) % 36u128.pow(6);
    let mut id = String::new();
    for _ in 0..6 {
        let digit = (n % 36) as u32;
        id.push(char::from_digit(digit, 36).unwrap_or('0'));
        n /= 36;
    }
    id
}

/// xorshift64*: a seeded, repeatable choice of sender and conversation (no crate needed).
#[derive(Debug)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(seed.max(1))
    }

    /// A number in `0..n` (`n` > 0).
    pub fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 33) as usize % n.max(1)
    }
}

/// Nearest-rank percentiles of latencies in milliseconds.
#[derive(Debug, Clone, Copy, Default)]
pub struct Percentiles {
    pub count: usize,
    pub p50: f64,
    pub p95: f64,
    pub p99: f64,
    pub max: f64,
}

impl Percentiles {
    pub fn of(mut values: Vec<f64>) -> Self {
        if values.is_empty() {
            return Self::default();
        }
        values.sort_by(f64::total_cmp);
        let rank = |p: f64| {
            let i = ((p / 100.0) * values.len() as f64).ceil() as usize;
            values[i.clamp(1, values.len()) - 1]
        };
        Self {
            count: values.len(),
            p50: rank(50.0),
            p95: rank(95.0),
            p99: rank(99.0),
            max: values[values.len() - 1],
        }
    }
}

pub fn millis(from: Instant, to: Instant) -> f64 {
    to.saturating_duration_since(from).as_secs_f64() * 1000.0
}

/// How long a log file is now: where to read it [`log_since`] later.
pub fn log_length(path: &std::path::Path) -> u64 {
    std::fs::metadata(path).map_or(0, |m| m.len())
}

/// What a log file holds from byte `from` on.
pub fn log_since(path: &std::path::Path, from: u64) -> std::io::Result<String> {
    use std::io::{Read, Seek, SeekFrom};
    let mut text = String::new();
    let mut file = std::fs::File::open(path)?;
    file.seek(SeekFrom::Start(from))?;
    file.read_to_string(&mut text)?;
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_nearest_rank() {
        let p = Percentiles::of((1..=100).map(f64::from).collect());
        assert_eq!(
            (p.count, p.p50, p.p95, p.p99, p.max),
            (100, 50.0, 95.0, 99.0, 100.0)
        );
        let one = Percentiles::of(vec![7.0]);
        assert_eq!((one.p50, one.p99, one.max), (7.0, 7.0, 7.0));
        assert_eq!(Percentiles::of(Vec::new()).count, 0);
    }

    #[test]
    fn the_rng_is_repeatable_and_in_range() {
        let (mut a, mut b) = (Rng::new(42), Rng::new(42));
        let xs: Vec<usize> = (0..1000).map(|_| a.below(7)).collect();
        let ys: Vec<usize> = (0..1000).map(|_| b.below(7)).collect();
        assert_eq!(xs, ys);
        assert!(xs.iter().all(|&x| x < 7));
        assert!((0..7).all(|v| xs.contains(&v)), "every value comes up");
    }
}
