//! Plays `stream-fan-out`'s event source mapping: the table's stream read with the function's
//! role, each batch filtered by the template's filter criteria (`crate::filter`) and handed to the
//! function's handler with its own deps (its calls held to its role), a partial batch failure read
//! again from the failed record. Every gateway over a table
//! runs one, as every stack has one mapping; a second gateway over the same table (a test's
//! clock moved ahead) must not, or the table's connections would get every push twice.

use chat_shared::services::delivery;
use chat_shared::services::deps::RouteDeps;

use crate::server::Gateway;

/// The function, as the template names it.
pub const FUNCTION: &str = "stream-fan-out";

/// The function's deps as deployed: its clients (its role), and no Redis (the template gives it
/// no `REDIS_URL`).
pub fn deps(gateway: &Gateway) -> Result<RouteDeps, String> {
    let deps = gateway
        .functions
        .http(FUNCTION)
        .ok_or("stream-fan-out is not in the template")?;
    Ok(RouteDeps::new(
        deps.store.clone(),
        deps.cursor_keys.clone(),
        std::sync::Arc::new(chat_shared::adapters::redis_link::RedisLink::disabled()),
        deps.limiter.limits().clone(),
        deps.pusher.clone(),
    ))
}

/// The running mapping: its task, and how many of its rounds found nothing to do.
#[derive(Debug)]
pub struct FanOut {
    pub task: tokio::task::JoinHandle<()>,
    pub idle_rounds: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

impl FanOut {
    /// Waits until every record the table's stream holds now is handled: a whole round that
    /// began after this call found nothing (two idle rounds more). Tests call it before they
    /// read sockets opened after a write, so that the write's pushes are not in what they read.
    /// Gives up after 30 s (a poller that keeps failing), leaving the test to fail on what it
    /// reads.
    pub async fn drained(&self) {
        use std::sync::atomic::Ordering;
        let from = self.idle_rounds.load(Ordering::SeqCst);
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(30);
        while self.idle_rounds.load(Ordering::SeqCst) < from + 2
            && tokio::time::Instant::now() < deadline
        {
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    }
}

/// Starts the poller; it stops when its task is aborted (or with the runtime).
pub async fn start(gateway: &Gateway) -> Result<FanOut, String> {
    let deps = deps(gateway)?;
    let sdk = chat_shared::platform::aws::load_sdk_config()
        .await
        .map_err(|e| e.to_string())?;
    let stream_arn = crate::stream_poller::table_stream_arn(gateway).await?;
    let streams = gateway.functions.dynamodb_streams(FUNCTION, &sdk);
    let idle_rounds = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let counted = idle_rounds.clone();
    let filters = crate::filter::Filters::of_function(FUNCTION)?;
    let task = tokio::spawn(async move {
        let handler = |event| {
            let deps = deps.clone();
            let admitted = filters.apply(event);
            async move {
                match admitted {
                    Some(event) => {
                        // As Lambda's REPORT line: the invocation's duration, which
                        // tools/bench-fan-out.sh sets against a bare client's posts.
                        let started = std::time::Instant::now();
                        let response = delivery::deliver(&deps, &event).await;
                        tracing::info!(
                            function = FUNCTION,
                            records = event.records.len(),
                            duration_ms = started.elapsed().as_secs_f64() * 1000.0,
                            "invocation finished"
                        );
                        response
                    }
                    // Nothing the filter admits: the mapping does not invoke the function.
                    None => Default::default(),
                }
            }
        };
        crate::stream_poller::run_counted(streams, stream_arn, handler, &counted).await;
    });
    Ok(FanOut { task, idle_rounds })
}
