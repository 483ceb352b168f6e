//! `seq` and `rev` without contention (docs/decisions/0007-hot-conversations.md).
//!
//! - **Issue**: one `UpdateItem` on `META` adds one to `rev` (and `lastSeq` for a message) and
//!   returns the new values. Updates of one item are applied one after another, so concurrent
//!   writers never refuse each other; nothing is conditioned on a value read before.
//! - **Land**: the change's own transaction puts a ledger entry for its `rev` (`REVS#c`), on
//!   condition that it is absent, with the message item (also absent, for a send).
//! - **Void**: a number whose write did not land is filled, by its writer at once or by the first
//!   reader that meets it after [`VOID_AFTER`]: a `seq` with a void message item, a `rev` with a
//!   void ledger entry. The same "absent" conditions decide between a late write and its void.
//! - **Settle**: `/changes` answers only up to the highest `rev` below which every revision
//!   has landed or been voided ([`watermark`]), so that no client skips a change in flight.

use aws_sdk_dynamodb::types::AttributeValue;
use serde::{Deserialize, Serialize};

use super::model::{StoredMessage, VoidItem, VoidKind};
use crate::adapters::store::keys::{self, attr};
use crate::adapters::store::retry::{Attempt, MAX_ATTEMPTS, lost_race, retry_races};
use crate::adapters::store::{
    CancellationCode, Consistency, DynamoStore, Expr, Query, StoreError, TransactError, Write,
};
use crate::domain::error::ApiError;
use crate::domain::{ConversationId, MessageId};
use crate::platform::time::Timestamp;
use crate::services::conversations::model::MetaItem;

/// How long a number may stay unwritten before a reader fills it with a void. Writers give up
/// (and void their own numbers) well before: their retries are bounded by
/// `retry::MAX_ATTEMPTS` (under 2 s of pauses).
pub const VOID_AFTER_MILLIS: i64 = 5_000;

/// Ledger entries read per `/changes` request: at about 50 bytes each, one 1 MB page at most.
const LEDGER_PAGE: i32 = 1_000;

/// How far the watermark must have moved past `META.settledRev` before a reader moves it up:
/// each move is a write, and a ledger read from `settledRev` costs 0.5 RRU per 80 revisions.
const SETTLE_STEP: u64 = 100;

/// Gaps a reader fills per request, so that a read's cost stays bounded after an outage.
pub const FILLS_PER_READ: usize = 100;

/// `REVS#c` / `<rev>`: a revision that landed (with the `seq` it changed) or was voided.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RevisionItem {
    #[serde(rename = "PK")]
    pub pk: String,
    #[serde(rename = "SK")]
    pub sk: String,
    pub rev: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seq: Option<u64>,
    /// When the number was issued (by the writer's clock), or for a void, when it was voided.
    pub issued_at: Timestamp,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub void: bool,
}

impl RevisionItem {
    pub fn new(id: &ConversationId, rev: u64, seq: Option<u64>, at: Timestamp, void: bool) -> Self {
        let key = keys::revision(id, rev);
        Self {
            pk: key.pk,
            sk: key.sk,
            rev,
            seq,
            issued_at: at,
            void,
        }
    }

    /// The ledger write of a change: the entry, on condition that the `rev` was not voided.
    pub fn write(&self) -> Result<Write, ApiError> {
        Ok(Write::put(self, Some(Expr::item_absent()))?)
    }
}

/// Numbers handed out to one writer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Numbers {
    /// For a new message; `None` for a change to one.
    pub seq: Option<u64>,
    pub rev: u64,
}

/// What the counter hands out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Issue {
    /// A `seq` and a `rev`.
    Message,
    /// A `rev` alone.
    Change,
}

/// The counter's update. `settledRev` is set the first time from the `rev` before it: every
/// revision before the first issued one was written in one transaction with `META` (the design
/// before the counter), so it is settled.
fn issue_update(what: Issue, now: Timestamp) -> Expr {
    let seq = match what {
        Issue::Message => ", lastSeq = lastSeq + :one",
        Issue::Change => "",
    };
    Expr::new(format!(
        "SET rev = rev + :one, issuedAt = :now, settledRev = if_not_exists(settledRev, rev){seq}"
    ))
    .when("attribute_exists(PK)")
    .number(":one", 1)
    .string(":now", now.to_string())
}

/// Takes the conversation's next numbers. 404 when the conversation is gone.
pub async fn issue(
    store: &DynamoStore,
    id: &ConversationId,
    what: Issue,
    now: Timestamp,
) -> Result<Numbers, ApiError> {
    let key = keys::conversation_meta(id);
    let meta: MetaItem = retry_races(
        || async {
            match store
                .update::<MetaItem>(&key, issue_update(what, now))
                .await
            {
                Ok(meta) => Ok(Attempt::Done(meta)),
                Err(StoreError::ConditionFailed) => Err(ApiError::NotFound),
                // A member change's transaction holds `META` for a moment.
                Err(e) if lost_race(&e) => Ok(Attempt::Retry),
                Err(e) => Err(e.into()),
            }
        },
        || ApiError::Unavailable("the conversation's counter stayed busy; retry".into()),
    )
    .await?;
    Ok(Numbers {
        seq: (what == Issue::Message).then_some(meta.last_seq),
        rev: meta.rev,
    })
}

/// The writes of a void message: the item, its ledger entry and its place in `voidSeqs`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum VoidWrite {
    Message,
    Ledger,
    List,
}

fn void_writes(
    id: &ConversationId,
    seq: u64,
    rev: u64,
    now: Timestamp,
) -> Result<Vec<(VoidWrite, Write)>, ApiError> {
    let key = keys::message(id, seq);
    let void = VoidItem {
        pk: key.pk,
        sk: key.sk,
        kind: VoidKind::Void,
        id: MessageId::generate(),
        conversation_id: id.clone(),
        seq,
        msg_rev: rev,
        created_at: now,
    };
    let list = Expr::new("SET voidSeqs = list_append(if_not_exists(voidSeqs, :none), :seq)")
        .value_raw(":none", AttributeValue::L(Vec::new()))
        .value_raw(
            ":seq",
            AttributeValue::L(vec![AttributeValue::N(seq.to_string())]),
        );
    Ok(vec![
        (
            VoidWrite::Message,
            Write::put(&void, Some(Expr::item_absent()))?,
        ),
        (
            VoidWrite::Ledger,
            RevisionItem::new(id, rev, Some(seq), now, true).write()?,
        ),
        (
            VoidWrite::List,
            Write::Update {
                key: keys::conversation_meta(id),
                update: list,
            },
        ),
    ])
}

/// What became of a `seq` someone tried to void.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Voided {
    /// The void is there now.
    Void,
    /// The message landed first.
    Landed,
}

/// Fills `seq` with a void holding `rev`, unless the message landed first. When `rev` was
/// voided already (a reader got to it first), the void takes a new `rev`.
pub async fn void_message(
    store: &DynamoStore,
    id: &ConversationId,
    seq: u64,
    mut rev: u64,
) -> Result<Voided, ApiError> {
    for attempt in 0..MAX_ATTEMPTS {
        let now = store.now();
        let error = match store.transact_named(void_writes(id, seq, rev, now)?).await {
            Ok(()) => return Ok(Voided::Void),
            Err(error) => error,
        };
        let failed = |name| error.reason(name) == Some(&CancellationCode::ConditionalCheckFailed);
        if failed(VoidWrite::Message) {
            // The seq is taken: by its message, or by a void someone else wrote. Either way
            // `rev` is not this void's: settle it (a no-op when it is the message's own).
            void_revision(store, id, rev).await?;
            let there = store
                .get::<StoredMessage>(&keys::message(id, seq), Consistency::Strong)
                .await?;
            return Ok(match there {
                Some(StoredMessage::Message(_)) => Voided::Landed,
                _ => Voided::Void,
            });
        }
        if failed(VoidWrite::Ledger) {
            rev = issue(store, id, Issue::Change, now).await?.rev;
            continue;
        }
        match error {
            TransactError::Canceled(_) => {}
            TransactError::Store(e) if lost_race(&e) => {}
            TransactError::Store(e) => return Err(e.into()),
        }
        tokio::time::sleep(std::time::Duration::from_millis(10 << attempt.min(4))).await;
    }
    Err(ApiError::Unavailable(
        "could not void a number; retry".into(),
    ))
}

/// Marks `rev` void unless its change landed: either way it is settled afterwards.
pub async fn void_revision(
    store: &DynamoStore,
    id: &ConversationId,
    rev: u64,
) -> Result<(), ApiError> {
    let entry = RevisionItem::new(id, rev, None, store.now(), true);
    match store.put(&entry, Some(Expr::item_absent())).await {
        Ok(()) | Err(StoreError::ConditionFailed) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// Voids numbers a writer took and could not use (best effort: a failure here leaves a gap
/// that the first reader after [`VOID_AFTER_MILLIS`] fills). `Landed` means the message is
/// there after all (a write whose answer was lost).
pub async fn give_back(store: &DynamoStore, id: &ConversationId, numbers: Numbers) -> Voided {
    let outcome = match numbers.seq {
        Some(seq) => void_message(store, id, seq, numbers.rev).await,
        None => void_revision(store, id, numbers.rev)
            .await
            .map(|()| Voided::Void),
    };
    outcome.unwrap_or_else(|error| {
        tracing::warn!(%error, "could not void unused numbers; a reader will");
        Voided::Void
    })
}

/// Whether a number issued no later than `bound` is old enough to be voided at `now`.
pub fn overdue(bound: Timestamp, now: Timestamp) -> bool {
    now.unix_millis() - bound.unix_millis() >= VOID_AFTER_MILLIS
}

/// The highest `rev` at or above `since` below which every revision has landed or been voided,
/// filling overdue gaps on the way (at most [`FILLS_PER_READ`]). Moves `META.settledRev` up
/// (best effort) once it is [`SETTLE_STEP`] behind, so that later reads start there.
pub async fn watermark(store: &DynamoStore, meta: &MetaItem, since: u64) -> Result<u64, ApiError> {
    let settled = meta.settled_rev();
    let start = since.max(settled);
    if start >= meta.rev {
        return Ok(start);
    }
    let id = &meta.id;
    let condition = Expr::new("#pk = :pk AND #sk > :start")
        .name("#pk", attr::PK)
        .name("#sk", attr::SK)
        .string(":pk", keys::revisions_pk(id))
        .string(":start", keys::revision(id, start).sk);
    let query = Query {
        page_size: Some(LEDGER_PAGE),
        consistency: Consistency::Strong,
        ..Query::new(None, condition)
    };
    let page = store.query_page::<RevisionItem>(&query, None).await?;
    let now = store.now();
    let mut fills = 0;
    let mut mark = start;
    // Each landed entry bounds when the numbers below it were issued.
    let landed: Vec<(u64, Timestamp)> = page.items.iter().map(|e| (e.rev, e.issued_at)).collect();
    let mut at = 0;
    let end = if page.next.is_none() {
        meta.rev
    } else {
        u64::MAX
    };
    while mark < end {
        let next = mark + 1;
        while landed.get(at).is_some_and(|&(rev, _)| rev < next) {
            at += 1;
        }
        if landed.get(at).is_some_and(|&(rev, _)| rev == next) {
            mark = next;
            continue;
        }
        // `next` has no entry: in flight, or dead.
        let bound = match landed.get(at) {
            Some(&(_, issued_at)) => issued_at,
            None if page.next.is_some() => break,
            None => meta.issued_at.unwrap_or(now),
        };
        if !overdue(bound, now) || fills == FILLS_PER_READ {
            break;
        }
        void_revision(store, id, next).await?;
        fills += 1;
        mark = next;
    }
    if mark >= settled + SETTLE_STEP {
        let update = Expr::new("SET settledRev = :mark")
            .when("settledRev < :mark")
            .number(":mark", mark);
        if let Err(error) = store
            .update::<serde::de::IgnoredAny>(&keys::conversation_meta(id), update)
            .await
            && !lost_race(&error)
        {
            tracing::warn!(%error, "could not move settledRev up");
        }
    }
    Ok(mark)
}

/// Fills an overdue `seq` gap with a void (a new `rev` for it), or finds the message that landed.
pub async fn fill_seq(
    store: &DynamoStore,
    id: &ConversationId,
    seq: u64,
) -> Result<Option<StoredMessage>, ApiError> {
    let numbers = issue(store, id, Issue::Change, store.now()).await?;
    void_message(store, id, seq, numbers.rev).await?;
    Ok(store
        .get::<StoredMessage>(&keys::message(id, seq), Consistency::Strong)
        .await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_message_takes_both_numbers_and_a_change_only_rev() {
        let now = Timestamp::from_unix_millis(1_700_000_000_000);
        let message = issue_update(Issue::Message, now);
        assert!(message.expression.contains("lastSeq = lastSeq + :one"));
        assert!(message.expression.contains("rev = rev + :one"));
        let change = issue_update(Issue::Change, now);
        assert!(!change.expression.contains("lastSeq"));
        // Nothing read before is a condition: concurrent writers never refuse each other.
        assert_eq!(change.condition.as_deref(), Some("attribute_exists(PK)"));
    }

    #[test]
    fn a_number_is_overdue_five_seconds_after_its_bound() {
        let bound = Timestamp::from_unix_millis(1_700_000_000_000);
        let later = |ms| Timestamp::from_unix_millis(bound.unix_millis() + ms);
        assert!(!overdue(bound, later(4_999)));
        assert!(overdue(bound, later(5_000)));
    }

    #[test]
    fn a_void_writes_the_item_its_ledger_entry_and_the_list_by_name() {
        let id = ConversationId::generate();
        let now = Timestamp::from_unix_millis(1_700_000_000_000);
        let writes = void_writes(&id, 8, 13, now).unwrap();
        let names: Vec<VoidWrite> = writes.iter().map(|(n, _)| *n).collect();
        assert_eq!(
            names,
            [VoidWrite::Message, VoidWrite::Ledger, VoidWrite::List]
        );
    }
}
