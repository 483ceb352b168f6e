//! The search entries behind `GET /conversations?q=`: in each user's partition, one small item per
//! word of each text that user can find a conversation by, so that `q` is one query by prefix
//! (docs/decisions/0007-hot-conversations.md, part 3).
//!
//! What a user finds a conversation by: its title, and in a small conversation (at most 16
//! members) the current display name of every other member; never their own name. Each text is
//! entered once per word start ("ada lovelace" as `ada lovelace` and `lovelace`), so `q` matches
//! the start of any word. `stream-fan-out` keeps the entries (`services::indexing`): it reads the
//! changes (a conversation made or renamed, a member in or out, a profile renamed) off the
//! table's stream, so they follow a write by the stream's delay, not in its answer.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use crate::adapters::store::keys::{self, escape, prefix};
use crate::adapters::store::{DynamoStore, Key, Query, StoreError};
use crate::domain::{ConversationId, UserId};

/// Word starts entered per text: a display name or title rarely has more words worth starting a
/// search from, and each one is a write unit per viewer.
pub const MAX_WORDS: usize = 4;
/// Characters of a text kept in a key (a title holds at most 100).
const MAX_TEXT_CHARS: usize = 100;

/// What a text belongs to: the conversation's title, or one member's display name.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Source {
    Title,
    Member(UserId),
}

impl Source {
    fn key_part(&self) -> String {
        match self {
            Self::Title => "title".to_owned(),
            Self::Member(user) => format!("m:{}", escape(user.as_str())),
        }
    }
}

/// `USER#v` / `FIND#<text from a word start>#<c>#<source>`: `v` finds `c` by a text.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SearchItem {
    #[serde(rename = "PK")]
    pub pk: String,
    #[serde(rename = "SK")]
    pub sk: String,
    pub conversation_id: ConversationId,
}

/// The normalised form of search text and of `q`: lower case, whitespace runs as one space, with
/// `%` and `#` escaped as in keys (so `q` can never reach past the text into the key's ids).
pub fn normalise(text: &str) -> String {
    let lower = text.to_lowercase();
    let words: Vec<&str> = lower.split_whitespace().collect();
    escape(&words.join(" "))
}

/// The texts entered for one text: from each of its first [`MAX_WORDS`] word starts to the end,
/// at most 100 characters each.
pub fn word_starts(text: &str) -> Vec<String> {
    let whole = normalise(text);
    let mut starts = vec![0];
    starts.extend(
        whole
            .char_indices()
            .filter(|(_, c)| *c == ' ')
            .map(|(i, _)| i + 1),
    );
    let mut out: Vec<String> = starts
        .into_iter()
        .take(MAX_WORDS)
        .map(|i| whole[i..].chars().take(MAX_TEXT_CHARS).collect())
        .filter(|s: &String| !s.is_empty())
        .collect();
    out.dedup();
    out
}

/// The keys `viewer` has for finding `conversation` by `text` from `source`.
pub fn keys_for(
    viewer: &UserId,
    conversation: &ConversationId,
    source: &Source,
    text: &str,
) -> Vec<Key> {
    word_starts(text)
        .into_iter()
        .map(|words| {
            Key::new(
                keys::user_pk(viewer),
                format!(
                    "{}{words}#{conversation}#{}",
                    prefix::FIND,
                    source.key_part()
                ),
            )
        })
        .collect()
}

/// The items for those keys.
pub fn items_for(
    viewer: &UserId,
    conversation: &ConversationId,
    source: &Source,
    text: &str,
) -> Vec<SearchItem> {
    keys_for(viewer, conversation, source, text)
        .into_iter()
        .map(|key| SearchItem {
            pk: key.pk,
            sk: key.sk,
            conversation_id: conversation.clone(),
        })
        .collect()
}

/// What one conversation is found by, for each of its members: the title, and (small ones) the
/// members' names, each member's own left out.
#[derive(Debug, Clone, Default)]
pub struct Texts {
    pub title: Option<String>,
    /// Every member's current display name; empty in a big conversation.
    pub names: Vec<(UserId, String)>,
}

impl Texts {
    /// Every entry `viewer` has for `conversation`.
    pub fn items(&self, viewer: &UserId, conversation: &ConversationId) -> Vec<SearchItem> {
        let title = self
            .title
            .iter()
            .flat_map(|t| items_for(viewer, conversation, &Source::Title, t));
        let names = self
            .names
            .iter()
            .filter(|(user, _)| user != viewer)
            .flat_map(|(user, name)| {
                items_for(viewer, conversation, &Source::Member(user.clone()), name)
            });
        title.chain(names).collect()
    }
}

/// The conversations `viewer` finds by `q` (already lower-cased and trimmed): one consistent query
/// of their entries by prefix, every page.
pub async fn matching(
    store: &DynamoStore,
    viewer: &UserId,
    q: &str,
) -> Result<BTreeSet<ConversationId>, StoreError> {
    let query = Query::prefix(
        keys::user_pk(viewer),
        format!("{}{}", prefix::FIND, normalise(q)),
    );
    let found: Vec<SearchItem> = store.query_all(&query).await?;
    Ok(found.into_iter().map(|i| i.conversation_id).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_text_is_entered_from_each_word_start() {
        assert_eq!(
            word_starts("  Ada   LOVELACE "),
            ["ada lovelace", "lovelace"]
        );
        assert_eq!(word_starts("a b c d e f").len(), MAX_WORDS);
        assert_eq!(word_starts("#1 fan"), ["%231 fan", "fan"]);
        assert!(word_starts("   ").is_empty());
        assert_eq!(word_starts(&"x".repeat(150))[0].len(), 100);
    }

    #[test]
    fn a_viewer_never_finds_a_conversation_by_their_own_name() {
        let (ada, bob): (UserId, UserId) = ("ada".parse().unwrap(), "bob#1".parse().unwrap());
        let id = ConversationId::generate();
        let texts = Texts {
            title: Some("Trip".to_owned()),
            names: vec![
                (ada.clone(), "Ada L".to_owned()),
                (bob.clone(), "Bob".to_owned()),
            ],
        };
        let sks: Vec<String> = texts.items(&ada, &id).into_iter().map(|i| i.sk).collect();
        assert_eq!(
            sks,
            [
                format!("FIND#trip#{id}#title"),
                format!("FIND#bob#{id}#m:bob%231"),
            ]
        );
        assert!(
            texts
                .items(&bob, &id)
                .iter()
                .any(|i| i.sk.contains("ada l"))
        );
    }
}
