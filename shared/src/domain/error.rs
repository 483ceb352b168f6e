//! The API's error type and its one mapping to the contract's status codes and error JSON.
//!
//! Services return [`ApiError`]; HTTP and WebSocket adapters turn it into a response with
//! [`ApiError::status`] and [`ApiError::body`]. The client sees a code and a safe message; the
//! cause of an `internal` or `unavailable` error goes to the log only (see [`ApiError::log`]).

use serde::Serialize;
use serde_json::{Value, json};

use crate::domain::{UserId, ValidationError};

/// The contract's error codes (`openapi.yaml`, `components/schemas/Error`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    ValidationFailed,
    InvalidJson,
    InvalidCursor,
    Forbidden,
    NotFound,
    Conflict,
    PayloadTooLarge,
    UnknownUsers,
    RateLimited,
    Unavailable,
    Internal,
    UnknownAction,
}

impl ErrorCode {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ValidationFailed => "validation_failed",
            Self::InvalidJson => "invalid_json",
            Self::InvalidCursor => "invalid_cursor",
            Self::Forbidden => "forbidden",
            Self::NotFound => "not_found",
            Self::Conflict => "conflict",
            Self::PayloadTooLarge => "payload_too_large",
            Self::UnknownUsers => "unknown_users",
            Self::RateLimited => "rate_limited",
            Self::Unavailable => "unavailable",
            Self::Internal => "internal",
            Self::UnknownAction => "unknown_action",
        }
    }

    /// The HTTP status of this code: the one place where codes meet status numbers.
    pub fn status(self) -> u16 {
        match self {
            Self::ValidationFailed | Self::InvalidJson | Self::InvalidCursor => 400,
            Self::UnknownAction => 400,
            Self::Forbidden => 403,
            Self::NotFound => 404,
            Self::Conflict => 409,
            Self::PayloadTooLarge => 413,
            Self::UnknownUsers => 422,
            Self::RateLimited => 429,
            Self::Internal => 500,
            Self::Unavailable => 503,
        }
    }
}

/// Everything a route can answer besides success.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    Validation(ValidationError),
    #[error("the body is not valid JSON")]
    InvalidJson,
    #[error("the cursor is not valid")]
    InvalidCursor,
    #[error("{0}")]
    Forbidden(&'static str),
    #[error("not found")]
    NotFound,
    #[error("{0}")]
    Conflict(&'static str),
    #[error("the request body is larger than 64 KiB")]
    PayloadTooLarge,
    #[error("some participants have no profile")]
    UnknownUsers(Vec<UserId>),
    #[error("too many requests")]
    RateLimited {
        retry_after_seconds: u64,
        quota: crate::domain::limits::Quota,
    },
    #[error("no route handles this action")]
    UnknownAction,
    /// The database did not confirm the write in time; retrying is safe.
    #[error("the service is unavailable, retry later")]
    Unavailable(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// A bug or an unexpected dependency answer; the cause is logged, never returned.
    #[error("internal error")]
    Internal(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl ApiError {
    pub fn validation(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::Validation(ValidationError::new(message).at(field))
    }

    pub fn internal(cause: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        Self::Internal(cause.into())
    }

    pub fn code(&self) -> ErrorCode {
        match self {
            Self::Validation(_) => ErrorCode::ValidationFailed,
            Self::InvalidJson => ErrorCode::InvalidJson,
            Self::InvalidCursor => ErrorCode::InvalidCursor,
            Self::Forbidden(_) => ErrorCode::Forbidden,
            Self::NotFound => ErrorCode::NotFound,
            Self::Conflict(_) => ErrorCode::Conflict,
            Self::PayloadTooLarge => ErrorCode::PayloadTooLarge,
            Self::UnknownUsers(_) => ErrorCode::UnknownUsers,
            Self::RateLimited { .. } => ErrorCode::RateLimited,
            Self::UnknownAction => ErrorCode::UnknownAction,
            Self::Unavailable(_) => ErrorCode::Unavailable,
            Self::Internal(_) => ErrorCode::Internal,
        }
    }

    pub fn status(&self) -> u16 {
        self.code().status()
    }

    /// The `error` object of the contract: `{code, message, field?, details?}`.
    pub fn error_object(&self) -> Value {
        let mut error = json!({"code": self.code().as_str(), "message": self.to_string()});
        match self {
            Self::Validation(v) => {
                // The message already starts with the field; say the bare reason beside it.
                if let Some(field) = &v.field {
                    error["field"] = json!(field);
                }
            }
            Self::UnknownUsers(ids) => error["details"] = json!({ "userIds": ids }),
            Self::RateLimited {
                retry_after_seconds,
                ..
            } => error["details"] = json!({ "retryAfterSeconds": retry_after_seconds }),
            _ => {}
        }
        error
    }

    /// The whole HTTP error body: `{"error": {...}, "requestId": "..."}`.
    pub fn body(&self, request_id: &str) -> Value {
        json!({"error": self.error_object(), "requestId": request_id})
    }

    /// Logs the error once, at the level it deserves, with its cause chain (never request data).
    pub fn log(&self) {
        use crate::platform::metrics::{Dependency, Metric, count, degraded};
        match self {
            Self::RateLimited { .. } => count(Metric::RateLimited, 1),
            Self::Unavailable(_) => degraded(Dependency::DynamoDb),
            _ => {}
        }
        match self {
            Self::Internal(_) | Self::Unavailable(_) => {
                tracing::error!(code = self.code().as_str(), error = %ErrorChain(self), "request failed");
            }
            _ => tracing::info!(code = self.code().as_str(), error = %self, "request refused"),
        }
    }
}

impl From<ValidationError> for ApiError {
    fn from(value: ValidationError) -> Self {
        Self::Validation(value)
    }
}

/// Displays an error with every `source()` after it: `outer: middle: root`.
#[derive(Debug)]
pub struct ErrorChain<'a>(pub &'a (dyn std::error::Error + 'static));

impl std::fmt::Display for ErrorChain<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)?;
        let mut source = self.0.source();
        while let Some(cause) = source {
            write!(f, ": {cause}")?;
            source = cause.source();
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_has_the_contract_status() {
        let cases = [
            (
                ApiError::validation("title", "at most 100 characters"),
                400,
                "validation_failed",
            ),
            (ApiError::InvalidJson, 400, "invalid_json"),
            (ApiError::InvalidCursor, 400, "invalid_cursor"),
            (
                ApiError::Forbidden("only the sender may edit"),
                403,
                "forbidden",
            ),
            (ApiError::NotFound, 404, "not_found"),
            (
                ApiError::Conflict("direct conversations have no title"),
                409,
                "conflict",
            ),
            (ApiError::PayloadTooLarge, 413, "payload_too_large"),
            (ApiError::UnknownUsers(vec![]), 422, "unknown_users"),
            (
                ApiError::RateLimited {
                    retry_after_seconds: 3,
                    quota: crate::domain::limits::Quota {
                        limit: 1,
                        remaining: 0,
                        reset_seconds: 3,
                        window_seconds: 3,
                    },
                },
                429,
                "rate_limited",
            ),
            (ApiError::Unavailable("timeout".into()), 503, "unavailable"),
            (ApiError::internal("boom"), 500, "internal"),
        ];
        for (error, status, code) in cases {
            assert_eq!(error.status(), status, "{code}");
            assert_eq!(error.body("r-1")["error"]["code"], code);
            assert_eq!(error.body("r-1")["requestId"], "r-1");
        }
    }

    #[test]
    fn validation_errors_name_their_field() {
        let body = ApiError::validation("title", "at most 100 characters").body("r");
        assert_eq!(
            body,
            json!({"error": {"code": "validation_failed", "message": "title: at most 100 characters",
                             "field": "title"}, "requestId": "r"})
        );
    }

    #[test]
    fn unknown_users_are_listed_in_details() {
        let ids = vec!["u9".parse().unwrap(), "u8".parse().unwrap()];
        let body = ApiError::UnknownUsers(ids).body("r");
        assert_eq!(body["error"]["details"]["userIds"], json!(["u9", "u8"]));
    }

    #[test]
    fn internal_causes_never_reach_the_body() {
        let error = ApiError::internal("table chat-prod: secret detail");
        let text = error.body("r").to_string();
        assert!(!text.contains("secret"), "{text}");
        assert_eq!(error.body("r")["error"]["message"], "internal error");
    }

    #[test]
    fn error_chain_shows_every_cause() {
        let error = ApiError::Unavailable(Box::new(std::io::Error::other("socket timed out")));
        assert_eq!(
            ErrorChain(&error).to_string(),
            "the service is unavailable, retry later: socket timed out"
        );
    }
}
