//! Conversations: create (direct and self unique, groups retry-safe), read, list (the inbox),
//! title, my settings, members. Every route checks membership against the table itself, never a
//! cache, and answers 404 to a non-member.

mod create;
mod members;
pub mod model;
mod read;

use std::time::Duration;

pub use create::{CreateConversation, create};
pub use members::{AddMembers, MemberTarget, add_members, remove_member};
pub use model::{Conversation, Kind, LastMessage, Me, Member, MemberItem, MetaItem, Role};
pub use read::{
    ConversationPage, ListParams, SettingsChanges, TitleChange, get, list, load_member_view,
    set_title, update_settings,
};
pub(crate) use read::{access, access_with, member_items, views_for};

use crate::error::ApiError;
use crate::store::StoreError;

/// Attempts of an optimistic write before answering 503.
const MAX_ATTEMPTS: u32 = 8;

/// What one attempt of an optimistic write came to.
pub(crate) enum Attempt<T> {
    Done(T),
    /// Lost a race (a condition on a version, or a transaction conflict): read again and retry.
    Retry,
}

/// Runs `attempt` until it is done, at most [`MAX_ATTEMPTS`] times, sleeping a random
/// 10 to 80 ms (doubling) between tries; then 503.
pub(crate) async fn retrying<T, F, Fut>(mut attempt: F) -> Result<T, ApiError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<Attempt<T>, ApiError>>,
{
    for n in 0..MAX_ATTEMPTS {
        match attempt().await? {
            Attempt::Done(value) => return Ok(value),
            Attempt::Retry => tokio::time::sleep(jitter(n)).await,
        }
    }
    Err(ApiError::Unavailable(
        "lost the race too often; retry".into(),
    ))
}

fn jitter(attempt: u32) -> Duration {
    let base = 10u64 << attempt.min(3);
    let random = u64::from(ulid::Ulid::new().random() as u16);
    Duration::from_millis(base + random % (base * 7))
}

/// A lost race: a transaction conflict, or a failed condition on the conversation's version.
pub(crate) fn lost_race(error: &StoreError) -> bool {
    use crate::store::CancellationCode;
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
