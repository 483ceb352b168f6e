//! `stream-analytics`: the event stream counted into daily aggregates, each event exactly once
//! whether batches come again, come concurrently or fail half-way, and nothing lost or counted
//! twice while Kinesis is frozen.

use chat_functions::stream_analytics;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::time::{Duration, Instant};

use aws_lambda_events::event::kinesis::{KinesisEvent, KinesisEventRecord};
use chat_shared::adapters::store::keys;
use chat_shared::adapters::store::{Consistency, DynamoStore};
use chat_shared::domain::ConversationId;
use chat_shared::services::analytics::{self, Day, DayReport, shard_of};
use reqwest::Method;
use serde_json::{Value, json};

use crate::support::{self, LocalApi, OwnKinesis, Pipeline, join_all};

/// A CloudEvent as `stream-publisher` writes it.
fn cloud_event(id: &str, kind: &str, time: &str, data: Value) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "specversion": "1.0", "id": id, "source": "chat", "type": kind, "time": time,
        "subject": data["conversationId"], "datacontenttype": "application/json", "data": data,
    }))
    .unwrap()
}

/// When the events of this test happened: the application clock's now, taken once, so every
/// event of the test falls on one day whatever the date and the clock offset.
fn time() -> String {
    static AT: std::sync::OnceLock<chat_shared::platform::time::Timestamp> =
        std::sync::OnceLock::new();
    AT.get_or_init(|| support::clock().now()).to_string()
}

/// `stream-analytics`'s deps on `store`, with the template's retention (24 hours).
fn counter(store: &DynamoStore) -> stream_analytics::Deps {
    stream_analytics::Deps {
        store: store.clone(),
        window: analytics::DedupeWindow::for_retention_hours(24),
    }
}

fn created(id: &str, conversation: &str) -> Vec<u8> {
    cloud_event(
        id,
        "chat.conversation.created",
        &time(),
        json!({"conversationId": conversation, "kind": "group", "createdBy": "ada", "memberCount": 2}),
    )
}

fn message(id: &str, conversation: &str, sender: &str) -> Vec<u8> {
    cloud_event(
        id,
        "chat.message.created",
        &time(),
        json!({"conversationId": conversation, "senderId": sender, "seq": 1, "length": 5}),
    )
}

/// A Kinesis batch of these records, sequence numbers 1000, 1001 … (same length, so string and
/// number order agree).
fn batch(records: &[Vec<u8>]) -> KinesisEvent {
    let mut event = KinesisEvent::default();
    event.records = records
        .iter()
        .enumerate()
        .map(|(i, data)| {
            let mut record = KinesisEventRecord::default();
            record.kinesis.sequence_number = (1000 + i).to_string();
            record.kinesis.partition_key = "p".to_owned();
            record.kinesis.data.extend_from_slice(data);
            record
        })
        .collect();
    event
}

fn day() -> Day {
    Day::of(chat_shared::platform::time::Timestamp::parse(&time()).unwrap())
}

async fn counted(store: &DynamoStore, event_id: &str) -> bool {
    store
        .get::<Value>(&keys::stats_event(event_id), Consistency::Strong)
        .await
        .unwrap()
        .is_some()
}

/// Messages per conversation of a report.
fn per_conversation(report: &DayReport) -> BTreeMap<String, u64> {
    report
        .conversations
        .iter()
        .map(|c| (c.conversation_id.clone(), c.messages))
        .collect()
}

/// Three conversations, 30 messages by four senders (one sender in every conversation, so in
/// several shards), events that do not count, and duplicates inside the batch.
fn mixed_batch() -> (Vec<Vec<u8>>, Vec<String>) {
    let conversations: Vec<String> = (0..3)
        .map(|_| ConversationId::generate().to_string())
        .collect();
    let mut records = Vec::new();
    for (i, c) in conversations.iter().enumerate() {
        records.push(created(&format!("created-{i}"), c));
    }
    let senders = ["ada", "bob", "auth0|cy#1", "dee"];
    for n in 0..30 {
        let c = &conversations[n % 3];
        records.push(message(&format!("message-{n}"), c, senders[n % 4]));
        if n % 7 == 0 {
            records.push(cloud_event(
                &format!("reaction-{n}"),
                "chat.reaction.added",
                &time(),
                json!({"conversationId": c, "userId": "bob", "emoji": "👍"}),
            ));
            // The publisher wrote this one again after a partial failure.
            records.push(message(&format!("message-{n}"), c, senders[n % 4]));
        }
    }
    (records, conversations)
}

fn assert_mixed_counts(report: &DayReport, conversations: &[String]) {
    assert_eq!(
        (
            report.messages,
            report.active_senders,
            report.new_conversations
        ),
        (30, 4, 3),
        "{report:?}"
    );
    let expected: BTreeMap<String, u64> = conversations.iter().map(|c| (c.clone(), 10)).collect();
    assert_eq!(per_conversation(report), expected);
    assert!(report.conversations.iter().all(|c| c.created));
}

#[tokio::test]
async fn a_batch_delivered_again_and_concurrently_counts_each_event_once() {
    let store = support::fresh_store().await;
    let (records, conversations) = mixed_batch();
    let event = batch(&records);
    // Three deliveries of the same batch at once race for every counter and marker.
    let deps = counter(&store);
    let answers =
        join_all((0..3).map(|_| stream_analytics::count_batch(&deps, &event, None))).await;
    for answer in answers {
        assert!(answer.batch_item_failures.is_empty(), "{answer:?}");
    }
    assert_mixed_counts(
        &analytics::report(&store, day()).await.unwrap(),
        &conversations,
    );
    // And once more later, as Lambda does after a timeout.
    let answer = stream_analytics::count_batch(&counter(&store), &event, None).await;
    assert!(answer.batch_item_failures.is_empty());
    assert_mixed_counts(
        &analytics::report(&store, day()).await.unwrap(),
        &conversations,
    );
    let totals = analytics::totals(&store, day()).await.unwrap();
    assert_eq!(
        (
            totals.messages,
            totals.active_senders,
            totals.new_conversations
        ),
        (30, 4, 3)
    );
    // Another day is untouched.
    let yesterday = Day::of(
        chat_shared::platform::time::Timestamp::parse(&time())
            .unwrap()
            .plus_seconds(-86_400),
    );
    let other = analytics::report(&store, yesterday).await.unwrap();
    assert_eq!((other.messages, other.conversations.len()), (0, 0));
}

/// Events of a day long past (a replay of old records): dedupe items and markers live the window
/// from when they are written, not from the event's day, so a delivery again within the window
/// counts nothing, and a later message of the same sender on that day is not a new active
/// sender. Past the window (out of scope: Kinesis no longer holds the record) it counts again.
#[tokio::test]
async fn items_live_the_window_from_when_they_are_written_whatever_the_events_day() {
    let store = support::fresh_store().await;
    let long_ago = support::clock().now().plus_seconds(-400 * 86_400);
    let c = ConversationId::generate().to_string();
    let message_then = |id: &str| {
        cloud_event(
            id,
            "chat.message.created",
            &long_ago.to_string(),
            json!({"conversationId": c, "senderId": "ada", "seq": 1, "length": 5}),
        )
    };
    let now = counter(&store);
    let first = stream_analytics::count_batch(&now, &batch(&[message_then("old-1")]), None).await;
    assert!(first.batch_item_failures.is_empty(), "{first:?}");
    let at = |seconds: i64| stream_analytics::Deps {
        store: store.at_clock(support::clock().later_by(seconds)),
        window: now.window,
    };
    // A day before the window closes: the same event again, and another by the same sender.
    let within = at(now.window.seconds() - 86_400);
    let answer = stream_analytics::count_batch(
        &within,
        &batch(&[message_then("old-1"), message_then("old-2")]),
        None,
    )
    .await;
    assert!(answer.batch_item_failures.is_empty(), "{answer:?}");
    let day = Day::of(long_ago);
    let totals = analytics::totals(&store, day).await.unwrap();
    assert_eq!((totals.messages, totals.active_senders), (2, 1));
    // Past the window, the first delivery's dedupe item and marker have expired.
    let past = at(now.window.seconds() + 60);
    stream_analytics::count_batch(&past, &batch(&[message_then("old-1")]), None).await;
    let totals = analytics::totals(&store, day).await.unwrap();
    assert_eq!((totals.messages, totals.active_senders), (3, 2));
}

#[tokio::test]
async fn unreadable_records_are_skipped_and_the_rest_of_the_batch_is_counted() {
    let store = support::fresh_store().await;
    let c = ConversationId::generate().to_string();
    let records = vec![
        b"not json at all".to_vec(),
        message("m-1", &c, "ada"),
        cloud_event(
            "m-2",
            "chat.message.created",
            &time(),
            json!({"conversationId": c}),
        ),
        message("m-3", &c, "bob"),
    ];
    let answer = stream_analytics::count_batch(&counter(&store), &batch(&records), None).await;
    assert!(answer.batch_item_failures.is_empty(), "{answer:?}");
    let report = analytics::report(&store, day()).await.unwrap();
    assert_eq!((report.messages, report.active_senders), (2, 2));
    assert!(!counted(&store, "m-2").await);
}

/// Makes every count of `conversation`'s messages on the day fail: its aggregate item holds a
/// string where the counter is, so the transaction's `ADD` is refused by DynamoDB itself.
async fn poison(store: &DynamoStore, conversation: &str) -> chat_shared::adapters::store::Key {
    let id: ConversationId = conversation.parse().unwrap();
    let key = keys::stats_conversation(&day().to_string(), shard_of(conversation), &id);
    store
        .put(
            &json!({"PK": key.pk, "SK": key.sk, "messages": "not a number"}),
            None,
        )
        .await
        .unwrap();
    key
}

#[tokio::test]
async fn a_failed_write_is_reported_and_the_retry_from_it_completes_the_counts_exactly() {
    let store = support::fresh_store().await;
    let (c1, c2, c3) = (
        ConversationId::generate().to_string(),
        ConversationId::generate().to_string(),
        ConversationId::generate().to_string(),
    );
    let records = vec![
        created("created-1", &c1),
        message("m-1", &c1, "ada"),
        message("m-2", &c2, "bob"),
        message("m-3", &c3, "cy"),
        message("m-4", &c1, "dee"),
        message("m-5", &c3, "ada"),
    ];
    let poisoned = poison(&store, &c3).await;
    let event = batch(&records);

    let answer = stream_analytics::count_batch(&counter(&store), &event, None).await;
    let failed: Vec<Option<String>> = answer
        .batch_item_failures
        .iter()
        .map(|f| f.item_identifier.clone())
        .collect();
    assert_eq!(
        failed,
        [Some("1003".to_owned())],
        "the first record not counted, m-3"
    );
    // c3 stops at its failure; the other conversations go on (their later records would be
    // no-ops when the batch comes again from m-3).
    for (id, done) in [
        ("created-1", true),
        ("m-1", true),
        ("m-2", true),
        ("m-3", false),
        ("m-4", true),
        ("m-5", false),
    ] {
        assert_eq!(counted(&store, id).await, done, "{id}");
    }

    // Lambda retries from the failed record while it keeps failing, then after the repair.
    let mut retry = event.clone();
    retry.records.drain(..3);
    let again = stream_analytics::count_batch(&counter(&store), &retry, None).await;
    assert_eq!(again.batch_item_failures.len(), 1);
    store.delete(&poisoned, None).await.unwrap();
    let answer = stream_analytics::count_batch(&counter(&store), &retry, None).await;
    assert!(answer.batch_item_failures.is_empty(), "{answer:?}");

    let report = analytics::report(&store, day()).await.unwrap();
    assert_eq!(
        (
            report.messages,
            report.active_senders,
            report.new_conversations
        ),
        (5, 4, 1),
        "{report:?}"
    );
    assert_eq!(
        per_conversation(&report),
        BTreeMap::from([(c1.clone(), 2), (c2.clone(), 1), (c3.clone(), 2)])
    );
    // The whole batch once more (a bisected or timed-out batch): nothing changes.
    let answer = stream_analytics::count_batch(&counter(&store), &event, None).await;
    assert!(answer.batch_item_failures.is_empty());
    assert_eq!(analytics::report(&store, day()).await.unwrap(), report);
}

/// Runs the local event source mapping of `stream` into `stream-analytics` on `store`, as the
/// local gateway does; it stops with the test's runtime.
fn count_stream(kinesis: aws_sdk_kinesis::Client, stream: String, store: DynamoStore) {
    tokio::spawn(async move {
        let handler = |event| {
            let store = store.clone();
            async move { stream_analytics::count_batch(&counter(&store), &event, None).await }
        };
        local_gateway::kinesis_poller::run(kinesis, stream, handler, std::future::pending()).await;
    });
}

async fn put_records(kinesis: &aws_sdk_kinesis::Client, stream: &str, records: &[Vec<u8>]) {
    use aws_sdk_kinesis::primitives::Blob;
    use aws_sdk_kinesis::types::PutRecordsRequestEntry;
    let entries = records
        .iter()
        .map(|data| {
            PutRecordsRequestEntry::builder()
                .partition_key("one-shard")
                .data(Blob::new(data.clone()))
                .build()
                .unwrap()
        })
        .collect();
    let out = kinesis
        .put_records()
        .stream_name(stream)
        .set_records(Some(entries))
        .send()
        .await
        .unwrap();
    assert_eq!(out.failed_record_count(), Some(0));
}

/// Polls `what` every 200 ms until it holds (at most `seconds`).
async fn eventually<F, Fut>(seconds: u64, mut what: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = Instant::now() + Duration::from_secs(seconds);
    while Instant::now() < deadline {
        if what().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    false
}

#[tokio::test]
async fn the_local_poller_reads_again_from_the_failed_record_until_it_is_counted() {
    let store = support::fresh_store().await;
    let kinesis = support::kinesis().await;
    let stream = support::unique_name("analytics");
    let template = local_stack::Template::of_this_repository().unwrap();
    local_stack::create_stream(&kinesis, &stream, &template.stream)
        .await
        .unwrap();
    let (c1, c2) = (
        ConversationId::generate().to_string(),
        ConversationId::generate().to_string(),
    );
    let poisoned = poison(&store, &c2).await;
    put_records(
        &kinesis,
        &stream,
        &[
            created("created-1", &c1),
            message("m-1", &c1, "ada"),
            message("m-2", &c2, "bob"),
            message("m-3", &c1, "cy"),
        ],
    )
    .await;
    count_stream(kinesis.clone(), stream.clone(), store.clone());

    assert!(
        eventually(30, || counted(&store, "m-1")).await,
        "the records before the failure are counted"
    );
    // The poller keeps reading from m-2, which keeps failing (m-3, of another conversation, is
    // counted meanwhile and comes again with every retry).
    assert!(
        eventually(30, || counted(&store, "m-3")).await,
        "the record after the failure, of another conversation, is counted"
    );
    assert!(!counted(&store, "m-2").await);

    store.delete(&poisoned, None).await.unwrap();
    let report = || async {
        analytics::totals(&store, day())
            .await
            .is_ok_and(|t| t.messages == 3)
    };
    assert!(
        eventually(30, report).await,
        "after the repair the retry counts the rest"
    );
    // Records arriving later are counted by the same poller; nothing counts twice.
    put_records(&kinesis, &stream, &[message("m-2", &c2, "bob")]).await;
    put_records(&kinesis, &stream, &[message("m-4", &c2, "ada")]).await;
    assert!(eventually(30, || counted(&store, "m-4")).await);
    let report = analytics::report(&store, day()).await.unwrap();
    assert_eq!(
        (
            report.messages,
            report.active_senders,
            report.new_conversations
        ),
        (4, 3, 1),
        "{report:?}"
    );
    assert_eq!(
        per_conversation(&report),
        BTreeMap::from([(c1.clone(), 2), (c2.clone(), 2)])
    );
}

/// Every record of the pipeline's stream as (partition key, CloudEvent), or the first error (a
/// loaded kinesis-local may time out).
async fn read_stream(pipeline: &Pipeline) -> Result<Vec<(String, Value)>, String> {
    use aws_sdk_kinesis::types::ShardIteratorType;
    let kinesis = &pipeline.kinesis;
    fn error(e: &(dyn std::error::Error + 'static)) -> String {
        chat_shared::domain::error::ErrorChain(e).to_string()
    }
    let shards = kinesis
        .list_shards()
        .stream_name(&pipeline.stream)
        .send()
        .await
        .map_err(|e| error(&e))?;
    let mut out = Vec::new();
    for shard in shards.shards() {
        let mut iterator = kinesis
            .get_shard_iterator()
            .stream_name(&pipeline.stream)
            .shard_id(shard.shard_id())
            .shard_iterator_type(ShardIteratorType::TrimHorizon)
            .send()
            .await
            .map_err(|e| error(&e))?
            .shard_iterator;
        while let Some(it) = iterator {
            let page = kinesis
                .get_records()
                .shard_iterator(it)
                .send()
                .await
                .map_err(|e| error(&e))?;
            if page.records().is_empty() {
                break;
            }
            for record in page.records() {
                let event: Value = serde_json::from_slice(record.data().as_ref()).unwrap();
                out.push((record.partition_key().unwrap_or_default().to_owned(), event));
            }
            iterator = page.next_shard_iterator().map(str::to_owned);
        }
    }
    Ok(out)
}

/// The stream's records once `count` distinct event ids are in it (at most `seconds`, then
/// whatever was read last).
async fn stream_events(pipeline: &Pipeline, count: usize, seconds: u64) -> Vec<(String, Value)> {
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let mut last = Vec::new();
    while Instant::now() < deadline {
        if let Ok(records) = read_stream(pipeline).await {
            let ids: HashSet<&str> = records
                .iter()
                .map(|(_, e)| e["id"].as_str().unwrap())
                .collect();
            if ids.len() >= count {
                return records;
            }
            last = records;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    last
}

/// Sends one message, retrying a 503 with the same `clientMessageId` (the contract's safe
/// retry); the stored message.
async fn send(api: &LocalApi, user: &str, conversation: &str, n: usize) -> Value {
    let body = json!({"body": format!("message {n} from {user}"), "clientMessageId": format!("{user}-{n}")});
    let (status, message) = api
        .call_retrying(
            Method::POST,
            &format!("/conversations/{conversation}/messages"),
            user,
            Some(body),
        )
        .await;
    assert!(
        matches!(status, 200 | 201),
        "{user} -> {conversation}: {status} {message}"
    );
    message
}

#[tokio::test]
async fn with_kinesis_frozen_200_messages_of_five_users_are_each_counted_once_after_the_thaw() {
    let kinesis = OwnKinesis::start();
    let api = LocalApi::start().await;
    let store = api.gateway.deps.store.clone();
    let pipeline = Pipeline::start(&store, Some(&kinesis.url())).await;
    count_stream(
        pipeline.kinesis.clone(),
        pipeline.stream.clone(),
        store.clone(),
    );
    let users = ["ada", "bob", "cy", "dee", "eve"];
    api.sign_up(&users.map(str::to_owned)).await;

    kinesis.signal("-STOP");
    // Five groups (each user's, with two others) and two direct conversations.
    let mut conversations: Vec<(String, Vec<&str>)> = Vec::new();
    for (i, owner) in users.iter().enumerate() {
        let others = vec![users[(i + 1) % 5], users[(i + 2) % 5]];
        let id = api.group(owner, &others).await;
        let mut members = others;
        members.push(*owner);
        conversations.push((id, members));
    }
    for (a, b) in [("ada", "eve"), ("bob", "dee")] {
        let (status, direct) = api
            .call(
                Method::POST,
                "/conversations",
                a,
                Some(json!({"participantIds": [b]})),
            )
            .await;
        assert_eq!(status, 201, "{direct}");
        conversations.push((direct["id"].as_str().unwrap().to_owned(), vec![a, b]));
    }
    // 40 messages per user (under the limit of 60 a minute), spread over their conversations.
    // Every conversation's sends run one after the other, the conversations at the same time.
    let mut plan: BTreeMap<&str, Vec<(&str, usize)>> = BTreeMap::new();
    for user in users {
        let mine: Vec<&str> = conversations
            .iter()
            .filter(|(_, members)| members.contains(&user))
            .map(|(id, _)| id.as_str())
            .collect();
        for n in 0..40 {
            plan.entry(mine[n % mine.len()])
                .or_default()
                .push((user, n));
        }
    }
    let api = &api;
    let sent: Vec<Vec<Value>> =
        join_all(plan.into_iter().map(|(conversation, sends)| async move {
            let mut out = Vec::new();
            for (user, n) in sends {
                out.push(send(api, user, conversation, n).await);
            }
            out
        }))
        .await;
    let sent: Vec<Value> = sent.into_iter().flatten().collect();
    assert_eq!(sent.len(), 200, "every send succeeded with Kinesis frozen");
    // The publisher and the analytics poller run into the frozen stream for a while.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let mut before = None;
    for _ in 0..5 {
        if let Ok(totals) = analytics::totals(&store, Day::of(support::clock().now())).await {
            before = Some(totals);
            break;
        }
    }
    let before = before.expect("the totals read before the thaw");
    assert_eq!(
        before.messages, 0,
        "nothing reached the consumer while frozen"
    );
    kinesis.signal("-CONT");

    // What was sent, per conversation.
    let mut expected: BTreeMap<String, u64> = conversations
        .iter()
        .map(|(id, _)| (id.clone(), 0))
        .collect();
    for message in &sent {
        *expected
            .get_mut(message["conversationId"].as_str().unwrap())
            .unwrap() += 1;
    }

    // Every message and creation reaches the stream (duplicates, by id, are allowed there).
    let records = stream_events(&pipeline, 207, 120).await;
    let events: Vec<&Value> = records.iter().map(|(_, e)| e).collect();
    let mut ids_by_message: HashMap<&str, HashSet<&str>> = HashMap::new();
    let mut creations: HashSet<&str> = HashSet::new();
    for event in &events {
        match event["type"].as_str().unwrap() {
            "chat.message.created" => {
                ids_by_message
                    .entry(event["data"]["messageId"].as_str().unwrap())
                    .or_default()
                    .insert(event["id"].as_str().unwrap());
            }
            "chat.conversation.created" => {
                creations.insert(event["data"]["conversationId"].as_str().unwrap());
            }
            _ => {}
        }
    }
    for message in &sent {
        let id = message["id"].as_str().unwrap();
        assert_eq!(
            ids_by_message.get(id).map(HashSet::len),
            Some(1),
            "message {id} is in the stream as exactly one event"
        );
    }
    assert_eq!(ids_by_message.len(), 200);
    assert_eq!(creations.len(), conversations.len());

    // The aggregates of the events' days (one, unless the test ran across midnight UTC).
    let days: BTreeSet<Day> = events
        .iter()
        .filter(|e| e["type"] == "chat.message.created")
        .map(|e| {
            Day::of(
                chat_shared::platform::time::Timestamp::parse(e["time"].as_str().unwrap()).unwrap(),
            )
        })
        .collect();
    // Messages and new conversations over those days (an error, e.g. a timeout of the loaded
    // emulator, reads as "not yet").
    let totals = || async {
        let mut sum = (0, 0);
        for day in &days {
            let totals = analytics::totals(&store, *day)
                .await
                .map_err(|e| chat_shared::domain::error::ErrorChain(&e).to_string())?;
            sum.0 += totals.messages;
            sum.1 += totals.new_conversations;
        }
        Ok::<_, String>(sum)
    };
    let complete = eventually(120, || async { totals().await == Ok((200, 7)) }).await;
    // A chance for a late redelivery to count twice before the exact comparison: a quiet
    // period, not a wait for something to finish (the totals are already complete).
    tokio::time::sleep(Duration::from_secs(2)).await;
    let mut reports = Vec::new();
    for day in &days {
        reports.push(analytics::report(&store, *day).await.unwrap());
    }
    assert!(complete, "every event counted in time: {reports:?}");
    let mut per_conv: BTreeMap<String, u64> = BTreeMap::new();
    let mut senders = 0;
    for report in &reports {
        for (c, n) in per_conversation(report) {
            *per_conv.entry(c).or_default() += n;
        }
        senders = senders.max(report.active_senders);
        assert_eq!(
            report.messages,
            report.conversations.iter().map(|c| c.messages).sum::<u64>(),
            "the day's total is the sum of its conversations"
        );
    }
    assert_eq!(
        totals().await,
        Ok((200, 7)),
        "each message and creation counted once"
    );
    assert_eq!(per_conv, expected, "messages per conversation");
    if days.len() == 1 {
        assert_eq!(reports[0].active_senders, 5, "five distinct senders");
        assert_eq!(reports[0].new_conversations, 7);
        assert!(reports[0].conversations.iter().all(|c| c.created));
    } else {
        assert!(senders <= 5);
    }
}
