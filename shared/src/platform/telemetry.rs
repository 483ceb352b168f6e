//! Tracing set-up for every binary: JSON lines when Lambda's advanced logging asks for them
//! (`AWS_LAMBDA_LOG_FORMAT=JSON`), compact text otherwise; the level from `AWS_LAMBDA_LOG_LEVEL`,
//! else `RUST_LOG`, else `info`.
//!
//! Never log a whole event or request: they carry bearer tokens, tickets and message bodies.
//!
//! Not `lambda_runtime::tracing::init_default_subscriber`, though it reads the same variables:
//! it nests an event's fields under `fields` (the log scan and CloudWatch Logs Insights queries
//! read them flat, beside `level` and the span's `requestId`), it leaves ANSI colours on in text
//! lines, it maps `FATAL` to `info` (tracing has no such level; here it is `error`), and it panics
//! when called twice, which the in-process functions of the local gateway and the tests do.

use tracing_subscriber::EnvFilter;

/// Output format of the log lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Json,
    Text,
}

impl LogFormat {
    /// `JSON` (any case) selects JSON, as Lambda sets it; anything else is text.
    pub fn from_env_value(value: Option<&str>) -> Self {
        match value {
            Some(v) if v.trim().eq_ignore_ascii_case("json") => Self::Json,
            _ => Self::Text,
        }
    }
}

/// The filter directive: Lambda's level names mapped to tracing's (`FATAL` is `error`).
pub fn filter_directive(lambda_level: Option<&str>, rust_log: Option<&str>) -> String {
    if let Some(level) = lambda_level.map(str::trim).filter(|l| !l.is_empty()) {
        return match level.to_ascii_uppercase().as_str() {
            "TRACE" => "trace",
            "DEBUG" => "debug",
            "WARN" => "warn",
            "ERROR" | "FATAL" => "error",
            _ => "info",
        }
        .to_owned();
    }
    rust_log
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .unwrap_or("info")
        .to_owned()
}

/// Installs the global subscriber once; a second call (tests) leaves the first in place.
pub fn init() {
    let format = LogFormat::from_env_value(std::env::var("AWS_LAMBDA_LOG_FORMAT").ok().as_deref());
    let directive = filter_directive(
        std::env::var("AWS_LAMBDA_LOG_LEVEL").ok().as_deref(),
        std::env::var("RUST_LOG").ok().as_deref(),
    );
    let filter = EnvFilter::try_new(&directive).unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(false)
        .with_target(false);
    // CloudWatch stamps every line itself; the JSON form keeps a timestamp for other sinks.
    let _ = match format {
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .try_init(),
        LogFormat::Text => builder.without_time().compact().try_init(),
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_only_when_lambda_asks_for_it() {
        assert_eq!(LogFormat::from_env_value(Some("JSON")), LogFormat::Json);
        assert_eq!(LogFormat::from_env_value(Some("json")), LogFormat::Json);
        assert_eq!(LogFormat::from_env_value(Some("Text")), LogFormat::Text);
        assert_eq!(LogFormat::from_env_value(None), LogFormat::Text);
    }

    #[test]
    fn lambda_levels_win_over_rust_log() {
        assert_eq!(filter_directive(Some("FATAL"), Some("debug")), "error");
        assert_eq!(filter_directive(Some("debug"), None), "debug");
        assert_eq!(
            filter_directive(None, Some("chat_shared=trace")),
            "chat_shared=trace"
        );
        assert_eq!(filter_directive(Some(" "), None), "info");
    }
}
