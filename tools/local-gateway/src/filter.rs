//! Plays the filter criteria of an event source mapping (`FilterCriteria.Filters[].Pattern` in
//! `template.yaml`): a record reaches the function only when some pattern matches it, as Lambda
//! filters a DynamoDB stream, so a record the template's filter leaves out is left out here too.
//!
//! The patterns' grammar is Lambda's (EventBridge's); the operators the template uses are played:
//! exact strings and numbers, `prefix` and `exists`. Any other operator is refused when the
//! mapping starts, rather than matched wrongly.

use aws_lambda_events::event::dynamodb::{Event, EventRecord};
use serde_json::Value;

/// A mapping's patterns, checked when read.
#[derive(Debug, Clone, Default)]
pub struct Filters(Vec<Value>);

impl Filters {
    /// The patterns of `handler`'s DynamoDB event in the repository's `template.yaml`.
    pub fn of_function(handler: &str) -> Result<Self, String> {
        let text = include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/../../template.yaml"));
        let patterns =
            local_stack::template::stream_filters(text, handler).map_err(|e| e.to_string())?;
        for pattern in &patterns {
            check(pattern).map_err(|e| format!("{handler}: {e} in {pattern}"))?;
        }
        Ok(Self(patterns))
    }

    /// Whether the mapping hands `record` to the function: no patterns, or one that matches.
    pub fn admits(&self, record: &EventRecord) -> bool {
        if self.0.is_empty() {
            return true;
        }
        let Ok(json) = serde_json::to_value(record) else {
            return false;
        };
        self.0.iter().any(|p| matches(p, &json))
    }

    /// The batch as the function gets it (`None` when nothing is left: no invocation).
    pub fn apply(&self, mut event: Event) -> Option<Event> {
        event.records.retain(|r| self.admits(r));
        (!event.records.is_empty()).then_some(event)
    }
}

fn check(pattern: &Value) -> Result<(), String> {
    match pattern {
        Value::Object(fields) => fields.values().try_for_each(check),
        Value::Array(values) => values.iter().try_for_each(|v| match v {
            Value::String(_) | Value::Number(_) => Ok(()),
            Value::Object(op) if op.len() == 1 => match op.iter().next() {
                Some((name, Value::String(_))) if name == "prefix" => Ok(()),
                Some((name, Value::Bool(_))) if name == "exists" => Ok(()),
                _ => Err(format!("unsupported operator {v}")),
            },
            _ => Err(format!("unsupported value {v}")),
        }),
        other => Err(format!("a pattern's leaves are arrays, not {other}")),
    }
}

fn matches(pattern: &Value, event: &Value) -> bool {
    let Value::Object(fields) = pattern else {
        return false;
    };
    fields.iter().all(|(name, want)| {
        let got = event.get(name);
        match want {
            Value::Object(_) => got.is_some_and(|g| matches(want, g)),
            Value::Array(values) => values.iter().any(|v| leaf(v, got)),
            _ => false,
        }
    })
}

fn leaf(want: &Value, got: Option<&Value>) -> bool {
    match (want, got) {
        (Value::Object(op), got) => match op.iter().next() {
            Some((name, Value::String(prefix))) if name == "prefix" => got
                .and_then(Value::as_str)
                .is_some_and(|s| s.starts_with(prefix.as_str())),
            Some((name, Value::Bool(exists))) if name == "exists" => got.is_some() == *exists,
            _ => false,
        },
        (want, Some(got)) => want == got,
        (_, None) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(event_name: &str, pk: &str, sk: &str) -> EventRecord {
        serde_json::from_value(serde_json::json!({
            "eventID": "1", "eventName": event_name, "eventSource": "aws:dynamodb",
            "awsRegion": "us-east-1",
            "dynamodb": {"Keys": {"PK": {"S": pk}, "SK": {"S": sk}}, "SequenceNumber": "1",
                         "SizeBytes": 1, "StreamViewType": "NEW_AND_OLD_IMAGES"}
        }))
        .unwrap()
    }

    /// The fan-out's filters as the template has them: messages, members, META, typing, and a
    /// profile's MODIFY; not an inbox entry, a ledger entry or a new profile.
    #[test]
    fn the_fan_outs_filters_admit_what_the_template_says() {
        let filters = Filters::of_function("stream-fan-out").unwrap();
        for (name, pk, sk) in [
            ("INSERT", "CONV#1", "MSG#000000000001"),
            ("REMOVE", "CONV#1", "MEMBER#ada"),
            ("MODIFY", "CONV#1", "META"),
            ("INSERT", "TYPING#1", "ada"),
            ("MODIFY", "USER#ada", "PROFILE"),
        ] {
            assert!(filters.admits(&record(name, pk, sk)), "{name} {pk} {sk}");
        }
        for (name, pk, sk) in [
            ("MODIFY", "USER#ada", "INBOX#1"),
            ("INSERT", "USER#ada", "PROFILE"),
            ("INSERT", "REVS#1", "00000000000000000001"),
            ("INSERT", "CONV#1", "CMID#ada#c-1"),
        ] {
            assert!(!filters.admits(&record(name, pk, sk)), "{name} {pk} {sk}");
        }
    }

    #[test]
    fn unknown_operators_are_refused() {
        assert!(check(&serde_json::json!({"a": [{"suffix": "x"}]})).is_err());
        assert!(check(&serde_json::json!({"a": "x"})).is_err());
        assert!(check(&serde_json::json!({"a": [{"prefix": "x"}, "y", 3]})).is_ok());
    }
}
