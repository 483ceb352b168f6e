//! Posting to WebSocket connections through the API Gateway Management API (`@connections`).
//! The endpoint (`https://{apiId}.execute-api.{region}.amazonaws.com/{stage}` in AWS, the local
//! gateway's `http://127.0.0.1:3000/local` locally) comes from the SDK's own
//! `AWS_ENDPOINT_URL_APIGATEWAYMANAGEMENTAPI`.

use aws_sdk_apigatewaymanagement::Client;
use aws_sdk_apigatewaymanagement::operation::post_to_connection::PostToConnectionError;
use aws_sdk_apigatewaymanagement::primitives::Blob;
use serde_json::Value;

/// Why a post did not arrive.
#[derive(Debug, thiserror::Error)]
pub enum PushError {
    /// The connection is closed or never existed (410): its record should go.
    #[error("the connection is gone")]
    Gone,
    #[error("the message is too large for a WebSocket frame")]
    PayloadTooLarge,
    #[error("API Gateway's connection limit was exceeded")]
    LimitExceeded,
    #[error("the post failed: {0}")]
    Other(String),
}

#[derive(Debug, Clone)]
pub struct Pusher {
    client: Client,
    /// Requests in flight at once during a fan-out (`PUSH_CONCURRENCY`).
    in_flight: usize,
}

impl Pusher {
    pub fn new(client: Client) -> Self {
        Self {
            client,
            in_flight: DEFAULT_IN_FLIGHT,
        }
    }

    /// The same pusher with `in_flight` requests at once during a fan-out (at least 1).
    pub fn with_in_flight(mut self, in_flight: usize) -> Self {
        self.in_flight = in_flight.max(1);
        self
    }

    pub fn in_flight(&self) -> usize {
        self.in_flight
    }

    /// The `@connections` client (the local gateway rebuilds it with each function's credentials).
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// This pusher's client and settings, posting to another `@connections` endpoint (stage
    /// included).
    pub fn at_endpoint(&self, url: &str) -> Self {
        let config = self.client.config().to_builder().endpoint_url(url).build();
        Self {
            client: Client::from_conf(config),
            in_flight: self.in_flight,
        }
    }

    /// A pusher for this `@connections` endpoint (stage included), whatever the environment says.
    pub async fn for_endpoint(url: &str) -> Result<Self, crate::platform::config::ConfigError> {
        let sdk = crate::platform::aws::load_sdk_config().await?;
        let config = aws_sdk_apigatewaymanagement::config::Builder::from(&sdk)
            .endpoint_url(url)
            .build();
        Ok(Self::new(Client::from_conf(config)))
    }

    /// Posts one JSON message to one connection.
    pub async fn post(&self, connection_id: &str, message: &Value) -> Result<(), PushError> {
        let result = self
            .client
            .post_to_connection()
            .connection_id(connection_id)
            .data(Blob::new(message.to_string().into_bytes()))
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(error) => Err(match error.as_service_error() {
                Some(PostToConnectionError::GoneException(_)) => PushError::Gone,
                Some(PostToConnectionError::PayloadTooLargeException(_)) => {
                    PushError::PayloadTooLarge
                }
                Some(PostToConnectionError::LimitExceededException(_)) => PushError::LimitExceeded,
                _ => PushError::Other(crate::domain::error::ErrorChain(&error).to_string()),
            }),
        }
    }
}

/// The largest event pushed whole (contract: 32 KiB); a larger `message.*` event goes out in
/// its truncated form for the client to fetch.
pub const MAX_EVENT_BYTES: usize = 32 * 1024;
/// Requests in flight at once during a fan-out, connection lookups and posts each, unless
/// `PUSH_CONCURRENCY` says otherwise: the best of the settings `tools/bench-fan-out.sh` measures
/// (BENCHMARKS.md).
pub const DEFAULT_IN_FLIGHT: usize = 64;

/// `PUSH_CONCURRENCY`: requests in flight during a fan-out, 1 to 256.
pub fn in_flight_from_env<F: Fn(&str) -> Option<String>>(
    env: &crate::platform::config::Env<F>,
) -> Result<usize, crate::platform::config::ConfigError> {
    let n: usize = env.parse_or("PUSH_CONCURRENCY", DEFAULT_IN_FLIGHT)?;
    if (1..=256).contains(&n) {
        Ok(n)
    } else {
        Err(crate::platform::config::ConfigError::Invalid {
            name: "PUSH_CONCURRENCY",
            reason: "must be 1 to 256".to_owned(),
        })
    }
}

/// The event as pushed: whole, or truncated when over 32 KiB: a `message.*` event to its
/// numbers, a `member.added` event to the user ids that fit (a group of 1,024 added at once names
/// about 30 KiB of ids), each with `truncated: true` for the client to read the rest.
pub fn fit(event: Value) -> Value {
    if event.to_string().len() <= MAX_EVENT_BYTES {
        return event;
    }
    match event["type"].as_str() {
        Some(t) if t.starts_with("message.") => serde_json::json!({
            "type": event["type"], "conversationId": event["conversationId"], "rev": event["rev"],
            "seq": event["message"]["seq"], "truncated": true,
        }),
        Some("member.added") => {
            let mut cut = event.clone();
            cut["truncated"] = Value::Bool(true);
            let ids = event["userIds"].as_array().cloned().unwrap_or_default();
            // The envelope, then ids while they fit (each adds its JSON and a comma).
            cut["userIds"] = Value::Array(Vec::new());
            let mut size = cut.to_string().len();
            let mut kept = Vec::new();
            for id in ids {
                size += id.to_string().len() + 1;
                if size > MAX_EVENT_BYTES {
                    break;
                }
                kept.push(id);
            }
            cut["userIds"] = Value::Array(kept);
            cut
        }
        _ => event,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 1,023 members with long ids added at once name more than a frame holds: the ids that fit,
    /// `truncated`.
    #[test]
    fn a_member_added_event_over_a_frame_keeps_the_ids_that_fit() {
        let ids: Vec<String> = (0..1023)
            .map(|i| format!("google-oauth2|user-with-a-long-identifier-{i:04}"))
            .collect();
        let event = serde_json::json!({"type": "member.added", "conversationId": "01JDQ7Z8K3M4N5P6Q7R8S9T0VW", "userIds": ids});
        assert!(event.to_string().len() > MAX_EVENT_BYTES);
        let cut = fit(event);
        assert!(cut.to_string().len() <= MAX_EVENT_BYTES);
        assert_eq!(cut["truncated"], true);
        let kept = cut["userIds"].as_array().unwrap();
        assert!(kept.len() > 500 && kept.len() < 1023, "{}", kept.len());
        assert_eq!(kept[0], "google-oauth2|user-with-a-long-identifier-0000");
        let small =
            serde_json::json!({"type": "member.added", "conversationId": "c", "userIds": ["a"]});
        assert_eq!(fit(small.clone()), small);
    }
}
