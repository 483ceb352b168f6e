//! Real-time tickets: a browser cannot set headers on a WebSocket handshake, so it first asks
//! `POST /realtime/tickets` for a single-use ticket and connects with `?ticket=`. Only the
//! ticket's SHA-256 is stored (`TICKET#<hex>`, TTL 60 s); the `$connect` authorizer consumes it
//! with one conditional delete, so a ticket opens at most one connection.

use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use serde::{Deserialize, Serialize};

use crate::adapters::store::keys;
use crate::adapters::store::{DynamoStore, Expr, StoreError};
use crate::domain::UserId;
use crate::domain::error::ApiError;
use crate::platform::time::Timestamp;

/// How long a ticket may wait for its handshake.
pub const TICKET_SECONDS: i64 = 60;

/// What the caller gets: the ticket (shown once) and when it expires.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Ticket {
    pub ticket: String,
    pub expires_at: Timestamp,
}

/// `TICKET#<sha256>` / `TICKET`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TicketItem {
    #[serde(rename = "PK")]
    pub pk: String,
    #[serde(rename = "SK")]
    pub sk: String,
    pub user_id: UserId,
    pub created_at: Timestamp,
    /// TTL, epoch seconds; a consumed or late ticket is refused whatever DynamoDB has deleted.
    pub expires_at: i64,
}

fn digest_hex(ticket: &str) -> String {
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, ticket.as_bytes());
    digest.as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

/// Issues a ticket for `user`: 32 random bytes, stored as their hash.
pub async fn issue(store: &DynamoStore, user: &UserId) -> Result<Ticket, ApiError> {
    let mut bytes = [0u8; 32];
    SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| ApiError::internal("no randomness for a ticket"))?;
    let ticket = B64.encode(bytes);
    let now = store.now();
    let expires_at = now.plus_seconds(TICKET_SECONDS);
    let key = keys::ticket(&digest_hex(&ticket));
    let item = TicketItem {
        pk: key.pk,
        sk: key.sk,
        user_id: user.clone(),
        created_at: now,
        expires_at: expires_at.unix_seconds(),
    };
    store.put(&item, Some(Expr::item_absent())).await?;
    Ok(Ticket { ticket, expires_at })
}

/// Consumes a ticket: the user it was issued to, or `None` when it is unknown, used or expired.
/// One conditional delete decides, so two handshakes with one ticket cannot both pass.
pub async fn consume(store: &DynamoStore, ticket: &str) -> Result<Option<UserId>, StoreError> {
    if ticket.is_empty() || ticket.len() > 128 {
        return Ok(None);
    }
    let key = keys::ticket(&digest_hex(ticket));
    let live = Expr::present_and_unexpired(store.now().unix_seconds());
    match store.delete_returning::<TicketItem>(&key, live).await {
        Ok(item) => Ok(item.map(|t| t.user_id)),
        Err(StoreError::ConditionFailed) => Ok(None),
        Err(e) => Err(e),
    }
}
