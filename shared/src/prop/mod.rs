//! Property tests (`proptest`) over every parser and validator of this crate: whatever the input
//! (random Unicode, random bytes, random JSON, real samples with random damage), nothing panics,
//! and each one accepts exactly what the contract says it should: the references here are written
//! from `openapi.yaml` and `asyncapi.yaml` (their patterns and limits), not from the code under test.
//!
//! Case counts are kept moderate (`CASES`, fewer for the slow ones) so that the whole suite runs
//! in seconds in CI; `PROPTEST_CASES` raises them for a longer local run.

mod config;
mod cursor;
mod domain;
mod events;
mod http;
#[cfg(feature = "jwt")]
mod jwt;
mod keys;
mod limits;
mod time;
mod ws;

use proptest::prelude::*;
use proptest::test_runner::Config;

/// The default number of cases of a property.
pub(crate) const CASES: u32 = 256;

/// A config with `cases` cases (or `PROPTEST_CASES`, when set, for a longer run).
pub(crate) fn cases(cases: u32) -> Config {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(cases);
    Config {
        cases,
        ..Config::default()
    }
}

/// Unicode `Cc` (control characters): U+0000 to U+001F and U+007F to U+009F, as `openapi.yaml`
/// spells them.
pub(crate) fn is_cc(c: char) -> bool {
    matches!(c, '\u{0}'..='\u{1f}' | '\u{7f}'..='\u{9f}')
}

/// Unicode `White_Space`, as `openapi.yaml` spells it.
pub(crate) fn is_white_space(c: char) -> bool {
    matches!(
        c,
        '\u{9}'..='\u{d}'
            | ' '
            | '\u{85}'
            | '\u{a0}'
            | '\u{1680}'
            | '\u{2000}'..='\u{200a}'
            | '\u{2028}'
            | '\u{2029}'
            | '\u{202f}'
            | '\u{205f}'
            | '\u{3000}'
    )
}

/// Characters that reach the validators' branches: letters, the separators of keys, line breaks,
/// controls, every kind of white space, multi-byte and astral characters, and any `char`.
pub(crate) fn tricky_char() -> impl Strategy<Value = char> {
    prop_oneof![
        6 => proptest::char::range('a', 'z'),
        1 => proptest::char::range('0', '9'),
        1 => prop::sample::select(vec![
            ' ', '\n', '\r', '\t', '\u{0}', '\u{7f}', '\u{85}', '\u{9f}', '\u{a0}', '\u{1680}',
            '\u{2003}', '\u{2028}', '\u{3000}', '\u{feff}', '\u{200b}', 'é', 'İ', '😀', '#', '%',
            '|', '/', '.', ':', '@', '?', '-', '_', '"', '\\', '{', '}',
        ]),
        1 => any::<char>(),
    ]
}

/// A string of exactly `len` [`tricky_char`]s.
pub(crate) fn string_of(len: usize) -> impl Strategy<Value = String> {
    proptest::collection::vec(tricky_char(), len).prop_map(|chars| chars.into_iter().collect())
}

/// The characters the contract calls invisible (`openapi.yaml`, `DisplayName`): format
/// characters that show nothing, the Hangul fillers, and the bidirectional controls.
pub(crate) fn invisible(c: char) -> bool {
    let bidi = matches!(c as u32, 0x202A..=0x202E | 0x2066..=0x2069 | 0x200E | 0x200F | 0x061C);
    bidi || matches!(
        c as u32,
        0x00AD | 0x034F | 0x115F | 0x1160 | 0x17B4 | 0x17B5 | 0x180E | 0x200B..=0x200F
            | 0x2060..=0x2064 | 0x3164 | 0xFEFF | 0xFFA0
    )
}

/// A user id (`openapi.yaml`'s `UserId`): 1 to 256 bytes, no control or invisible character, in
/// NFC, and not `me` (which names the caller in the routes).
pub(crate) fn user_id_allowed(raw: &str) -> bool {
    use unicode_normalization::UnicodeNormalization;
    !raw.is_empty()
        && raw.len() <= 256
        && !raw.chars().any(is_cc)
        && raw != "me"
        && !raw.chars().any(invisible)
        && raw.nfc().eq(raw.chars())
}

/// Strings whose length (in characters) is small or near `max`, where the limits are.
pub(crate) fn text_near(max: usize) -> impl Strategy<Value = String> {
    // Near the limit: a few tricky characters, then one filler character up to the length (quick
    // to make even for 4,000 characters).
    let long = (
        (0..=8usize).prop_flat_map(string_of),
        prop::sample::select(vec!['a', ' ', 'é', '😀', '\n', '\u{0}']),
        max.saturating_sub(2)..=max + 2,
    )
        .prop_map(|(head, filler, len)| {
            let filler_len = len.saturating_sub(head.chars().count());
            let mut text = head;
            text.extend(std::iter::repeat_n(filler, filler_len));
            text
        });
    prop_oneof![
        3 => (0..=8usize).prop_flat_map(string_of),
        2 => long,
        1 => any::<String>(),
    ]
}

/// Arbitrary JSON: every type, nested a few levels, with keys that are sometimes a request's own.
pub(crate) fn json_value(
    keys: &'static [&'static str],
) -> impl Strategy<Value = serde_json::Value> {
    use serde_json::{Value, json};
    let key = prop_oneof![
        2 => prop::sample::select(keys.to_vec()).prop_map(str::to_owned),
        1 => "[a-zA-Z_]{0,8}",
    ];
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<u64>().prop_map(|n| json!(n)),
        any::<f64>().prop_map(|f| json!(f)),
        (0..=3u64).prop_map(|n| json!(n)),
        any::<String>().prop_map(Value::String),
        "[A-Za-z0-9_ -]{0,12}".prop_map(Value::String),
        Just(json!("01JDQ7Z8K3M4N5P6Q7R8S9T0VW")),
        Just(json!("👍")),
    ];
    leaf.prop_recursive(3, 24, 4, move |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            proptest::collection::btree_map(key.clone(), inner, 0..5)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}
