//! Messages: send (ordered and idempotent), history, and read positions.
//!
//! `seq` numbers a conversation's messages and `rev` every change of its timeline, both gap-free
//! and handed out without contention: see [`sequence`].

mod change;
mod history;
mod read;
mod send;
pub mod sequence;

/// The items and views, shared with the other services (`services::model`).
pub use crate::services::model::message as model;

pub use change::{ChangesPage, EditMessage, changes, edit, react, unreact, unsend};
pub use history::{HistoryPage, HistoryParams, history};
pub use model::{Message, MessageItem};
pub use read::{MarkRead, ReadState, mark_read};
pub use send::{SendMessage, Sent, send};
