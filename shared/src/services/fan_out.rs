//! Pushes to WebSocket connections: an event to every connection of the users concerned (found in
//! the table), pruning the records of gone connections. Methods of [`Pusher`], the `@connections`
//! client. (A frame's answer is its route's response: `crate::edge::ws::answer`.)

use serde_json::Value;

use crate::adapters::push::{PushError, Pusher, fit};
use crate::adapters::store::DynamoStore;

impl Pusher {
    /// Posts `event` to every live connection of every recipient but `except` (the connection
    /// a WebSocket frame came from, which gets an answer instead). Connections are found by query
    /// (every page); a 410 deletes that record and the fan-out goes on; throttling and
    /// too-large answers are logged and counted. Nothing here fails the write that caused it.
    pub async fn fan_out(
        &self,
        store: &DynamoStore,
        recipients: &[crate::domain::UserId],
        event: &Value,
        except: Option<&str>,
    ) {
        use futures::stream::{self, StreamExt};
        let event = fit(event.clone());
        // Lookups run `in_flight` at once, and each recipient's posts start as soon as their
        // connections are known: a large group's fan-out is not a chain of sequential queries.
        let targets = stream::iter(recipients.to_vec())
            .map(|user| async move { crate::services::connections::of_user(store, &user).await })
            .buffer_unordered(self.in_flight())
            .flat_map(move |found| {
                let mut ids: Vec<String> = match found {
                    Ok(found) => found.into_iter().map(|c| c.connection_id).collect(),
                    Err(error) => {
                        tracing::warn!(%error, "connections of a recipient not read; push skipped");
                        Vec::new()
                    }
                };
                ids.retain(|id| Some(id.as_str()) != except);
                stream::iter(ids)
            });
        self.post_stream(store, targets, &event).await;
    }

    /// Posts one event to each connection, bounded in flight.
    pub async fn post_all(&self, store: &DynamoStore, connections: Vec<String>, event: &Value) {
        self.post_stream(store, futures::stream::iter(connections), event)
            .await;
    }

    /// Posts one event to each connection as the stream yields it, bounded in flight; prunes
    /// the gone ones and counts the outcomes.
    async fn post_stream(
        &self,
        store: &DynamoStore,
        connections: impl futures::Stream<Item = String>,
        event: &Value,
    ) {
        use futures::stream::StreamExt;
        let results: Vec<(String, Result<(), PushError>)> = connections
            .map(|id| async move {
                let result = self.post(&id, event).await;
                (id, result)
            })
            .buffer_unordered(self.in_flight())
            .collect()
            .await;
        let (mut delivered, mut gone, mut failed) = (0, 0, 0);
        for (id, result) in results {
            match result {
                Ok(()) => delivered += 1,
                Err(PushError::Gone) => {
                    gone += 1;
                    if let Err(error) = crate::services::connections::close(store, &id).await {
                        tracing::warn!(%error, "a gone connection's record was not deleted");
                    }
                }
                Err(error) => {
                    failed += 1;
                    tracing::warn!(%error, "push not delivered");
                }
            }
        }
        {
            use crate::platform::metrics::{Metric, count};
            count(Metric::PushesDelivered, delivered);
            count(Metric::ConnectionsPruned, gone);
            count(Metric::PushesFailed, failed);
        }
        if gone + failed > 0 {
            tracing::info!(
                push_gone = gone,
                push_failed = failed,
                "fan-out finished with losses"
            );
        }
    }
}
