//! The hot-conversation run (`tools/bench-hot.sh`): for each writer count W, a group whose members
//! are the W writers, and three phases in it, each one attempt per writer, released together
//! behind a barrier, with no retries by the client:
//!
//! - `http send`: `POST /conversations/{id}/messages`, timed to the response;
//! - `ws send`: a `sendMessage` frame on the writer's socket (opened with a ticket), timed to the
//!   `ack` or `error` frame that answers its `clientMessageId` on that socket;
//! - `reaction`: `PUT /conversations/{id}/messages/{seq}/reactions/👍`, every writer on the same
//!   message, timed to the response.
//!
//! The floor, run first, in the same run: the same number of sends, by the same writers one at
//! a time (`POST …/messages`, each after the one before has answered) into a second group of the
//! same members, so that nothing contends; each phase's p50 and p99 are given as ratios to the
//! floor's p50. Before every attempt, contended or not, the writer calls `GET /me` on its own HTTP
//! client, so that every timed call finds its connection open. The writers' sockets are open only
//! for `ws send` (each accepted send there reaches the W − 1 other sockets), and that phase waits
//! for those pushes before the next, so that its fan-out does not weigh on the reactions.
//!
//! After each phase (the floor too) the conversation is read back whole and checked:
//!
//! - **seq**: `GET …/messages` paged back with `beforeSeq` holds seq 1..=`lastSeq`, each once;
//!   every accepted send is there exactly once (every accepted reaction is on the message, once),
//!   and nothing is there that no attempt of the phase explains;
//! - **rev**: `GET …/changes?sinceRev=0` paged on its `rev` while `hasMore` ends at the
//!   conversation's `rev`, in strictly ascending `rev`, with every message once and as `/messages`
//!   has it; in a send phase, every revision the phase took is held by one new message (a void
//!   included). How `rev` moved in a reaction phase (one per reaction added, today) is told, not
//!   held against the run: a design may spend revisions on refused changes (docs/decisions/0007).
//!
//! A check that fails is read again every 0.5 s for up to 20 s: a gap that the server fills
//! once it is old enough is no gap to a client; one still there then is.
//!
//! Messages with `"kind": "void"` (placeholders a later version may store) are counted apart:
//! they are neither accepted nor refused.
//!
//! With `--gateway-log`, each row also says what the gateway logged while it ran: the reasons of
//! its failed requests (a lost race and an overloaded DynamoDB are the same `503 unavailable` to a
//! client) and the Redis calls that failed. The calls that set a phase up or read it back are not
//! what is measured: they are tried again after a pause when they fail (the stack may still be
//! busy with the phase before).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::{Value, json};
use tokio::sync::Barrier;

use crate::api::{
    Api, Error, Percentiles, SeenKind, Socket, bounded, log_length, log_since, millis, run_id,
};

/// 👍, as it goes in a path.
const THUMBS_UP: &str = "%F0%9F%91%8D";
const THUMBS_UP_KEY: &str = "\u{1F44D}";
/// Groups stop at this many members.
pub const MAX_WRITERS: usize = 256;
/// How long the pushes of a `ws send` phase may take to reach every other socket: this, and
/// [`FAN_OUT_WAIT_EACH`] for each push (the fan-out benchmark's stack makes about 350 a second).
/// A push skipped under load never comes (push is best-effort): the wait ends at its deadline.
const FAN_OUT_WAIT: Duration = Duration::from_secs(30);
const FAN_OUT_WAIT_EACH: Duration = Duration::from_millis(5);
/// How long after a phase's last answer the conversation may take to read back without a gap,
/// and the pause between reads until then.
const SETTLE: Duration = Duration::from_secs(20);
const SETTLE_READS: Duration = Duration::from_millis(500);
/// HTTP calls at once while signing up and opening sockets.
const SETUP_IN_FLIGHT: usize = 16;

#[derive(Debug, Clone)]
pub struct Options {
    pub base: String,
    /// The writer counts, one after the other, each with users and groups of its own.
    pub writers: Vec<usize>,
    /// How long an attempt waits for its answer; one that gets none counts as refused.
    pub timeout: Duration,
    /// The gateway's log, read for what it logged during each phase.
    pub gateway_log: Option<PathBuf>,
}

#[derive(Debug)]
pub struct Report {
    /// The Markdown table and what it found besides.
    pub text: String,
    /// Nothing was refused and no check found a gap.
    pub passes: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Op {
    HttpSend,
    WsSend,
    Reaction,
}

impl Op {
    fn name(self) -> &'static str {
        match self {
            Self::HttpSend => "http send",
            Self::WsSend => "ws send",
            Self::Reaction => "reaction",
        }
    }

    /// Its letter in a `clientMessageId`.
    fn tag(self) -> &'static str {
        match self {
            Self::HttpSend => "h",
            Self::WsSend => "w",
            Self::Reaction => "r",
        }
    }
}

#[derive(Debug)]
struct Writer {
    name: String,
    token: String,
    /// A client of the writer's own, so that its connection is its own and warm.
    api: Api,
}

/// What one phase does: the operation, where, and (for reactions) on which message.
#[derive(Debug, Clone)]
struct Target {
    op: Op,
    conversation: String,
    floor: bool,
    seq: u64,
    timeout: Duration,
}

impl Target {
    fn client_message_id(&self, writer: usize) -> String {
        let place = if self.floor { "f" } else { "c" };
        format!("{place}{}{writer}", self.op.tag())
    }
}

#[derive(Debug, Clone)]
enum Answer {
    Accepted,
    /// What came instead: `503 unavailable`, `error unavailable`, `no answer in 60 s`, …
    Refused(String),
}

#[derive(Debug, Clone)]
struct Attempt {
    writer: usize,
    client_message_id: String,
    answer: Answer,
    start: Instant,
    end: Instant,
    /// From the attempt's start to its answer.
    ms: f64,
}

impl Attempt {
    fn accepted(&self) -> bool {
        matches!(self.answer, Answer::Accepted)
    }
}

/// The conversation as a reader finds it.
#[derive(Debug)]
struct Snapshot {
    last_seq: u64,
    rev: u64,
    /// Every message, ascending `seq`, as `GET …/messages` pages them.
    messages: Vec<Value>,
    /// Every message, as `GET …/changes?sinceRev=0` pages them.
    changes: Vec<Value>,
    /// The `rev` the last `/changes` page brings the reader to.
    changes_rev: u64,
}

#[derive(Debug, Default)]
struct Check {
    seq_ok: bool,
    rev_ok: bool,
    voids: usize,
    /// Stored although the writer was told it was refused.
    stored_though_refused: usize,
    /// What fails the `seq` or `rev` check.
    problems: Vec<String>,
    /// What is worth knowing but no gap: how `rev` moved in a reaction phase.
    notes: Vec<String>,
}

#[derive(Debug)]
struct Row {
    op: Op,
    floor: bool,
    writers: usize,
    attempts: Vec<Attempt>,
    check: Check,
    /// From the first attempt's start to the last answer.
    took: Duration,
    /// `ws send`: the pushes of its accepted sends to the other sockets.
    pushes: Pushes,
    /// What the gateway logged meanwhile: failed requests by reason, Redis time-outs.
    server: BTreeMap<String, usize>,
    /// From the last answer to the read that passed the checks (or the last read).
    settled: Duration,
}

impl Row {
    fn accepted(&self) -> usize {
        self.attempts.iter().filter(|a| a.accepted()).count()
    }

    fn refused(&self) -> usize {
        self.attempts.len() - self.accepted()
    }

    fn latency(&self) -> Percentiles {
        Percentiles::of(
            self.attempts
                .iter()
                .filter(|a| a.accepted())
                .map(|a| a.ms)
                .collect(),
        )
    }

    fn passes(&self) -> bool {
        self.refused() == 0 && self.check.seq_ok && self.check.rev_ok
    }

    fn label(&self) -> String {
        if self.floor {
            format!("floor: {}s one at a time", self.op.name())
        } else {
            self.op.name().to_owned()
        }
    }
}

pub async fn run(o: &Options) -> Result<Report, Error> {
    let run = run_id();
    let mut rows = Vec::new();
    for &writers in &o.writers {
        eprintln!("load-gen hot: {writers} writers");
        rows.extend(one_size(o, &run, writers).await?);
    }
    Ok(Report {
        text: render(&rows),
        passes: rows.iter().all(Row::passes),
    })
}

/// The four rows of one writer count: the floor, then each phase.
async fn one_size(o: &Options, run: &str, size: usize) -> Result<Vec<Row>, Error> {
    let writers = sign_up(o, run, size).await?;
    let names: Vec<String> = writers.iter().map(|w| w.name.clone()).collect();
    let hot = create_group(&writers, &format!("hot {size}")).await?;
    let floor = create_group(&writers, &format!("hot {size}, floor")).await?;
    let target = |op, conversation: &String, seq| Target {
        op,
        conversation: conversation.clone(),
        floor: *conversation == floor,
        seq,
        timeout: o.timeout,
    };
    let mut rows = vec![
        phase(o, &writers, &names, None, target(Op::HttpSend, &floor, 0)).await?,
        phase(o, &writers, &names, None, target(Op::HttpSend, &hot, 0)).await?,
    ];

    let sockets = open_sockets(&writers).await?;
    let ws = phase(
        o,
        &writers,
        &names,
        Some(&sockets),
        target(Op::WsSend, &hot, 0),
    )
    .await;
    for socket in &sockets {
        socket.close().await;
    }
    rows.push(ws?);

    // The message everyone reacts to: one more send, by the first writer.
    let first = writers.first().ok_or("no writers")?;
    let seed = json!({"body": "react to this", "clientMessageId": "seed"});
    let path = format!("/conversations/{hot}/messages");
    // The same clientMessageId each time: a send that was stored is answered with its message.
    let message = again("sending the message to react to", || {
        first.api.ok(Method::POST, &path, &first.token, Some(&seed))
    })
    .await?;
    let seq = message["seq"]
        .as_u64()
        .ok_or("a sent message without seq")?;
    rows.push(phase(o, &writers, &names, None, target(Op::Reaction, &hot, seq)).await?);
    Ok(rows)
}

/// W users from the local issuer, each with a profile (`GET /me`) and a client of their own.
async fn sign_up(o: &Options, run: &str, size: usize) -> Result<Vec<Arc<Writer>>, Error> {
    let setup = Api::new(&o.base)?;
    let names: Vec<String> = (0..size)
        .map(|i| format!("hot{run}w{size}u{i:03}"))
        .collect();
    bounded(names, SETUP_IN_FLIGHT, |name| {
        let setup = setup.clone();
        async move {
            let token = setup.token(&name).await?;
            setup.ok(Method::GET, "/me", &token, None).await?;
            let api = Api::with_timeout(&o.base, o.timeout)?;
            Ok(Arc::new(Writer { name, token, api }))
        }
    })
    .await
}

/// A group of every writer, created by the first.
async fn create_group(writers: &[Arc<Writer>], title: &str) -> Result<String, Error> {
    let (creator, others) = writers.split_first().ok_or("no writers")?;
    let others: Vec<&str> = others.iter().map(|w| w.name.as_str()).collect();
    // With a clientRequestId, a group created by an earlier try is answered again.
    let body = json!({"participantIds": others, "kind": "group", "title": title,
                      "clientRequestId": title.replace([' ', ','], "-")});
    let group = again("creating a group", || {
        creator
            .api
            .ok(Method::POST, "/conversations", &creator.token, Some(&body))
    })
    .await?;
    let id = group["id"].as_str().ok_or("a group without id")?.to_owned();
    let count = group["memberCount"].as_u64().unwrap_or_default();
    if usize::try_from(count).ok() != Some(writers.len()) {
        return Err(format!("group {id} has {count} members, not {}", writers.len()).into());
    }
    Ok(id)
}

/// One socket per writer, opened with a ticket, answered a `ping` (so that the gateway routes
/// frames and pushes to it).
async fn open_sockets(writers: &[Arc<Writer>]) -> Result<Vec<Arc<Socket>>, Error> {
    bounded(writers.to_vec(), SETUP_IN_FLIGHT, |writer| async move {
        let url = writer.api.websocket_ticket_url(&writer.token).await?;
        let socket = Socket::connect(&url).await?;
        socket.send(&json!({"action": "ping"})).await?;
        let deadline = Instant::now() + Duration::from_secs(30);
        if socket
            .first(deadline, |s| s.kind == SeenKind::Pong)
            .await
            .is_none()
        {
            return Err(format!("{}'s socket did not answer a ping in 30 s", writer.name).into());
        }
        Ok(Arc::new(socket))
    })
    .await
}

/// One phase: the attempts (together, or one at a time for the floor), then the check.
async fn phase(
    o: &Options,
    writers: &[Arc<Writer>],
    names: &[String],
    sockets: Option<&[Arc<Socket>]>,
    target: Target,
) -> Result<Row, Error> {
    let checker = writers.first().ok_or("no writers")?;
    let before = snapshot(&checker.api, &checker.token, &target.conversation).await?;
    let log_from = o.gateway_log.as_deref().map(log_length);
    let mut pushes = Pushes::default();
    let attempts = if target.floor {
        let mut attempts = Vec::with_capacity(writers.len());
        for (i, writer) in writers.iter().enumerate() {
            warm(writer).await;
            let socket = sockets.and_then(|s| s.get(i)).cloned();
            attempts.push(attempt(writer.clone(), socket, target.clone(), i).await);
        }
        attempts
    } else {
        let attempts = together(writers, sockets, &target).await?;
        if let Some(sockets) = sockets {
            pushes = fan_out(sockets, &sends_of(&attempts)).await;
        }
        attempts
    };
    let took = match (
        attempts.iter().map(|a| a.start).min(),
        attempts.iter().map(|a| a.end).max(),
    ) {
        (Some(first), Some(last)) => last.saturating_duration_since(first),
        _ => Duration::ZERO,
    };
    // Read back until the checks pass or SETTLE has passed: a design may fill a gap only once it
    // is old enough (docs/decisions/0007: 5 s), and that is no gap to a client.
    let answered = Instant::now();
    let (check, settled) = loop {
        let after = snapshot(&checker.api, &checker.token, &target.conversation).await?;
        let check = check(&target, &before, &after, &attempts, names);
        if (check.seq_ok && check.rev_ok) || answered.elapsed() >= SETTLE {
            break (check, answered.elapsed());
        }
        tokio::time::sleep(SETTLE_READS).await;
    };
    let server = match (o.gateway_log.as_deref(), log_from) {
        (Some(path), Some(from)) => server_side(path, from),
        _ => BTreeMap::new(),
    };
    let row = Row {
        op: target.op,
        floor: target.floor,
        writers: writers.len(),
        attempts,
        check,
        took,
        pushes,
        server,
        settled,
    };
    eprintln!(
        "load-gen hot: {}, {} writers: {} accepted, {} refused in {:.1} s",
        row.label(),
        row.writers,
        row.accepted(),
        row.refused(),
        took.as_secs_f64()
    );
    Ok(row)
}

/// What the gateway logged from byte `from` on: its failed requests by reason (`request failed
/// … retry later: <reason>`, cut at its first `:` or `;`) and Redis calls that failed.
fn server_side(path: &Path, from: u64) -> BTreeMap<String, usize> {
    let read = log_since(path, from);
    let mut reasons = BTreeMap::new();
    let text = match read {
        Ok(text) => text,
        Err(error) => {
            reasons.insert(format!("the gateway's log unread: {error}"), 1);
            return reasons;
        }
    };
    for line in text.lines() {
        let reason = if let Some((_, rest)) = line.split_once("request failed ") {
            let detail = rest
                .split_once("retry later: ")
                .or_else(|| rest.split_once("error="))
                .map_or(rest, |(_, detail)| detail);
            let reason = detail
                .split([':', ';'])
                .next()
                .unwrap_or(detail)
                .replace(" did not answer in time or refused the load", " timed out");
            format!("failed request: {}", reason.trim())
        } else if line.contains("redis command failed") || line.contains("redis unreachable") {
            "Redis call failed (limits held locally, no cache)".to_owned()
        } else {
            continue;
        };
        *reasons.entry(reason).or_default() += 1;
    }
    reasons
}

/// Every writer's attempt at once: each warms its connection first ([`warm`]), then they all
/// wait at one barrier and go.
async fn together(
    writers: &[Arc<Writer>],
    sockets: Option<&[Arc<Socket>]>,
    target: &Target,
) -> Result<Vec<Attempt>, Error> {
    futures::future::join_all(writers.iter().map(|w| warm(w))).await;
    let barrier = Arc::new(Barrier::new(writers.len()));
    let tasks: Vec<_> = writers
        .iter()
        .enumerate()
        .map(|(i, writer)| {
            let (writer, target, barrier) = (writer.clone(), target.clone(), barrier.clone());
            let socket = sockets.and_then(|s| s.get(i)).cloned();
            tokio::spawn(async move {
                barrier.wait().await;
                attempt(writer, socket, target, i).await
            })
        })
        .collect();
    let mut attempts = Vec::with_capacity(tasks.len());
    for task in tasks {
        attempts.push(task.await?);
    }
    Ok(attempts)
}

/// The writer calls `GET /me` on its own client, so that its connection is open for the attempt
/// that follows. Any answer does that, so none is checked (a light call: under load, reading a
/// 200-member group 200 times at once is itself refused).
async fn warm(writer: &Writer) {
    let _ = writer
        .api
        .call(Method::GET, "/me", &writer.token, None)
        .await;
}

/// One attempt, timed from its start to its answer; never retried.
async fn attempt(
    writer: Arc<Writer>,
    socket: Option<Arc<Socket>>,
    target: Target,
    index: usize,
) -> Attempt {
    let client_message_id = target.client_message_id(index);
    let id = &target.conversation;
    let start = Instant::now();
    let answer = match target.op {
        Op::HttpSend => {
            let body = json!({"body": format!("hot {client_message_id}"),
                              "clientMessageId": client_message_id});
            let path = format!("/conversations/{id}/messages");
            http_answer(
                writer
                    .api
                    .call(Method::POST, &path, &writer.token, Some(&body))
                    .await,
                target.timeout,
            )
        }
        Op::Reaction => {
            let path = format!(
                "/conversations/{id}/messages/{}/reactions/{THUMBS_UP}",
                target.seq
            );
            http_answer(
                writer
                    .api
                    .call(Method::PUT, &path, &writer.token, None)
                    .await,
                target.timeout,
            )
        }
        Op::WsSend => match socket {
            None => Answer::Refused("no socket".into()),
            Some(socket) => {
                let deadline = start + target.timeout;
                match ws_answer(&socket, id, &client_message_id, deadline).await {
                    Some(answer) => answer,
                    None => Answer::Refused(format!("no answer in {} s", target.timeout.as_secs())),
                }
            }
        },
    };
    let end = Instant::now();
    Attempt {
        writer: index,
        client_message_id,
        answer,
        start,
        end,
        ms: millis(start, end),
    }
}

fn http_answer(outcome: Result<(u16, Value), Error>, timeout: Duration) -> Answer {
    match outcome {
        Ok((status, _)) if (200..300).contains(&status) => Answer::Accepted,
        Ok((status, body)) => {
            let code = body["error"]["code"].as_str().unwrap_or("no error code");
            Answer::Refused(format!("{status} {code}"))
        }
        Err(error) => {
            let timed_out = error
                .downcast_ref::<reqwest::Error>()
                .is_some_and(reqwest::Error::is_timeout);
            if timed_out {
                Answer::Refused(format!("no answer in {} s", timeout.as_secs()))
            } else {
                Answer::Refused(format!("failed: {error}"))
            }
        }
    }
}

/// Sends the frame and waits for its `ack` or `error` on the same socket until `deadline`
/// (`None` when neither has come by then).
async fn ws_answer(
    socket: &Socket,
    conversation: &str,
    client_message_id: &str,
    deadline: Instant,
) -> Option<Answer> {
    let frame = json!({"action": "sendMessage", "conversationId": conversation,
                       "body": format!("hot {client_message_id}"),
                       "clientMessageId": client_message_id});
    if let Err(error) = socket.send(&frame).await {
        return Some(Answer::Refused(format!("failed: {error}")));
    }
    let answer = socket
        .first(deadline, |s| {
            matches!(s.kind, SeenKind::Ack | SeenKind::Refused)
                && s.client_message_id == client_message_id
        })
        .await;
    answer.map(|seen| match seen.kind {
        SeenKind::Ack => Answer::Accepted,
        _ => Answer::Refused(format!("error {}", seen.error)),
    })
}

/// The accepted sends of a `ws send` phase: who sent each, and its `clientMessageId`.
fn sends_of(attempts: &[Attempt]) -> Vec<(usize, String)> {
    attempts
        .iter()
        .filter(|a| a.accepted())
        .map(|a| (a.writer, a.client_message_id.clone()))
        .collect()
}

/// How the pushes of a `ws send` phase went.
#[derive(Debug, Default)]
struct Pushes {
    expected: usize,
    missing: usize,
    /// From the end of the sends to the last arrival, or to the deadline.
    waited: Duration,
}

/// Waits until every socket but the sender's has each send's `message.created`, or a deadline
/// that grows with the pushes expected.
async fn fan_out(sockets: &[Arc<Socket>], sends: &[(usize, String)]) -> Pushes {
    let from = Instant::now();
    let expected = sends.len() * sockets.len().saturating_sub(1);
    let each = u32::try_from(expected).unwrap_or(u32::MAX);
    let deadline = from + FAN_OUT_WAIT + FAN_OUT_WAIT_EACH.saturating_mul(each);
    let (mut missing, mut last) = (0, from);
    for (j, socket) in sockets.iter().enumerate() {
        for (sender, client_message_id) in sends {
            if *sender == j {
                continue;
            }
            let arrived = socket
                .first(deadline, |s| {
                    s.kind == SeenKind::Created && s.client_message_id == *client_message_id
                })
                .await;
            match arrived {
                Some(seen) => last = last.max(seen.at),
                None => missing += 1,
            }
        }
    }
    let end = if missing > 0 { Instant::now() } else { last };
    Pushes {
        expected,
        missing,
        waited: end.saturating_duration_since(from),
    }
}

async fn snapshot(api: &Api, token: &str, id: &str) -> Result<Snapshot, Error> {
    again(&format!("reading {id} back"), || read_back(api, token, id)).await
}

/// A call that sets up or reads back (not one that is measured), tried up to 4 times, after a
/// pause of 2, 4, then 6 s.
async fn again<T, F, Fut>(what: &str, call: F) -> Result<T, Error>
where
    F: Fn() -> Fut,
    Fut: Future<Output = Result<T, Error>>,
{
    let mut tries = 0;
    loop {
        match call().await {
            Ok(value) => return Ok(value),
            Err(error) if tries < 3 => {
                tries += 1;
                eprintln!("load-gen hot: {what} failed ({error}); again");
                tokio::time::sleep(Duration::from_secs(2 * tries)).await;
            }
            Err(error) => return Err(error),
        }
    }
}

/// The conversation, its messages and its changes from `rev` 0, as a reader finds them.
async fn read_back(api: &Api, token: &str, id: &str) -> Result<Snapshot, Error> {
    let conversation = api
        .ok(Method::GET, &format!("/conversations/{id}"), token, None)
        .await?;
    let last_seq = conversation["lastSeq"]
        .as_u64()
        .ok_or("a conversation without lastSeq")?;
    let rev = conversation["rev"]
        .as_u64()
        .ok_or("a conversation without rev")?;
    let mut messages: Vec<Value> = Vec::new();
    let mut path = format!("/conversations/{id}/messages?limit=100");
    loop {
        let page = api.ok(Method::GET, &path, token, None).await?;
        let items = page["items"].as_array().cloned().unwrap_or_default();
        let first = items.first().and_then(|m| m["seq"].as_u64());
        let earliest = messages.first().and_then(|m| m["seq"].as_u64());
        messages.splice(0..0, items);
        match first {
            Some(first) if page["hasMore"] == Value::Bool(true) => {
                if earliest.is_some_and(|earliest| first >= earliest) {
                    return Err(format!("{path} went forward (to {first})").into());
                }
                path = format!("/conversations/{id}/messages?limit=100&beforeSeq={first}");
            }
            _ => break,
        }
    }
    let (changes, changes_rev) = api.changes(id, token, 0).await?;
    Ok(Snapshot {
        last_seq,
        rev,
        messages,
        changes,
        changes_rev,
    })
}

fn seq_of(message: &Value) -> u64 {
    message["seq"].as_u64().unwrap_or_default()
}

fn rev_of(message: &Value) -> u64 {
    message["rev"].as_u64().unwrap_or_default()
}

fn is_void(message: &Value) -> bool {
    message["kind"] == "void"
}

/// A message in a finding: `seq 12 (rev 40)`, `seq 13 (void, rev 41)`.
fn described(message: &Value) -> String {
    let rev = message["rev"]
        .as_u64()
        .map_or("no rev".to_owned(), |r| format!("rev {r}"));
    let void = if is_void(message) { "void, " } else { "" };
    format!("seq {} ({void}{rev})", seq_of(message))
}

/// A short list: the first few, then how many more.
fn few<T: std::fmt::Display>(items: &[T]) -> String {
    let mut text = items
        .iter()
        .take(8)
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ");
    if items.len() > 8 {
        let _ = write!(text, " and {} more", items.len() - 8);
    }
    text
}

/// A finding that makes the history incomplete (the `seq gap-free` column).
fn seq_problem(check: &mut Check, problem: String) {
    check.seq_ok = false;
    check.problems.push(problem);
}

fn check(
    target: &Target,
    before: &Snapshot,
    after: &Snapshot,
    attempts: &[Attempt],
    names: &[String],
) -> Check {
    let mut check = Check {
        seq_ok: true,
        rev_ok: true,
        ..Check::default()
    };

    // seq: 1..=lastSeq, each once.
    let mut counts: BTreeMap<u64, usize> = BTreeMap::new();
    for message in &after.messages {
        *counts.entry(seq_of(message)).or_default() += 1;
    }
    let missing: Vec<u64> = (1..=after.last_seq)
        .filter(|s| !counts.contains_key(s))
        .collect();
    let twice: Vec<u64> = counts
        .iter()
        .filter(|&(_, &n)| n > 1)
        .map(|(&s, _)| s)
        .collect();
    let beyond: Vec<u64> = counts
        .keys()
        .copied()
        .filter(|&s| s == 0 || s > after.last_seq)
        .collect();
    if !missing.is_empty() {
        seq_problem(&mut check, format!("seq missing: {}", few(&missing)));
    }
    if !twice.is_empty() {
        seq_problem(&mut check, format!("seq listed twice: {}", few(&twice)));
    }
    if !beyond.is_empty() {
        seq_problem(
            &mut check,
            format!("seq outside 1..={}: {}", after.last_seq, few(&beyond)),
        );
    }
    let new: Vec<&Value> = after
        .messages
        .iter()
        .filter(|m| seq_of(m) > before.last_seq)
        .collect();
    check.voids = new.iter().filter(|m| is_void(m)).count();

    // The phase's own writes: every accepted one there once, nothing else new.
    match target.op {
        Op::HttpSend | Op::WsSend => {
            let mut explained = HashSet::new();
            let mut stored_twice = Vec::new();
            let mut lost = Vec::new();
            for a in attempts {
                let sender = names.get(a.writer).map_or("", String::as_str);
                let stored: Vec<u64> = after
                    .messages
                    .iter()
                    .filter(|m| {
                        m["senderId"] == sender && m["clientMessageId"] == *a.client_message_id
                    })
                    .map(seq_of)
                    .collect();
                explained.extend(stored.iter().copied());
                match (a.accepted(), stored.len()) {
                    (true, 1) | (false, 0) => {}
                    (true, 0) => lost.push(a.client_message_id.clone()),
                    (false, _) => check.stored_though_refused += stored.len(),
                    (true, _) => stored_twice.push(a.client_message_id.clone()),
                }
            }
            if !lost.is_empty() {
                seq_problem(
                    &mut check,
                    format!("accepted but not stored: {}", few(&lost)),
                );
            }
            if !stored_twice.is_empty() {
                seq_problem(
                    &mut check,
                    format!("stored more than once: {}", few(&stored_twice)),
                );
            }
            let unexplained: Vec<u64> = new
                .iter()
                .filter(|m| !is_void(m))
                .map(|m| seq_of(m))
                .filter(|s| !explained.contains(s))
                .collect();
            if !unexplained.is_empty() {
                seq_problem(
                    &mut check,
                    format!("new messages no attempt sent: seq {}", few(&unexplained)),
                );
            }
            // rev: the new messages took the revisions after the one before, none left out.
            let mut revs: Vec<u64> = new.iter().map(|m| rev_of(m)).collect();
            revs.sort_unstable();
            let expected: Vec<u64> = (before.rev + 1..=after.rev).collect();
            if revs != expected {
                let held: HashSet<u64> = revs.iter().copied().collect();
                let unheld: Vec<u64> = expected
                    .iter()
                    .copied()
                    .filter(|r| !held.contains(r))
                    .collect();
                let odd: Vec<String> = new
                    .iter()
                    .filter(|m| {
                        let rev = rev_of(m);
                        rev <= before.rev
                            || rev > after.rev
                            || revs.iter().filter(|&&r| r == rev).count() > 1
                    })
                    .map(|m| described(m))
                    .collect();
                check.rev_ok = false;
                check.problems.push(format!(
                    "rev moved by {} ({} to {}) for {} new messages; revs no new message holds: {}; \
                     new messages whose rev is outside that or held twice: {}",
                    after.rev.saturating_sub(before.rev),
                    before.rev,
                    after.rev,
                    new.len(),
                    if unheld.is_empty() { "none".to_owned() } else { few(&unheld) },
                    if odd.is_empty() { "none".to_owned() } else { few(&odd) },
                ));
            }
        }
        Op::Reaction => {
            let reacted = |snapshot: &Snapshot| -> Vec<String> {
                snapshot
                    .messages
                    .iter()
                    .find(|m| seq_of(m) == target.seq)
                    .and_then(|m| m["reactions"][THUMBS_UP_KEY].as_array())
                    .map(|users| {
                        users
                            .iter()
                            .filter_map(|u| u.as_str().map(str::to_owned))
                            .collect()
                    })
                    .unwrap_or_default()
            };
            let (was, is) = (reacted(before), reacted(after));
            let mut lost = Vec::new();
            for a in attempts {
                let user = names.get(a.writer).map_or("", String::as_str);
                let times = is.iter().filter(|u| *u == user).count();
                match (a.accepted(), times) {
                    (true, 1) | (false, 0) => {}
                    (true, 0) => lost.push(user.to_owned()),
                    (false, _) => check.stored_though_refused += 1,
                    (true, _) => seq_problem(&mut check, format!("{user} reacted {times} times")),
                }
            }
            if !lost.is_empty() {
                seq_problem(
                    &mut check,
                    format!("accepted reactions not on the message: {}", few(&lost)),
                );
            }
            if !new.is_empty() {
                seq_problem(
                    &mut check,
                    format!("{} new messages in a reaction phase", new.len()),
                );
            }
            // How rev moved: one revision per reaction added, the message holding the newest, when
            // a refused change takes no revision (so it is today). A design may spend revisions on
            // refused changes, or leave a message at the revision of its last-landed change
            // (docs/decisions/0007): told, not held against the run.
            let added = is.len().saturating_sub(was.len()) as u64;
            let message_rev = after
                .messages
                .iter()
                .find(|m| seq_of(m) == target.seq)
                .map_or(0, rev_of);
            if after.rev != before.rev + added || (added > 0 && message_rev != after.rev) {
                check.notes.push(format!(
                    "rev moved by {} ({} to {}) for {added} reactions added; the message holds rev {message_rev}",
                    after.rev.saturating_sub(before.rev),
                    before.rev,
                    after.rev
                ));
            }
        }
    }

    // rev: /changes from 0 ends at the conversation's rev, ascending, every message once, as
    // /messages has it.
    let revs: Vec<u64> = after.changes.iter().map(rev_of).collect();
    if after.changes_rev != after.rev {
        check.rev_ok = false;
        check.problems.push(format!(
            "/changes ends at rev {}, the conversation is at {}",
            after.changes_rev, after.rev
        ));
    }
    if revs.windows(2).any(|w| w[0] >= w[1]) {
        check.rev_ok = false;
        check
            .problems
            .push("/changes is not in strictly ascending rev".into());
    }
    if revs.last().is_some_and(|&newest| newest > after.rev) {
        check.rev_ok = false;
        check.problems.push(format!(
            "/changes holds rev {}, above the conversation's {}",
            revs.last().copied().unwrap_or_default(),
            after.rev
        ));
    }
    let ids = |messages: &[Value]| -> HashSet<String> {
        messages
            .iter()
            .map(|m| m["id"].as_str().unwrap_or_default().to_owned())
            .collect()
    };
    let (in_changes, in_messages) = (ids(&after.changes), ids(&after.messages));
    if in_changes != in_messages || after.changes.len() != after.messages.len() {
        let id = |m: &Value| m["id"].as_str().unwrap_or_default().to_owned();
        let only_messages: Vec<String> = after
            .messages
            .iter()
            .filter(|m| !in_changes.contains(&id(m)))
            .map(described)
            .collect();
        let only_changes: Vec<String> = after
            .changes
            .iter()
            .filter(|m| !in_messages.contains(&id(m)))
            .map(described)
            .collect();
        check.rev_ok = false;
        check.problems.push(format!(
            "/changes holds {} messages, /messages {}; not in /changes: {}; only in /changes: {}",
            after.changes.len(),
            after.messages.len(),
            if only_messages.is_empty() {
                "none".to_owned()
            } else {
                few(&only_messages)
            },
            if only_changes.is_empty() {
                "none".to_owned()
            } else {
                few(&only_changes)
            },
        ));
    }
    let by_id: HashMap<&str, &Value> = after
        .messages
        .iter()
        .map(|m| (m["id"].as_str().unwrap_or_default(), m))
        .collect();
    let differ: Vec<String> = after
        .changes
        .iter()
        .filter(|c| {
            by_id
                .get(c["id"].as_str().unwrap_or_default())
                .is_some_and(|m| *m != *c)
        })
        .map(described)
        .collect();
    if !differ.is_empty() {
        check.rev_ok = false;
        check.problems.push(format!(
            "/changes and /messages disagree on {}",
            few(&differ)
        ));
    }
    check
}

fn render(rows: &[Row]) -> String {
    let mut text = String::new();
    let _ = writeln!(
        text,
        "| phase | writers | accepted | refused | voids | seq gap-free | rev gap-free | p50 ms | p99 ms | p50 ÷ floor p50 | p99 ÷ floor p50 |"
    );
    let _ = writeln!(
        text,
        "|---|---:|---:|---:|---:|---|---|---:|---:|---:|---:|"
    );
    let yes = |ok: bool| if ok { "yes" } else { "**no**" };
    let mut floor_p50 = HashMap::new();
    for row in rows {
        let latency = row.latency();
        if row.floor {
            floor_p50.insert(row.writers, latency.p50);
        }
        let base = floor_p50.get(&row.writers).copied().unwrap_or_default();
        let ratio = |ms: f64| {
            if base > 0.0 && latency.count > 0 {
                format!("{:.2}", ms / base)
            } else {
                "-".to_owned()
            }
        };
        let refused = if row.refused() > 0 {
            format!("**{}**", row.refused())
        } else {
            "0".to_owned()
        };
        let _ = writeln!(
            text,
            "| {} | {} | {} | {refused} | {} | {} | {} | {:.1} | {:.1} | {} | {} |",
            row.label(),
            row.writers,
            row.accepted(),
            row.check.voids,
            yes(row.check.seq_ok),
            yes(row.check.rev_ok),
            latency.p50,
            latency.p99,
            ratio(latency.p50),
            ratio(latency.p99),
        );
    }
    let _ = writeln!(text);
    let _ = writeln!(
        text,
        "Each phase: the time from its first attempt's start to its last answer; the refusals by their answer; what else the checks found; what the gateway logged meanwhile (its failed requests by reason: a lost race and a DynamoDB time-out are both `503 unavailable` to the client)."
    );
    let _ = writeln!(text);
    for row in rows {
        let mut refusals: BTreeMap<&str, usize> = BTreeMap::new();
        for a in &row.attempts {
            if let Answer::Refused(why) = &a.answer {
                *refusals.entry(why.as_str()).or_default() += 1;
            }
        }
        let mut notes = vec![format!("{:.1} s", row.took.as_secs_f64())];
        if !refusals.is_empty() {
            let by: Vec<String> = refusals
                .iter()
                .map(|(why, n)| format!("{n} × {why}"))
                .collect();
            notes.push(format!("refused: {}", by.join(", ")));
        }
        if row.check.stored_though_refused > 0 {
            notes.push(format!(
                "{} stored although refused",
                row.check.stored_though_refused
            ));
        }
        if row.op == Op::WsSend {
            let p = &row.pushes;
            notes.push(format!(
                "{} of the {} pushes to the other sockets arrived ({} missing after {:.1} s)",
                p.expected - p.missing,
                p.expected,
                p.missing,
                p.waited.as_secs_f64()
            ));
        }
        if row.settled >= SETTLE_READS {
            let outcome = if row.check.seq_ok && row.check.rev_ok {
                "read back without a gap"
            } else {
                "still a gap"
            };
            notes.push(format!(
                "{outcome} {:.1} s after the phase's end",
                row.settled.as_secs_f64()
            ));
        }
        notes.extend(row.check.problems.iter().cloned());
        notes.extend(row.check.notes.iter().cloned());
        if !row.server.is_empty() {
            let logged: Vec<String> = row
                .server
                .iter()
                .map(|(what, n)| format!("{n} × {what}"))
                .collect();
            notes.push(format!("gateway: {}", logged.join(", ")));
        }
        let _ = writeln!(
            text,
            "- {}, {} writers: {}",
            row.label(),
            row.writers,
            notes.join("; ")
        );
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(seq: u64, rev: u64, sender: &str, client_message_id: &str) -> Value {
        json!({"id": format!("m{seq}"), "seq": seq, "rev": rev, "senderId": sender,
               "clientMessageId": client_message_id, "reactions": {}})
    }

    fn snapshot(messages: Vec<Value>) -> Snapshot {
        let last_seq = messages.iter().map(seq_of).max().unwrap_or_default();
        let rev = messages.iter().map(rev_of).max().unwrap_or_default();
        let mut changes = messages.clone();
        changes.sort_by_key(rev_of);
        Snapshot {
            last_seq,
            rev,
            messages,
            changes,
            changes_rev: rev,
        }
    }

    fn attempt(writer: usize, client_message_id: &str, accepted: bool) -> Attempt {
        let now = Instant::now();
        Attempt {
            writer,
            client_message_id: client_message_id.to_owned(),
            answer: if accepted {
                Answer::Accepted
            } else {
                Answer::Refused("503 unavailable".into())
            },
            start: now,
            end: now,
            ms: 1.0,
        }
    }

    fn target(op: Op, seq: u64) -> Target {
        Target {
            op,
            conversation: "c".into(),
            floor: false,
            seq,
            timeout: Duration::from_secs(1),
        }
    }

    fn names() -> Vec<String> {
        vec!["a".into(), "b".into(), "c".into()]
    }

    #[test]
    fn a_clean_burst_of_sends_passes() {
        let before = snapshot(vec![message(1, 1, "a", "seed")]);
        let after = snapshot(vec![
            message(1, 1, "a", "seed"),
            message(2, 2, "b", "ch1"),
            message(3, 3, "a", "ch0"),
        ]);
        let attempts = [attempt(0, "ch0", true), attempt(1, "ch1", true)];
        let check = check(
            &target(Op::HttpSend, 0),
            &before,
            &after,
            &attempts,
            &names(),
        );
        assert!(check.seq_ok && check.rev_ok, "{:?}", check.problems);
        assert_eq!((check.voids, check.stored_though_refused), (0, 0));
    }

    #[test]
    fn a_missing_seq_a_lost_send_and_a_skipped_rev_are_found() {
        let before = snapshot(Vec::new());
        // seq 2 missing, though lastSeq is 3; the accepted ch1 is not stored.
        let mut after = snapshot(vec![message(1, 1, "a", "ch0"), message(3, 3, "c", "ch2")]);
        after.last_seq = 3;
        let attempts = [
            attempt(0, "ch0", true),
            attempt(1, "ch1", true),
            attempt(2, "ch2", true),
        ];
        let check = check(
            &target(Op::HttpSend, 0),
            &before,
            &after,
            &attempts,
            &names(),
        );
        assert!(!check.seq_ok);
        assert!(!check.rev_ok, "rev 2 is held by no message");
        assert!(check.problems.iter().any(|p| p.contains("seq missing: 2")));
        assert!(check.problems.iter().any(|p| p.contains("not stored: ch1")));
    }

    #[test]
    fn voids_fill_seqs_and_a_refused_send_that_was_stored_is_counted() {
        let before = snapshot(Vec::new());
        let mut void = message(2, 2, "", "");
        void["kind"] = json!("void");
        let after = snapshot(vec![
            message(1, 1, "a", "ch0"),
            void,
            message(3, 3, "b", "ch1"),
        ]);
        let attempts = [
            attempt(0, "ch0", true),
            attempt(1, "ch1", false),
            attempt(2, "ch2", false),
        ];
        let check = check(
            &target(Op::HttpSend, 0),
            &before,
            &after,
            &attempts,
            &names(),
        );
        assert!(check.seq_ok && check.rev_ok, "{:?}", check.problems);
        assert_eq!((check.voids, check.stored_though_refused), (1, 1));
    }

    #[test]
    fn a_message_missing_from_changes_is_a_rev_gap() {
        let before = snapshot(Vec::new());
        let mut after = snapshot(vec![message(1, 1, "a", "ch0"), message(2, 2, "b", "ch1")]);
        after.changes.pop();
        let attempts = [attempt(0, "ch0", true), attempt(1, "ch1", true)];
        let check = check(
            &target(Op::HttpSend, 0),
            &before,
            &after,
            &attempts,
            &names(),
        );
        assert!(check.seq_ok && !check.rev_ok);
        assert!(
            check
                .problems
                .iter()
                .any(|p| p.contains("not in /changes: seq 2 (rev 2)"))
        );
    }

    #[test]
    fn changes_short_of_the_conversation_or_unlike_the_history_is_a_rev_gap() {
        let before = snapshot(Vec::new());
        let after = snapshot(vec![message(1, 1, "a", "ch0")]);
        let attempts = [attempt(0, "ch0", true)];
        let mut short = snapshot(vec![message(1, 1, "a", "ch0")]);
        short.changes_rev = 0;
        let check = check(
            &target(Op::HttpSend, 0),
            &before,
            &short,
            &attempts,
            &names(),
        );
        assert!(check.seq_ok && !check.rev_ok);
        let mut unlike = after;
        unlike.changes[0]["reactions"] = json!({THUMBS_UP_KEY: ["b"]});
        let check = super::check(
            &target(Op::HttpSend, 0),
            &before,
            &unlike,
            &attempts,
            &names(),
        );
        assert!(check.seq_ok && !check.rev_ok);
        assert!(
            check
                .problems
                .iter()
                .any(|p| p.contains("disagree on seq 1"))
        );
    }

    #[test]
    fn reactions_take_one_rev_each_and_the_message_holds_the_last() {
        let mut seed = message(1, 1, "a", "seed");
        let before = snapshot(vec![seed.clone()]);
        seed["reactions"] = json!({THUMBS_UP_KEY: ["a", "b"]});
        seed["rev"] = json!(3);
        let after = snapshot(vec![seed.clone()]);
        let attempts = [attempt(0, "cr0", true), attempt(1, "cr1", true)];
        let check = check(
            &target(Op::Reaction, 1),
            &before,
            &after,
            &attempts,
            &names(),
        );
        assert!(check.seq_ok && check.rev_ok, "{:?}", check.problems);

        // The conversation's rev moved past the message (revisions spent on refused changes, or
        // a message at its last-landed change's rev): told, no gap while /changes reaches it.
        let mut moved_on = snapshot(vec![seed]);
        moved_on.rev = 5;
        moved_on.changes_rev = 5;
        let check = super::check(
            &target(Op::Reaction, 1),
            &before,
            &moved_on,
            &attempts,
            &names(),
        );
        assert!(check.seq_ok && check.rev_ok, "{:?}", check.problems);
        assert_eq!(check.notes.len(), 1);

        // An accepted reaction that is not on the message.
        let attempts = [attempt(0, "cr0", true), attempt(2, "cr2", true)];
        let check = super::check(
            &target(Op::Reaction, 1),
            &before,
            &after,
            &attempts,
            &names(),
        );
        assert!(!check.seq_ok);
    }

    #[test]
    fn the_gateway_log_is_read_from_the_offset_by_reason() {
        let path = std::env::temp_dir().join(format!("hot-log-{}", std::process::id()));
        let early =
            "ERROR request failed code=\"unavailable\" error=x: lost the race too often; retry\n";
        let text = format!(
            "{early}{}{}{}{}",
            "ERROR request failed code=\"unavailable\" error=the service is unavailable, retry later: lost the race too often; retry\n",
            "ERROR request failed code=\"unavailable\" error=the service is unavailable, retry later: DynamoDB UpdateItem did not answer in time or refused the load: request has timed out\n",
            " WARN redis command failed: local limits, no cache error=timed out\n",
            " INFO published records=4 events=0 failed_from=None\n",
        );
        std::fs::write(&path, text).unwrap();
        let reasons = server_side(&path, early.len() as u64);
        std::fs::remove_file(&path).unwrap();
        let reasons: Vec<(&str, usize)> = reasons.iter().map(|(k, &v)| (k.as_str(), v)).collect();
        assert_eq!(
            reasons,
            [
                ("Redis call failed (limits held locally, no cache)", 1),
                ("failed request: DynamoDB UpdateItem timed out", 1),
                ("failed request: lost the race too often", 1),
            ]
        );
    }
}
