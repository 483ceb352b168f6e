//! CloudWatch metrics in the Embedded Metric Format: one JSON line per metric on stdout, which
//! CloudWatch Logs turns into a metric without an API call (nothing to wait for, nothing to fail).
//!
//! Every metric has the dimension `Function` (`AWS_LAMBDA_FUNCTION_NAME`); degraded dependencies
//! also have `Dependency`. Namespace [`NAMESPACE`]. Values are counts; a fan-out reports its
//! totals once, not a line per post. No line carries request data.

use std::io::Write;
use std::sync::OnceLock;

use serde_json::{Value, json};

/// The CloudWatch namespace of every metric.
pub const NAMESPACE: &str = "ServerlessChat";

/// What is counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Metric {
    /// A new message stored (a retried `clientMessageId` is not counted again).
    MessagesSent,
    /// A send answered with a server error (500 or 503).
    SendsFailed,
    /// Posts to `@connections` that arrived.
    PushesDelivered,
    /// Posts to `@connections` that failed for another reason than a gone connection.
    PushesFailed,
    /// Connection records deleted because `@connections` answered 410.
    ConnectionsPruned,
    /// Requests refused with 429.
    RateLimited,
    /// Work done without a dependency, or a request failed by one (see [`Dependency`]).
    DependencyDegraded,
    /// Events counted into the daily aggregates (a redelivered event is not counted again).
    EventsCounted,
    /// Stream records skipped because they are not readable CloudEvents.
    EventsSkipped,
}

impl Metric {
    pub fn name(self) -> &'static str {
        match self {
            Self::MessagesSent => "MessagesSent",
            Self::SendsFailed => "SendsFailed",
            Self::PushesDelivered => "PushesDelivered",
            Self::PushesFailed => "PushesFailed",
            Self::ConnectionsPruned => "ConnectionsPruned",
            Self::RateLimited => "RateLimited",
            Self::DependencyDegraded => "DependencyDegraded",
            Self::EventsCounted => "EventsCounted",
            Self::EventsSkipped => "EventsSkipped",
        }
    }
}

/// The dependency behind a [`Metric::DependencyDegraded`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dependency {
    /// Redis unreachable or failing: per-instance limits, caches bypassed.
    Redis,
    /// DynamoDB unavailable: the request answered 503.
    DynamoDb,
    /// Kinesis refused records: the batch is retried from the first failed record.
    Kinesis,
}

impl Dependency {
    pub fn name(self) -> &'static str {
        match self {
            Self::Redis => "redis",
            Self::DynamoDb => "dynamodb",
            Self::Kinesis => "kinesis",
        }
    }
}

fn function_name() -> &'static str {
    static NAME: OnceLock<String> = OnceLock::new();
    NAME.get_or_init(|| {
        std::env::var("AWS_LAMBDA_FUNCTION_NAME").unwrap_or_else(|_| "local".to_owned())
    })
}

/// One EMF line (without the newline).
pub fn render(
    function: &str,
    metric: Metric,
    value: u64,
    dependency: Option<Dependency>,
    timestamp_ms: i64,
) -> String {
    let dimensions: Vec<&str> = match dependency {
        Some(_) => vec!["Function", "Dependency"],
        None => vec!["Function"],
    };
    let mut line = json!({
        "_aws": {
            "Timestamp": timestamp_ms,
            "CloudWatchMetrics": [{
                "Namespace": NAMESPACE,
                "Dimensions": [dimensions],
                "Metrics": [{"Name": metric.name(), "Unit": "Count"}],
            }],
        },
        "Function": function,
        (metric.name()): value,
    });
    if let (Some(dep), Value::Object(map)) = (dependency, &mut line) {
        map.insert("Dependency".to_owned(), json!(dep.name()));
    }
    line.to_string()
}

fn emit(metric: Metric, value: u64, dependency: Option<Dependency>) {
    if value == 0 {
        return;
    }
    // Real time, not the application clock: CloudWatch drops metrics stamped hours ahead, and a
    // metric's time is when it was observed, like a log line's.
    let now_ms = crate::platform::time::Clock::system().now().unix_millis();
    let line = render(function_name(), metric, value, dependency, now_ms);
    // One write of a whole line, so that it never interleaves with a log line.
    let _ = std::io::stdout()
        .lock()
        .write_all(format!("{line}\n").as_bytes());
}

/// Counts `value` of `metric` (nothing is written for 0).
pub fn count(metric: Metric, value: u64) {
    emit(metric, value, None);
}

/// Counts one piece of work done without `dependency`, or one request it failed.
pub fn degraded(dependency: Dependency) {
    emit(Metric::DependencyDegraded, 1, Some(dependency));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_embedded_metric_format() {
        let line: Value = serde_json::from_str(&render(
            "chat-http-send-message",
            Metric::MessagesSent,
            1,
            None,
            1_764_000_000_000,
        ))
        .unwrap();
        assert_eq!(line["_aws"]["Timestamp"], 1_764_000_000_000_i64);
        let directive = &line["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(directive["Namespace"], NAMESPACE);
        assert_eq!(directive["Dimensions"], json!([["Function"]]));
        assert_eq!(
            directive["Metrics"],
            json!([{"Name": "MessagesSent", "Unit": "Count"}])
        );
        // Every dimension and metric named in the directive is a member of the line.
        assert_eq!(line["Function"], "chat-http-send-message");
        assert_eq!(line["MessagesSent"], 1);
    }

    #[test]
    fn degraded_dependencies_carry_their_name_as_a_dimension() {
        let line: Value = serde_json::from_str(&render(
            "f",
            Metric::DependencyDegraded,
            1,
            Some(Dependency::Redis),
            0,
        ))
        .unwrap();
        assert_eq!(
            line["_aws"]["CloudWatchMetrics"][0]["Dimensions"],
            json!([["Function", "Dependency"]])
        );
        assert_eq!(line["Dependency"], "redis");
        assert_eq!(line["DependencyDegraded"], 1);
    }
}
