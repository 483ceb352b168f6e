//! The HTTP side of every route function: reading the API Gateway (HTTP API, payload 2.0) request
//! into domain input, and turning a service's outcome into the contract's response.
//!
//! A handler is `http::respond(&req, async { ... })`: the closure returns
//! `Result<Reply, ApiError>`, and this module adds `x-request-id`, the JSON content type, and the
//! error body, and logs refusals once. Nothing here logs the request, its headers or its body.

use std::future::Future;

use lambda_http::aws_lambda_events::apigw::ApiGatewayV2httpRequestContext;
use lambda_http::request::RequestContext;
use lambda_http::{Body, Request, RequestExt, Response};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use serde_value::DeserializerError;

use crate::adapters::rate_limiter::RateLimiter;
use crate::domain::error::ApiError;
pub use crate::domain::input::{Caller, not_null};
use crate::domain::limits::{LimitKind, Quota};
use crate::domain::{UserId, ValidationError};

/// The largest request body a route accepts (contract: 64 KiB, else 413).
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// A successful answer: a status and a JSON body (none for 204).
#[derive(Debug)]
pub struct Reply {
    status: u16,
    body: Option<Value>,
    quota: Option<Quota>,
}

impl Reply {
    pub fn json(status: u16, body: &impl Serialize) -> Result<Self, ApiError> {
        let body = serde_json::to_value(body).map_err(ApiError::internal)?;
        Ok(Self {
            status,
            body: Some(body),
            quota: None,
        })
    }

    pub fn ok(body: &impl Serialize) -> Result<Self, ApiError> {
        Self::json(200, body)
    }

    pub fn no_content() -> Self {
        Self {
            status: 204,
            body: None,
            quota: None,
        }
    }

    /// Adds the `RateLimit-*` headers of the limit this request counted against.
    pub fn with_quota(mut self, quota: Option<Quota>) -> Self {
        self.quota = quota;
        self
    }
}

fn context(req: &Request) -> Option<&ApiGatewayV2httpRequestContext> {
    match req.request_context_ref()? {
        RequestContext::ApiGatewayV2(ctx) => Some(ctx),
        #[allow(
            unreachable_patterns,
            reason = "other variants exist with other crate features"
        )]
        _ => None,
    }
}

/// API Gateway's request id (also Lambda's `x-request-id` answer header); `-` when absent.
pub fn request_id(req: &Request) -> String {
    context(req)
        .and_then(|c| c.request_id.clone())
        .unwrap_or_else(|| "-".to_owned())
}

/// The caller from `requestContext.authorizer.jwt.claims`. API Gateway has already verified the
/// token; a request without a `sub` claim cannot come through it, so it is refused like a bad token.
pub fn caller(req: &Request) -> Result<Caller, Unauthorized> {
    let claims = context(req)
        .and_then(|c| c.authorizer.as_ref())
        .and_then(|a| a.jwt.as_ref())
        .map(|jwt| jwt.claims.clone())
        .ok_or(Unauthorized)?;
    let user_id = claims
        .get("sub")
        .and_then(|sub| sub.parse::<UserId>().ok())
        .ok_or(Unauthorized)?;
    Ok(Caller { user_id, claims })
}

/// The gateway's own refusal: 401 `{"message": "Unauthorized"}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Unauthorized;

/// A path parameter as API Gateway passed it.
pub fn path_param<'a>(req: &'a Request, name: &'static str) -> Result<&'a str, ApiError> {
    req.path_parameters_ref()
        .and_then(|p| p.first(name))
        .ok_or_else(|| ApiError::validation(name, "missing path parameter"))
}

/// The `{id}` path parameter as a conversation id. A malformed id names no conversation: 404.
pub fn conversation_id(req: &Request) -> Result<crate::domain::ConversationId, ApiError> {
    path_param(req, "id")?
        .parse()
        .map_err(|_| ApiError::NotFound)
}

/// The `{seq}` path parameter: a message's number. Anything else names no message: 404.
pub fn message_seq(req: &Request) -> Result<u64, ApiError> {
    path_param(req, "seq")?
        .parse::<u64>()
        .ok()
        .filter(|seq| *seq >= 1)
        .ok_or(ApiError::NotFound)
}

/// The `{emoji}` path parameter (API Gateway hands it over decoded).
pub fn emoji(req: &Request) -> Result<crate::domain::Emoji, ApiError> {
    path_param(req, "emoji")?
        .parse()
        .map_err(|e: ValidationError| ApiError::Validation(e.at("emoji")))
}

/// A query parameter (the first value when repeated).
pub fn query_param<'a>(req: &'a Request, name: &str) -> Option<&'a str> {
    req.query_string_parameters_ref()
        .and_then(|q| q.first(name))
}

fn body_bytes(req: &Request) -> &[u8] {
    match req.body() {
        Body::Empty => &[],
        Body::Text(text) => text.as_bytes(),
        Body::Binary(bytes) => bytes,
        #[allow(unreachable_patterns, reason = "Body is non-exhaustive upstream")]
        _ => &[],
    }
}

/// Parses the JSON body into `T`, which should `deny_unknown_fields`.
///
/// Over 64 KiB is 413; not JSON at all (or empty) is `invalid_json`; JSON of the wrong shape
/// (unknown, missing or mistyped fields, values a domain type refuses) is `validation_failed`
/// with `field` naming the culprit.
pub fn json_body<T: DeserializeOwned>(req: &Request) -> Result<T, ApiError> {
    parse_json(body_bytes(req))
}

pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    if bytes.len() > MAX_BODY_BYTES {
        return Err(ApiError::PayloadTooLarge);
    }
    // Syntax first, so that "not JSON" is told apart from "JSON of the wrong shape".
    let value: Value = serde_json::from_slice(bytes).map_err(|_| ApiError::InvalidJson)?;
    // Every body is an object. serde would also build a struct from an array of its fields in
    // order (`[]` for one whose fields are all optional), which the contract does not allow.
    if !value.is_object() {
        return Err(ApiError::Validation(ValidationError::new(
            "the body must be a JSON object",
        )));
    }
    // serde-value's tree: its errors are serde's data (which field, what was expected), not a
    // message to parse, and they never hold the offending value.
    let tree = serde_value::to_value(value).map_err(ApiError::internal)?;
    serde_path_to_error::deserialize(tree)
        .map_err(|e| ApiError::Validation(shape_error(e.path(), e.inner())))
}

/// A key as the answer and the logs may show it: a plain name (`[A-Za-z0-9_]`, 1 to 64), else
/// `?`. A key is the client's text: echoed raw, a newline or an escape sequence forged log lines,
/// a 60 KB key doubled the answer, and a `.` in it would pass for a path.
fn safe_key(key: &str) -> &str {
    let plain = (1..=64).contains(&key.len())
        && key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
    if plain { key } else { "?" }
}

/// The path to a shape error, from serde_path_to_error's segments (not its text, where a key
/// holding `.` or `[` would read as a path): keys made safe ([`safe_key`]), `[n]` for an index,
/// `.` for the root.
fn safe_path(path: &serde_path_to_error::Path) -> String {
    use serde_path_to_error::Segment;
    let mut out = String::new();
    for segment in path.iter() {
        match segment {
            Segment::Seq { index } => out.push_str(&format!("[{index}]")),
            Segment::Map { key } | Segment::Enum { variant: key } => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(safe_key(key));
            }
            Segment::Unknown => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push('?');
            }
        }
    }
    if out.is_empty() { ".".to_owned() } else { out }
}

/// Names the field of a shape error: the path where it happened or, for an unknown or missing
/// field, the field serde names (made safe: [`safe_key`]), and says what was expected.
fn shape_error(path: &serde_path_to_error::Path, error: &DeserializerError) -> ValidationError {
    let path = &safe_path(path);
    // The path already ends at an unknown field; a missing one is named only by the error.
    let (named, message) = match error {
        DeserializerError::UnknownField(name, _) => {
            (Some(name.as_str()), "unknown field".to_owned())
        }
        DeserializerError::MissingField(name) => (Some(*name), "required".to_owned()),
        // The offending value is the client's (maybe a message body) and this is logged: only
        // the expectation is kept.
        DeserializerError::InvalidType(_, expected)
        | DeserializerError::InvalidValue(_, expected)
        | DeserializerError::InvalidLength(_, expected) => (None, format!("expected {expected}")),
        DeserializerError::UnknownVariant(_, variants) => {
            (None, format!("expected {}", one_of(variants)))
        }
        DeserializerError::DuplicateField(name) => (None, format!("duplicate field `{name}`")),
        DeserializerError::Custom(message) => (None, message.clone()),
    };
    let named = named.map(|name| safe_key(name).to_owned());
    let field = match (path.as_str(), named) {
        (".", Some(name)) => name,
        (p, Some(name)) if matches!(error, DeserializerError::MissingField(_)) => {
            format!("{p}.{name}")
        }
        (".", None) => String::new(),
        (p, _) => p.to_owned(),
    };
    let error = ValidationError::new(message);
    if field.is_empty() {
        error
    } else {
        error.at(field)
    }
}

/// The variants an enum takes, as serde words them.
fn one_of(variants: &[&str]) -> String {
    match variants {
        [] => "no variant".to_owned(),
        [one] => format!("`{one}`"),
        [a, b] => format!("`{a}` or `{b}`"),
        many => format!(
            "one of {}",
            many.iter()
                .map(|v| format!("`{v}`"))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

fn response(
    status: u16,
    request_id: &str,
    body: Option<&Value>,
    quota: Option<&Quota>,
    retry_after: Option<u64>,
) -> Response<Body> {
    let mut builder = Response::builder()
        .status(status)
        .header("x-request-id", request_id);
    if let Some(q) = quota {
        builder = builder
            .header(
                "ratelimit-policy",
                format!("{};w={}", q.limit, q.window_seconds),
            )
            .header("ratelimit-limit", q.limit)
            .header("ratelimit-remaining", q.remaining)
            .header("ratelimit-reset", q.reset_seconds);
    }
    if let Some(seconds) = retry_after {
        builder = builder.header("retry-after", seconds);
    }
    let built = match body {
        Some(json) => builder
            .header("content-type", "application/json")
            .body(Body::Text(json.to_string())),
        None => builder.body(Body::Empty),
    };
    // Only an invalid header value can fail, and request ids are plain ASCII from API Gateway.
    built.unwrap_or_else(|_| {
        let mut fallback = Response::new(Body::Empty);
        *fallback.status_mut() = http_status(500);
        fallback
    })
}

fn http_status(code: u16) -> lambda_http::http::StatusCode {
    lambda_http::http::StatusCode::from_u16(code)
        .unwrap_or(lambda_http::http::StatusCode::INTERNAL_SERVER_ERROR)
}

/// The gateway's 401, for a request whose claims cannot be read.
pub fn unauthorized() -> Response<Body> {
    let mut resp = Response::new(Body::Text(r#"{"message":"Unauthorized"}"#.to_owned()));
    *resp.status_mut() = http_status(401);
    resp.headers_mut().insert(
        "content-type",
        lambda_http::http::HeaderValue::from_static("application/json"),
    );
    resp
}

/// Runs a route's work and maps its outcome to the response, with `x-request-id` on every answer.
pub async fn respond<F>(req: &Request, work: F) -> Response<Body>
where
    F: Future<Output = Result<Reply, ApiError>>,
{
    let request_id = request_id(req);
    match work.await {
        Ok(reply) => response(
            reply.status,
            &request_id,
            reply.body.as_ref(),
            reply.quota.as_ref(),
            None,
        ),
        Err(error) => {
            error.log();
            let (quota, retry_after) = match &error {
                ApiError::RateLimited {
                    retry_after_seconds,
                    quota,
                } => (Some(quota), Some(*retry_after_seconds)),
                _ => (None, None),
            };
            response(
                error.status(),
                &request_id,
                Some(&error.body(&request_id)),
                quota,
                retry_after,
            )
        }
    }
}

/// [`respond_as_caller`] for a route under a rate limit: one request is taken from the caller's
/// allowance first (429 when none is left), and the answer carries the `RateLimit-*` headers.
pub async fn respond_limited<F, Fut>(
    req: &Request,
    limiter: &RateLimiter,
    kind: LimitKind,
    work: F,
) -> Response<Body>
where
    F: FnOnce(Caller) -> Fut,
    Fut: Future<Output = Result<Reply, ApiError>>,
{
    respond_as_caller(req, |caller| async move {
        let quota = limiter.acquire(kind, caller.user_id.as_str()).await?;
        Ok(work(caller).await?.with_quota(Some(quota)))
    })
    .await
}

/// [`respond`] for routes that need the caller: no readable caller is the gateway's 401.
pub async fn respond_as_caller<F, Fut>(req: &Request, work: F) -> Response<Body>
where
    F: FnOnce(Caller) -> Fut,
    Fut: Future<Output = Result<Reply, ApiError>>,
{
    match caller(req) {
        Ok(caller) => respond(req, work(caller)).await,
        Err(Unauthorized) => unauthorized(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Title;
    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields, rename_all = "camelCase")]
    #[allow(dead_code, reason = "fields are read by the deserializer only")]
    struct Input {
        title: Title,
        max_items: Option<u32>,
    }

    fn refusal(raw: &str) -> (String, Option<String>) {
        match parse_json::<Input>(raw.as_bytes()) {
            Err(ApiError::Validation(v)) => (v.message, v.field),
            Err(other) => (other.code().as_str().to_owned(), None),
            Ok(_) => ("accepted".to_owned(), None),
        }
    }

    /// An unknown key is the client's text: never echoed (a newline or an escape sequence would
    /// forge log lines; a 60 KB key would double the answer).
    #[test]
    fn an_unknown_key_is_named_only_when_it_is_a_plain_name() {
        for key in [
            "evil\nINFO forged",
            "\u{1b}[31mred",
            "x".repeat(60_000).as_str(),
            "a b",
        ] {
            let body = serde_json::json!({"title": "ok", key: 1}).to_string();
            let (message, field) = refusal(&body);
            assert_eq!(
                (message.as_str(), field.as_deref()),
                ("unknown field", Some("?")),
                "{key:.20}"
            );
        }
        // A key that looks like a path is one key, not a path.
        let (_, field) = refusal(r#"{"title": "ok", "p.articipantIds": "x"}"#);
        assert_eq!(field.as_deref(), Some("?"));
        assert_eq!(safe_key("participantIds"), "participantIds");
        assert_eq!(safe_key(""), "?", "an empty key");
        assert_eq!(safe_key("a[3]"), "?");
    }

    #[test]
    fn not_json_is_invalid_json_but_a_wrong_shape_is_validation_failed() {
        assert_eq!(refusal("{"), ("invalid_json".to_owned(), None));
        assert_eq!(refusal(""), ("invalid_json".to_owned(), None));
        assert_eq!(refusal(r#"{"title":"ok"}"#).0, "accepted");
        assert_eq!(
            refusal(r#"{"title":"ok","extra":1}"#),
            ("unknown field".to_owned(), Some("extra".to_owned()))
        );
        assert_eq!(
            refusal("{}"),
            ("required".to_owned(), Some("title".to_owned()))
        );
        let (message, field) = refusal(r#"{"title":"ok","maxItems":"ten"}"#);
        assert_eq!(field.as_deref(), Some("maxItems"));
        assert_eq!(message, "expected u32");
        assert_eq!(
            refusal(r#"{"title":""}"#),
            ("must not be empty".to_owned(), Some("title".to_owned()))
        );
        assert_eq!(
            refusal(r#"["secret"]"#),
            ("the body must be a JSON object".to_owned(), None)
        );
    }

    #[test]
    fn a_body_is_an_object_never_an_array_of_the_fields() {
        #[derive(Debug, Deserialize)]
        #[serde(deny_unknown_fields)]
        #[allow(dead_code, reason = "fields are read by the deserializer only")]
        struct Optional {
            muted: Option<bool>,
        }
        for raw in ["[]", "[true]", "null", "3", r#""text""#] {
            match parse_json::<Optional>(raw.as_bytes()) {
                Err(ApiError::Validation(v)) => assert!(v.field.is_none(), "{raw}"),
                other => panic!("{raw}: {other:?}"),
            }
        }
        assert!(parse_json::<Optional>(b"{}").is_ok());
    }

    #[test]
    fn bodies_over_64_kib_are_too_large() {
        let big = format!(r#"{{"title":"{}"}}"#, "a".repeat(MAX_BODY_BYTES));
        assert!(matches!(
            parse_json::<Input>(big.as_bytes()),
            Err(ApiError::PayloadTooLarge)
        ));
    }
}
