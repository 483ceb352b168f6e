//! JWT verification as API Gateway's JWT authorizer does it: RS256 only, a key from the issuer's
//! JWKS chosen by `kid`, `iss` equal to the issuer, `aud` (or else `client_id`) among the
//! audiences, `exp` strictly in the future, `nbf` and `iat`, when present, not in the future. No
//! clock leeway; "now" is the caller's application clock ([`crate::platform::time::Clock`]). As RFC 8725
//! asks, a header with `crit` is refused: this verifier understands no extension.
//!
//! Any failure is the same refusal: the caller learns nothing about which check failed.

use std::collections::HashMap;

use jsonwebtoken::jwk::{AlgorithmParameters, JwkSet, KeyAlgorithm, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;
use serde_json::{Map, Value};

/// Who may issue tokens and for whom.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JwtPolicy {
    pub issuer: String,
    pub audiences: Vec<String>,
}

/// The issuer's RSA signing keys, by `kid`.
#[derive(Clone, Default)]
pub struct KeySet {
    keys: HashMap<String, DecodingKey>,
}

impl std::fmt::Debug for KeySet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeySet")
            .field("kids", &self.keys.keys().collect::<Vec<_>>())
            .finish()
    }
}

/// Why a JWKS document was refused.
#[derive(Debug, thiserror::Error)]
#[error("invalid JWKS: {0}")]
pub struct JwksError(String);

impl KeySet {
    /// Reads a JWKS document, keeping the RSA signing keys that have a `kid` (others are skipped:
    /// a token can only name a key by its `kid`).
    pub fn from_jwks_json(json: &str) -> Result<Self, JwksError> {
        let jwks: JwkSet = serde_json::from_str(json).map_err(|e| JwksError(e.to_string()))?;
        let mut keys = HashMap::new();
        for jwk in &jwks.keys {
            let common = &jwk.common;
            let usable = matches!(jwk.algorithm, AlgorithmParameters::RSA(_))
                && common
                    .key_algorithm
                    .is_none_or(|a| a == KeyAlgorithm::RS256)
                && common
                    .public_key_use
                    .as_ref()
                    .is_none_or(|u| *u == PublicKeyUse::Signature);
            if let (true, Some(kid)) = (usable, &common.key_id) {
                let key = DecodingKey::from_jwk(jwk).map_err(|e| JwksError(e.to_string()))?;
                keys.insert(kid.clone(), key);
            }
        }
        Ok(Self { keys })
    }

    pub fn len(&self) -> usize {
        self.keys.len()
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    pub fn contains(&self, kid: &str) -> bool {
        self.keys.contains_key(kid)
    }
}

/// Why a token was refused: for logs and tests only, never for the caller, who hears the same
/// 401 whatever failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefusalReason {
    Malformed,
    Algorithm,
    UnknownKey,
    /// Signature, `iss`, `exp`, `nbf` or `iat`.
    Invalid,
    Audience,
}

/// Whether the token's header names critical extensions (`crit`), which this verifier does not
/// understand (RFC 7515 §4.1.11: the token must then be refused).
fn has_crit(token: &str) -> Result<bool, RefusalReason> {
    use base64::Engine;
    let encoded = token.split('.').next().unwrap_or_default();
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(encoded)
        .map_err(|_| RefusalReason::Malformed)?;
    let header: Map<String, Value> =
        serde_json::from_slice(&raw).map_err(|_| RefusalReason::Malformed)?;
    Ok(header.contains_key("crit"))
}

/// A NumericDate claim in milliseconds: `Ok(None)` when absent, refused when not a number of
/// seconds since the epoch (negative, `null` and strings are malformed, not absent).
fn instant_ms(claims: &Map<String, Value>, name: &str) -> Result<Option<f64>, RefusalReason> {
    match claims.get(name) {
        None => Ok(None),
        Some(value) => value
            .as_f64()
            .filter(|seconds| *seconds >= 0.0)
            .map(|seconds| Some(seconds * 1000.0))
            .ok_or(RefusalReason::Invalid),
    }
}

/// Verifies `token` at `now`; on success returns its claims.
pub fn verify(
    token: &str,
    keys: &KeySet,
    policy: &JwtPolicy,
    now: crate::platform::time::Timestamp,
) -> Result<Map<String, Value>, RefusalReason> {
    let header = jsonwebtoken::decode_header(token).map_err(|_| RefusalReason::Malformed)?;
    if header.alg != Algorithm::RS256 {
        return Err(RefusalReason::Algorithm);
    }
    if has_crit(token)? {
        return Err(RefusalReason::Malformed);
    }
    let key = header
        .kid
        .as_deref()
        .and_then(|kid| keys.keys.get(kid))
        .ok_or(RefusalReason::UnknownKey)?;
    let mut validation = Validation::new(Algorithm::RS256);
    validation.leeway = 0;
    // Times are checked below, against the application clock.
    validation.validate_exp = false;
    validation.validate_nbf = false;
    validation.validate_aud = false; // `aud` or else `client_id`, checked below
    validation.set_issuer(&[policy.issuer.as_str()]);
    validation.set_required_spec_claims(&["exp", "iss"]);
    let data = jsonwebtoken::decode::<Map<String, Value>>(token, key, &validation)
        .map_err(|_| RefusalReason::Invalid)?;
    let claims = data.claims;
    #[allow(
        clippy::cast_precision_loss,
        reason = "milliseconds of any date fit in f64's 53 bits"
    )]
    let now_ms = now.unix_millis() as f64;
    let expires = instant_ms(&claims, "exp")?.ok_or(RefusalReason::Invalid)?;
    if expires <= now_ms {
        return Err(RefusalReason::Invalid);
    }
    for not_after_now in ["nbf", "iat"] {
        if instant_ms(&claims, not_after_now)?.is_some_and(|at| at > now_ms) {
            return Err(RefusalReason::Invalid);
        }
    }
    // `iss` is one string, the issuer's: the library would also take an array that holds it.
    if claims.get("iss").and_then(Value::as_str) != Some(policy.issuer.as_str()) {
        return Err(RefusalReason::Invalid);
    }
    let audience_ok = match claims.get("aud").filter(|aud| !aud.is_null()) {
        Some(Value::String(aud)) => policy.audiences.contains(aud),
        Some(Value::Array(auds)) => auds.iter().any(|a| {
            a.as_str()
                .is_some_and(|a| policy.audiences.iter().any(|p| p == a))
        }),
        // An `aud` of another type is a malformed one, not an absent one.
        Some(_) => false,
        None => claims
            .get("client_id")
            .and_then(Value::as_str)
            .is_some_and(|id| policy.audiences.iter().any(|p| p == id)),
    };
    if !audience_ok {
        return Err(RefusalReason::Audience);
    }
    Ok(claims)
}

/// Claims as API Gateway hands them to a function (`requestContext.authorizer.jwt.claims`): every
/// value a string; numbers and booleans as written, arrays as `[a b c]`, objects as JSON.
pub fn claims_as_strings(claims: &Map<String, Value>) -> HashMap<String, String> {
    fn flat(v: &Value) -> String {
        match v {
            Value::String(s) => s.clone(),
            Value::Array(items) => {
                format!("[{}]", items.iter().map(flat).collect::<Vec<_>>().join(" "))
            }
            other => other.to_string(),
        }
    }
    claims.iter().map(|(k, v)| (k.clone(), flat(v))).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn now() -> crate::platform::time::Timestamp {
        crate::platform::time::Clock::system().now()
    }

    #[test]
    fn claims_become_strings_as_api_gateway_passes_them() {
        let claims = json!({"sub": "u1", "exp": 17, "groups": ["a", "b"], "ok": true});
        let flat = claims_as_strings(claims.as_object().unwrap());
        assert_eq!(flat["sub"], "u1");
        assert_eq!(flat["exp"], "17");
        assert_eq!(flat["groups"], "[a b]");
        assert_eq!(flat["ok"], "true");
    }

    #[test]
    fn jwks_keeps_only_rsa_signing_keys_with_a_kid() {
        let jwks = json!({"keys": [
            {"kty": "EC", "kid": "ec", "crv": "P-256", "x": "AA", "y": "AA"},
            {"kty": "RSA", "kid": "enc", "use": "enc", "n": "sXch", "e": "AQAB"},
            {"kty": "RSA", "n": "sXch", "e": "AQAB"},
            {"kty": "RSA", "kid": "k1", "alg": "RS256", "use": "sig", "n": "sXch", "e": "AQAB"}
        ]});
        let set = KeySet::from_jwks_json(&jwks.to_string()).unwrap();
        assert_eq!(set.len(), 1);
        assert!(set.contains("k1"));
    }

    #[test]
    fn malformed_and_foreign_algorithms_are_refused_before_any_key_lookup() {
        let set = KeySet::default();
        let policy = JwtPolicy {
            issuer: "https://i".into(),
            audiences: vec!["a".into()],
        };
        assert_eq!(
            verify("not a token", &set, &policy, now()),
            Err(RefusalReason::Malformed)
        );
        // {"alg":"HS256","typ":"JWT"} . {} . sig
        let hs = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.e30.c2ln";
        assert_eq!(
            verify(hs, &set, &policy, now()),
            Err(RefusalReason::Algorithm)
        );
        // {"alg":"none"} cannot even be parsed as a header with an algorithm.
        let none = "eyJhbGciOiJub25lIn0.e30.";
        assert!(verify(none, &set, &policy, now()).is_err());
    }

    #[test]
    fn the_discovery_document_is_under_the_issuer_without_a_double_slash() {
        assert_eq!(
            discovery_url("https://accounts.google.com"),
            "https://accounts.google.com/.well-known/openid-configuration"
        );
        assert_eq!(
            discovery_url("https://tenant.auth0.com/"),
            "https://tenant.auth0.com/.well-known/openid-configuration"
        );
    }

    #[test]
    fn a_discovery_document_names_the_keys_of_its_own_issuer_only() {
        // Google's, abridged: its keys are not under the issuer.
        let google = json!({
            "issuer": "https://accounts.google.com",
            "authorization_endpoint": "https://accounts.google.com/o/oauth2/v2/auth",
            "jwks_uri": "https://www.googleapis.com/oauth2/v3/certs",
            "id_token_signing_alg_values_supported": ["RS256"]
        })
        .to_string();
        assert_eq!(
            jwks_uri_from_discovery(&google, "https://accounts.google.com").unwrap(),
            "https://www.googleapis.com/oauth2/v3/certs"
        );
        // Character for character: no scheme added, no slash trimmed, no other issuer.
        for other in [
            "accounts.google.com",
            "https://accounts.google.com/",
            "https://issuer.example",
        ] {
            assert!(
                matches!(
                    jwks_uri_from_discovery(&google, other),
                    Err(DiscoveryError::IssuerMismatch { .. })
                ),
                "{other}"
            );
        }
        for bad in [
            "",
            "not json",
            "[]",
            "{}",
            r#"{"issuer": "https://i"}"#,
            r#"{"issuer": "https://i", "jwks_uri": ""}"#,
            r#"{"issuer": "https://i", "jwks_uri": 3}"#,
        ] {
            assert!(
                matches!(
                    jwks_uri_from_discovery(bad, "https://i"),
                    Err(DiscoveryError::Malformed(_))
                ),
                "{bad}"
            );
        }
    }

    /// An HTTP server on a free port that answers each request, one connection at a time, with
    /// `answer(its base URL, the request's number from 1, its path)`: the status and a JSON body.
    /// Returns its base URL and the paths asked, in order.
    async fn serve(
        answer: impl Fn(&str, usize, &str) -> (u16, String) + Send + 'static,
    ) -> (String, std::sync::Arc<std::sync::Mutex<Vec<String>>>) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let asked = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let (log, url) = (asked.clone(), base.clone());
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                let mut request = Vec::new();
                let mut buf = [0; 1024];
                while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                    match socket.read(&mut buf).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => request.extend_from_slice(&buf[..n]),
                    }
                }
                let head = String::from_utf8_lossy(&request);
                let path = head.split(' ').nth(1).unwrap_or_default().to_owned();
                let number = {
                    let mut log = log.lock().unwrap();
                    log.push(path.clone());
                    log.len()
                };
                let (status, body) = answer(&url, number, &path);
                let response = format!(
                    "HTTP/1.1 {status} -\r\ncontent-type: application/json\r\n\
                     content-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = socket.write_all(response.as_bytes()).await;
                let _ = socket.shutdown().await;
            }
        });
        (base, asked)
    }

    #[tokio::test]
    async fn keys_are_found_by_discovery_on_first_use_and_a_failed_discovery_is_tried_again() {
        use base64::Engine;
        const ISSUER: &str = "https://issuer.example";
        const DOCUMENT: &str = "/.well-known/openid-configuration";
        let (base, asked) = serve(|base, number, path| match (number, path) {
            (1, _) => (503, "{}".to_owned()),
            (_, DOCUMENT) => (
                200,
                json!({"issuer": ISSUER, "jwks_uri": format!("{base}/keys")}).to_string(),
            ),
            (_, "/keys") => (
                200,
                json!({"keys": [{"kty": "RSA", "kid": "k1", "n": "sXch", "e": "AQAB"}]})
                    .to_string(),
            ),
            _ => (404, "{}".to_owned()),
        })
        .await;
        let asked = move || asked.lock().unwrap().clone();
        let cache = JwksCache::discover(format!("{base}{DOCUMENT}"), ISSUER);
        tokio::task::yield_now().await;
        assert!(asked().is_empty(), "nothing is fetched before a token");

        // {"alg":"RS256","kid":"k1"} . {} . sig: refused for want of keys, whatever else.
        let header = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(json!({"alg": "RS256", "kid": "k1"}).to_string());
        let token = format!("{header}.e30.c2ln");
        let policy = JwtPolicy {
            issuer: ISSUER.into(),
            audiences: vec!["a".into()],
        };
        assert_eq!(
            cache.verify(&token, &policy, now()).await,
            Err(RefusalReason::UnknownKey),
            "the discovery failed: no keys, the token is refused"
        );
        assert_eq!(asked(), [DOCUMENT]);
        assert!(
            cache.keys_for(Some("k1")).await.contains("k1"),
            "the next token discovers again, then fetches the keys"
        );
        assert_eq!(asked(), [DOCUMENT, DOCUMENT, "/keys"]);

        // The same document, for a cache of another issuer: refused, its keys never fetched.
        let other = JwksCache::discover(format!("{base}{DOCUMENT}"), "https://other.example");
        assert!(other.keys_for(Some("k1")).await.is_empty());
        assert_eq!(asked(), [DOCUMENT, DOCUMENT, "/keys", DOCUMENT]);
    }
}

/// Why an issuer's discovery document was refused.
#[derive(Debug, thiserror::Error)]
pub enum DiscoveryError {
    #[error("invalid discovery document: {0}")]
    Malformed(String),
    #[error("discovery document of issuer {found:?}, not {expected:?}")]
    IssuerMismatch { expected: String, found: String },
}

/// The two fields of an OpenID Provider's metadata that are read.
#[derive(Deserialize)]
struct ProviderMetadata {
    issuer: String,
    jwks_uri: String,
}

/// Where OpenID Connect Discovery puts an issuer's metadata: `<issuer>/.well-known/openid-configuration`,
/// without doubling the slash of an issuer that ends with one (Auth0's).
pub fn discovery_url(issuer: &str) -> String {
    format!(
        "{}/.well-known/openid-configuration",
        issuer.trim_end_matches('/')
    )
}

/// The `jwks_uri` of an issuer's discovery document, which must be `issuer`'s own: its `issuer`
/// equal to `issuer` character for character (OpenID Connect Discovery 1.0, §4.3), so that a
/// document cannot hand out another issuer's keys.
pub fn jwks_uri_from_discovery(json: &str, issuer: &str) -> Result<String, DiscoveryError> {
    let metadata: ProviderMetadata =
        serde_json::from_str(json).map_err(|e| DiscoveryError::Malformed(e.to_string()))?;
    if metadata.issuer != issuer {
        return Err(DiscoveryError::IssuerMismatch {
            expected: issuer.to_owned(),
            found: metadata.issuer,
        });
    }
    if metadata.jwks_uri.trim().is_empty() {
        return Err(DiscoveryError::Malformed("empty jwks_uri".to_owned()));
    }
    Ok(metadata.jwks_uri)
}

/// Where a [`JwksCache`] finds the keys.
#[derive(Debug)]
enum JwksSource {
    /// A JWKS URL, as given.
    Url(String),
    /// The `jwks_uri` of the discovery document at `document`, which must be `issuer`'s: read on
    /// the first fetch, kept once read, read again on the next fetch while it fails.
    Discovery {
        document: String,
        issuer: String,
        jwks_uri: tokio::sync::OnceCell<String>,
    },
}

/// The issuer's keys, fetched from its JWKS URL and kept: fetched on first use, again when a token
/// names an unknown `kid` (key rotation) but at most every [`JwksCache::MIN_REFRESH`], and when
/// older than [`JwksCache::MAX_AGE`]. A failed fetch keeps the keys it had (none before the first
/// success: every token is then refused, and the next one fetches again).
///
/// The JWKS URL is either given ([`JwksCache::new`]) or found by OpenID Connect Discovery
/// ([`JwksCache::discover`]), as the HTTP API's JWT authorizer finds it: on the first fetch, not
/// before, and kept for the life of the cache once found; a failed discovery fails that fetch only.
///
/// The HTTP client is built on the first fetch: its TLS verifier reads the system's root
/// certificates, which took most of `ws-authorizer`'s init, and a connection opened with a
/// ticket never needs it (BENCHMARKS.md, "Cold start").
#[derive(Debug)]
pub struct JwksCache {
    source: JwksSource,
    http: std::sync::OnceLock<reqwest::Client>,
    state: tokio::sync::RwLock<Option<(KeySet, std::time::Instant)>>,
}

impl JwksCache {
    pub const MIN_REFRESH: std::time::Duration = std::time::Duration::from_secs(30);
    pub const MAX_AGE: std::time::Duration = std::time::Duration::from_secs(3_600);

    /// The keys at the JWKS URL `url`.
    pub fn new(url: impl Into<String>) -> Self {
        Self::with_source(JwksSource::Url(url.into()))
    }

    /// The keys at the `jwks_uri` of the discovery document at `document` (usually
    /// [`discovery_url`] of `issuer`), which must be `issuer`'s. Nothing is fetched until a token
    /// is verified.
    pub fn discover(document: impl Into<String>, issuer: impl Into<String>) -> Self {
        Self::with_source(JwksSource::Discovery {
            document: document.into(),
            issuer: issuer.into(),
            jwks_uri: tokio::sync::OnceCell::new(),
        })
    }

    fn with_source(source: JwksSource) -> Self {
        Self {
            source,
            http: std::sync::OnceLock::new(),
            state: tokio::sync::RwLock::new(None),
        }
    }

    /// What to name in logs: the JWKS URL, else the discovery document's.
    fn url(&self) -> &str {
        match &self.source {
            JwksSource::Url(url) => url,
            JwksSource::Discovery {
                document, jwks_uri, ..
            } => jwks_uri.get().unwrap_or(document),
        }
    }

    fn http(&self) -> &reqwest::Client {
        self.http.get_or_init(|| {
            reqwest::Client::builder()
                .timeout(std::time::Duration::from_secs(2))
                .build()
                .unwrap_or_default()
        })
    }

    async fn get(&self, url: &str) -> Result<String, String> {
        self.http()
            .get(url)
            .send()
            .await
            .and_then(reqwest::Response::error_for_status)
            .map_err(|e| e.to_string())?
            .text()
            .await
            .map_err(|e| e.to_string())
    }

    /// The JWKS URL, discovered if need be.
    async fn jwks_url(&self) -> Result<&str, String> {
        match &self.source {
            JwksSource::Url(url) => Ok(url),
            JwksSource::Discovery {
                document,
                issuer,
                jwks_uri,
            } => jwks_uri
                .get_or_try_init(|| async {
                    let text = self.get(document).await?;
                    jwks_uri_from_discovery(&text, issuer).map_err(|e| e.to_string())
                })
                .await
                .map(String::as_str),
        }
    }

    async fn fetch(&self) -> Result<KeySet, String> {
        let text = self.get(self.jwks_url().await?).await?;
        KeySet::from_jwks_json(&text).map_err(|e| e.to_string())
    }

    /// The keys to verify a token naming `kid`.
    pub async fn keys_for(&self, kid: Option<&str>) -> KeySet {
        let now = std::time::Instant::now();
        {
            let state = self.state.read().await;
            if let Some((keys, at)) = state.as_ref() {
                let known = kid.is_none_or(|k| keys.contains(k));
                let fresh = now.duration_since(*at) < Self::MAX_AGE;
                let recent = now.duration_since(*at) < Self::MIN_REFRESH;
                if (known && fresh) || recent {
                    return keys.clone();
                }
            }
        }
        let mut state = self.state.write().await;
        match self.fetch().await {
            Ok(keys) => {
                *state = Some((keys.clone(), now));
                keys
            }
            Err(error) => {
                tracing::warn!(%error, url = %self.url(), "JWKS fetch failed");
                match state.as_mut() {
                    // Try again no sooner than MIN_REFRESH from now.
                    Some((keys, at)) => {
                        *at = now;
                        keys.clone()
                    }
                    None => KeySet::default(),
                }
            }
        }
    }

    /// Verifies a token at `now` against the cached keys (refreshing them as described above).
    pub async fn verify(
        &self,
        token: &str,
        policy: &JwtPolicy,
        now: crate::platform::time::Timestamp,
    ) -> Result<Map<String, Value>, RefusalReason> {
        let kid = jsonwebtoken::decode_header(token).ok().and_then(|h| h.kid);
        let keys = self.keys_for(kid.as_deref()).await;
        verify(token, &keys, policy, now)
    }
}
