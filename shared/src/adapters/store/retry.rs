//! Every retry of the store's callers, in one place: optimistic writes (read, decide, write under
//! a condition on what was read, and on a lost race read again, a bounded number of times with a
//! random pause), and the pause before a batch's unprocessed items go again.

use std::time::Duration;

use super::StoreError;
use crate::domain::error::ApiError;

/// Attempts of an optimistic write before giving up.
pub const MAX_ATTEMPTS: u32 = 8;

/// What one attempt of an optimistic write came to.
#[derive(Debug)]
pub enum Attempt<T> {
    Done(T),
    /// Lost a race (a condition on a version, or a transaction conflict): read again and retry.
    Retry,
}

/// Runs `attempt` until it is done, at most [`MAX_ATTEMPTS`] times, sleeping a random
/// 10 to 80 ms (doubling) between tries; then `exhausted`.
pub async fn retry_races<T, E, F, Fut>(
    mut attempt: F,
    exhausted: impl FnOnce() -> E,
) -> Result<T, E>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<Attempt<T>, E>>,
{
    for n in 0..MAX_ATTEMPTS {
        match attempt().await? {
            Attempt::Done(value) => return Ok(value),
            Attempt::Retry => tokio::time::sleep(jitter(n)).await,
        }
    }
    Err(exhausted())
}

/// [`retry_races`] for a route: 503 when the races are lost every time.
pub async fn retrying<T, F, Fut>(attempt: F) -> Result<T, ApiError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<Attempt<T>, ApiError>>,
{
    retry_races(attempt, || {
        ApiError::Unavailable("lost the race too often; retry".into())
    })
    .await
}

/// Waits before retrying a batch's unprocessed items: 50 ms doubling, at most 6 times; then the
/// table counts as unavailable.
pub async fn unprocessed_backoff(attempt: u32, operation: &'static str) -> Result<(), StoreError> {
    if attempt > 6 {
        return Err(StoreError::Unavailable {
            operation,
            source: "items stayed unprocessed after 6 retries".into(),
        });
    }
    tokio::time::sleep(Duration::from_millis(50 << attempt.min(6))).await;
    Ok(())
}

fn jitter(attempt: u32) -> Duration {
    let base = 10u64 << attempt.min(3);
    let random = u64::from(ulid::Ulid::new().random() as u16);
    Duration::from_millis(base + random % (base * 7))
}

/// A lost race: a transaction conflict, or a failed condition on the conversation's version.
pub fn lost_race(error: &StoreError) -> bool {
    use super::CancellationCode;
    match error {
        StoreError::ConditionFailed => true,
        StoreError::TransactionCanceled { reasons } => reasons.iter().any(|r| {
            matches!(
                r,
                CancellationCode::ConditionalCheckFailed | CancellationCode::TransactionConflict
            )
        }),
        _ => false,
    }
}

/// A forward-only update (its condition says "only if this moves it forward"): refused means
/// something newer is there already, which is fine; a conflict with a transaction is retried.
pub async fn update_forward(
    store: &super::DynamoStore,
    key: &super::Key,
    update: super::Expr,
) -> Result<(), ApiError> {
    retrying(|| async {
        match store
            .update::<serde::de::IgnoredAny>(key, update.clone())
            .await
        {
            Ok(_) | Err(StoreError::ConditionFailed) => Ok(Attempt::Done(())),
            Err(e) if lost_race(&e) => Ok(Attempt::Retry),
            Err(e) => Err(ApiError::from(e)),
        }
    })
    .await
}

/// What a transaction that did not commit means to its caller.
#[derive(Debug)]
pub enum Cancelled<R> {
    /// Another transaction held one of its items: the same writes again, after a pause.
    Conflict,
    /// Anything else: the caller's answer.
    Refused(R),
}

/// Writes `writes` in one named transaction, again (the same writes, [`retry_races`]'s pauses
/// and bound) for as long as `read` calls its cancellation a conflict; `exhausted` when that
/// never ends.
pub async fn transact_through_conflicts<N: Clone, R>(
    store: &super::DynamoStore,
    writes: &[(N, super::Write)],
    read: impl Fn(super::TransactError<N>) -> Cancelled<R>,
    exhausted: impl FnOnce() -> R,
) -> Result<(), R> {
    retry_races(
        || async {
            match store.transact_named(writes.to_vec()).await {
                Ok(()) => Ok(Attempt::Done(Ok(()))),
                Err(error) => match read(error) {
                    Cancelled::Conflict => Ok(Attempt::Retry),
                    Cancelled::Refused(refusal) => Ok(Attempt::Done(Err(refusal))),
                },
            }
        },
        exhausted,
    )
    .await
    .unwrap_or_else(Err)
}
