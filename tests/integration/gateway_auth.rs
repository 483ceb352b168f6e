//! The gateway's JWT authorizer refuses every kind of bad token with API Gateway's own 401.

use aws_lc_rs::hmac;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use local_gateway::issuer::{LOCAL_AUDIENCE, LOCAL_ISSUER, LocalIssuer};
use reqwest::Method;
use serde_json::{Value, json};

use crate::support::{LocalApi, status_json};

fn claims(overrides: Value) -> Value {
    let now = crate::support::clock().now().unix_seconds();
    let mut claims = json!({"iss": LOCAL_ISSUER, "aud": LOCAL_AUDIENCE, "sub": "mallory",
                            "iat": now, "nbf": now, "exp": now + 600});
    for (k, v) in overrides.as_object().unwrap() {
        if v.is_null() {
            claims.as_object_mut().unwrap().remove(k);
        } else {
            claims[k] = v.clone();
        }
    }
    claims
}

fn unsigned(header: Value, claims: &Value, signature: &[u8]) -> String {
    format!(
        "{}.{}.{}",
        B64.encode(header.to_string()),
        B64.encode(claims.to_string()),
        B64.encode(signature)
    )
}

#[tokio::test]
async fn every_kind_of_bad_token_is_401_unauthorized() {
    let api = LocalApi::start().await;
    let issuer = &api.gateway.issuer;
    let header = json!({"alg": "RS256", "typ": "JWT", "kid": issuer.kid()});
    let now = crate::support::clock().now().unix_seconds();
    let other_key = LocalIssuer::ephemeral(crate::support::clock()).unwrap();

    // HS256 signed with the issuer's public key as the secret: the classic algorithm confusion.
    let hs_header = json!({"alg": "HS256", "typ": "JWT", "kid": issuer.kid()});
    let hs_input = format!(
        "{}.{}",
        B64.encode(hs_header.to_string()),
        B64.encode(claims(json!({})).to_string())
    );
    let secret = hmac::Key::new(hmac::HMAC_SHA256, issuer.jwks().to_string().as_bytes());
    let hs256 = format!(
        "{hs_input}.{}",
        B64.encode(hmac::sign(&secret, hs_input.as_bytes()))
    );

    let tokens: Vec<(&str, Option<String>)> = vec![
        ("no token", None),
        ("malformed", Some("not.a.jwt".to_owned())),
        ("garbage", Some("Zm9v".to_owned())),
        (
            "expired",
            Some(
                issuer
                    .sign(&header, &claims(json!({"exp": now - 5, "nbf": now - 600})))
                    .unwrap(),
            ),
        ),
        (
            "not yet valid",
            Some(
                issuer
                    .sign(&header, &claims(json!({"nbf": now + 300})))
                    .unwrap(),
            ),
        ),
        (
            "no exp",
            Some(issuer.sign(&header, &claims(json!({"exp": null}))).unwrap()),
        ),
        (
            "other issuer",
            Some(
                issuer
                    .sign(&header, &claims(json!({"iss": "https://evil.example"})))
                    .unwrap(),
            ),
        ),
        (
            "other audience",
            Some(
                issuer
                    .sign(&header, &claims(json!({"aud": "someone-else"})))
                    .unwrap(),
            ),
        ),
        (
            "signed by another key",
            Some(other_key.sign(&header, &claims(json!({}))).unwrap()),
        ),
        (
            "another key's kid",
            Some(other_key.mint("mallory", None, 600).unwrap()),
        ),
        (
            "alg none",
            Some(unsigned(
                json!({"alg": "none", "typ": "JWT"}),
                &claims(json!({})),
                b"",
            )),
        ),
        ("HS256", Some(hs256)),
        ("tampered claims", {
            let good = issuer.mint("mallory", None, 600).unwrap();
            let parts: Vec<&str> = good.split('.').collect();
            let forged = B64.encode(claims(json!({"sub": "ada"})).to_string());
            Some(format!("{}.{forged}.{}", parts[0], parts[2]))
        }),
    ];
    for (case, token) in tokens {
        let mut request = api.http.request(Method::GET, format!("{}/me", api.url));
        if let Some(token) = &token {
            request = request.bearer_auth(token);
        }
        let (status, body) = status_json(request.send().await.unwrap()).await;
        assert_eq!(status, 401, "{case}");
        assert_eq!(body, json!({"message": "Unauthorized"}), "{case}");
    }

    // A `client_id` stands in for `aud` (Cognito access tokens), and the good token passes.
    let access = issuer
        .sign(
            &header,
            &claims(json!({"aud": null, "client_id": LOCAL_AUDIENCE})),
        )
        .unwrap();
    let (status, _) = status_json(
        api.request(Method::GET, "/me", &access)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200);
    let (status, me) = status_json(
        api.request(Method::GET, "/me", &api.token("ada", Some("Ada")))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!((status, &me["userId"]), (200, &json!("ada")));
}
