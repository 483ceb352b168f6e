//! The fan-out run: one group of `members` users with `sockets` sockets each; one member sends a
//! message at a time over WebSocket and the run times how long until the last of the other
//! sockets has it. The gateway's `PUSH_CONCURRENCY` is what `tools/bench-fan-out.sh` varies.

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::json;

use crate::api::{Api, Error, Percentiles, SeenKind, Socket, bounded, millis, run_id};

#[derive(Debug, Clone)]
pub struct Options {
    pub base: String,
    pub members: usize,
    pub sockets: usize,
    pub messages: usize,
    /// Printed with the results: the gateway's `PUSH_CONCURRENCY` (the run cannot see it).
    pub label: String,
    pub timeout: Duration,
}

#[derive(Debug, Default)]
pub struct Report {
    /// One Markdown table row.
    pub row: String,
    pub missing: usize,
}

pub async fn run(o: &Options) -> Result<Report, Error> {
    let api = Api::new(&o.base)?;
    let run = run_id();
    let names: Vec<String> = (0..o.members).map(|i| format!("fo{run}u{i:03}")).collect();
    let tokens = bounded(names.clone(), 16, |name| {
        let api = api.clone();
        async move {
            let token = api.token(&name).await?;
            api.ok(Method::GET, "/me", &token, None).await?;
            Ok(token)
        }
    })
    .await?;
    let group = api
        .ok(
            Method::POST,
            "/conversations",
            &tokens[0],
            Some(&json!({"participantIds": names[1..], "kind": "group", "title": "fan-out"})),
        )
        .await?;
    let id = group["id"].as_str().ok_or("no group id")?.to_owned();
    let urls: Vec<String> = tokens
        .iter()
        .flat_map(|t| (0..o.sockets).map(|_| api.websocket_url(t)))
        .collect();
    let sockets = bounded(urls, 16, |url| async move { Socket::connect(&url).await }).await?;
    tokio::time::sleep(Duration::from_millis(500)).await;

    let (sender, receivers) = sockets.split_first().ok_or("no sockets")?;
    let (mut last_ms, mut every_ms, mut ack_ms) = (Vec::new(), Vec::new(), Vec::new());
    let mut missing = 0;
    for m in 0..o.messages {
        let client_message_id = format!("f{m}");
        let frame = json!({"action": "sendMessage", "conversationId": id,
                           "body": format!("fan-out {m}"), "clientMessageId": client_message_id});
        let sent = Instant::now();
        sender.send(&frame).await?;
        let deadline = sent + o.timeout;
        let arrivals = loop {
            let arrivals: Vec<Option<Instant>> = receivers
                .iter()
                .map(|s| s.created_at(&client_message_id))
                .collect();
            if arrivals.iter().all(Option::is_some) || Instant::now() > deadline {
                break arrivals;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        };
        missing += arrivals.iter().filter(|a| a.is_none()).count();
        let times: Vec<f64> = arrivals
            .iter()
            .flatten()
            .map(|&at| millis(sent, at))
            .collect();
        last_ms.push(times.iter().copied().fold(0.0, f64::max));
        every_ms.extend(times);
        if let Some(ack) = sender
            .seen()
            .iter()
            .find(|s| s.kind == SeenKind::Ack && s.client_message_id == client_message_id)
        {
            ack_ms.push(millis(sent, ack.at));
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let last = Percentiles::of(last_ms.clone());
    let every = Percentiles::of(every_ms);
    let ack = Percentiles::of(ack_ms);
    let mut sorted = last_ms;
    sorted.sort_by(f64::total_cmp);
    let min = sorted.first().copied().unwrap_or_default();
    let mut row = String::new();
    let _ = write!(
        row,
        "| {} | {} | {:.0} | {:.0} | {:.0} | {:.0} | {:.0} | {missing} |",
        o.label, o.messages, last.p50, min, last.max, every.p50, ack.p50
    );
    for socket in sockets {
        socket.close().await;
    }
    Ok(Report { row, missing })
}
