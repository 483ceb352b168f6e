//! Cursors (`shared/src/adapters/cursor.rs`): random input never opens nor panics, a sealed cursor opens
//! for its user and scope only, and any change to it (a character, a cut, an addition, another
//! key) is `invalid_cursor`.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use proptest::prelude::*;
use serde_json::{Value, json};

use super::{CASES, cases, text_near, tricky_char};
use crate::adapters::cursor::CursorKey;
use crate::adapters::store::StartKey;
use crate::domain::UserId;
use crate::domain::error::ApiError;

fn key() -> CursorKey {
    CursorKey::new(b"property-tests-cursor-secret-of-32-bytes").unwrap()
}

fn user() -> impl Strategy<Value = UserId> {
    prop_oneof!["[a-z0-9|#%]{1,12}", text_near(8)]
        .prop_filter_map("a user id", |raw| raw.parse().ok())
}

/// A `LastEvaluatedKey`: the table's keys are strings and integers.
fn start_key() -> impl Strategy<Value = StartKey> {
    let value = prop_oneof![
        any::<String>().prop_map(Value::String),
        "[A-Z]{1,5}#[0-9A-Z#]{0,30}".prop_map(Value::String),
        any::<i64>().prop_map(|n| json!(n)),
        any::<u64>().prop_map(|n| json!(n)),
    ];
    proptest::collection::btree_map("[A-Za-z#]{1,8}", value, 1..4)
        .prop_map(|m| StartKey(m.into_iter().collect()))
}

fn refused(result: Result<StartKey, ApiError>) -> Result<(), TestCaseError> {
    prop_assert!(
        matches!(result, Err(ApiError::InvalidCursor)),
        "{:?}",
        result.map(|k| k.0)
    );
    Ok(())
}

proptest! {
    #![proptest_config(cases(CASES))]

    #[test]
    fn random_text_and_bytes_never_open(
        raw in prop_oneof![
            any::<String>(),
            "[A-Za-z0-9_.=-]{0,120}",
            (proptest::collection::vec(any::<u8>(), 0..200), proptest::collection::vec(any::<u8>(), 0..40))
                .prop_map(|(a, b)| format!("{}.{}", B64.encode(a), B64.encode(b))),
        ],
        user in user(),
        scope in text_near(8),
    ) {
        refused(key().open(&raw, &user, &scope))?;
    }

    #[test]
    fn a_sealed_cursor_opens_for_its_user_and_scope_only(
        user in user(),
        other in user(),
        scope in text_near(30),
        other_scope in text_near(30),
        start in start_key(),
    ) {
        let key = key();
        let cursor = key.seal(&user, &scope, start.clone()).unwrap();
        prop_assert_eq!(key.open(&cursor, &user, &scope).unwrap(), start);
        if other != user {
            refused(key.open(&cursor, &other, &scope))?;
        }
        if other_scope != scope {
            refused(key.open(&cursor, &user, &other_scope))?;
        }
        let rotated = CursorKey::new(b"another-secret-another-secret-!!").unwrap();
        refused(rotated.open(&cursor, &user, &scope))?;
    }

    #[test]
    fn any_change_to_a_cursor_is_refused(
        user in user(),
        start in start_key(),
        at in any::<prop::sample::Index>(),
        replacement in tricky_char(),
        cut in any::<prop::sample::Index>(),
        suffix in "[A-Za-z0-9_.=-]{1,8}",
    ) {
        let key = key();
        let cursor = key.seal(&user, "inbox", start).unwrap();
        let chars: Vec<char> = cursor.chars().collect();
        let i = at.index(chars.len());
        if chars[i] != replacement {
            let mut edited = chars.clone();
            edited[i] = replacement;
            let edited: String = edited.into_iter().collect();
            refused(key.open(&edited, &user, "inbox"))?;
        }
        let prefix: String = chars[..cut.index(chars.len())].iter().collect();
        refused(key.open(&prefix, &user, "inbox"))?;
        refused(key.open(&format!("{cursor}{suffix}"), &user, "inbox"))?;
    }

    #[test]
    fn a_payload_re_labelled_or_re_signed_is_refused(user in user(), victim in user(), start in start_key()) {
        prop_assume!(user != victim);
        let key = key();
        let theirs = key.seal(&victim, "inbox", start).unwrap();
        let (payload, tag) = theirs.split_once('.').unwrap();
        // Their position, labelled as mine, with their tag.
        let mut json: Value = serde_json::from_slice(&B64.decode(payload).unwrap()).unwrap();
        json["u"] = json!(user.as_str());
        let relabelled = format!("{}.{tag}", B64.encode(json.to_string()));
        refused(key.open(&relabelled, &user, "inbox"))?;
        // The same payload signed with another key, or with no tag at all.
        let forged_tag = aws_lc_rs::hmac::sign(
            &aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, b"guessed-secret-guessed-secret-32"),
            json.to_string().as_bytes(),
        );
        let forged = format!("{}.{}", B64.encode(json.to_string()), B64.encode(forged_tag.as_ref()));
        refused(key.open(&forged, &user, "inbox"))?;
        refused(key.open(&format!("{}.", B64.encode(json.to_string())), &user, "inbox"))?;
    }

    #[test]
    fn secrets_need_32_bytes(secret in proptest::collection::vec(any::<u8>(), 0..64)) {
        prop_assert_eq!(CursorKey::new(&secret).is_ok(), secret.len() >= CursorKey::MIN_SECRET_BYTES);
    }
}
