//! `GET /conversations/{id}/messages?limit&beforeSeq&afterSeq`: a page in ascending `seq`.

use std::collections::BTreeMap;

use super::model::{Message, StoredMessage};
use super::sequence::{self, FILLS_PER_READ};
use crate::adapters::store::keys::{self, attr};
use crate::adapters::store::{Consistency, Expr, Query};
use crate::domain::error::ApiError;
use crate::domain::{ConversationId, Limit, UserId};
use crate::services::conversations::access;
use crate::services::conversations::model::MetaItem;
use crate::services::deps::RouteDeps;
use serde::Serialize;

/// Which page: the newest (default), the one before a `seq`, or the one after it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HistoryParams {
    Newest(Limit),
    Before(u64, Limit),
    After(u64, Limit),
}

impl HistoryParams {
    pub fn parse(get: impl Fn(&str) -> Option<String>) -> Result<Self, ApiError> {
        let limit = Limit::parse_optional(get("limit").as_deref())?;
        let seq = |name: &'static str| -> Result<Option<u64>, ApiError> {
            get(name)
                .map(|raw| {
                    raw.parse::<u64>()
                        .map_err(|_| ApiError::validation(name, "a whole number of 0 or more"))
                })
                .transpose()
        };
        match (seq("beforeSeq")?, seq("afterSeq")?) {
            (Some(_), Some(_)) => Err(ApiError::validation(
                "beforeSeq",
                "give beforeSeq or afterSeq, not both",
            )),
            (Some(before), None) => Ok(Self::Before(before, limit)),
            (None, Some(after)) => Ok(Self::After(after, limit)),
            (None, None) => Ok(Self::Newest(limit)),
        }
    }
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct HistoryPage {
    pub items: Vec<Message>,
    /// More messages lie beyond this page in the direction it was read (older for the newest
    /// page and `beforeSeq`, newer for `afterSeq`).
    pub has_more: bool,
}

/// Reads a page. `seq`s have no gaps, so whether more lie beyond is arithmetic, not a guess. A
/// `seq` whose message is still being written ends the page below it (a client going on from
/// the page's newest `seq` must not skip it; it arrives as an event); one overdue for
/// [`sequence::VOID_AFTER_MILLIS`] is filled with a void here (see `sequence`).
pub async fn history(
    deps: &RouteDeps,
    user: &UserId,
    id: &ConversationId,
    params: HistoryParams,
) -> Result<HistoryPage, ApiError> {
    let meta = access(&deps.store, user, id).await?.meta;
    let last = meta.last_seq;
    // The seq range to read, and whether to read it from the newest end.
    let (low, high, limit, newest_first) = match params {
        HistoryParams::Newest(limit) => (1, last, limit, true),
        HistoryParams::Before(before, limit) => {
            (1, before.saturating_sub(1).min(last), limit, true)
        }
        HistoryParams::After(after, limit) => (after.saturating_add(1), last, limit, false),
    };
    if low > high || high == 0 {
        return Ok(HistoryPage {
            items: Vec::new(),
            has_more: false,
        });
    }
    let condition = Expr::new("#pk = :pk AND #sk BETWEEN :low AND :high")
        .name("#pk", attr::PK)
        .name("#sk", attr::SK)
        .string(":pk", keys::conversation_pk(id))
        .string(":low", keys::message(id, low).sk)
        .string(":high", keys::message(id, high).sk);
    let query = Query {
        ascending: !newest_first,
        page_size: i32::try_from(limit.get()).ok(),
        consistency: Consistency::Strong,
        ..Query::new(None, condition)
    };
    let mut items: Vec<StoredMessage> = deps.store.query_page(&query, None).await?.items;
    if newest_first {
        items.reverse();
    }
    // The seqs this page stands for: from the range's end it was read from to where it stopped.
    let full = items.len() == limit.get();
    let (from, to) = match (newest_first, items.first(), items.last()) {
        (true, Some(oldest), _) if full => (oldest.seq(), high),
        (false, _, Some(newest)) if full => (low, newest.seq()),
        _ => (low, high),
    };
    let (mut items, cut) = settle(deps, &meta, items, from, to).await?;
    // A full page read past gaps spans more seqs than `limit`; the voids filled in them would
    // take it over: it keeps the `limit` nearest the end it was read from.
    if items.len() > limit.get() {
        if newest_first {
            items.drain(..items.len() - limit.get());
        } else {
            items.truncate(limit.get());
        }
    }
    let has_more = match (params, items.first(), items.last()) {
        (HistoryParams::After(..), _, Some(newest)) => !cut && newest.seq < last,
        (_, Some(oldest), _) => oldest.seq > 1,
        _ => false,
    };
    Ok(HistoryPage { items, has_more })
}

/// The page with every missing `seq` in `from..=to` settled: overdue ones filled with voids,
/// and the page ended below the first one still being written (`true` when that happened).
async fn settle(
    deps: &RouteDeps,
    meta: &MetaItem,
    items: Vec<StoredMessage>,
    from: u64,
    to: u64,
) -> Result<(Vec<Message>, bool), ApiError> {
    let now = deps.store.now();
    let mut present: BTreeMap<u64, StoredMessage> =
        items.into_iter().map(|m| (m.seq(), m)).collect();
    let mut fills = 0;
    let mut cut = None;
    for seq in from..=to {
        if present.contains_key(&seq) {
            continue;
        }
        // Issued no later than the next number that landed, or than the counter's last issue.
        let bound = present
            .range(seq..)
            .next()
            .map(|(_, m)| m.created_at())
            .or(meta.issued_at)
            .unwrap_or(now);
        if !sequence::overdue(bound, now) || fills == FILLS_PER_READ {
            cut = Some(seq);
            break;
        }
        fills += 1;
        if let Some(filled) = sequence::fill_seq(&deps.store, &meta.id, seq).await? {
            present.insert(seq, filled);
        }
    }
    let messages = present
        .into_values()
        .filter(|m| cut.is_none_or(|c| m.seq() < c))
        .map(Message::from)
        .collect();
    Ok((messages, cut.is_some()))
}
