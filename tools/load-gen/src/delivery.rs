//! The load and delivery run: users with two sockets each, in direct conversations and groups of
//! 2 to 50, send at a fixed rate for a fixed time over WebSocket (`sendMessage`). Every socket's
//! log is then held against what the server stored: raw push misses, duplicates and reorders are
//! counted, and each socket's timeline, rebuilt as a client does (`rev` order, gaps filled from
//! `/changes`), must equal the server's.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::{Value, json};

use crate::api::{Api, Error, Percentiles, Rng, SeenKind, Socket, bounded, millis, run_id};

#[derive(Debug, Clone)]
pub struct Options {
    pub base: String,
    pub users: usize,
    pub sockets: usize,
    /// Group sizes; the users not in a group after them still have their direct conversation.
    pub groups: Vec<usize>,
    /// Sends per second, all users together.
    pub rate: f64,
    pub duration: Duration,
    /// How long to wait after the last send for pushes still in flight.
    pub grace: Duration,
    pub seed: u64,
    pub out: std::path::PathBuf,
}

struct User {
    token: String,
    sockets: Vec<Socket>,
    conversations: Vec<usize>,
}

struct Conversation {
    id: String,
    members: Vec<usize>,
    kind: &'static str,
    start_rev: u64,
}

struct Sent {
    user: usize,
    socket: usize,
    conversation: usize,
    client_message_id: String,
    at: Instant,
}

/// What the server stored, by conversation: `seq` → (message id, rev, clientMessageId).
type Timeline = BTreeMap<u64, (String, u64, String)>;

#[derive(Debug, Default)]
pub struct Report {
    pub text: String,
    /// Messages a socket's timeline never had, even after `rev` ordering and `/changes`.
    pub lost: usize,
    /// Pushes that never came, and came more than once, before any repair.
    pub misses: usize,
    pub duplicates: usize,
    /// Sends the API refused (429, 503 …).
    pub refused: usize,
}

impl Report {
    /// Whether the run passes: nothing lost, and unless `lenient` (a stress run, which is meant
    /// to overload the stack), every push delivered exactly once and no send refused. Reorders
    /// are allowed: clients order by `rev`.
    pub fn passes(&self, lenient: bool) -> bool {
        self.lost == 0
            && (lenient || (self.misses == 0 && self.duplicates == 0 && self.refused == 0))
    }
}

pub async fn run(o: &Options) -> Result<Report, Error> {
    let api = Api::new(&o.base)?;
    let run = run_id();
    let names: Vec<String> = (0..o.users).map(|i| format!("ld{run}u{i:03}")).collect();
    let tokens = bounded(names.clone(), 16, |name| {
        let api = api.clone();
        async move {
            let token = api.token(&name).await?;
            api.ok(Method::GET, "/me", &token, None).await?;
            Ok(token)
        }
    })
    .await?;
    let mut users: Vec<User> = tokens
        .into_iter()
        .map(|token| User {
            token,
            sockets: Vec::new(),
            conversations: Vec::new(),
        })
        .collect();

    // Groups over consecutive users, then one direct conversation per pair (i, i + n/2).
    let mut plans: Vec<(Vec<usize>, &'static str)> = Vec::new();
    let mut next = 0;
    for &size in &o.groups {
        plans.push(((0..size).map(|j| (next + j) % o.users).collect(), "group"));
        next += size;
    }
    for i in 0..o.users / 2 {
        plans.push((vec![i, i + o.users / 2], "direct"));
    }
    let created = bounded(plans, 8, |(members, kind)| {
        let api = api.clone();
        let creator = users[members[0]].token.clone();
        let others: Vec<&String> = members[1..].iter().map(|&m| &names[m]).collect();
        let body = json!({"participantIds": others, "kind": kind, "title": "load"});
        let body = if kind == "direct" {
            json!({"participantIds": others})
        } else {
            body
        };
        async move {
            let conversation = api
                .ok(Method::POST, "/conversations", &creator, Some(&body))
                .await?;
            let id = conversation["id"].as_str().ok_or("no id")?.to_owned();
            let start_rev = conversation["rev"].as_u64().unwrap_or_default();
            Ok(Conversation {
                id,
                members,
                kind,
                start_rev,
            })
        }
    })
    .await?;
    let conversations = created;
    for (c, conversation) in conversations.iter().enumerate() {
        for &m in &conversation.members {
            users[m].conversations.push(c);
        }
    }

    let api_ref = &api;
    let urls: Vec<(usize, String)> = users
        .iter()
        .enumerate()
        .flat_map(|(u, user)| (0..o.sockets).map(move |_| (u, api_ref.websocket_url(&user.token))))
        .collect();
    let sockets = bounded(urls, 16, |(u, url)| async move {
        Ok((u, Socket::connect(&url).await?))
    })
    .await?;
    for (u, socket) in sockets {
        users[u].sockets.push(socket);
    }
    tokio::time::sleep(Duration::from_millis(500)).await;

    // The fixed-rate send loop: send k is due at k / rate; a late one goes at once.
    let total = (o.rate * o.duration.as_secs_f64()).round() as usize;
    let mut rng = Rng::new(o.seed);
    let mut sent: Vec<Sent> = Vec::with_capacity(total);
    let mut behind = Duration::ZERO;
    let start = Instant::now();
    for k in 0..total {
        let due = start + Duration::from_secs_f64(k as f64 / o.rate);
        tokio::time::sleep_until(due.into()).await;
        let user = rng.below(users.len());
        let mine = &users[user].conversations;
        if mine.is_empty() {
            continue;
        }
        let conversation = mine[rng.below(mine.len())];
        let socket = k % o.sockets;
        let client_message_id = format!("m{k}");
        let frame = json!({
            "action": "sendMessage",
            "conversationId": conversations[conversation].id,
            "body": format!("load {run} message {k}"),
            "clientMessageId": client_message_id,
        });
        let at = Instant::now();
        behind = behind.max(at.saturating_duration_since(due));
        users[user].sockets[socket].send(&frame).await?;
        sent.push(Sent {
            user,
            socket,
            conversation,
            client_message_id,
            at,
        });
    }
    let sending = start.elapsed();

    // Wait for the pushes still in flight: until every expected one is in, or the grace ends.
    let expected: usize = sent
        .iter()
        .map(|s| conversations[s.conversation].members.len() * o.sockets - 1)
        .sum();
    let deadline = Instant::now() + o.grace;
    while Instant::now() < deadline {
        let arrived: usize = users
            .iter()
            .flat_map(|u| &u.sockets)
            .map(|s| s.count(SeenKind::Created))
            .sum();
        if arrived >= expected {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // What the server stored, read as a member.
    let mut server: Vec<Timeline> = Vec::new();
    for conversation in &conversations {
        let reader = &users[conversation.members[0]].token;
        let (items, _) = api
            .changes(&conversation.id, reader, conversation.start_rev)
            .await?;
        server.push(
            items
                .iter()
                .map(|m| {
                    let text = |v: &Value| v.as_str().unwrap_or_default().to_owned();
                    (
                        m["seq"].as_u64().unwrap_or_default(),
                        (
                            text(&m["id"]),
                            m["rev"].as_u64().unwrap_or_default(),
                            text(&m["clientMessageId"]),
                        ),
                    )
                })
                .collect(),
        );
    }
    let sends_by_id: HashMap<&str, &Sent> = sent
        .iter()
        .map(|s| (s.client_message_id.as_str(), s))
        .collect();

    // Acks and refusals, from each sending socket's log.
    let mut ack_ms = Vec::new();
    let mut refused: BTreeMap<String, usize> = BTreeMap::new();
    let mut plot = String::from("kind,t_s,latency_ms\n");
    for (u, user) in users.iter().enumerate() {
        for (s, socket) in user.sockets.iter().enumerate() {
            for seen in socket.seen() {
                let Some(send) = sends_by_id.get(seen.client_message_id.as_str()) else {
                    continue;
                };
                if send.user != u || send.socket != s {
                    continue;
                }
                match seen.kind {
                    SeenKind::Ack => {
                        let ms = millis(send.at, seen.at);
                        ack_ms.push(ms);
                        let _ =
                            writeln!(plot, "ack,{:.3},{ms:.2}", (send.at - start).as_secs_f64());
                    }
                    SeenKind::Refused => *refused.entry("refused".into()).or_default() += 1,
                    SeenKind::Created | SeenKind::Pong => {}
                }
            }
        }
    }

    // Every socket against the server: raw pushes, then the client's rebuilt timeline.
    let (mut misses, mut duplicates, mut reorders, mut stray) = (0, 0, 0, 0);
    let (mut gap_fills, mut filled, mut lost, mut timelines) = (0, 0, 0, 0);
    let mut delivery_ms = Vec::new();
    // The same, by the conversation's member count: a big group's deliveries apart.
    let mut delivery_by_size: BTreeMap<usize, Vec<f64>> = BTreeMap::new();
    let (mut first_push, mut last_push): (Option<Instant>, Option<Instant>) = (None, None);
    let mut pushes = 0usize;
    for (u, user) in users.iter().enumerate() {
        for (s, socket) in user.sockets.iter().enumerate() {
            let seen = socket.seen();
            for &c in &user.conversations {
                let conversation = &conversations[c];
                let stored = &server[c];
                let mine = |cmid: &str| {
                    sends_by_id
                        .get(cmid)
                        .is_some_and(|send| send.user == u && send.socket == s)
                };
                let events: Vec<_> = seen
                    .iter()
                    .filter(|e| e.conversation == conversation.id)
                    .filter(|e| {
                        e.kind == SeenKind::Created
                            || (e.kind == SeenKind::Ack && mine(&e.client_message_id))
                    })
                    .collect();
                // Raw pushes.
                let mut count: HashMap<u64, usize> = HashMap::new();
                let mut highest = 0;
                for e in events.iter().filter(|e| e.kind == SeenKind::Created) {
                    pushes += 1;
                    first_push = Some(first_push.map_or(e.at, |t| t.min(e.at)));
                    last_push = Some(last_push.map_or(e.at, |t| t.max(e.at)));
                    *count.entry(e.seq).or_default() += 1;
                    if e.rev < highest {
                        reorders += 1;
                    }
                    highest = highest.max(e.rev);
                    if mine(&e.client_message_id) {
                        stray += 1;
                    }
                }
                for (seq, (_, _, cmid)) in stored {
                    if mine(cmid) {
                        continue;
                    }
                    match count.get(seq).copied().unwrap_or(0) {
                        0 => misses += 1,
                        n => duplicates += n - 1,
                    }
                    let arrival = events
                        .iter()
                        .find(|e| e.kind == SeenKind::Created && e.seq == *seq)
                        .map(|e| e.at);
                    if let (Some(at), Some(send)) = (arrival, sends_by_id.get(cmid.as_str())) {
                        let ms = millis(send.at, at);
                        delivery_ms.push(ms);
                        delivery_by_size
                            .entry(conversation.members.len())
                            .or_default()
                            .push(ms);
                        let _ = writeln!(
                            plot,
                            "delivery,{:.3},{ms:.2}",
                            (send.at - start).as_secs_f64()
                        );
                    }
                }
                // The client: apply in rev order from where it started, buffer what is ahead,
                // fill what is still missing from /changes.
                let mut applied = conversation.start_rev;
                let mut ahead: BTreeMap<u64, (u64, String)> = BTreeMap::new();
                let mut timeline: BTreeMap<u64, String> = BTreeMap::new();
                for e in &events {
                    if e.rev > applied {
                        ahead.insert(e.rev, (e.seq, e.message_id.clone()));
                    }
                    while let Some((seq, id)) = ahead.remove(&(applied + 1)) {
                        timeline.insert(seq, id);
                        applied += 1;
                    }
                }
                let server_rev = stored.values().map(|v| v.1).max().unwrap_or(applied);
                if applied < server_rev {
                    gap_fills += 1;
                    let (items, _) = api.changes(&conversation.id, &user.token, applied).await?;
                    for m in items {
                        filled += 1;
                        timeline.insert(
                            m["seq"].as_u64().unwrap_or_default(),
                            m["id"].as_str().unwrap_or_default().to_owned(),
                        );
                    }
                }
                timelines += 1;
                for (seq, (id, _, _)) in stored {
                    if timeline.get(seq) != Some(id) {
                        lost += 1;
                    }
                }
            }
        }
    }

    let stored_total: usize = server.iter().map(BTreeMap::len).sum();
    // Every other socket of the conversation, for each message stored (a refused send has none).
    let expected_stored: usize = server
        .iter()
        .zip(&conversations)
        .map(|(stored, c)| stored.len() * (c.members.len() * o.sockets - 1))
        .sum();
    let acks = Percentiles::of(ack_ms);
    let deliveries = Percentiles::of(delivery_ms);
    let push_span = match (first_push, last_push) {
        (Some(a), Some(b)) => (b - a).as_secs_f64(),
        _ => 0.0,
    };
    std::fs::create_dir_all(&o.out)?;
    std::fs::write(o.out.join("latency.csv"), plot)?;

    let groups: Vec<String> = conversations
        .iter()
        .filter(|c| c.kind == "group")
        .map(|c| c.members.len().to_string())
        .collect();
    let directs = conversations.iter().filter(|c| c.kind == "direct").count();
    let row = |name: &str, p: &Percentiles| {
        format!(
            "| {name} | {} | {:.1} | {:.1} | {:.1} | {:.1} |\n",
            p.count, p.p50, p.p95, p.p99, p.max
        )
    };
    let mut text = String::new();
    let _ = writeln!(
        text,
        "{} users × {} sockets ({} sockets), {} groups of {} members and {directs} direct \
         conversations; {} sends/s for {:.0} s ({} sends, {:.1} s to send them, at most {:.0} ms \
         behind schedule), seed {}.\n",
        o.users,
        o.sockets,
        o.users * o.sockets,
        groups.len(),
        groups.join(", "),
        o.rate,
        o.duration.as_secs_f64(),
        sent.len(),
        sending.as_secs_f64(),
        behind.as_secs_f64() * 1000.0,
        o.seed
    );
    text.push_str(
        "| latency (ms) | count | p50 | p95 | p99 | max |\n|---|---:|---:|---:|---:|---:|\n",
    );
    text.push_str(&row("send → ack (sender's socket)", &acks));
    text.push_str(&row("send → delivery (every other socket)", &deliveries));
    if delivery_by_size.len() > 1 {
        for (size, ms) in delivery_by_size {
            let name = format!("send → delivery, conversations of {size} members");
            text.push_str(&row(&name, &Percentiles::of(ms)));
        }
    }
    let _ = writeln!(
        text,
        "\n| delivery | count |\n|---|---:|\n\
         | messages sent / stored / refused | {} / {stored_total} / {} |\n\
         | pushes expected (for the messages stored) / received | {expected_stored} / {pushes} |\n\
         | deliveries per second (first to last push, {push_span:.1} s) | {:.0} |\n\
         | raw push misses | {misses} |\n\
         | raw duplicates | {duplicates} |\n\
         | raw reorders (a lower `rev` after a higher one) | {reorders} |\n\
         | pushes of a socket's own send (should be the ack only) | {stray} |\n\
         | timelines checked (socket × conversation) | {timelines} |\n\
         | timelines that needed `/changes` / messages it filled | {gap_fills} / {filled} |\n\
         | **lost after `rev` ordering and `/changes`** | **{lost}** |",
        sent.len(),
        refused.values().sum::<usize>(),
        if push_span > 0.0 {
            pushes as f64 / push_span
        } else {
            0.0
        }
    );
    for user in users {
        for socket in user.sockets {
            socket.close().await;
        }
    }
    let refused = refused.values().sum::<usize>();
    Ok(Report {
        text,
        lost,
        misses,
        duplicates,
        refused,
    })
}
