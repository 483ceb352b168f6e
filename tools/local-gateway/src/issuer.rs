//! The local token issuer: an RSA key made on first run (kept under the stack's directory), its
//! JWKS, and RS256 tokens minted for a user name. Development only: nothing of it is deployed.

use std::path::{Path, PathBuf};

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::{KeyPair, KeySize, PublicKeyComponents};
use aws_lc_rs::signature::{KeyPair as _, RSA_PKCS1_SHA256};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use chat_shared::platform::time::Clock;
use serde_json::{Value, json};

/// The `iss` of local tokens: a name that can never be a real issuer (`.invalid`).
pub const LOCAL_ISSUER: &str = "https://local-issuer.chat.invalid";
/// The `aud` of local tokens.
pub const LOCAL_AUDIENCE: &str = "chat-local";
/// Where the gateway serves the issuer's JWKS.
pub const JWKS_PATH: &str = "/_local/jwks.json";
/// Where the gateway serves the issuer's discovery document: not under [`LOCAL_ISSUER`], which
/// no one serves, so a verifier is pointed at it (`ws-authorizer`'s `OIDC_DISCOVERY_URL`).
pub const DISCOVERY_PATH: &str = "/_local/.well-known/openid-configuration";

#[derive(Debug, thiserror::Error)]
pub enum IssuerError {
    #[error("issuer key {path}: {message}")]
    Key { path: PathBuf, message: String },
    #[error("signing failed")]
    Sign,
}

pub struct LocalIssuer {
    key: KeyPair,
    kid: String,
    /// Stamps `iat`, `nbf` and `exp`: the application clock (`CHAT_CLOCK_OFFSET`).
    clock: Clock,
}

impl std::fmt::Debug for LocalIssuer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalIssuer")
            .field("kid", &self.kid)
            .finish()
    }
}

fn key_error(path: &Path, message: impl ToString) -> IssuerError {
    IssuerError::Key {
        path: path.to_owned(),
        message: message.to_string(),
    }
}

impl LocalIssuer {
    /// Loads the key from `dir/signing-key.pk8`, or makes one and saves it there (mode 0600).
    pub fn load_or_create(dir: &Path, clock: Clock) -> Result<Self, IssuerError> {
        let path = dir.join("signing-key.pk8");
        let key = match std::fs::read(&path) {
            Ok(der) => KeyPair::from_pkcs8(&der).map_err(|e| key_error(&path, e))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let key = KeyPair::generate(KeySize::Rsa2048).map_err(|e| key_error(&path, e))?;
                let der = key.as_der().map_err(|e| key_error(&path, e))?;
                std::fs::create_dir_all(dir).map_err(|e| key_error(&path, e))?;
                write_private(&path, der.as_ref()).map_err(|e| key_error(&path, e))?;
                key
            }
            Err(e) => return Err(key_error(&path, e)),
        };
        Ok(Self::from_key(key, clock))
    }

    /// A key that lives in memory only (tests, and "another key" in the security tests).
    pub fn ephemeral(clock: Clock) -> Result<Self, IssuerError> {
        let key = KeyPair::generate(KeySize::Rsa2048).map_err(|e| key_error(Path::new("-"), e))?;
        Ok(Self::from_key(key, clock))
    }

    fn from_key(key: KeyPair, clock: Clock) -> Self {
        let n = PublicKeyComponents::<Vec<u8>>::from(key.public_key()).n;
        let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &n);
        let kid = B64.encode(&digest.as_ref()[..12]);
        Self { key, kid, clock }
    }

    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The JWKS document that verifies this issuer's tokens.
    pub fn jwks(&self) -> Value {
        let parts = PublicKeyComponents::<Vec<u8>>::from(self.key.public_key());
        json!({"keys": [{
            "kty": "RSA", "use": "sig", "alg": "RS256", "kid": self.kid,
            "n": B64.encode(&parts.n), "e": B64.encode(&parts.e),
        }]})
    }

    /// The issuer's OpenID Connect discovery document, as served by the gateway at `base`
    /// ([`DISCOVERY_PATH`]): `issuer` [`LOCAL_ISSUER`], whose own name serves nothing, and
    /// `jwks_uri` the gateway's [`JWKS_PATH`]. Only what a verifier reads, and what Discovery
    /// requires of a provider besides.
    pub fn openid_configuration(&self, base: &str) -> Value {
        json!({
            "issuer": LOCAL_ISSUER,
            "jwks_uri": format!("{base}{JWKS_PATH}"),
            "authorization_endpoint": format!("{base}/_local/token"),
            "response_types_supported": ["id_token"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"],
        })
    }

    /// Signs any header and claims (tests use it for tokens that must be refused).
    pub fn sign(&self, header: &Value, claims: &Value) -> Result<String, IssuerError> {
        let signing_input = format!(
            "{}.{}",
            B64.encode(header.to_string()),
            B64.encode(claims.to_string())
        );
        let mut signature = vec![0; self.key.public_modulus_len()];
        self.key
            .sign(
                &RSA_PKCS1_SHA256,
                &SystemRandom::new(),
                signing_input.as_bytes(),
                &mut signature,
            )
            .map_err(|_| IssuerError::Sign)?;
        Ok(format!("{signing_input}.{}", B64.encode(signature)))
    }

    /// An RS256 token for `user` (the `sub`), named `name`, valid for `ttl_seconds`.
    pub fn mint(
        &self,
        user: &str,
        name: Option<&str>,
        ttl_seconds: i64,
    ) -> Result<String, IssuerError> {
        let now = self.clock.now().unix_seconds();
        let mut claims = json!({
            "iss": LOCAL_ISSUER, "aud": LOCAL_AUDIENCE, "sub": user,
            "iat": now, "nbf": now, "exp": now + ttl_seconds, "token_use": "id",
        });
        if let Some(name) = name {
            claims["name"] = json!(name);
        }
        self.sign(
            &json!({"alg": "RS256", "typ": "JWT", "kid": self.kid}),
            &claims,
        )
    }
}

fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chat_shared::edge::jwt::{JwtPolicy, KeySet, jwks_uri_from_discovery, verify};

    #[test]
    fn minted_tokens_verify_against_the_jwks_and_keys_persist() {
        let dir = std::env::temp_dir().join(format!("issuer-{}", ulid::Ulid::new()));
        let issuer = LocalIssuer::load_or_create(&dir, Clock::system()).unwrap();
        let again = LocalIssuer::load_or_create(&dir, Clock::system()).unwrap();
        assert_eq!(issuer.kid(), again.kid(), "the key is made once and reused");

        let keys = KeySet::from_jwks_json(&issuer.jwks().to_string()).unwrap();
        let policy = JwtPolicy {
            issuer: LOCAL_ISSUER.to_owned(),
            audiences: vec![LOCAL_AUDIENCE.to_owned()],
        };
        let token = again.mint("ada", Some("Ada"), 60).unwrap();
        let claims = verify(&token, &keys, &policy, Clock::system().now()).unwrap();
        assert_eq!(claims["sub"], "ada");
        assert_eq!(claims["name"], "Ada");
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn the_discovery_document_is_the_local_issuers_and_names_the_gateways_jwks() {
        let issuer = LocalIssuer::ephemeral(Clock::system()).unwrap();
        let document = issuer
            .openid_configuration("http://127.0.0.1:3000")
            .to_string();
        assert_eq!(
            jwks_uri_from_discovery(&document, LOCAL_ISSUER).unwrap(),
            "http://127.0.0.1:3000/_local/jwks.json"
        );
    }
}
