//! Pushes to WebSocket connections: an event to every connection of the users concerned (their
//! live connections, read from the table), pruning the gone ones. Methods of [`Pusher`], the
//! `@connections` client. (A frame's answer is its route's response: `crate::edge::ws::answer`.)

use std::collections::BTreeMap;
use std::sync::{Mutex, PoisonError};

use serde_json::Value;

use crate::adapters::push::{PushError, Pusher, fit};
use crate::adapters::store::{DynamoStore, StoreError};
use crate::domain::UserId;
use crate::services::connections::ByUser;

/// A connection to post to, with the user it is theirs (a 410 prunes it from their live ones).
pub type Target = (UserId, String);

/// Recipients whose connections one read covers (`BatchGetItem` takes 100 keys).
const READ_BATCH: usize = 100;

impl Pusher {
    /// Posts `event` to every live connection of every recipient but those `skip` names (a
    /// recipient and one of their connections), and gives back every connection read, by
    /// recipient, for the pushes that follow. Connections are read 100 recipients a request
    /// (`connections::of_users`), `in_flight` requests at once, and each batch's posts start as
    /// soon as it is read, so a large group's fan-out takes about as long as its posts. `Err`
    /// when some recipients' connections could not be read: the others' posts are made all the
    /// same, and the caller hands the push again (pushes are at least once).
    pub async fn fan_out(
        &self,
        store: &DynamoStore,
        recipients: &[UserId],
        event: &Value,
        skip: impl Fn(&UserId, &str) -> bool,
    ) -> Result<ByUser, StoreError> {
        use futures::stream::{self, StreamExt};
        let event = fit(event.clone());
        let read: Mutex<(ByUser, Option<StoreError>)> = Mutex::new((BTreeMap::new(), None));
        // Owned chunks: a future that borrows its closure's argument is not `Send` for every
        // lifetime, which the function's spawned task needs.
        let chunks: Vec<Vec<UserId>> = recipients.chunks(READ_BATCH).map(<[_]>::to_vec).collect();
        let targets = stream::iter(chunks)
            .map(|chunk| async move { crate::services::connections::of_users(store, &chunk).await })
            .buffer_unordered(self.in_flight())
            .flat_map(|found| {
                let mut read = read.lock().unwrap_or_else(PoisonError::into_inner);
                let mut posted: Vec<Target> = Vec::new();
                match found {
                    Ok(found) => {
                        for (user, ids) in found {
                            posted.extend(
                                ids.iter()
                                    .filter(|id| !skip(&user, id))
                                    .map(|id| (user.clone(), id.clone())),
                            );
                            read.0.insert(user, ids);
                        }
                    }
                    Err(error) => {
                        read.1.get_or_insert(error);
                    }
                }
                stream::iter(posted)
            });
        self.post_stream(store, targets, &event).await;
        match read.into_inner().unwrap_or_else(PoisonError::into_inner) {
            (_, Some(error)) => Err(error),
            (connections, None) => Ok(connections),
        }
    }

    /// Posts one event to each connection (with its user), bounded in flight.
    pub async fn post_all(&self, store: &DynamoStore, connections: Vec<Target>, event: &Value) {
        self.post_stream(store, futures::stream::iter(connections), event)
            .await;
    }

    /// Posts one event to each connection as the stream yields it, bounded in flight; prunes
    /// the gone ones and counts the outcomes.
    async fn post_stream(
        &self,
        store: &DynamoStore,
        connections: impl futures::Stream<Item = Target>,
        event: &Value,
    ) {
        use futures::stream::StreamExt;
        let results: Vec<(Target, Result<(), PushError>)> = connections
            .map(|target| async move {
                let result = self.post(&target.1, event).await;
                (target, result)
            })
            .buffer_unordered(self.in_flight())
            .collect()
            .await;
        let (mut delivered, mut gone, mut failed) = (0, 0, 0);
        for ((user, id), result) in results {
            match result {
                Ok(()) => delivered += 1,
                Err(PushError::Gone) => {
                    gone += 1;
                    if let Err(error) = crate::services::connections::gone(store, &user, &id).await
                    {
                        tracing::warn!(%error, "a gone connection was not pruned");
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
