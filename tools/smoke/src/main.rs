//! `smoke`: does a running stack work, end to end, as a client sees it? Two users (their tokens
//! from the environment), a group, one socket each (opened with a ticket), a send that the other
//! socket hears, `/changes`, a read receipt that the sender's socket hears, then cleanup (the
//! message unsent, both members gone from the group). Each step prints its time; the first
//! failure stops the run with exit code 1 and what was answered.
//!
//!   SMOKE_TOKEN_A=… SMOKE_TOKEN_B=… smoke --http https://…/ --ws wss://…/<stage>
//!
//! `tools/smoke.sh` finds the URLs (a stack's outputs, or a local gateway it starts) and the
//! tokens; see there.
#![allow(
    clippy::print_stdout,
    clippy::print_stderr,
    reason = "a command-line tool reports on stdout and stderr"
)]

use std::time::{Duration, Instant};

use futures::StreamExt;
use reqwest::Method;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// How long an event may take to reach a socket before the step fails.
const EVENT_WAIT: Duration = Duration::from_secs(15);

/// What went wrong, for the one line the run ends with.
type Failure = String;

struct Api {
    http: reqwest::Client,
    base: String,
    ws: String,
}

/// One user of the run: a token and, once opened, a socket.
struct User {
    name: &'static str,
    token: String,
    id: String,
}

impl Api {
    /// A call; any status other than `expected` is a failure naming the step and the answer.
    async fn call(
        &self,
        user: &User,
        method: Method,
        path: &str,
        body: Option<Value>,
        expected: u16,
    ) -> Result<Value, Failure> {
        let url = format!("{}{path}", self.base);
        let mut request = self
            .http
            .request(method.clone(), &url)
            .bearer_auth(&user.token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request
            .send()
            .await
            .map_err(|e| format!("{method} {path} as {}: {e}", user.name))?;
        let status = response.status().as_u16();
        let text = response.text().await.unwrap_or_default();
        if status != expected {
            return Err(format!(
                "{method} {path} as {}: {status} (expected {expected}): {text}",
                user.name
            ));
        }
        if text.is_empty() {
            return Ok(Value::Null);
        }
        serde_json::from_str(&text).map_err(|e| format!("{method} {path}: not JSON ({e})"))
    }

    /// A socket of `user`'s, opened with a fresh ticket as the web client does.
    async fn socket(&self, user: &User) -> Result<Socket, Failure> {
        let ticket = self
            .call(user, Method::POST, "/realtime/tickets", None, 201)
            .await?;
        let ticket = ticket["ticket"].as_str().ok_or("no ticket in the answer")?;
        let url = format!("{}?ticket={ticket}", self.ws);
        let (socket, _) = tokio_tungstenite::connect_async(url)
            .await
            .map_err(|e| format!("opening {}'s socket: {e}", user.name))?;
        Ok(socket)
    }
}

/// Waits for the first JSON frame `wanted` accepts; other frames are skipped.
async fn event(
    socket: &mut Socket,
    what: &str,
    wanted: impl Fn(&Value) -> bool,
) -> Result<Value, Failure> {
    let deadline = tokio::time::Instant::now() + EVENT_WAIT;
    loop {
        let frame = tokio::time::timeout_at(deadline, socket.next())
            .await
            .map_err(|_| format!("no {what} within {} s", EVENT_WAIT.as_secs()))?;
        match frame {
            Some(Ok(Message::Text(text))) => {
                if let Ok(value) = serde_json::from_str::<Value>(&text)
                    && wanted(&value)
                {
                    return Ok(value);
                }
            }
            Some(Ok(_)) => {}
            Some(Err(e)) => return Err(format!("waiting for {what}: {e}")),
            None => return Err(format!("the socket closed while waiting for {what}")),
        }
    }
}

/// Runs a step and prints its time.
async fn step<T>(name: &str, work: impl Future<Output = Result<T, Failure>>) -> Result<T, Failure> {
    let started = Instant::now();
    let out = work.await.map_err(|e| format!("{name}: {e}"))?;
    println!("ok   {name} ({} ms)", started.elapsed().as_millis());
    Ok(out)
}

fn args() -> Result<(String, String, String, String), Failure> {
    let mut http = None;
    let mut ws = None;
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        match flag.as_str() {
            "--http" => http = args.next(),
            "--ws" => ws = args.next(),
            other => return Err(format!("unknown argument {other}")),
        }
    }
    let token = |var: &str| std::env::var(var).map_err(|_| format!("{var} is not set"));
    Ok((
        http.ok_or("--http URL is required")?
            .trim_end_matches('/')
            .to_owned(),
        ws.ok_or("--ws URL is required")?,
        token("SMOKE_TOKEN_A")?,
        token("SMOKE_TOKEN_B")?,
    ))
}

async fn run() -> Result<(), Failure> {
    let (base, ws, token_a, token_b) = args()?;
    let api = Api {
        http: reqwest::Client::builder()
            .timeout(Duration::from_secs(15))
            .build()
            .map_err(|e| e.to_string())?,
        base,
        ws,
    };
    let run = format!(
        "smoke-{}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis())
            .unwrap_or_default()
    );
    let mut a = User {
        name: "A",
        token: token_a,
        id: String::new(),
    };
    let mut b = User {
        name: "B",
        token: token_b,
        id: String::new(),
    };
    for user in [&mut a, &mut b] {
        let me = step(&format!("GET /me as {}", user.name), async {
            api.call(user, Method::GET, "/me", None, 200).await
        })
        .await?;
        user.id = me["userId"].as_str().ok_or("no userId")?.to_owned();
    }
    if a.id == b.id {
        return Err("SMOKE_TOKEN_A and SMOKE_TOKEN_B are the same user".into());
    }
    let group = step("A creates a group with B", async {
        let body = json!({"participantIds": [b.id], "kind": "group", "title": run});
        api.call(&a, Method::POST, "/conversations", Some(body), 201)
            .await
    })
    .await?;
    let id = group["id"].as_str().ok_or("no conversation id")?.to_owned();
    let outcome = exchange(&api, &a, &b, &id, &run).await;
    // Cleanup whatever happened: both leave the group (the last one out leaves it empty).
    let cleanup = async {
        for user in [&a, &b] {
            step(&format!("{} leaves the group", user.name), async {
                let path = format!("/conversations/{id}/members/me");
                api.call(user, Method::DELETE, &path, None, 204).await
            })
            .await?;
        }
        Ok::<(), Failure>(())
    };
    let cleaned = cleanup.await;
    outcome.and(cleaned)
}

/// Sockets, the send, `/changes`, the read receipt and the unsend.
async fn exchange(api: &Api, a: &User, b: &User, id: &str, run: &str) -> Result<(), Failure> {
    let mut socket_a = step("A opens a socket (ticket)", api.socket(a)).await?;
    let mut socket_b = step("B opens a socket (ticket)", api.socket(b)).await?;
    let sent = step("A sends a message", async {
        let body = json!({"body": format!("{run}: hello"), "clientMessageId": run});
        let path = format!("/conversations/{id}/messages");
        api.call(a, Method::POST, &path, Some(body), 201).await
    })
    .await?;
    let seq = sent["seq"].as_u64().ok_or("no seq in the answer")?;
    step("B's socket hears message.created", async {
        event(&mut socket_b, "message.created", |f| {
            f["type"] == "message.created"
                && f["conversationId"] == id
                && f["message"]["seq"] == seq
        })
        .await
    })
    .await?;
    step("B reads /changes", async {
        let page = api
            .call(
                b,
                Method::GET,
                &format!("/conversations/{id}/changes?sinceRev=0"),
                None,
                200,
            )
            .await?;
        let items = page["items"].as_array().ok_or("no items")?;
        if items.iter().any(|m| m["seq"] == seq) {
            Ok(())
        } else {
            Err(format!("message {seq} is not in {page}"))
        }
    })
    .await?;
    step("B marks it read; A's socket hears the receipt", async {
        let path = format!("/conversations/{id}/read");
        api.call(b, Method::POST, &path, Some(json!({"seq": seq})), 200)
            .await?;
        event(&mut socket_a, "read", |f| {
            f["type"] == "read" && f["conversationId"] == id && f["userId"] == b.id.as_str()
        })
        .await
    })
    .await?;
    step("A unsends the message", async {
        let path = format!("/conversations/{id}/messages/{seq}");
        api.call(a, Method::DELETE, &path, None, 200).await
    })
    .await?;
    for (name, socket) in [("A", &mut socket_a), ("B", &mut socket_b)] {
        socket
            .close(None)
            .await
            .map_err(|e| format!("closing {name}'s socket: {e}"))?;
    }
    Ok(())
}

#[tokio::main]
async fn main() {
    let started = Instant::now();
    match run().await {
        Ok(()) => println!("smoke passed in {} ms", started.elapsed().as_millis()),
        Err(failure) => {
            eprintln!("FAIL {failure}");
            std::process::exit(1);
        }
    }
}
