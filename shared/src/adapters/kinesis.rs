//! Writing events to Kinesis in order per partition key, with partial batch failures.
//!
//! `PutRecords` goes on after a failed record, so a call carries at most one record per partition
//! key: after a key's first failure nothing more of it is sent, and the batch is reported failed
//! from the earliest stream record that has a failed event. The event source mapping then sends
//! the batch again from there (events already written are written again, with the same ids).

use std::collections::{HashMap, HashSet, VecDeque};
use std::future::Future;

use aws_sdk_kinesis::primitives::Blob;
use aws_sdk_kinesis::types::PutRecordsRequestEntry;

use crate::domain::event::PendingEvent;

/// Kinesis accepts at most 500 records per `PutRecords`.
const MAX_RECORDS_PER_CALL: usize = 500;

/// One record for the sink.
#[derive(Debug, Clone, PartialEq)]
pub struct OutRecord {
    pub partition_key: String,
    pub data: Vec<u8>,
}

/// Where events go: one call writes records, each accepted or not.
pub trait EventSink: Send + Sync {
    /// One flag per record, in order: `true` when the record was written. An `Err` means none was.
    fn put(
        &self,
        records: Vec<OutRecord>,
    ) -> impl Future<Output = Result<Vec<bool>, String>> + Send;
}

/// Publishes the events in order per partition key. Returns the sequence number of the earliest
/// stream record whose events were not all written (`None` when everything was).
pub async fn publish(sink: &impl EventSink, events: Vec<PendingEvent>) -> Option<String> {
    // Queues per key, keys in order of first appearance; each event keeps its position.
    let mut order: Vec<String> = Vec::new();
    let mut queues: HashMap<String, VecDeque<(usize, PendingEvent)>> = HashMap::new();
    for (position, event) in events.into_iter().enumerate() {
        let queue = queues
            .entry(event.partition_key.clone())
            .or_insert_with(|| {
                order.push(event.partition_key.clone());
                VecDeque::new()
            });
        queue.push_back((position, event));
    }
    let mut failed_keys: HashSet<String> = HashSet::new();
    let mut earliest_failure: Option<(usize, String)> = None;
    loop {
        let round: Vec<&String> = order
            .iter()
            .filter(|k| !failed_keys.contains(*k) && queues.get(*k).is_some_and(|q| !q.is_empty()))
            .take(MAX_RECORDS_PER_CALL)
            .collect();
        if round.is_empty() {
            break;
        }
        let mut records = Vec::with_capacity(round.len());
        for key in &round {
            if let Some((_, pending)) = queues.get(*key).and_then(VecDeque::front) {
                let data = serde_json::to_vec(&pending.event).unwrap_or_default();
                records.push(OutRecord {
                    partition_key: pending.partition_key.clone(),
                    data,
                });
            }
        }
        let accepted = match sink.put(records).await {
            Ok(flags) => flags,
            Err(error) => {
                tracing::warn!(%error, "PutRecords failed");
                vec![false; round.len()]
            }
        };
        let round: Vec<String> = round.into_iter().cloned().collect();
        for (key, ok) in round
            .iter()
            .zip(accepted.into_iter().chain(std::iter::repeat(false)))
        {
            let Some(queue) = queues.get_mut(key) else {
                continue;
            };
            if ok {
                queue.pop_front();
            } else if let Some((position, pending)) = queue.front() {
                failed_keys.insert(key.clone());
                if earliest_failure.as_ref().is_none_or(|(p, _)| position < p) {
                    earliest_failure = Some((*position, pending.sequence_number.clone()));
                }
            }
        }
    }
    earliest_failure.map(|(_, sequence_number)| sequence_number)
}

/// The Kinesis stream as an [`EventSink`].
#[derive(Debug, Clone)]
pub struct KinesisSink {
    client: aws_sdk_kinesis::Client,
    stream_name: String,
}

impl KinesisSink {
    pub fn new(client: aws_sdk_kinesis::Client, stream_name: impl Into<String>) -> Self {
        Self {
            client,
            stream_name: stream_name.into(),
        }
    }
}

impl EventSink for KinesisSink {
    async fn put(&self, records: Vec<OutRecord>) -> Result<Vec<bool>, String> {
        let count = records.len();
        let entries = records
            .into_iter()
            .map(|r| {
                PutRecordsRequestEntry::builder()
                    .partition_key(r.partition_key)
                    .data(Blob::new(r.data))
                    .build()
                    .map_err(|e| e.to_string())
            })
            .collect::<Result<Vec<_>, _>>()?;
        let out = self
            .client
            .put_records()
            .stream_name(&self.stream_name)
            .set_records(Some(entries))
            .send()
            .await
            .map_err(|e| crate::domain::error::ErrorChain(&e).to_string())?;
        let flags: Vec<bool> = out
            .records()
            .iter()
            .map(|r| r.error_code().is_none())
            .collect();
        if flags.len() != count {
            return Err(format!(
                "PutRecords answered {} results for {count} records",
                flags.len()
            ));
        }
        Ok(flags)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::services::events::CloudEvent;
    use std::sync::Mutex;

    fn pending(key: &str, seq: usize) -> PendingEvent {
        PendingEvent {
            partition_key: key.to_owned(),
            sequence_number: format!("{seq:05}"),
            event: CloudEvent {
                specversion: "1.0".into(),
                id: format!("e{seq}"),
                source: "chat".into(),
                kind: "chat.member.added".into(),
                time: crate::platform::time::Timestamp::from_unix_millis(0),
                subject: key.to_owned(),
                datacontenttype: "application/json".into(),
                data: serde_json::json!({}),
            },
        }
    }

    /// Records every call; refuses the records whose event id is in `refuse`.
    #[derive(Default)]
    struct Recorder {
        calls: Mutex<Vec<Vec<(String, String)>>>,
        refuse: Vec<String>,
    }

    impl EventSink for Recorder {
        async fn put(&self, records: Vec<OutRecord>) -> Result<Vec<bool>, String> {
            let call: Vec<(String, String)> = records
                .iter()
                .map(|r| {
                    let event: CloudEvent = serde_json::from_slice(&r.data).unwrap();
                    (r.partition_key.clone(), event.id)
                })
                .collect();
            let flags = call
                .iter()
                .map(|(_, id)| !self.refuse.contains(id))
                .collect();
            self.calls.lock().unwrap().push(call);
            Ok(flags)
        }
    }

    #[tokio::test]
    async fn each_call_holds_at_most_one_record_per_key_in_order() {
        let sink = Recorder::default();
        let events = vec![
            pending("a", 1),
            pending("b", 2),
            pending("a", 3),
            pending("a", 4),
            pending("c", 5),
        ];
        assert_eq!(publish(&sink, events).await, None);
        let calls = sink.calls.lock().unwrap().clone();
        for call in &calls {
            let keys: HashSet<&String> = call.iter().map(|(k, _)| k).collect();
            assert_eq!(
                keys.len(),
                call.len(),
                "one record per key per call: {call:?}"
            );
        }
        let a: Vec<&str> = calls
            .iter()
            .flatten()
            .filter(|(k, _)| k == "a")
            .map(|(_, id)| id.as_str())
            .collect();
        assert_eq!(a, ["e1", "e3", "e4"]);
        assert_eq!(calls.len(), 3);
    }

    #[tokio::test]
    async fn after_a_keys_failure_nothing_more_of_it_is_sent_and_the_earliest_record_is_reported() {
        let sink = Recorder {
            refuse: vec!["e3".into(), "e5".into()],
            ..Recorder::default()
        };
        let events = vec![
            pending("a", 1),
            pending("b", 2),
            pending("a", 3),
            pending("a", 4),
            pending("c", 5),
            pending("b", 6),
        ];
        assert_eq!(publish(&sink, events).await, Some("00003".into()));
        let sent: Vec<String> = sink
            .calls
            .lock()
            .unwrap()
            .iter()
            .flatten()
            .map(|(_, id)| id.clone())
            .collect();
        assert!(
            !sent.contains(&"e4".to_owned()),
            "a's later event waits: {sent:?}"
        );
        assert!(
            sent.contains(&"e6".to_owned()),
            "other keys go on: {sent:?}"
        );
    }
}
