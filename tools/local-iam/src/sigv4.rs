//! SigV4 as AWS checks it on arrival: the `Authorization` header is parsed, the request is signed
//! again with the caller's secret (by `aws-sigv4`, the signer the SDK itself uses) over exactly
//! the headers it says it signed, and the two signatures must be equal. A request dated more than
//! 15 minutes from now (real time: signing never reads the application clock) is refused, as AWS
//! refuses it.

use std::time::{Duration, SystemTime};

use aws_sigv4::http_request::{
    PayloadChecksumKind, SignableBody, SignableRequest, SigningSettings, sign,
};
use aws_sigv4::sign::v4;
use http::HeaderMap;

/// How far a request's date may be from now.
pub const MAX_SKEW: Duration = Duration::from_secs(15 * 60);

/// Who signed a request, for what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signer {
    pub access_key: String,
    pub region: String,
    pub service: String,
}

/// Why a signature was refused, in API Gateway's and DynamoDB's words.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("Missing Authentication Token")]
    Missing,
    #[error(
        "Authorization header requires 'Credential', 'SignedHeaders' and 'Signature' parameters"
    )]
    Malformed,
    #[error("Signature expired: the request's date is more than 15 minutes from now")]
    Expired,
    #[error(
        "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method."
    )]
    Mismatch,
}

struct Header<'a> {
    access_key: &'a str,
    date: &'a str,
    region: &'a str,
    service: &'a str,
    signed_headers: Vec<&'a str>,
    signature: &'a str,
}

fn parse(authorization: &str) -> Result<Header<'_>, SignatureError> {
    let rest = authorization
        .strip_prefix("AWS4-HMAC-SHA256 ")
        .ok_or(SignatureError::Malformed)?;
    let (mut credential, mut signed, mut signature) = (None, None, None);
    for part in rest.split(',') {
        match part.trim().split_once('=') {
            Some(("Credential", v)) => credential = Some(v),
            Some(("SignedHeaders", v)) => signed = Some(v),
            Some(("Signature", v)) => signature = Some(v),
            _ => {}
        }
    }
    let (credential, signed, signature) = (
        credential.ok_or(SignatureError::Malformed)?,
        signed.ok_or(SignatureError::Malformed)?,
        signature.ok_or(SignatureError::Malformed)?,
    );
    let scope: Vec<&str> = credential.split('/').collect();
    let [access_key, date, region, service, "aws4_request"] = scope[..] else {
        return Err(SignatureError::Malformed);
    };
    Ok(Header {
        access_key,
        date,
        region,
        service,
        signed_headers: signed.split(';').collect(),
        signature,
    })
}

/// `20261207T003000Z` as an instant.
fn amz_date(raw: &str) -> Option<SystemTime> {
    let format = time::macros::format_description!("[year][month][day]T[hour][minute][second]Z");
    let at = time::PrimitiveDateTime::parse(raw, format)
        .ok()?
        .assume_utc();
    let seconds = u64::try_from(at.unix_timestamp()).ok()?;
    Some(SystemTime::UNIX_EPOCH + Duration::from_secs(seconds))
}

/// The access key that claims to have signed `headers`, if any (to find its secret).
pub fn claimed_access_key(headers: &HeaderMap) -> Option<String> {
    let authorization = headers.get(http::header::AUTHORIZATION)?.to_str().ok()?;
    parse(authorization).ok().map(|h| h.access_key.to_owned())
}

/// Checks a request's signature with `secret`. `path_and_query` is as received (still encoded).
pub fn verify(
    method: &str,
    path_and_query: &str,
    headers: &HeaderMap,
    body: &[u8],
    secret: &str,
    now: SystemTime,
) -> Result<Signer, SignatureError> {
    let authorization = headers
        .get(http::header::AUTHORIZATION)
        .ok_or(SignatureError::Missing)?
        .to_str()
        .map_err(|_| SignatureError::Malformed)?;
    let claimed = parse(authorization)?;
    let date_text = headers
        .get("x-amz-date")
        .and_then(|v| v.to_str().ok())
        .ok_or(SignatureError::Malformed)?;
    let date = amz_date(date_text).ok_or(SignatureError::Malformed)?;
    if !date_text.starts_with(claimed.date) {
        return Err(SignatureError::Malformed);
    }
    let skew = now.duration_since(date).unwrap_or_else(|e| e.duration());
    if skew > MAX_SKEW {
        return Err(SignatureError::Expired);
    }
    let mut settings = SigningSettings::default();
    // Exactly the headers the caller signed (the signer adds the date and the checksum itself).
    settings.excluded_headers = None;
    let mut signed: Vec<(&str, &str)> = Vec::new();
    for name in &claimed.signed_headers {
        match *name {
            "x-amz-date" => {}
            "x-amz-content-sha256" => {
                settings.payload_checksum_kind = PayloadChecksumKind::XAmzSha256
            }
            name => {
                for value in headers.get_all(name) {
                    signed.push((name, value.to_str().map_err(|_| SignatureError::Malformed)?));
                }
                if headers.get(name).is_none() {
                    return Err(SignatureError::Mismatch);
                }
            }
        }
    }
    let request = SignableRequest::new(
        method,
        path_and_query,
        signed.into_iter(),
        SignableBody::Bytes(body),
    )
    .map_err(|_| SignatureError::Malformed)?;
    let signer = Signer {
        access_key: claimed.access_key.to_owned(),
        region: claimed.region.to_owned(),
        service: claimed.service.to_owned(),
    };
    check_signature(
        request,
        &signer,
        secret,
        None,
        date,
        settings,
        claimed.signature,
    )?;
    Ok(signer)
}

/// Signs `request` again as `signer` with `secret` at `date`, and compares the result with the
/// signature it came with (in constant time).
fn check_signature(
    request: SignableRequest<'_>,
    signer: &Signer,
    secret: &str,
    session_token: Option<String>,
    date: SystemTime,
    settings: SigningSettings,
    claimed: &str,
) -> Result<(), SignatureError> {
    let identity = aws_credential_types::Credentials::new(
        &signer.access_key,
        secret,
        session_token,
        None,
        "local-iam",
    )
    .into();
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(&signer.region)
        .name(&signer.service)
        .time(date)
        .settings(settings)
        .build()
        .map_err(|_| SignatureError::Malformed)?
        .into();
    let expected = sign(request, &params).map_err(|_| SignatureError::Malformed)?;
    aws_lc_rs::constant_time::verify_slices_are_equal(
        expected.signature().as_bytes(),
        claimed.as_bytes(),
    )
    .map_err(|_| SignatureError::Mismatch)
}

/// A presigned URL's claims, once its signature is checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Presigned {
    pub signer: Signer,
    /// The URL's host (ElastiCache: the cache's id).
    pub host: String,
    /// Its query parameters other than the signature's own (`X-Amz-*`), in order.
    pub parameters: Vec<(String, String)>,
}

/// The longest validity a presigned URL may claim here (ElastiCache's IAM token's, 15 minutes).
pub const MAX_PRESIGNED_VALIDITY: Duration = Duration::from_secs(15 * 60);

/// Checks a URL presigned for `GET` (query-string SigV4, as ElastiCache's IAM token is: given
/// without its `http://`), signed with `secret`: re-signed with the parameters it claims (date,
/// validity, scope), the two signatures must be equal, and `now` within its validity.
pub fn verify_presigned(
    url_without_scheme: &str,
    secret: &str,
    now: SystemTime,
) -> Result<Presigned, SignatureError> {
    let url = url::Url::parse(&format!("http://{url_without_scheme}"))
        .map_err(|_| SignatureError::Malformed)?;
    let all: Vec<(String, String)> = url.query_pairs().into_owned().collect();
    let get = |name: &str| all.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str());
    let signature = get("X-Amz-Signature").ok_or(SignatureError::Missing)?;
    if get("X-Amz-Algorithm") != Some("AWS4-HMAC-SHA256")
        || get("X-Amz-SignedHeaders") != Some("host")
    {
        return Err(SignatureError::Malformed);
    }
    let credential = get("X-Amz-Credential").ok_or(SignatureError::Malformed)?;
    let scope: Vec<&str> = credential.split('/').collect();
    let [access_key, day, region, service, "aws4_request"] = scope[..] else {
        return Err(SignatureError::Malformed);
    };
    let date_text = get("X-Amz-Date").ok_or(SignatureError::Malformed)?;
    let date = amz_date(date_text).ok_or(SignatureError::Malformed)?;
    if !date_text.starts_with(day) {
        return Err(SignatureError::Malformed);
    }
    let validity = get("X-Amz-Expires")
        .and_then(|v| v.parse::<u64>().ok())
        .map(Duration::from_secs)
        .filter(|v| *v <= MAX_PRESIGNED_VALIDITY)
        .ok_or(SignatureError::Malformed)?;
    // Not yet valid (beyond the clock skew AWS allows), or no longer.
    if date.duration_since(now).is_ok_and(|ahead| ahead > MAX_SKEW) || now > date + validity {
        return Err(SignatureError::Expired);
    }
    let host = url.host_str().ok_or(SignatureError::Malformed)?.to_owned();
    let parameters: Vec<(String, String)> = all
        .iter()
        .filter(|(n, _)| !n.starts_with("X-Amz-"))
        .cloned()
        .collect();
    let mut unsigned = url.clone();
    unsigned.set_query(None);
    if !parameters.is_empty() {
        unsigned.query_pairs_mut().extend_pairs(&parameters);
    }
    let mut settings = SigningSettings::default();
    settings.signature_location = aws_sigv4::http_request::SignatureLocation::QueryParams;
    settings.expires_in = Some(validity);
    let request = SignableRequest::new(
        "GET",
        unsigned.as_str(),
        std::iter::empty(),
        SignableBody::Bytes(&[]),
    )
    .map_err(|_| SignatureError::Malformed)?;
    let signer = Signer {
        access_key: access_key.to_owned(),
        region: region.to_owned(),
        service: service.to_owned(),
    };
    let session_token = get("X-Amz-Security-Token").map(str::to_owned);
    check_signature(
        request,
        &signer,
        secret,
        session_token,
        date,
        settings,
        signature,
    )?;
    Ok(Presigned {
        signer,
        host,
        parameters,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Signs as the SDK does, with the same library.
    fn signed(secret: &str, at: SystemTime, body: &[u8]) -> HeaderMap {
        let identity =
            aws_credential_types::Credentials::new("http-get-me", secret, None, None, "t").into();
        let params = v4::SigningParams::builder()
            .identity(&identity)
            .region("us-east-1")
            .name("dynamodb")
            .time(at)
            .settings(SigningSettings::default())
            .build()
            .unwrap()
            .into();
        let base = [
            ("host", "127.0.0.1:8100"),
            ("content-type", "application/x-amz-json-1.0"),
            ("x-amz-target", "DynamoDB_20120810.GetItem"),
            ("user-agent", "aws-sdk-rust"),
        ];
        let request =
            SignableRequest::new("POST", "/", base.iter().copied(), SignableBody::Bytes(body))
                .unwrap();
        let (instructions, _) = sign(request, &params).unwrap().into_parts();
        let mut headers = HeaderMap::new();
        for (k, v) in base {
            headers.insert(k, v.parse().unwrap());
        }
        let added: Vec<(String, String)> = instructions
            .headers()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
        for (k, v) in added {
            headers.insert(http::HeaderName::try_from(k).unwrap(), v.parse().unwrap());
        }
        headers
    }

    #[test]
    fn a_good_signature_passes_and_any_change_fails() {
        let now = SystemTime::now();
        let at = SystemTime::UNIX_EPOCH
            + Duration::from_secs(
                now.duration_since(SystemTime::UNIX_EPOCH)
                    .unwrap()
                    .as_secs(),
            );
        let body = br#"{"TableName":"t"}"#;
        let headers = signed("s3cret", at, body);
        let signer = verify("POST", "/", &headers, body, "s3cret", now).unwrap();
        assert_eq!(signer.access_key, "http-get-me");
        assert_eq!(
            (signer.region.as_str(), signer.service.as_str()),
            ("us-east-1", "dynamodb")
        );
        assert_eq!(
            verify("POST", "/", &headers, body, "other", now),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify(
                "POST",
                "/",
                &headers,
                br#"{"TableName":"u"}"#,
                "s3cret",
                now
            ),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify("POST", "/x", &headers, body, "s3cret", now),
            Err(SignatureError::Mismatch)
        );
        let mut target = headers.clone();
        target.insert(
            "x-amz-target",
            "DynamoDB_20120810.DeleteItem".parse().unwrap(),
        );
        assert_eq!(
            verify("POST", "/", &target, body, "s3cret", now),
            Err(SignatureError::Mismatch)
        );
        // The user agent is not signed: a proxy may change it.
        let mut agent = headers.clone();
        agent.insert("user-agent", "other".parse().unwrap());
        assert!(verify("POST", "/", &agent, body, "s3cret", now).is_ok());
        assert_eq!(
            verify(
                "POST",
                "/",
                &headers,
                body,
                "s3cret",
                now + Duration::from_secs(16 * 60)
            ),
            Err(SignatureError::Expired)
        );
        assert_eq!(
            verify("POST", "/", &HeaderMap::new(), body, "s3cret", now),
            Err(SignatureError::Missing)
        );
        let mut forged = HeaderMap::new();
        forged.insert(
            "authorization",
            "AWS4-HMAC-SHA256 Credential=x".parse().unwrap(),
        );
        assert_eq!(
            verify("POST", "/", &forged, body, "s3cret", now),
            Err(SignatureError::Malformed)
        );
        assert_eq!(claimed_access_key(&headers).as_deref(), Some("http-get-me"));
    }

    /// An ElastiCache IAM token as its documentation builds one, with the same library.
    fn presigned(secret: &str, at: SystemTime, validity: u64, url: &str) -> String {
        let identity =
            aws_credential_types::Credentials::new("http-get-me", secret, None, None, "t").into();
        let mut settings = SigningSettings::default();
        settings.signature_location = aws_sigv4::http_request::SignatureLocation::QueryParams;
        settings.expires_in = Some(Duration::from_secs(validity));
        let params = v4::SigningParams::builder()
            .identity(&identity)
            .region("us-east-1")
            .name("elasticache")
            .time(at)
            .settings(settings)
            .build()
            .unwrap()
            .into();
        let request =
            SignableRequest::new("GET", url, std::iter::empty(), SignableBody::Bytes(&[])).unwrap();
        let (instructions, _) = sign(request, &params).unwrap().into_parts();
        let mut request = http::Request::get(url).body(()).unwrap();
        instructions.apply_to_request_http1x(&mut request);
        request
            .uri()
            .to_string()
            .strip_prefix("http://")
            .unwrap()
            .to_owned()
    }

    #[test]
    fn a_presigned_token_passes_within_its_validity_and_any_change_fails() {
        let at = SystemTime::UNIX_EPOCH + Duration::from_secs(1_796_601_600);
        let url = "http://chat-cache/?Action=connect&User=chat-functions";
        let token = presigned("s3cret", at, 900, url);
        let claims = verify_presigned(&token, "s3cret", at + Duration::from_secs(60)).unwrap();
        assert_eq!(claims.signer.access_key, "http-get-me");
        assert_eq!(claims.signer.service, "elasticache");
        assert_eq!(claims.host, "chat-cache");
        assert_eq!(
            claims.parameters,
            [
                ("Action".to_owned(), "connect".to_owned()),
                ("User".to_owned(), "chat-functions".to_owned())
            ]
        );
        let later = at + Duration::from_secs(60);
        assert_eq!(
            verify_presigned(&token, "other", later),
            Err(SignatureError::Mismatch)
        );
        for (from, to) in [
            ("User=chat-functions", "User=admin"),
            ("chat-cache/", "other-cache/"),
            ("X-Amz-Expires=900", "X-Amz-Expires=899"),
        ] {
            let tampered = token.replace(from, to);
            assert_eq!(
                verify_presigned(&tampered, "s3cret", later),
                Err(SignatureError::Mismatch),
                "{tampered}"
            );
        }
        // Valid 15 minutes from its date, not a second more; not before it (beyond the skew).
        assert!(verify_presigned(&token, "s3cret", at + Duration::from_secs(900)).is_ok());
        assert_eq!(
            verify_presigned(&token, "s3cret", at + Duration::from_secs(901)),
            Err(SignatureError::Expired)
        );
        assert_eq!(
            verify_presigned(&token, "s3cret", at - Duration::from_secs(16 * 60)),
            Err(SignatureError::Expired)
        );
        // A longer validity than ElastiCache's is refused even when well signed.
        let long = presigned("s3cret", at, 3600, url);
        assert_eq!(
            verify_presigned(&long, "s3cret", later),
            Err(SignatureError::Malformed)
        );
        let unsigned = token.split("&X-Amz-Signature").next().unwrap();
        assert_eq!(
            verify_presigned(unsigned, "s3cret", later),
            Err(SignatureError::Missing)
        );
    }
}
