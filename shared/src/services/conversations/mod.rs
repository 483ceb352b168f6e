//! Conversations: create (direct and self unique, groups retry-safe), read, list (the inbox),
//! title, my settings, members. Every route checks membership against the table itself, never a
//! cache, and answers 404 to a non-member.

mod change;
mod create;
mod members;
mod read;
mod unread;

/// The items and views, shared with the other services (`services::model`).
pub use crate::services::model::conversation as model;

pub use change::{SettingsChanges, TitleChange, set_title, update_settings};
pub use create::{CreateConversation, create};
pub use members::{AddMembers, MemberTarget, add_members, remove_member};
pub use model::{Conversation, Kind, LastMessage, Me, Member, MemberItem, MetaItem, Role};
pub use read::{ConversationPage, ListParams, get, list, load_member_view};
pub(crate) use read::{access, access_with, member_items, views_for};
pub(crate) use unread::inbox_entries;
pub use unread::{Unread, total_unread};
