//! Messages: send (ordered and idempotent), history, and read positions.
//!
//! `seq` numbers a conversation's messages and `rev` every change of its timeline, both gap-free:
//! a send reads `META` consistently and writes it back in one transaction conditioned on the
//! `lastSeq` and `rev` it read, together with the message, the sender's idempotency key and the
//! sender's read position. A lost race retries with jitter (at most 8 times, then 503).

mod change;
mod history;
mod read;
mod send;

/// The items and views, shared with the other services (`services::model`).
pub use crate::services::model::message as model;

pub use change::{ChangesPage, EditMessage, changes, edit, react, unreact, unsend};
pub use history::{HistoryPage, HistoryParams, history};
pub use model::{Message, MessageItem};
pub use read::{MarkRead, ReadState, mark_read};
pub use send::{SendMessage, Sent, send};
