//! `POST /conversations/{id}/read`: my read position moves forward only.

use serde::{Deserialize, Serialize};

use crate::adapters::store::keys;
use crate::adapters::store::retry::update_forward;
use crate::adapters::store::{Consistency, Expr, StoreError};
use crate::domain::error::ApiError;
use crate::domain::{ConversationId, UserId};
use crate::services::conversations::access;
use crate::services::conversations::model::MemberItem;
use crate::services::deps::RouteDeps;

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct MarkRead {
    pub seq: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ReadState {
    pub last_read_seq: u64,
    pub unread_count: u64,
}

/// Moves my read position to `seq` if that is forward; a `seq` above `lastSeq` is 400. The
/// answer is my position afterwards (which a concurrent read may have moved further).
pub async fn mark_read(
    deps: &RouteDeps,
    user: &UserId,
    id: &ConversationId,
    request: &MarkRead,
) -> Result<ReadState, ApiError> {
    let seen = access(&deps.store, user, id).await?;
    let last = seen.meta.last_seq;
    if request.seq > last {
        return Err(ApiError::validation(
            "seq",
            format!("at most lastSeq ({last})"),
        ));
    }
    let update = Expr::new("SET lastReadSeq = :seq, lastReadAt = :now")
        .when("attribute_exists(PK) AND lastReadSeq < :seq")
        .number(":seq", request.seq)
        .string(":now", deps.store.now().to_string());
    // My inbox entry's copy, which `GET /me/unread` reads first (1 WRU a read), alongside:
    // forward-only like the membership, so it is never ahead of it.
    let copy = Expr::new("SET lastReadSeq = :seq")
        .when("attribute_exists(PK) AND (attribute_not_exists(lastReadSeq) OR lastReadSeq < :seq)")
        .number(":seq", request.seq);
    let (membership, entry) = (keys::membership(id, user), keys::inbox_entry(user, id));
    let (moved, copied) = tokio::join!(
        deps.store.update::<MemberItem>(&membership, update),
        update_forward(&deps.store, &entry, copy),
    );
    copied?;
    let position = match moved {
        Ok(member) => {
            // Members' read positions are part of the shared member list. The members hear of
            // it from `stream-fan-out` (`lastReadAt` moved).
            deps.cache
                .forget(&[crate::adapters::cache::members_key(id)])
                .await;
            member.last_read_seq
        }
        Err(StoreError::ConditionFailed) => {
            // Already there or further, or I just left.
            let member: MemberItem = deps
                .store
                .get(&keys::membership(id, user), Consistency::Strong)
                .await?
                .ok_or(ApiError::NotFound)?;
            member.last_read_seq
        }
        Err(e) => return Err(e.into()),
    };
    Ok(ReadState {
        last_read_seq: position,
        unread_count: seen.meta.unread_above(position),
    })
}
