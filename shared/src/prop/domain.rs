//! The domain newtypes (`shared/src/domain/mod.rs`): each accepts exactly what the contract allows,
//! never panics, keeps what it accepts (ULIDs in canonical form), and deserializes through the
//! same check as it parses.

use std::str::FromStr;

use proptest::prelude::*;
use serde::de::DeserializeOwned;

use super::{
    CASES, cases, invisible, is_cc, is_white_space, string_of, text_near, tricky_char,
    user_id_allowed,
};
use crate::domain::{
    AvatarUrl, ClientMessageId, ClientRequestId, ConversationId, DisplayName, Emoji, Limit,
    MessageBody, MessageId, TableName, Title, UserId, ValidationError,
};

/// Parsing and deserializing agree, and an accepted value is kept as it was given.
fn check<T>(raw: &str) -> Result<bool, TestCaseError>
where
    T: FromStr<Err = ValidationError> + DeserializeOwned + AsRef<str> + std::fmt::Debug + PartialEq,
{
    let parsed = raw.parse::<T>();
    let deserialized = serde_json::from_value::<T>(serde_json::Value::String(raw.to_owned()));
    match (&parsed, &deserialized) {
        (Ok(a), Ok(b)) => prop_assert_eq!(a, b),
        (Err(_), Err(_)) => {}
        _ => prop_assert!(false, "parse and deserialize disagree on {:?}", raw),
    }
    if let Ok(value) = &parsed {
        let again = value.as_ref().parse::<T>();
        prop_assert_eq!(
            again.as_ref().ok(),
            Some(value),
            "a value re-parses as itself"
        );
    }
    if let Err(error) = &parsed {
        prop_assert!(!error.message.is_empty());
        prop_assert!(error.field.is_none(), "the caller names the field");
    }
    Ok(parsed.is_ok())
}

/// Text a person reads (`openapi.yaml`'s `GroupTitle`, `DisplayName`, `MessageBody`):
/// 1 to `max` characters, at least one that is not white space, no control character but (in
/// bodies) line breaks and tabs.
fn human_text_allowed(raw: &str, max: usize, line_breaks: bool) -> bool {
    let n = raw.chars().count();
    (1..=max).contains(&n)
        && raw.chars().any(|c| !is_white_space(c))
        && raw
            .chars()
            .all(|c| !is_cc(c) || (line_breaks && matches!(c, '\t' | '\n' | '\r')))
}

/// A display name or title: in NFC, one line of human text with something visible and no
/// bidirectional control.
fn name_allowed(raw: &str, max: usize) -> bool {
    use unicode_normalization::UnicodeNormalization;
    let text: String = raw.nfc().collect();
    let bidi =
        |c: char| matches!(c as u32, 0x202A..=0x202E | 0x2066..=0x2069 | 0x200E | 0x200F | 0x061C);
    human_text_allowed(&text, max, false)
        && text.chars().any(|c| !is_white_space(c) && !invisible(c))
        && !text.chars().any(bidi)
}

fn client_id_allowed(raw: &str) -> bool {
    (1..=64).contains(&raw.len())
        && raw
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

/// `openapi.yaml`'s `Ulid`, `^[0-7][0-9A-HJKMNP-TV-Z]{25}$`, in either case (Crockford base 32
/// is case-insensitive; the id is kept in upper case).
fn ulid_allowed(raw: &str) -> bool {
    const ALPHABET: &str = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";
    let mut chars = raw.chars();
    raw.len() == 26
        && chars.next().is_some_and(|c| ('0'..='7').contains(&c))
        && chars.all(|c| ALPHABET.contains(c.to_ascii_uppercase()) && c.is_ascii())
}

/// `openapi.yaml`'s `avatarUrl`: `^https://[^/?#@:][^/?#@]*([/?#].*)?$`, at most 2,048 bytes,
/// and (its description there) no white space or control character anywhere.
fn avatar_allowed(raw: &str) -> bool {
    let Some(rest) = raw.strip_prefix("https://") else {
        return false;
    };
    let host: &str = rest.split(['/', '?', '#']).next().unwrap_or_default();
    raw.len() <= 2_048
        && !host.is_empty()
        && !host.starts_with(':')
        && !host.contains('@')
        && !raw.chars().any(|c| is_white_space(c) || is_cc(c))
}

fn ulid_text() -> impl Strategy<Value = String> {
    prop_oneof![
        "[0-7][0-9A-HJKMNP-TV-Z]{25}",
        "[0-9a-zA-Z]{24,27}",
        "[8-9A-Za-z][0-9A-Z]{25}",
        (0..=27usize).prop_flat_map(string_of),
        any::<String>(),
    ]
}

fn url_text() -> impl Strategy<Value = String> {
    let tail = (0..=12usize).prop_flat_map(string_of);
    prop_oneof![
        3 => ("https://", "[a-z:@.]{0,8}", "[/?#]?", tail.clone()).prop_map(|(a, b, c, d)| format!("{a}{b}{c}{d}")),
        1 => ("https?://[a-z]{1,4}/", 2_030..=2_050usize).prop_map(|(a, n)| format!("{a}{}", "x".repeat(n - a.len()))),
        1 => tail,
        1 => any::<String>(),
    ]
}

proptest! {
    #![proptest_config(cases(CASES))]

    #[test]
    fn user_ids_are_1_to_256_bytes_without_controls(raw in prop_oneof![text_near(256), text_near(64)]) {
        let allowed = user_id_allowed(&raw);
        prop_assert_eq!(check::<UserId>(&raw)?, allowed, "{:?}", raw);
    }

    #[test]
    fn conversation_and_message_ids_are_ulids_kept_in_upper_case(raw in ulid_text()) {
        let allowed = ulid_allowed(&raw);
        prop_assert_eq!(raw.parse::<ConversationId>().is_ok(), allowed, "{:?}", raw);
        prop_assert_eq!(raw.parse::<MessageId>().is_ok(), allowed, "{:?}", raw);
        if let Ok(id) = raw.parse::<ConversationId>() {
            prop_assert_eq!(id.as_str(), raw.to_ascii_uppercase());
            // Upper case is the one spelling: it is accepted and means the same id.
            prop_assert_eq!(id.as_str().parse::<ConversationId>().ok(), Some(id.clone()));
            let deserialized: ConversationId = serde_json::from_value(serde_json::json!(raw)).unwrap();
            prop_assert_eq!(deserialized, id);
        }
    }

    #[test]
    fn client_ids_are_1_to_64_of_the_token_alphabet(raw in prop_oneof![
        "[A-Za-z0-9_-]{0,66}",
        text_near(64),
    ]) {
        let allowed = client_id_allowed(&raw);
        prop_assert_eq!(check::<ClientMessageId>(&raw)?, allowed, "{:?}", raw);
        prop_assert_eq!(check::<ClientRequestId>(&raw)?, allowed, "{:?}", raw);
    }

    #[test]
    fn display_names_are_one_line_of_1_to_64_characters(raw in text_near(64)) {
        prop_assert_eq!(check::<DisplayName>(&raw)?, name_allowed(&raw, 64), "{:?}", raw);
    }

    #[test]
    fn titles_are_one_line_of_1_to_100_characters(raw in text_near(100)) {
        prop_assert_eq!(check::<Title>(&raw)?, name_allowed(&raw, 100), "{:?}", raw);
    }

    #[test]
    fn message_bodies_are_1_to_4000_characters_with_line_breaks(raw in text_near(4_000)) {
        prop_assert_eq!(check::<MessageBody>(&raw)?, human_text_allowed(&raw, 4_000, true), "{:?}", raw);
    }

    #[test]
    fn avatar_urls_are_https_with_a_host_and_no_white_space(raw in url_text()) {
        prop_assert_eq!(check::<AvatarUrl>(&raw)?, avatar_allowed(&raw), "{:?}", raw);
    }

    #[test]
    fn table_names_follow_dynamodb(raw in prop_oneof!["[A-Za-z0-9_.-]{0,4}", "[A-Za-z0-9_.-]{250,258}", text_near(8)]) {
        let allowed = (3..=255).contains(&raw.len())
            && raw.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
        prop_assert_eq!(check::<TableName>(&raw)?, allowed, "{:?}", raw);
    }

    #[test]
    fn limits_are_integers_from_1_to_100(raw in prop_oneof![
        "[+-]?[0-9]{1,4}",
        (0..=300u32).prop_map(|n| n.to_string()),
        text_near(3),
    ]) {
        let digits = raw.strip_prefix('+').unwrap_or(&raw);
        let allowed = !digits.is_empty()
            && digits.chars().all(|c| c.is_ascii_digit())
            && digits.parse::<u32>().is_ok_and(|n| (1..=100).contains(&n));
        let parsed = Limit::parse_optional(Some(&raw));
        prop_assert_eq!(parsed.is_ok(), allowed, "{:?}", raw);
        match parsed {
            Ok(limit) => prop_assert_eq!(Some(limit.get()), digits.parse::<usize>().ok()),
            Err(error) => prop_assert_eq!(error.field.as_deref(), Some("limit")),
        }
    }

    #[test]
    fn reactions_are_one_fully_qualified_emoji(
        first in prop::sample::select(emojis::iter().collect::<Vec<_>>()),
        second in prop::sample::select(emojis::iter().collect::<Vec<_>>()),
        noise in proptest::collection::vec(tricky_char(), 0..3),
        raw in any::<String>(),
    ) {
        // Every emoji of the list, in its fully-qualified form, is one reaction (when short enough).
        let qualified = first.as_str();
        prop_assert_eq!(check::<Emoji>(qualified)?, qualified.len() <= 32, "{:?}", qualified);
        // Two emoji, or one with anything around it, are not.
        let pair = format!("{qualified}{}", second.as_str());
        prop_assert!(!check::<Emoji>(&pair)?, "{:?}", pair);
        let noise: String = noise.into_iter().collect();
        if !noise.is_empty() {
            let noisy = format!("{qualified}{noise}");
            let accepted = check::<Emoji>(&noisy)?;
            // Some noise completes another emoji (a skin tone, a variation selector …): then it
            // is that emoji, fully qualified.
            prop_assert_eq!(accepted, emojis::get(&noisy).is_some_and(|e| e.as_str() == noisy) && noisy.len() <= 32);
        }
        // Anything accepted is an emoji of the list, written as the list writes it.
        if check::<Emoji>(&raw)? {
            prop_assert_eq!(emojis::get(&raw).map(|e| e.as_str()), Some(raw.as_str()));
        }
    }
}

/// Every emoji and every skin tone of the list: the fully-qualified form within 32 bytes is
/// accepted, another spelling of the same emoji is refused.
#[test]
fn every_listed_emoji_and_skin_tone_is_a_reaction_in_its_qualified_form() {
    let mut accepted = 0;
    for emoji in emojis::iter() {
        for form in std::iter::once(emoji).chain(emoji.skin_tones().into_iter().flatten()) {
            let raw = form.as_str();
            assert_eq!(raw.parse::<Emoji>().is_ok(), raw.len() <= 32, "{raw:?}");
            accepted += usize::from(raw.len() <= 32);
            let unqualified = raw.replace('\u{fe0f}', "");
            if unqualified != raw {
                assert!(unqualified.parse::<Emoji>().is_err(), "{unqualified:?}");
            }
        }
    }
    assert!(accepted > 3_000, "{accepted}");
}
