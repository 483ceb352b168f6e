//! Conversation items as stored, and the contract's Conversation object.

use serde::{Deserialize, Serialize};

use crate::adapters::store::Key;
use crate::adapters::store::keys;
use crate::domain::{ConversationId, DisplayName, MessageId, Title, UserId};
use crate::platform::time::Timestamp;

/// The most members a group holds, its creator included.
pub const MAX_MEMBERS: usize = 1024;
/// The most members a conversation has while its members' inbox entries are moved by each send
/// (3 write units each, in the sender's path). A bigger group is ordered on read instead: its
/// entries sit under [`BIG_PREFIX`] and a list read places it by `META.lastActivityAt`
/// (docs/decisions/0007-hot-conversations.md, part 3). A group never goes back below.
pub const SMALL_GROUP_MEMBERS: u32 = 16;
/// `activityKey` of an archived entry of a small conversation: `~archived#<at>#<c>`, after every
/// shown entry (`<at>#<c>` starts with a digit), so that each list is one range of the index.
pub const ARCHIVED_PREFIX: &str = "~archived#";
/// `activityKey` of every entry of a big conversation: `~big#<c>`, archived or not.
pub const BIG_PREFIX: &str = "~big#";
/// Below every archived and big key, above every shown one: the shown list's upper bound.
pub const SHOWN_BOUND: &str = "~";
/// Members shown in list responses (and in `conversation.*` events).
pub const LIST_MEMBERS: usize = 10;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    Direct,
    Group,
    #[serde(rename = "self")]
    SelfNote,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Owner,
    Member,
}

/// The summary of the newest message, kept on `META` by sends.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LastMessage {
    pub seq: u64,
    pub id: MessageId,
    pub sender_id: UserId,
    pub preview: String,
    pub created_at: Timestamp,
    pub deleted: bool,
}

/// `CONV#c` / `META`: the shared part of a conversation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MetaItem {
    #[serde(rename = "PK")]
    pub pk: String,
    #[serde(rename = "SK")]
    pub sk: String,
    pub id: ConversationId,
    pub kind: Kind,
    pub title: Option<Title>,
    pub created_by: UserId,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    pub last_activity_at: Timestamp,
    pub last_seq: u64,
    pub rev: u64,
    pub last_message: Option<LastMessage>,
    pub member_count: u32,
    /// When the counter last handed out a number (`seq` or `rev`): the latest a number still
    /// being written can have been issued (see `services::sequence`). Absent until the first.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issued_at: Option<Timestamp>,
    /// Every `rev` at or below this has landed or been voided. Absent on a conversation whose
    /// counter never ran: then every `rev` up to `rev` is settled (see [`Self::settled_rev`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub settled_rev: Option<u64>,
    /// The `seq`s filled with a void: not messages, so never unread.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub void_seqs: Vec<u64>,
    /// More than [`SMALL_GROUP_MEMBERS`] members at some point: sends move no inbox entry.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub big: bool,
    /// Members' names as `q` once searched them, kept here before the search entries
    /// (`services::search`): never read, never written, removed by a member change.
    #[serde(default, rename = "memberNames", skip_serializing)]
    pub legacy_member_names: Option<serde::de::IgnoredAny>,
}

impl MetaItem {
    /// The revision below which nothing is still being written.
    pub fn settled_rev(&self) -> u64 {
        self.settled_rev.unwrap_or(self.rev)
    }

    /// Messages above `read_seq` (voids are not messages).
    pub fn unread_above(&self, read_seq: u64) -> u64 {
        let voids = self.void_seqs.iter().filter(|s| **s > read_seq).count() as u64;
        self.last_seq.saturating_sub(read_seq).saturating_sub(voids)
    }
}

/// `CONV#c` / `MEMBER#u`: one member's place in the conversation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MemberItem {
    #[serde(rename = "PK")]
    pub pk: String,
    #[serde(rename = "SK")]
    pub sk: String,
    pub conversation_id: ConversationId,
    pub user_id: UserId,
    pub role: Role,
    pub joined_at: Timestamp,
    pub last_read_seq: u64,
    #[serde(default)]
    pub muted: bool,
    /// When the member last moved their read position themselves (a send moves it too, silently).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_read_at: Option<Timestamp>,
    /// Who added this member after the conversation was created (absent for the first members).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub added_by: Option<UserId>,
}

/// `USER#u` / `INBOX#c`: the conversation in one user's list, placed on the `ByActivity` index by
/// `activityKey`, and what `GET /me/unread` needs of it without reading the conversation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InboxItem {
    #[serde(rename = "PK")]
    pub pk: String,
    #[serde(rename = "SK")]
    pub sk: String,
    pub conversation_id: ConversationId,
    /// Moved by each send while the conversation is small; in a big one, when the entry was made.
    pub last_activity_at: Timestamp,
    /// The `ByActivity` index's sort key: `<lastActivityAt>#<c>` shown, `~archived#<lastActivityAt>#<c>`
    /// archived, `~big#<c>` in a big conversation (see [`InboxItem::place`]).
    pub activity_key: String,
    #[serde(default)]
    pub archived: bool,
    /// In a big conversation: no send moves this entry.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub big: bool,
    /// The conversation's `lastSeq` as of the send that last moved the entry (small ones only;
    /// absent on entries written before it was kept).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_seq: Option<u64>,
    /// My read position as of my last read or send here: never ahead of my membership's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_read_seq: Option<u64>,
    /// As my membership's `muted` (written with it).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub muted: bool,
}

/// `DIRECT#a#b` or `SELF#u` / `DIRECT`, or `CREQ#u#id` / `CREQ`: who got there first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ClaimItem {
    #[serde(rename = "PK")]
    pub pk: String,
    #[serde(rename = "SK")]
    pub sk: String,
    pub conversation_id: ConversationId,
    pub created_at: Timestamp,
    #[serde(rename = "expiresAt", skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<i64>,
}

/// Where an entry is ordered in a list of its kind: `<at>#<c>`, comparable across small and big
/// conversations, shown or archived (the position a list cursor holds).
pub fn activity_key(at: Timestamp, conversation: &ConversationId) -> String {
    format!("{at}#{conversation}")
}

/// The `activityKey` an entry has in each state (the lists are ranges of it).
pub fn placed_key(
    at: Timestamp,
    conversation: &ConversationId,
    archived: bool,
    big: bool,
) -> String {
    match (big, archived) {
        (true, _) => format!("{BIG_PREFIX}{conversation}"),
        (false, true) => format!("{ARCHIVED_PREFIX}{}", activity_key(at, conversation)),
        (false, false) => activity_key(at, conversation),
    }
}

impl MemberItem {
    pub fn new(
        conversation: &ConversationId,
        user: &UserId,
        role: Role,
        joined_at: Timestamp,
        last_read_seq: u64,
    ) -> Self {
        let key = keys::membership(conversation, user);
        Self {
            pk: key.pk,
            sk: key.sk,
            conversation_id: conversation.clone(),
            user_id: user.clone(),
            role,
            joined_at,
            last_read_seq,
            muted: false,
            last_read_at: None,
            added_by: None,
        }
    }
}

impl InboxItem {
    /// A new member's entry, shown, with everything up to `seq` (the conversation's `lastSeq`)
    /// read; `big` as the conversation's `META` says.
    pub fn new(
        user: &UserId,
        conversation: &ConversationId,
        last_activity_at: Timestamp,
        seq: u64,
        big: bool,
    ) -> Self {
        let key = keys::inbox_entry(user, conversation);
        Self {
            pk: key.pk,
            sk: key.sk,
            conversation_id: conversation.clone(),
            last_activity_at,
            activity_key: placed_key(last_activity_at, conversation, false, big),
            archived: false,
            big,
            last_seq: (!big).then_some(seq),
            last_read_seq: Some(seq),
            muted: false,
        }
    }

    /// This entry's `activityKey` once archived or shown.
    pub fn place(&self, archived: bool) -> String {
        placed_key(
            self.last_activity_at,
            &self.conversation_id,
            archived,
            self.big,
        )
    }
}

impl ClaimItem {
    pub fn new(
        key: Key,
        conversation: &ConversationId,
        created_at: Timestamp,
        expires_at: Option<i64>,
    ) -> Self {
        Self {
            pk: key.pk,
            sk: key.sk,
            conversation_id: conversation.clone(),
            created_at,
            expires_at,
        }
    }
}

/// A member as the contract shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Member {
    pub user_id: UserId,
    pub display_name: DisplayName,
    pub role: Role,
    pub joined_at: Timestamp,
    pub last_read_seq: u64,
}

/// The caller's own state in a conversation.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Me {
    pub last_read_seq: u64,
    pub unread_count: u64,
    pub muted: bool,
    pub archived: bool,
}

/// The contract's Conversation object.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Conversation {
    pub id: ConversationId,
    pub kind: Kind,
    pub title: Option<Title>,
    pub created_by: UserId,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    pub last_activity_at: Timestamp,
    pub last_seq: u64,
    pub rev: u64,
    pub last_message: Option<LastMessage>,
    pub member_count: u32,
    pub members: Vec<Member>,
    pub me: Me,
}

impl Conversation {
    pub fn render(meta: MetaItem, members: Vec<Member>, mine: &MemberItem, archived: bool) -> Self {
        let me = Me {
            last_read_seq: mine.last_read_seq,
            unread_count: meta.unread_above(mine.last_read_seq),
            muted: mine.muted,
            archived,
        };
        Self {
            id: meta.id,
            kind: meta.kind,
            title: meta.title,
            created_by: meta.created_by,
            created_at: meta.created_at,
            updated_at: meta.updated_at,
            last_activity_at: meta.last_activity_at,
            last_seq: meta.last_seq,
            rev: meta.rev,
            last_message: meta.last_message,
            member_count: meta.member_count,
            members,
            me,
        }
    }
}

#[cfg(test)]
impl MetaItem {
    /// A conversation's `META` at seq 7, rev 12, with three members, for the plans' unit tests.
    pub(crate) fn for_test(id: &ConversationId, kind: Kind) -> Self {
        let key = keys::conversation_meta(id);
        let at = Timestamp::from_unix_millis(1_700_000_000_000);
        Self {
            pk: key.pk,
            sk: key.sk,
            id: id.clone(),
            kind,
            title: None,
            created_by: "ada".parse().unwrap_or_else(|_| unreachable!()),
            created_at: at,
            updated_at: at,
            last_activity_at: at,
            last_seq: 7,
            rev: 12,
            last_message: None,
            member_count: 3,
            issued_at: None,
            settled_rev: None,
            void_seqs: Vec::new(),
            big: false,
            legacy_member_names: None,
        }
    }
}
