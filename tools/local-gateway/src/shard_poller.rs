//! Plays a Lambda event source mapping over a stream with shards (the table's DynamoDB stream,
//! Kinesis): reads every shard in turn, hands each batch (as the Lambda event AWS would send) to a
//! handler, and on a partial batch failure reads that shard again from the failed record, with
//! growing pauses, until the handler succeeds (`MaximumRetryAttempts: -1`; locally records never
//! expire). What differs between the two streams is a [`ShardSource`].

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

const BATCH_SIZE: i32 = 100;
const IDLE_PAUSE: Duration = Duration::from_millis(100);
const FIRST_RETRY_PAUSE: Duration = Duration::from_millis(200);
const LONGEST_RETRY_PAUSE: Duration = Duration::from_secs(2);

/// Sets the pause after a round that found nothing, in milliseconds: 250 is AWS's rate (a
/// mapping polls a shard four times a second), what a benchmark of send → delivery models.
pub const IDLE_POLL_ENV: &str = "CHAT_STREAM_IDLE_POLL_MS";

/// The pause after a round that found nothing: [`IDLE_PAUSE`] (short, so that a test waiting for
/// the fan-out waits little) unless [`IDLE_POLL_ENV`] says otherwise.
fn idle_pause() -> Duration {
    static PAUSE: std::sync::LazyLock<Duration> = std::sync::LazyLock::new(|| {
        std::env::var(IDLE_POLL_ENV)
            .ok()
            .and_then(|ms| ms.trim().parse().ok())
            .map_or(IDLE_PAUSE, Duration::from_millis)
    });
    *PAUSE
}

/// Where a shard iterator starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Start {
    TrimHorizon,
    /// At this record (to read a failed one again).
    At(String),
    /// After this record (the last one handled).
    After(String),
}

/// One `GetRecords` page.
#[derive(Debug)]
pub struct Page<E> {
    /// The batch as a Lambda event, or `None` when the page held no record.
    pub event: Option<E>,
    /// The sequence number of the batch's last record.
    pub last: Option<String>,
    /// `None` once the shard is closed and read to its end.
    pub next_iterator: Option<String>,
}

/// A stream as the poller reads it.
pub trait ShardSource {
    /// The Lambda event a batch becomes (kept after the handler took its copy, to read the
    /// failures against).
    type Event: Clone;
    /// What the function answers (its partial batch failures).
    type Response;

    /// Every shard id, in the order they are to be read (called on every round: new shards
    /// appear).
    fn shards(&mut self) -> impl Future<Output = Result<Vec<String>, String>>;
    /// A shard iterator, `None` for a closed shard read to its end.
    fn iterator(
        &self,
        shard: &str,
        start: Start,
    ) -> impl Future<Output = Result<Option<String>, String>>;
    /// The next page of records at `iterator`.
    fn records(
        &self,
        shard: &str,
        iterator: &str,
        limit: i32,
    ) -> impl Future<Output = Result<Page<Self::Event>, String>>;
    /// Where the batch must be read again from: `None` when it succeeded.
    fn retry_point(event: &Self::Event, response: &Self::Response) -> Option<String>;
}

/// An SDK error as one line, with its causes.
pub fn failed(error: &(impl std::error::Error + 'static)) -> String {
    chat_shared::domain::error::ErrorChain(error).to_string()
}

/// Where a shard's reading stands.
#[derive(Debug, Default)]
struct ShardState {
    /// The last record handled successfully.
    checkpoint: Option<String>,
    /// Read again from this record (after a failure).
    retry_from: Option<String>,
    iterator: Option<String>,
    closed: bool,
}

/// Reads `source` until `shutdown` resolves, handing batches to `handler`.
pub async fn run<S, H, Fut>(source: S, handler: H, shutdown: impl Future<Output = ()>)
where
    S: ShardSource,
    H: Fn(S::Event) -> Fut,
    Fut: Future<Output = S::Response>,
{
    run_counted(source, handler, shutdown, &AtomicU64::new(0)).await;
}

/// As [`run`], counting in `idle_rounds` every round over the shards that found no record: two
/// more than before a write mean a whole round began after it and found nothing left, so every
/// record of the write was handled (what a test waits for before it reads its sockets).
pub async fn run_counted<S, H, Fut>(
    mut source: S,
    handler: H,
    shutdown: impl Future<Output = ()>,
    idle_rounds: &AtomicU64,
) where
    S: ShardSource,
    H: Fn(S::Event) -> Fut,
    Fut: Future<Output = S::Response>,
{
    tokio::select! {
        () = poll(&mut source, &handler, idle_rounds) => {}
        () = shutdown => {}
    }
}

async fn poll<S, H, Fut>(source: &mut S, handler: &H, idle_rounds: &AtomicU64)
where
    S: ShardSource,
    H: Fn(S::Event) -> Fut,
    Fut: Future<Output = S::Response>,
{
    let mut shards: HashMap<String, ShardState> = HashMap::new();
    let mut order: Vec<String> = Vec::new();
    let mut pause = FIRST_RETRY_PAUSE;
    loop {
        match source.shards().await {
            Ok(ids) => {
                for id in ids {
                    if !shards.contains_key(&id) {
                        shards.insert(id.clone(), ShardState::default());
                        order.push(id);
                    }
                }
            }
            Err(error) => {
                tracing::warn!(%error, "listing the shards failed");
                tokio::time::sleep(LONGEST_RETRY_PAUSE).await;
                continue;
            }
        }
        let (mut busy, mut failed) = (false, false);
        for shard_id in &order {
            let Some(state) = shards.get_mut(shard_id) else {
                continue;
            };
            if state.closed {
                continue;
            }
            match step(source, shard_id, state, handler).await {
                Step::Handled => {
                    busy = true;
                    pause = FIRST_RETRY_PAUSE;
                }
                Step::Idle => {}
                Step::Failed => {
                    failed = true;
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(LONGEST_RETRY_PAUSE);
                }
            }
        }
        if !busy {
            // A round that failed somewhere may have left records: it is not idle.
            if !failed {
                idle_rounds.fetch_add(1, Ordering::SeqCst);
            }
            tokio::time::sleep(idle_pause()).await;
        }
    }
}

enum Step {
    Handled,
    Idle,
    Failed,
}

async fn step<S, H, Fut>(source: &S, shard_id: &str, state: &mut ShardState, handler: &H) -> Step
where
    S: ShardSource,
    H: Fn(S::Event) -> Fut,
    Fut: Future<Output = S::Response>,
{
    if state.iterator.is_none() {
        let start = match (&state.retry_from, &state.checkpoint) {
            (Some(from), _) => Start::At(from.clone()),
            (None, Some(done)) => Start::After(done.clone()),
            (None, None) => Start::TrimHorizon,
        };
        match source.iterator(shard_id, start).await {
            Ok(Some(iterator)) => state.iterator = Some(iterator),
            Ok(None) => {
                state.closed = true;
                return Step::Idle;
            }
            Err(error) => {
                tracing::warn!(%error, "GetShardIterator failed");
                return Step::Failed;
            }
        }
    }
    let Some(iterator) = state.iterator.clone() else {
        return Step::Idle;
    };
    let page = match source.records(shard_id, &iterator, BATCH_SIZE).await {
        Ok(page) => page,
        Err(error) => {
            tracing::warn!(%error, "GetRecords failed");
            state.iterator = None;
            return Step::Failed;
        }
    };
    let Some(event) = page.event else {
        state.iterator = page.next_iterator;
        state.closed = state.iterator.is_none();
        return Step::Idle;
    };
    let response = handler(event.clone()).await;
    match S::retry_point(&event, &response) {
        None => {
            state.checkpoint = page.last;
            state.retry_from = None;
            state.iterator = page.next_iterator;
            state.closed = state.iterator.is_none();
            Step::Handled
        }
        Some(failed_at) => {
            tracing::info!(shard = shard_id, from = %failed_at, "batch failed in part; reading again");
            state.retry_from = Some(failed_at);
            state.iterator = None;
            Step::Failed
        }
    }
}
