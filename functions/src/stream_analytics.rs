//! `stream-analytics`: fed by the event stream (a Kinesis event source mapping that retries from
//! the failed record until it succeeds or the record expires), it counts each CloudEvent exactly
//! once into the daily aggregates (`chat_shared::services::analytics`) and reports partial batch failures.
//!
//! A batch's events are grouped by conversation: each conversation's events are counted in stream
//! order, up to [`CONVERSATIONS_IN_FLIGHT`] conversations at once (counting is commutative; one
//! conversation's events share counters, so running them one by one avoids transaction
//! conflicts). A conversation stops at its first event that cannot be counted now (DynamoDB
//! failing, or too little time left in the invocation), and the answer names the earliest such
//! record of the batch as its one batch item failure: Lambda retries a Kinesis batch from the
//! lowest reported sequence number, so everything after it comes again anyway. Every record
//! before it was counted; records after it that other conversations counted meanwhile, like any
//! record that comes again (a bisected or retried batch), find their dedupe item and write nothing.
//!
//! A record that is not a readable CloudEvent is logged (its sequence number and what is wrong,
//! never its content) and skipped: retrying cannot make it readable, and with retries until the
//! record expires it would stop the shard for a day. Events that do not count (reactions, reads,
//! members, connections) are acknowledged without a write.

use std::collections::HashMap;
use std::time::{Duration, Instant, SystemTime};

use aws_lambda_events::event::kinesis::{KinesisEvent, KinesisEventRecord};
use aws_lambda_events::event::streams::KinesisEventResponse;
use chat_shared::adapters::store::DynamoStore;
use chat_shared::domain::error::ErrorChain;
use chat_shared::platform::config::{ConfigError, Env};
use chat_shared::platform::metrics::{self, Dependency, Metric};
use chat_shared::services::analytics::{self, Countable, DedupeWindow, Outcome};
use futures::stream::{self, StreamExt};
use lambda_runtime::{Error, LambdaEvent};

/// A record is started only while more than this is left before the invocation's deadline: one
/// count takes at most two DynamoDB calls of at most 5 s each (`chat_shared::platform::aws`), plus the
/// waits of a lost race. What is left over is reported failed and comes again.
pub const TIME_RESERVE: Duration = Duration::from_secs(15);

/// What the function builds once.
#[derive(Debug, Clone)]
pub struct Deps {
    pub store: DynamoStore,
    /// How long an event's dedupe item and a sender's marker live.
    pub window: DedupeWindow,
}

impl Deps {
    /// `TABLE_NAME`: the table that holds the aggregates; `EVENT_STREAM_RETENTION_HOURS`: how
    /// long Kinesis may redeliver a record; `CHAT_CLOCK_OFFSET`.
    pub async fn from_env<F: Fn(&str) -> Option<String>>(
        env: &Env<F>,
    ) -> Result<Self, ConfigError> {
        Ok(Self {
            window: DedupeWindow::from_env(env)?,
            store: DynamoStore::from_env(env).await?,
        })
    }
}

pub async fn handle(
    deps: &Deps,
    event: LambdaEvent<KinesisEvent>,
) -> Result<KinesisEventResponse, Error> {
    let deadline = deadline_of(event.context.deadline);
    Ok(count_batch(deps, &event.payload, deadline).await)
}

/// The invocation's deadline (milliseconds since the epoch; 0 when there is none) as an instant.
fn deadline_of(deadline_ms: u64) -> Option<Instant> {
    if deadline_ms == 0 {
        return None;
    }
    let now_ms = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or_default();
    let left = u128::from(deadline_ms).saturating_sub(now_ms);
    Some(Instant::now() + Duration::from_millis(u64::try_from(left).unwrap_or(u64::MAX)))
}

/// Conversations of a batch counted at the same time.
pub const CONVERSATIONS_IN_FLIGHT: usize = 16;

/// What counting one conversation's events of a batch did.
#[derive(Debug, Default)]
struct GroupOutcome {
    counted: u64,
    duplicates: u64,
    /// The position in the batch of the first event not counted.
    failed_at: Option<usize>,
}

/// Counts a batch: each conversation's events in stream order, conversations concurrently. The
/// answer names the earliest record of the batch that was not counted, if any.
pub async fn count_batch(
    deps: &Deps,
    batch: &KinesisEvent,
    deadline: Option<Instant>,
) -> KinesisEventResponse {
    let (mut ignored, mut skipped) = (0u64, 0u64);
    // Reading needs no I/O: every record first, the events that count grouped by conversation.
    let mut groups: Vec<Vec<(usize, Countable)>> = Vec::new();
    let mut group_of: HashMap<String, usize> = HashMap::new();
    for (position, record) in batch.records.iter().enumerate() {
        match analytics::read_event(&record.kinesis.data) {
            Ok(Some(event)) => {
                let key = event.tally.conversation().to_string();
                let index = *group_of.entry(key).or_insert_with(|| {
                    groups.push(Vec::new());
                    groups.len() - 1
                });
                if let Some(group) = groups.get_mut(index) {
                    group.push((position, event));
                }
            }
            Ok(None) => ignored += 1,
            Err(error) => {
                let sequence_number = record.kinesis.sequence_number.as_str();
                tracing::error!(sequence_number, %error, "skipped an unreadable record");
                skipped += 1;
            }
        }
    }
    let outcomes: Vec<GroupOutcome> = stream::iter(groups)
        .map(|group| count_group(deps, group, &batch.records, deadline))
        .buffer_unordered(CONVERSATIONS_IN_FLIGHT)
        .collect()
        .await;
    let counted = outcomes.iter().map(|o| o.counted).sum::<u64>();
    let duplicates = outcomes.iter().map(|o| o.duplicates).sum::<u64>();
    let mut response = KinesisEventResponse::default();
    let failed_from = outcomes
        .iter()
        .filter_map(|o| o.failed_at)
        .min()
        .and_then(|position| batch.records.get(position))
        .map(|record| record.kinesis.sequence_number.as_str());
    if let Some(sequence_number) = failed_from {
        response.add_failure(sequence_number);
    }
    metrics::count(Metric::EventsCounted, counted);
    metrics::count(Metric::EventsSkipped, skipped);
    tracing::info!(
        records = batch.records.len(),
        counted,
        duplicates,
        ignored,
        skipped,
        failed_from,
        "counted"
    );
    response
}

/// Counts one conversation's events in order, stopping at the first that cannot be counted now.
async fn count_group(
    deps: &Deps,
    group: Vec<(usize, Countable)>,
    records: &[KinesisEventRecord],
    deadline: Option<Instant>,
) -> GroupOutcome {
    let mut outcome = GroupOutcome::default();
    for (position, event) in group {
        let sequence_number = records
            .get(position)
            .map(|r| r.kinesis.sequence_number.as_str())
            .unwrap_or_default();
        if deadline.is_some_and(|d| Instant::now() + TIME_RESERVE > d) {
            tracing::warn!(
                sequence_number,
                "too little time left; the batch is retried from this record"
            );
            outcome.failed_at = Some(position);
            break;
        }
        match analytics::count(&deps.store, &event, deps.window).await {
            Ok(Outcome::Counted) => outcome.counted += 1,
            Ok(Outcome::AlreadyCounted) => outcome.duplicates += 1,
            Err(error) => {
                tracing::error!(
                    sequence_number,
                    event_id = event.id.as_str(),
                    error = %ErrorChain(&error),
                    "counting failed; the batch is retried from this record"
                );
                metrics::degraded(Dependency::DynamoDb);
                outcome.failed_at = Some(position);
                break;
            }
        }
    }
    outcome
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deadlines_are_read_from_the_context() {
        assert_eq!(deadline_of(0), None);
        let now_ms = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap()
            .as_millis() as u64;
        let left = deadline_of(now_ms + 60_000).unwrap() - Instant::now();
        assert!(
            left > Duration::from_secs(58) && left <= Duration::from_secs(60),
            "{left:?}"
        );
        let past = deadline_of(now_ms - 1_000).unwrap();
        assert!(past <= Instant::now() + Duration::from_millis(1));
    }
}
