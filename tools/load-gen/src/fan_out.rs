//! The fan-out run: one group of `members` users with `sockets` sockets each; one member sends a
//! message at a time over WebSocket and the run times the sender's ack and how long until the
//! last of the other sockets has the message. The gateway's `PUSH_CONCURRENCY` is what
//! `tools/bench-fan-out.sh` varies.
//!
//! With a bare client ([`crate::bare`]), after each message the run posts that message's event
//! again, as it came, to the same connections (every one but the sender's) at the same
//! concurrency, straight to `@connections`, and times it from its first post to its last post's
//! answer: the floor the fan-out's invocation is held to, measured in the same run on the same
//! sockets. The invocation's duration (from its start to its last post's answer, as Lambda's
//! REPORT line has it) is read from the gateway's log (`--gateway-log`).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::json;

use crate::api::{
    Api, Error, Percentiles, SeenKind, Socket, bounded, log_length, log_since, millis, run_id,
};
use crate::bare::{self, Bare};

#[derive(Debug, Clone)]
pub struct Options {
    pub base: String,
    pub members: usize,
    pub sockets: usize,
    pub messages: usize,
    /// Printed with the results: the gateway's `PUSH_CONCURRENCY` (the run cannot see it).
    pub label: String,
    pub timeout: Duration,
    /// The bare client, when the run is to measure the floor too.
    pub bare: Option<bare::Options>,
    /// The gateway's log, where it reports each `stream-fan-out` invocation's duration.
    pub gateway_log: Option<PathBuf>,
}

#[derive(Debug, Default)]
pub struct Report {
    /// One Markdown table row.
    pub row: String,
    /// Pushes that never came, and acks that never came to the sender.
    pub missing: usize,
}

/// The `clientMessageId` of message `m`: the bare client's copy of it differs in its first
/// letter only, so its frames are told apart and are as long as the fan-out's.
fn client_message_id(prefix: char, m: usize) -> String {
    format!("{prefix}{m:04}")
}

pub async fn run(o: &Options) -> Result<Report, Error> {
    let api = Api::new(&o.base)?;
    let bare = o
        .bare
        .as_ref()
        .map(|options| Bare::new(&o.base, options))
        .transpose()?;
    let run = run_id();
    let names: Vec<String> = (0..o.members).map(|i| format!("fo{run}u{i:03}")).collect();
    let users = bounded(names.clone(), 16, |name| {
        let api = api.clone();
        async move {
            let token = api.token(&name).await?;
            let me = api.ok_retrying(Method::GET, "/me", &token, None).await?;
            let id = me["userId"].as_str().ok_or("/me has no userId")?.to_owned();
            Ok((token, id))
        }
    })
    .await?;
    let group = api
        .ok_retrying(
            Method::POST,
            "/conversations",
            &users[0].0,
            // With a clientRequestId: a retried 503 finds the group rather than makes another.
            Some(
                &json!({"participantIds": names[1..], "kind": "group", "title": "fan-out",
                         "clientRequestId": format!("fan-out-{run}")}),
            ),
        )
        .await?;
    let id = group["id"].as_str().ok_or("no group id")?.to_owned();
    let urls: Vec<String> = users
        .iter()
        .flat_map(|(t, _)| (0..o.sockets).map(|_| api.websocket_url(t)))
        .collect();
    let sockets = bounded(urls, 16, |url| async move { Socket::connect(&url).await }).await?;
    tokio::time::sleep(Duration::from_millis(500)).await;

    let (sender, receivers) = sockets.split_first().ok_or("no sockets")?;
    let targets = match &bare {
        Some(bare) => {
            let ids: Vec<&str> = users.iter().map(|(_, id)| id.as_str()).collect();
            Some(bare_targets(bare, &ids, sender, receivers.len(), o.timeout).await?)
        }
        None => None,
    };
    let (mut last_ms, mut every_ms, mut ack_ms) = (Vec::new(), Vec::new(), Vec::new());
    let (mut first_ms, mut bare_ms, mut invocation_ms) = (Vec::new(), Vec::new(), Vec::new());
    let mut missing = 0;
    for m in 0..o.messages {
        let client_message_id = client_message_id('f', m);
        let frame = json!({"action": "sendMessage", "conversationId": id,
                           "body": format!("fan-out {m}"), "clientMessageId": client_message_id});
        let log_from = o.gateway_log.as_deref().map(log_length);
        let sent = Instant::now();
        sender.send(&frame).await?;
        let arrivals = arrivals(receivers, &client_message_id, sent + o.timeout).await;
        missing += arrivals.iter().filter(|a| a.is_none()).count();
        let times: Vec<f64> = arrivals
            .iter()
            .flatten()
            .map(|&at| millis(sent, at))
            .collect();
        last_ms.push(times.iter().copied().fold(0.0, f64::max));
        first_ms.extend(times.iter().copied().reduce(f64::min));
        every_ms.extend(times);
        // Waited for, not looked for: the stream can deliver before the send has answered.
        let answer = sender
            .first(sent + o.timeout, |s| {
                matches!(s.kind, SeenKind::Ack | SeenKind::Refused)
                    && s.client_message_id == client_message_id
            })
            .await;
        match answer {
            Some(ack) if ack.kind == SeenKind::Ack => ack_ms.push(millis(sent, ack.at)),
            _ => missing += 1,
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
        if let (Some(path), Some(from)) = (o.gateway_log.as_deref(), log_from) {
            invocation_ms.push(invocation(path, from, sent + o.timeout).await?);
        }
        if let (Some(bare), Some(targets)) = (&bare, &targets) {
            // The event as the first receiver got it; a socket that missed it is counted above.
            let Some(event) = receivers.iter().find_map(|s| s.created(&client_message_id)) else {
                continue;
            };
            bare_ms.push(bare_pass(bare, targets, receivers, &event.text, m, o.timeout).await?);
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    }
    let last = Percentiles::of(last_ms.clone());
    let first = Percentiles::of(first_ms);
    let every = Percentiles::of(every_ms);
    let ack = Percentiles::of(ack_ms);
    let floor = Percentiles::of(bare_ms);
    let invoked = Percentiles::of(invocation_ms);
    let mut sorted = last_ms;
    sorted.sort_by(f64::total_cmp);
    let min = sorted.first().copied().unwrap_or_default();
    let cell = |p: &Percentiles| {
        if p.count > 0 {
            format!("{:.1}", p.p50)
        } else {
            "-".to_owned()
        }
    };
    let ratio_cell = if invoked.count > 0 && floor.count > 0 && floor.p50 > 0.0 {
        format!("{:.2}", invoked.p50 / floor.p50)
    } else {
        "-".to_owned()
    };
    let (invocation_cell, bare_cell) = (cell(&invoked), cell(&floor));
    let mut row = String::new();
    let _ = write!(
        row,
        "| {} | {} | {} | {} | {:.1} | {:.1} | {:.1} | {:.1} | {:.1} | {:.1} | {invocation_cell} \
         | {bare_cell} | {ratio_cell} | {missing} |",
        o.label,
        o.members,
        receivers.len(),
        o.messages,
        ack.p50,
        first.p50,
        last.p50,
        min,
        last.max,
        every.p50
    );
    for socket in sockets {
        socket.close().await;
    }
    Ok(Report { row, missing })
}

/// When each socket got the `message.created` with this `clientMessageId`, waiting until every
/// one has or `deadline` has passed (`None`: not by then).
async fn arrivals(
    sockets: &[Socket],
    client_message_id: &str,
    deadline: Instant,
) -> Vec<Option<Instant>> {
    loop {
        let arrivals: Vec<Option<Instant>> = sockets
            .iter()
            .map(|s| s.created_at(client_message_id))
            .collect();
        if arrivals.iter().all(Option::is_some) || Instant::now() > deadline {
            return arrivals;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// The connections the fan-out posts to: every connection of every member but the sender's
/// socket's (which gets its ack instead). The table cannot say which of the sender's connections
/// that is, so each of them is sent a probe, and the one the sender's socket hears is left out.
async fn bare_targets(
    bare: &Bare,
    users: &[&str],
    sender: &Socket,
    receivers: usize,
    timeout: Duration,
) -> Result<Vec<String>, Error> {
    let by_user = bounded(users.to_vec(), 16, |user| bare.connections_of(user)).await?;
    let own = by_user.first().cloned().unwrap_or_default();
    for (i, connection) in own.iter().enumerate() {
        let probe = json!({"type": "message.created", "conversationId": "",
                           "message": {"clientMessageId": format!("probe{i}")}});
        bare.post(connection, probe.to_string().as_bytes()).await?;
    }
    let deadline = Instant::now() + timeout;
    let origin = loop {
        if let Some(i) = (0..own.len()).find(|i| sender.created_at(&format!("probe{i}")).is_some())
        {
            break own[i].clone();
        }
        if Instant::now() > deadline {
            return Err(
                "the sender's socket heard none of the probes of its user's connections".into(),
            );
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    };
    let targets: Vec<String> = by_user
        .into_iter()
        .flatten()
        .filter(|id| *id != origin)
        .collect();
    if targets.len() != receivers {
        return Err(format!(
            "the table holds {} connections besides the sender's, the run has {receivers} sockets",
            targets.len()
        )
        .into());
    }
    Ok(targets)
}

/// The longest `stream-fan-out` invocation the gateway reported from byte `from` of its log on
/// (a message's records may come in more than one batch; the one with the posts is the
/// longest), waiting for one until `deadline`.
async fn invocation(path: &Path, from: u64, deadline: Instant) -> Result<f64, Error> {
    loop {
        let text = log_since(path, from).map_err(|e| format!("{}: {e}", path.display()))?;
        let longest = text
            .lines()
            .filter(|line| line.contains("invocation finished") && line.contains("stream-fan-out"))
            .filter_map(|line| {
                line.split_once("duration_ms=")?
                    .1
                    .split(' ')
                    .next()?
                    .parse()
                    .ok()
            })
            .reduce(f64::max);
        match longest {
            Some(ms) => return Ok(ms),
            None if Instant::now() > deadline => {
                return Err(format!(
                    "{} reports no stream-fan-out invocation since the message was sent",
                    path.display()
                )
                .into());
            }
            None => tokio::time::sleep(Duration::from_millis(20)).await,
        }
    }
}

/// One pass of the bare client: `event` (message `m`'s, as a socket got it) with its
/// `clientMessageId` marked as the bare client's, posted to every target; the time from the first
/// post to the last post's answer (every socket must then have it).
async fn bare_pass(
    bare: &Bare,
    targets: &[String],
    receivers: &[Socket],
    event: &str,
    m: usize,
    timeout: Duration,
) -> Result<f64, Error> {
    let (ours, theirs) = (client_message_id('b', m), client_message_id('f', m));
    let field = |id: &str| format!("\"clientMessageId\":\"{id}\"");
    if event.matches(&field(&theirs)).count() != 1 {
        return Err(format!("message {m}'s event names {theirs} other than once: {event}").into());
    }
    let body = event.replace(&field(&theirs), &field(&ours));
    let start = Instant::now();
    bare.post_all(targets, body.as_bytes()).await?;
    let posted = millis(start, Instant::now());
    let arrivals = arrivals(receivers, &ours, start + timeout).await;
    let missed = arrivals.iter().filter(|a| a.is_none()).count();
    if missed > 0 {
        return Err(
            format!("{missed} sockets never got the bare client's post of message {m}").into(),
        );
    }
    Ok(posted)
}
