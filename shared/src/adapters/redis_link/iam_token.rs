//! ElastiCache's IAM authentication token: a SigV4-presigned `GET http://<cache>/?Action=connect&User=<user>`
//! for the service `elasticache`, valid 15 minutes, given without its scheme as the `AUTH`
//! password of the user. It is signed here with the function's own role credentials: no call,
//! no secret anywhere, so a function in a VPC with no internet route can make one.

use std::time::{Duration, SystemTime};

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{
    SignableBody, SignableRequest, SignatureLocation, SigningSettings, sign,
};
use aws_sigv4::sign::v4;

/// The longest validity ElastiCache accepts (and the one it documents).
pub const TOKEN_VALIDITY: Duration = Duration::from_secs(15 * 60);

/// The signing name of ElastiCache.
pub const SERVICE: &str = "elasticache";

/// Whom the link connects as: an ElastiCache user whose authentication mode is IAM, on one cache
/// (a replication group's id). Both are `[A-Za-z0-9-]` (checked when read, so that neither needs
/// encoding in the signed URL).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IamUser {
    user: String,
    cache: String,
}

/// A user or cache name that cannot be one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not an ElastiCache id (letters, digits and '-', starting with a letter)")]
pub struct InvalidId(pub String);

impl IamUser {
    pub fn new(user: &str, cache: &str) -> Result<Self, InvalidId> {
        for id in [user, cache] {
            let mut chars = id.chars();
            let starts_with_letter = chars.next().is_some_and(|c| c.is_ascii_alphabetic());
            if !starts_with_letter || !chars.all(|c| c.is_ascii_alphanumeric() || c == '-') {
                return Err(InvalidId(id.to_owned()));
            }
        }
        Ok(Self {
            user: user.to_owned(),
            cache: cache.to_owned(),
        })
    }

    pub fn user(&self) -> &str {
        &self.user
    }

    pub fn cache(&self) -> &str {
        &self.cache
    }

    /// The token, signed at `now` (real time: signing never reads the application clock).
    pub fn token(
        &self,
        credentials: &Credentials,
        region: &str,
        now: SystemTime,
    ) -> Result<String, TokenError> {
        let url = format!("http://{}/?Action=connect&User={}", self.cache, self.user);
        let mut settings = SigningSettings::default();
        settings.signature_location = SignatureLocation::QueryParams;
        settings.expires_in = Some(TOKEN_VALIDITY);
        let identity = credentials.clone().into();
        let params = v4::SigningParams::builder()
            .identity(&identity)
            .region(region)
            .name(SERVICE)
            .time(now)
            .settings(settings)
            .build()
            .map_err(|e| TokenError(e.to_string()))?
            .into();
        let request =
            SignableRequest::new("GET", &url, std::iter::empty(), SignableBody::Bytes(&[]))
                .map_err(|e| TokenError(e.to_string()))?;
        let (instructions, _) = sign(request, &params)
            .map_err(|e| TokenError(e.to_string()))?
            .into_parts();
        let mut signed = lambda_http::http::Request::get(&url)
            .body(())
            .map_err(|e| TokenError(e.to_string()))?;
        instructions.apply_to_request_http1x(&mut signed);
        let uri = signed.uri().to_string();
        Ok(uri.strip_prefix("http://").unwrap_or(&uri).to_owned())
    }
}

/// Why a token could not be signed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot sign the ElastiCache IAM token: {0}")]
pub struct TokenError(String);

#[cfg(test)]
mod tests {
    use super::*;

    fn at(seconds: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(seconds)
    }

    #[test]
    fn ids_are_letters_digits_and_dashes_starting_with_a_letter() {
        assert!(IamUser::new("chat-functions", "chat-cache-1").is_ok());
        for bad in [
            "",
            "1chat",
            "chat functions",
            "chat/x",
            "chat&User=admin",
            "-chat",
        ] {
            assert_eq!(
                IamUser::new(bad, "cache"),
                Err(InvalidId(bad.to_owned())),
                "{bad:?}"
            );
            assert!(IamUser::new("user", bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn the_token_is_the_presigned_connect_url_without_its_scheme() {
        let user = IamUser::new("chat-functions", "chat-cache").unwrap();
        let credentials = Credentials::new("AKIDEXAMPLE", "secret", None, None, "test");
        // 2026-12-07T00:00:00Z
        let token = user
            .token(&credentials, "eu-west-1", at(1_796_601_600))
            .unwrap();
        assert!(
            token.starts_with("chat-cache/?Action=connect&User=chat-functions&"),
            "{token}"
        );
        for part in [
            "X-Amz-Algorithm=AWS4-HMAC-SHA256",
            "X-Amz-Credential=AKIDEXAMPLE%2F20261207%2Feu-west-1%2Felasticache%2Faws4_request",
            "X-Amz-Date=20261207T000000Z",
            "X-Amz-Expires=900",
            "X-Amz-SignedHeaders=host",
            "X-Amz-Signature=",
        ] {
            assert!(token.contains(part), "{part} missing from {token}");
        }
        // A session token (a Lambda role's credentials have one) is signed into the URL.
        let session = Credentials::new(
            "ASIAEXAMPLE",
            "secret",
            Some("the-session".into()),
            None,
            "test",
        );
        let token = user
            .token(&session, "eu-west-1", at(1_796_601_600))
            .unwrap();
        assert!(
            token.contains("X-Amz-Security-Token=the-session"),
            "{token}"
        );
    }
}
