//! Domain newtypes that validate on parse ("parse, don't validate"): once a value has one of these
//! types it is known to meet the contract's limits, so services never re-check them.
//!
//! Each type parses from `&str` with [`FromStr`] and deserializes through the same check, so a bad
//! value in a request body fails deserialization with the same message. Lengths are counted in
//! Unicode scalar values (`char`s), as the contract says, except where it says bytes.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Why a value was refused; `field` names the request field once the caller knows it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ValidationError {
    pub field: Option<String>,
    pub message: String,
}

impl ValidationError {
    pub fn new(message: impl Into<String>) -> Self {
        Self {
            field: None,
            message: message.into(),
        }
    }

    /// Names the field the value came from (`title`, `participantIds[2]` …).
    pub fn at(mut self, field: impl Into<String>) -> Self {
        self.field = Some(field.into());
        self
    }
}

impl fmt::Display for ValidationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.field {
            Some(field) => write!(f, "{field}: {}", self.message),
            None => f.write_str(&self.message),
        }
    }
}

/// Declares a string newtype whose only constructor is its `FromStr` check, with `as_str`,
/// `Display`, and serde through the same check.
macro_rules! string_newtype {
    ($(#[$meta:meta])* $name:ident, $check:expr) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl FromStr for $name {
            type Err = ValidationError;
            fn from_str(raw: &str) -> Result<Self, Self::Err> {
                let check: fn(&str) -> Result<String, ValidationError> = $check;
                check(raw).map(Self)
            }
        }

        impl TryFrom<String> for $name {
            type Error = ValidationError;
            fn try_from(raw: String) -> Result<Self, Self::Error> {
                raw.parse()
            }
        }

        impl From<$name> for String {
            fn from(value: $name) -> String {
                value.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }
    };
}

fn char_count_between(raw: &str, min: usize, max: usize) -> Result<(), ValidationError> {
    let n = raw.chars().count();
    if n < min {
        Err(ValidationError::new(match min {
            1 => "must not be empty".to_owned(),
            _ => format!("at least {min} characters"),
        }))
    } else if n > max {
        Err(ValidationError::new(format!("at most {max} characters")))
    } else {
        Ok(())
    }
}

/// Text a person reads: not only whitespace, no control characters other than line breaks and tabs.
fn human_text(raw: &str, max: usize, allow_newlines: bool) -> Result<String, ValidationError> {
    char_count_between(raw, 1, max)?;
    if raw.chars().all(char::is_whitespace) {
        return Err(ValidationError::new("must not be only whitespace"));
    }
    let bad_control =
        |c: char| c.is_control() && !(allow_newlines && matches!(c, '\n' | '\r' | '\t'));
    if raw.chars().any(bad_control) {
        return Err(ValidationError::new("must not contain control characters"));
    }
    Ok(raw.to_owned())
}

/// `[A-Za-z0-9_-]{1,64}`: the syntax of client-chosen idempotency ids.
fn client_token(raw: &str) -> Result<String, ValidationError> {
    if raw.is_empty() || raw.len() > 64 {
        return Err(ValidationError::new("1 to 64 characters"));
    }
    if !raw
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    {
        return Err(ValidationError::new("only letters, digits, '_' and '-'"));
    }
    Ok(raw.to_owned())
}

fn ulid(raw: &str) -> Result<String, ValidationError> {
    // 26 characters of base 32 carry 130 bits and a ULID 128, so the first is at most `7`. The
    // `ulid` crate drops the excess bits instead of refusing them, which made `8…` another
    // spelling of `0…`; the ULID spec says to refuse.
    if !raw.starts_with(|c: char| ('0'..='7').contains(&c)) {
        return Err(ValidationError::new("not a valid id"));
    }
    ulid::Ulid::from_string(raw)
        .map(|u| u.to_string())
        .map_err(|_| ValidationError::new("not a valid id"))
}

string_newtype!(
    /// A user's id: the JWT `sub`, opaque. It may hold `|`, `#` or `%`, so it is escaped wherever it
    /// becomes part of a key (see [`crate::keys`]).
    UserId,
    |raw| {
        if raw.is_empty() || raw.len() > 256 {
            return Err(ValidationError::new("1 to 256 bytes"));
        }
        if raw.chars().any(char::is_control) {
            return Err(ValidationError::new("must not contain control characters"));
        }
        Ok(raw.to_owned())
    }
);

string_newtype!(
    /// A conversation id: a ULID in canonical (upper-case Crockford) form.
    ConversationId,
    ulid
);

string_newtype!(
    /// A message id: a ULID in canonical form.
    MessageId,
    ulid
);

string_newtype!(
    /// The client's idempotency id for a send: same sender and id means the same message.
    ClientMessageId,
    client_token
);

string_newtype!(
    /// The client's idempotency id for a group creation.
    ClientRequestId,
    client_token
);

string_newtype!(
    /// A profile's display name: 1 to 64 characters, one line.
    DisplayName,
    |raw| human_text(raw, 64, false)
);

string_newtype!(
    /// A group's title: 1 to 100 characters, one line.
    Title,
    |raw| human_text(raw, 100, false)
);

string_newtype!(
    /// A message body: 1 to 4,000 characters, not only whitespace; line breaks allowed.
    MessageBody,
    |raw| human_text(raw, 4_000, true)
);

string_newtype!(
    /// An avatar: an `https` URL of at most 2,048 bytes with a host and no whitespace.
    AvatarUrl,
    |raw| {
        if raw.len() > 2_048 {
            return Err(ValidationError::new("at most 2048 bytes"));
        }
        let Some(rest) = raw.strip_prefix("https://") else {
            return Err(ValidationError::new("must be an https URL"));
        };
        let host = rest.split(['/', '?', '#']).next().unwrap_or_default();
        if host.is_empty() || host.starts_with(':') || host.contains('@') {
            return Err(ValidationError::new("must name a host"));
        }
        if raw.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(ValidationError::new("must not contain whitespace"));
        }
        Ok(raw.to_owned())
    }
);

string_newtype!(
    /// A reaction: one fully-qualified emoji (Unicode's list, as the `emojis` crate carries it),
    /// at most 32 bytes. An unqualified form (a heart without its variation selector) is refused,
    /// so one emoji has one spelling.
    Emoji,
    |raw| {
        if raw.len() > 32 {
            return Err(ValidationError::new("at most 32 bytes"));
        }
        match emojis::get(raw) {
            Some(emoji) if emoji.as_str() == raw => Ok(raw.to_owned()),
            Some(_) => Err(ValidationError::new("use the fully-qualified emoji")),
            None => Err(ValidationError::new("one emoji")),
        }
    }
);

string_newtype!(
    /// A DynamoDB table name: 3 to 255 characters of `[A-Za-z0-9_.-]`.
    TableName,
    |raw| {
        let ok_chars = raw
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'));
        if (3..=255).contains(&raw.len()) && ok_chars {
            Ok(raw.to_owned())
        } else {
            Err(ValidationError::new("3 to 255 characters of [A-Za-z0-9_.-]"))
        }
    }
);

impl DisplayName {
    /// The name of a profile whose token offers none: `user`.
    pub fn fallback() -> Self {
        Self("user".to_owned())
    }
}

impl ConversationId {
    /// A new, time-ordered id.
    pub fn generate() -> Self {
        Self(ulid::Ulid::new().to_string())
    }
}

impl MessageId {
    pub fn generate() -> Self {
        Self(ulid::Ulid::new().to_string())
    }
}

/// A page size: 1 to 100, 20 when the request names none.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct Limit(u8);

impl Limit {
    pub const DEFAULT: Limit = Limit(20);
    pub const MAX: u8 = 100;

    pub fn get(self) -> usize {
        usize::from(self.0)
    }

    /// `None` (the parameter was absent) is the default.
    pub fn parse_optional(raw: Option<&str>) -> Result<Self, ValidationError> {
        raw.map_or(Ok(Self::DEFAULT), str::parse)
    }
}

impl Default for Limit {
    fn default() -> Self {
        Self::DEFAULT
    }
}

impl FromStr for Limit {
    type Err = ValidationError;
    fn from_str(raw: &str) -> Result<Self, Self::Err> {
        match raw.parse::<u8>() {
            Ok(n) if (1..=Self::MAX).contains(&n) => Ok(Self(n)),
            _ => Err(ValidationError::new("an integer from 1 to 100").at("limit")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_tokens_follow_the_contract_syntax() {
        assert!("c-123_ABC".parse::<ClientMessageId>().is_ok());
        assert!("a".repeat(64).parse::<ClientMessageId>().is_ok());
        assert!("a".repeat(65).parse::<ClientMessageId>().is_err());
        assert!("".parse::<ClientMessageId>().is_err());
        assert!("has space".parse::<ClientRequestId>().is_err());
        assert!("é".parse::<ClientRequestId>().is_err());
    }

    #[test]
    fn message_bodies_count_characters_not_bytes() {
        let four_thousand_emoji = "😀".repeat(4_000);
        assert_eq!(four_thousand_emoji.len(), 16_000);
        assert!(four_thousand_emoji.parse::<MessageBody>().is_ok());
        assert!("😀".repeat(4_001).parse::<MessageBody>().is_err());
        assert!(" \n\t ".parse::<MessageBody>().is_err());
        assert!("".parse::<MessageBody>().is_err());
        assert!("line one\nline two".parse::<MessageBody>().is_ok());
        assert!("bell\u{7}".parse::<MessageBody>().is_err());
    }

    #[test]
    fn titles_and_names_are_single_lines_within_their_limits() {
        assert!("a".repeat(100).parse::<Title>().is_ok());
        let err = "a".repeat(101).parse::<Title>().unwrap_err().at("title");
        assert_eq!(err.to_string(), "title: at most 100 characters");
        assert!("two\nlines".parse::<Title>().is_err());
        assert!("Ada".parse::<DisplayName>().is_ok());
        assert!("a".repeat(65).parse::<DisplayName>().is_err());
        assert!("   ".parse::<DisplayName>().is_err());
    }

    #[test]
    fn avatar_urls_must_be_https_with_a_host() {
        assert!("https://cdn.example.com/a.png".parse::<AvatarUrl>().is_ok());
        assert!("http://cdn.example.com/a.png".parse::<AvatarUrl>().is_err());
        assert!("https:///a.png".parse::<AvatarUrl>().is_err());
        assert!("https://a b/".parse::<AvatarUrl>().is_err());
        let long = format!("https://e.com/{}", "x".repeat(2_048));
        assert!(long.parse::<AvatarUrl>().is_err());
    }

    #[test]
    fn user_ids_are_opaque_but_bounded() {
        assert!("auth0|abc#1%".parse::<UserId>().is_ok());
        assert!("".parse::<UserId>().is_err());
        assert!("x".repeat(257).parse::<UserId>().is_err());
        assert!("a\u{0}b".parse::<UserId>().is_err());
    }

    #[test]
    fn ulids_are_canonicalised() {
        let id = ConversationId::generate();
        assert_eq!(id.as_str().len(), 26);
        let lower: ConversationId = id.as_str().to_lowercase().parse().unwrap();
        assert_eq!(lower, id);
        assert!("not-a-ulid".parse::<ConversationId>().is_err());
        // Past 128 bits: refused, never read as the id with its top bits dropped.
        assert!(
            "7ZZZZZZZZZZZZZZZZZZZZZZZZZ"
                .parse::<ConversationId>()
                .is_ok()
        );
        for first in ['8', '9', 'Z', 'z'] {
            let alias = format!("{first}{}", &id.as_str()[1..]);
            assert!(alias.parse::<ConversationId>().is_err(), "{alias}");
        }
    }

    #[test]
    fn limits_default_to_twenty_and_stay_within_one_to_a_hundred() {
        assert_eq!(Limit::parse_optional(None).unwrap().get(), 20);
        assert_eq!(Limit::parse_optional(Some("100")).unwrap().get(), 100);
        for bad in ["0", "101", "-1", "ten", ""] {
            let err = Limit::parse_optional(Some(bad)).unwrap_err();
            assert_eq!(err.field.as_deref(), Some("limit"), "{bad}");
        }
    }

    #[test]
    fn deserialisation_runs_the_same_check() {
        let ok: Title = serde_json::from_str("\"Team\"").unwrap();
        assert_eq!(ok.as_str(), "Team");
        let err = serde_json::from_str::<Title>("\"\"").unwrap_err();
        assert!(err.to_string().contains("must not be empty"), "{err}");
    }

    #[test]
    fn reactions_are_single_fully_qualified_emoji() {
        for ok in ["👍", "❤️", "👍🏽", "🏳️‍🌈", "👩‍👩‍👧‍👦"] {
            assert!(ok.parse::<Emoji>().is_ok(), "{ok}");
        }
        for bad in ["", "x", "👍👍", "❤", ":+1:", "👍 "] {
            assert!(bad.parse::<Emoji>().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn table_names_follow_dynamodb_rules() {
        assert!("chat-dev_1.x".parse::<TableName>().is_ok());
        assert!("ab".parse::<TableName>().is_err());
        assert!("a/b/c".parse::<TableName>().is_err());
    }
}
