//! JWT verification (`shared/src/edge/jwt.rs`, feature `jwt`) as API Gateway's JWT authorizer does it:
//! random text never passes nor panics; a token signed by the issuer's key passes exactly when
//! its header and claims are what the authorizer accepts (the reference below, from
//! `openapi.yaml`'s security scheme and API Gateway's rules); any change to a good token is
//! refused.

use std::sync::OnceLock;

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::{KeyPair, KeySize, PublicKeyComponents};
use aws_lc_rs::signature::{KeyPair as _, RSA_PKCS1_SHA256};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use proptest::prelude::*;
use serde_json::{Map, Value, json};

use super::{cases, json_value, tricky_char};
use crate::edge::jwt::{JwtPolicy, KeySet, claims_as_strings, verify};

const ISSUER: &str = "https://issuer.example";
const AUDIENCE: &str = "chat-web";
const KID: &str = "key-1";

struct Signer {
    key: KeyPair,
    keys: KeySet,
}

/// One RSA key for the whole module (making one takes a while), and its JWKS.
fn signer() -> &'static Signer {
    static SIGNER: OnceLock<Signer> = OnceLock::new();
    SIGNER.get_or_init(|| {
        let key = KeyPair::generate(KeySize::Rsa2048).unwrap();
        let parts = PublicKeyComponents::<Vec<u8>>::from(key.public_key());
        let jwks = json!({"keys": [{"kty": "RSA", "use": "sig", "alg": "RS256", "kid": KID,
                                    "n": B64.encode(&parts.n), "e": B64.encode(&parts.e)}]});
        let keys = KeySet::from_jwks_json(&jwks.to_string()).unwrap();
        Signer { key, keys }
    })
}

fn policy() -> JwtPolicy {
    JwtPolicy {
        issuer: ISSUER.to_owned(),
        audiences: vec![AUDIENCE.to_owned(), "chat-ios".to_owned()],
    }
}

fn sign(header: &Value, claims: &Value) -> String {
    let input = format!(
        "{}.{}",
        B64.encode(header.to_string()),
        B64.encode(claims.to_string())
    );
    let signer = signer();
    let mut signature = vec![0; signer.key.public_modulus_len()];
    signer
        .key
        .sign(
            &RSA_PKCS1_SHA256,
            &SystemRandom::new(),
            input.as_bytes(),
            &mut signature,
        )
        .unwrap();
    format!("{input}.{}", B64.encode(signature))
}

fn now() -> i64 {
    at_now().unix_seconds()
}

fn at_now() -> crate::platform::time::Timestamp {
    crate::platform::time::Clock::system().now()
}

/// A claim's value: absent (`None`), or one of the shapes that matter.
fn time_claim(now: i64) -> impl Strategy<Value = Option<Value>> {
    prop_oneof![
        Just(None),
        Just(Some(Value::Null)),
        (100..1_000_000i64).prop_map(move |d| Some(json!(now + d))),
        (100..1_000_000i64).prop_map(move |d| Some(json!(now - d))),
        (100..1_000_000i64).prop_map(move |d| Some(json!(now as f64 + d as f64 + 0.25))),
        (100..1_000_000i64).prop_map(move |d| Some(json!(now as f64 - d as f64 - 0.25))),
        Just(Some(json!(-5))),
        (100..1_000_000i64).prop_map(move |d| Some(json!((now + d).to_string()))),
        Just(Some(json!(true))),
    ]
}

fn text_claim(good: &'static [&'static str]) -> impl Strategy<Value = Option<Value>> {
    let good: Vec<Value> = good.iter().map(|g| json!(g)).collect();
    prop_oneof![
        Just(None),
        Just(Some(Value::Null)),
        prop::sample::select(good.clone()).prop_map(Some),
        "[a-z:/.-]{0,12}".prop_map(|s| Some(json!(s))),
        proptest::collection::vec(
            prop_oneof![
                prop::sample::select(good),
                "[a-z]{0,5}".prop_map(|s| json!(s))
            ],
            0..3
        )
        .prop_map(|v| Some(Value::Array(v))),
        Just(Some(json!(7))),
    ]
}

/// What the authorizer accepts (API Gateway's rules, `openapi.yaml`): `iss` the issuer's, `exp` a
/// time in the future, `nbf` and `iat` (when present, even null) ones in the past, `aud` (a
/// string, or an array) naming one of the audiences or, without `aud`, `client_id` naming one.
/// NumericDate is a number of seconds, not negative, and may have a fraction.
fn accepted(claims: &Map<String, Value>, now: i64) -> bool {
    let present = |name: &str| claims.get(name).filter(|v| !v.is_null());
    let time = |v: &Value| {
        v.as_u64()
            .map(|n| n as f64)
            .or(v.as_f64().filter(|f| *f >= 0.0))
    };
    let iss_ok = present("iss") == Some(&json!(ISSUER));
    let exp_ok = present("exp")
        .and_then(time)
        .is_some_and(|exp| exp > now as f64);
    // A null `nbf` is a malformed one, not an absent one; `iat` likewise.
    let past_ok = |name: &str| match claims.get(name) {
        None => true,
        Some(v) => time(v).is_some_and(|at| at <= now as f64),
    };
    let nbf_ok = past_ok("nbf") && past_ok("iat");
    let audiences = policy().audiences;
    let names_one = |v: &Value| match v {
        Value::String(s) => audiences.contains(s),
        Value::Array(items) => items
            .iter()
            .any(|i| i.as_str().is_some_and(|s| audiences.iter().any(|a| a == s))),
        _ => false,
    };
    let aud_ok = match present("aud") {
        Some(aud) => names_one(aud),
        None => present("client_id").is_some_and(|id| id.is_string() && names_one(id)),
    };
    iss_ok && exp_ok && nbf_ok && aud_ok
}

fn claims() -> impl Strategy<Value = Map<String, Value>> {
    let now = now();
    (
        text_claim(&[ISSUER]),
        text_claim(&[AUDIENCE, "chat-ios"]),
        text_claim(&[AUDIENCE]),
        time_claim(now),
        time_claim(now),
        time_claim(now),
        "[a-z|#]{0,8}",
    )
        .prop_map(|(iss, aud, client_id, exp, nbf, iat, sub)| {
            let mut claims = Map::new();
            claims.insert("sub".to_owned(), json!(sub));
            for (name, value) in [
                ("iss", iss),
                ("aud", aud),
                ("client_id", client_id),
                ("exp", exp),
                ("nbf", nbf),
                ("iat", iat),
            ] {
                if let Some(value) = value {
                    claims.insert(name.to_owned(), value);
                }
            }
            claims
        })
}

fn good_claims() -> Value {
    json!({"iss": ISSUER, "aud": AUDIENCE, "sub": "ada", "exp": now() + 600, "nbf": now() - 5})
}

proptest! {
    #![proptest_config(cases(64))]

    #[test]
    fn random_text_never_passes(raw in prop_oneof![
        any::<String>(),
        "[A-Za-z0-9_-]{0,40}\\.[A-Za-z0-9_-]{0,40}\\.[A-Za-z0-9_-]{0,40}",
        (json_value(&["alg", "kid", "typ"]), json_value(&["iss", "aud", "exp"]), proptest::collection::vec(any::<u8>(), 0..300))
            .prop_map(|(h, c, s)| format!("{}.{}.{}", B64.encode(h.to_string()), B64.encode(c.to_string()), B64.encode(s))),
    ]) {
        prop_assert!(verify(&raw, &signer().keys, &policy(), at_now()).is_err());
    }

    #[test]
    fn a_signed_token_passes_exactly_when_its_claims_are_acceptable(claims in claims()) {
        let token = sign(&json!({"alg": "RS256", "typ": "JWT", "kid": KID}), &Value::Object(claims.clone()));
        let result = verify(&token, &signer().keys, &policy(), at_now());
        prop_assert_eq!(result.is_ok(), accepted(&claims, now()), "{:?}: {:?}", claims, result);
        if let Ok(verified) = result {
            prop_assert_eq!(verified.get("sub"), claims.get("sub"));
        }
    }

    #[test]
    fn only_rs256_with_a_known_kid_passes(
        alg in prop_oneof![Just(json!("RS256")), Just(json!("HS256")), Just(json!("none")), Just(json!("RS384")),
                           Just(json!("PS256")), Just(json!("ES256")), Just(json!("rs256")), Just(json!(null))],
        kid in prop_oneof![Just(Some(json!(KID))), Just(None), Just(Some(json!("key-2"))), Just(Some(json!(1)))],
    ) {
        let mut header = json!({"alg": alg, "typ": "JWT"});
        if let Some(kid) = &kid {
            header["kid"] = kid.clone();
        }
        let token = sign(&header, &good_claims());
        let ok = alg == json!("RS256") && kid == Some(json!(KID));
        prop_assert_eq!(verify(&token, &signer().keys, &policy(), at_now()).is_ok(), ok, "{}", header);
    }

    #[test]
    fn any_change_to_a_good_token_is_refused(
        at in any::<prop::sample::Index>(),
        replacement in tricky_char(),
        cut in any::<prop::sample::Index>(),
    ) {
        let token = sign(&json!({"alg": "RS256", "typ": "JWT", "kid": KID}), &good_claims());
        prop_assert!(verify(&token, &signer().keys, &policy(), at_now()).is_ok());
        let chars: Vec<char> = token.chars().collect();
        let i = at.index(chars.len());
        if chars[i] != replacement {
            let mut edited = chars.clone();
            edited[i] = replacement;
            let edited: String = edited.into_iter().collect();
            prop_assert!(verify(&edited, &signer().keys, &policy(), at_now()).is_err(), "{}", i);
        }
        let prefix: String = chars[..cut.index(chars.len())].iter().collect();
        prop_assert!(verify(&prefix, &signer().keys, &policy(), at_now()).is_err());
    }

    #[test]
    fn claims_become_strings_without_panicking(value in json_value(&["sub", "exp", "aud", "groups"])) {
        if let Value::Object(map) = value {
            let flat = claims_as_strings(&map);
            prop_assert_eq!(flat.len(), map.len());
            for (k, v) in &map {
                if let Value::String(s) = v {
                    prop_assert_eq!(&flat[k], s);
                }
            }
        }
    }

    #[test]
    fn any_jwks_document_is_read_or_refused_without_panicking(
        doc in prop_oneof![
            any::<String>(),
            json_value(&["keys", "kty", "kid", "n", "e", "alg", "use"]).prop_map(|v| v.to_string()),
            proptest::collection::vec(
                ("[A-Za-z0-9_-]{0,40}", "[A-Za-z0-9_-]{0,6}", prop_oneof![Just("RSA"), Just("EC")]),
                0..3,
            ).prop_map(|keys| json!({"keys": keys.into_iter().map(|(n, e, kty)| json!({"kty": kty, "kid": "k", "n": n, "e": e})).collect::<Vec<_>>()}).to_string()),
        ]
    ) {
        if let Ok(keys) = KeySet::from_jwks_json(&doc) {
            // Whatever was read, a token of our key does not verify against it (no kid `key-1`).
            let token = sign(&json!({"alg": "RS256", "kid": KID}), &good_claims());
            prop_assert_eq!(keys.contains(KID), verify(&token, &keys, &policy(), at_now()).is_ok());
        }
    }
}

/// The two tokens the library alone would let through: `iss` as an array that holds the issuer,
/// and an `aud` of another type beside a good `client_id`. Both are signed by the issuer's key.
#[test]
fn iss_is_one_string_and_a_malformed_aud_is_not_an_absent_one() {
    let header = json!({"alg": "RS256", "typ": "JWT", "kid": KID});
    let mut claims = good_claims();
    claims["iss"] = json!(["https://other.example", ISSUER]);
    assert!(verify(&sign(&header, &claims), &signer().keys, &policy(), at_now()).is_err());
    let mut claims = good_claims();
    claims["aud"] = json!(7);
    claims["client_id"] = json!(AUDIENCE);
    assert!(verify(&sign(&header, &claims), &signer().keys, &policy(), at_now()).is_err());
    claims["aud"] = json!(null);
    assert!(verify(&sign(&header, &claims), &signer().keys, &policy(), at_now()).is_ok());
}

/// RFC 8725 asks a verifier to refuse a `crit` header it does not understand (it understands none),
/// and `exp` is strictly in the future: a token is refused at its `exp` itself.
#[test]
fn crit_is_refused_and_exp_is_strictly_in_the_future() {
    let claims = good_claims();
    let with_crit = json!({"alg": "RS256", "typ": "JWT", "kid": KID, "crit": ["b64"], "b64": true});
    assert!(
        verify(
            &sign(&with_crit, &claims),
            &signer().keys,
            &policy(),
            at_now()
        )
        .is_err()
    );
    let header = json!({"alg": "RS256", "typ": "JWT", "kid": KID});
    let at = crate::platform::time::Timestamp::from_unix_millis(1_800_000_000_000);
    let mut claims = good_claims();
    claims["nbf"] = json!(1_799_999_000);
    claims["exp"] = json!(1_800_000_000);
    let token = sign(&header, &claims);
    assert!(
        verify(&token, &signer().keys, &policy(), at).is_err(),
        "at exp"
    );
    let just_before = crate::platform::time::Timestamp::from_unix_millis(1_799_999_999_999);
    assert!(verify(&token, &signer().keys, &policy(), just_before).is_ok());
}

/// The time is the caller's clock, not the machine's: a token minted by a clock a year ahead is
/// valid for a verifier on that clock, and not yet (`nbf`, `iat`) for one on real time.
#[test]
fn times_are_judged_by_the_callers_clock() {
    let year = crate::platform::time::Clock::system().later_by(365 * 86_400);
    let ahead = year.now().unix_seconds();
    let header = json!({"alg": "RS256", "typ": "JWT", "kid": KID});
    let claims =
        json!({"iss": ISSUER, "aud": AUDIENCE, "sub": "ada", "exp": ahead + 600, "iat": ahead});
    let token = sign(&header, &claims);
    assert!(verify(&token, &signer().keys, &policy(), year.now()).is_ok());
    assert!(verify(&token, &signer().keys, &policy(), at_now()).is_err());
}
