//! The events' record parsing (`shared/src/services/events.rs`, `events_of`): any stream record, made
//! from a real item and then damaged in any way (attributes removed or retyped, images dropped or
//! swapped, another event name), is read or refused without a panic; what it yields always has
//! ids derived from the record, one subject per partition, and never a message body.

use std::collections::BTreeMap;

use aws_lambda_events::event::dynamodb::EventRecord;
use proptest::prelude::*;
use serde::Serialize;
use serde_json::{Value, json};

use super::{CASES, cases};
use crate::adapters::store::keys;
use crate::domain::{ConversationId, UserId};
use crate::platform::time::Timestamp;
use crate::services::connections::{self, ConnectionItem};
use crate::services::conversations::Role;
use crate::services::conversations::model::MemberItem;
use crate::services::events::{PendingEvent, events_of};
use crate::services::messages::MessageItem;

/// Message bodies carry this: no event may hold it.
const MARKER: &str = "zq9-body";
const CONVERSATION: &str = "01JDQ7Z8K3M4N5P6Q7R8S9T0VW";

fn sample_records() -> Vec<Value> {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../events/stream/table-changes.json"
    );
    let file: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    file["Records"].as_array().unwrap().clone()
}

/// An item in the stream's JSON (`{"S": …}`, `{"N": …}` …), as DynamoDB writes it.
fn image<T: Serialize>(item: &T) -> Value {
    let item: serde_dynamo::Item = serde_dynamo::to_item(item).unwrap();
    serde_json::to_value(item).unwrap()
}

fn record(name: &str, new: Option<Value>, old: Option<Value>) -> Value {
    let mut record = sample_records()[0].clone();
    record["eventName"] = json!(name);
    let keys_of = new.as_ref().or(old.as_ref()).cloned().unwrap_or_default();
    let change = &mut record["dynamodb"];
    change["Keys"] = json!({"PK": keys_of["PK"], "SK": keys_of["SK"]});
    let fields = change.as_object_mut().unwrap();
    fields.remove("NewImage");
    fields.remove("OldImage");
    if let Some(new) = new {
        fields.insert("NewImage".to_owned(), new);
    }
    if let Some(old) = old {
        fields.insert("OldImage".to_owned(), old);
    }
    record
}

fn user() -> impl Strategy<Value = UserId> {
    prop::sample::select(vec!["ada", "bob", "cy", "auth0|d#1"]).prop_map(|u| u.parse().unwrap())
}

fn reactions() -> impl Strategy<Value = BTreeMap<String, Vec<UserId>>> {
    proptest::collection::btree_map(
        prop::sample::select(vec!["👍", "❤️", "😂"]).prop_map(str::to_owned),
        proptest::collection::vec(user(), 1..3),
        0..3,
    )
}

fn message() -> impl Strategy<Value = MessageItem> {
    (
        1..1_000u64,
        1..5_000u64,
        user(),
        "[a-z ]{0,20}",
        any::<bool>(),
        proptest::option::of(0..2_000_000_000_000i64),
        reactions(),
        proptest::option::of(1..100u64),
    )
        .prop_map(
            |(seq, rev, sender, body, deleted, edited, reactions, reply)| {
                let id: ConversationId = CONVERSATION.parse().unwrap();
                let key = keys::message(&id, seq);
                MessageItem {
                    pk: key.pk,
                    sk: key.sk,
                    id: crate::domain::MessageId::generate(),
                    conversation_id: id,
                    seq,
                    msg_rev: rev,
                    sender_id: sender,
                    body: format!("{MARKER} {body}"),
                    client_message_id: "c-1".parse().unwrap(),
                    reply_to_seq: reply,
                    created_at: Timestamp::from_unix_millis(1_795_612_490_123),
                    edited_at: edited.map(Timestamp::from_unix_millis),
                    deleted,
                    // The connection it came from never reaches an event either.
                    sent_from: Some(format!("{MARKER}-connection")),
                    legacy_reactions: reactions,
                    reacted: Default::default(),
                }
            },
        )
}

fn member() -> impl Strategy<Value = MemberItem> {
    (
        user(),
        0..100u64,
        proptest::option::of(0..2_000_000_000_000i64),
        proptest::option::of(user()),
    )
        .prop_map(|(user, read, read_at, added_by)| {
            let id: ConversationId = CONVERSATION.parse().unwrap();
            MemberItem {
                last_read_at: read_at.map(Timestamp::from_unix_millis),
                added_by,
                ..MemberItem::new(
                    &id,
                    &user,
                    Role::Member,
                    Timestamp::from_unix_millis(0),
                    read,
                )
            }
        })
}

fn connection() -> impl Strategy<Value = ConnectionItem> {
    (
        user(),
        "[A-Za-z0-9=_-]{1,16}",
        proptest::option::of(0..connections::SOCKETS_PER_USER),
    )
        .prop_map(|(user, id, socket_slot)| {
            let key = keys::connection(&id);
            ConnectionItem {
                pk: key.pk,
                sk: key.sk,
                gsi1pk: keys::user_pk(&user),
                gsi1sk: format!("CONN#{id}"),
                connection_id: id,
                user_id: user,
                connected_at: Timestamp::from_unix_millis(1_795_612_490_123),
                expires_at: 1_795_620_000,
                socket_slot,
            }
        })
}

/// A record of a real item: the samples, and every change of every item that makes an event.
fn real_record() -> impl Strategy<Value = Value> {
    let samples = sample_records();
    prop_oneof![
        prop::sample::select(samples),
        message().prop_map(|m| record("INSERT", Some(image(&m)), None)),
        (message(), message()).prop_map(|(old, mut new)| {
            // The same message, changed.
            new.pk = old.pk.clone();
            new.sk = old.sk.clone();
            new.id = old.id.clone();
            new.seq = old.seq;
            record("MODIFY", Some(image(&new)), Some(image(&old)))
        }),
        (member(), member()).prop_map(|(old, mut new)| {
            new.pk = old.pk.clone();
            new.sk = old.sk.clone();
            new.user_id = old.user_id.clone();
            record("MODIFY", Some(image(&new)), Some(image(&old)))
        }),
        member().prop_map(|m| record("INSERT", Some(image(&m)), None)),
        member().prop_map(|m| record("REMOVE", None, Some(image(&m)))),
        connection().prop_map(|c| record("INSERT", Some(image(&c)), None)),
        connection().prop_map(|c| record("REMOVE", None, Some(image(&c)))),
    ]
}

/// Any attribute value of the stream's JSON, well-formed or not for the attribute it lands on.
fn attribute() -> impl Strategy<Value = Value> {
    prop_oneof![
        any::<String>().prop_map(|s| json!({"S": s})),
        prop_oneof![
            "-?[0-9]{1,30}",
            Just("1e999".to_owned()),
            Just("NaN".to_owned()),
            Just("-0.5".to_owned()),
            "[a-z]{0,3}",
        ]
        .prop_map(|n| json!({"N": n})),
        any::<bool>().prop_map(|b| json!({"BOOL": b})),
        Just(json!({"NULL": true})),
        Just(json!({"M": {}})),
        Just(json!({"M": {"ada": {"S": "x"}, "👍": {"L": [{"S": "bob"}]}}})),
        Just(json!({"L": []})),
        Just(json!({"L": [{"N": "1"}, {"S": "ada"}]})),
        Just(json!({"SS": ["ada", "bob"]})),
        Just(json!({"S": "01JDQ7Z8K3M4N5P6Q7R8S9T0VW"})),
        Just(json!({"S": "2026-11-25T13:14:50.123Z"})),
        Just(json!({"S": "CONV#01JDQ7Z8K3M4N5P6Q7R8S9T0VW"})),
    ]
}

const NAMES: &[&str] = &[
    "PK",
    "SK",
    "id",
    "conversationId",
    "seq",
    "msgRev",
    "senderId",
    "body",
    "clientMessageId",
    "replyToSeq",
    "createdAt",
    "editedAt",
    "deleted",
    "reactions",
    "userId",
    "role",
    "joinedAt",
    "lastReadSeq",
    "lastReadAt",
    "addedBy",
    "connectionId",
    "connectedAt",
    "kind",
    "memberCount",
    "expiresAt",
];

#[derive(Debug, Clone)]
enum Damage {
    EventName(String),
    Remove(&'static str, &'static str),
    Set(&'static str, String, Value),
    Drop(&'static str),
    Swap,
}

fn damage() -> impl Strategy<Value = Damage> {
    let part = prop::sample::select(vec!["NewImage", "OldImage", "Keys"]);
    let name = prop_oneof![
        4 => prop::sample::select(NAMES.to_vec()).prop_map(str::to_owned),
        1 => "[a-zA-Z]{0,6}",
    ];
    prop_oneof![
        prop_oneof![
            Just("INSERT".to_owned()),
            Just("MODIFY".to_owned()),
            Just("REMOVE".to_owned()),
            "[A-Z]{0,6}",
        ]
        .prop_map(Damage::EventName),
        (part.clone(), prop::sample::select(NAMES.to_vec()))
            .prop_map(|(p, n)| Damage::Remove(p, n)),
        (part.clone(), name, attribute()).prop_map(|(p, n, v)| Damage::Set(p, n, v)),
        part.prop_map(Damage::Drop),
        Just(Damage::Swap),
    ]
}

fn apply(record: &mut Value, damage: &Damage) {
    let change = &mut record["dynamodb"];
    match damage {
        Damage::EventName(name) => record["eventName"] = json!(name),
        Damage::Remove(part, name) => {
            if let Some(map) = change[*part].as_object_mut() {
                map.remove(*name);
            }
        }
        Damage::Set(part, name, value) => {
            if change[*part].is_null() {
                change[*part] = json!({});
            }
            change[*part][name.as_str()] = value.clone();
        }
        Damage::Drop(part) => {
            if let Some(map) = change.as_object_mut() {
                map.remove(*part);
            }
        }
        Damage::Swap => {
            let new = change["NewImage"].take();
            let old = change["OldImage"].take();
            change["NewImage"] = old;
            change["OldImage"] = new;
            for part in ["NewImage", "OldImage"] {
                if change[part].is_null()
                    && let Some(map) = change.as_object_mut()
                {
                    map.remove(part);
                }
            }
        }
    }
}

/// What holds of any events read from a record.
fn well_formed(record: &EventRecord, events: &[PendingEvent]) -> Result<(), TestCaseError> {
    let mut ids = std::collections::HashSet::new();
    for (i, pending) in events.iter().enumerate() {
        let event = &pending.event;
        let expected = if i == 0 {
            record.event_id.clone()
        } else {
            format!("{}-{i}", record.event_id)
        };
        prop_assert_eq!(&event.id, &expected);
        prop_assert!(ids.insert(event.id.clone()));
        prop_assert_eq!(&event.subject, &pending.partition_key);
        prop_assert!(!pending.partition_key.is_empty());
        prop_assert!(event.kind.starts_with("chat."), "{}", event.kind);
        let text = serde_json::to_string(event).unwrap();
        prop_assert!(!text.contains(MARKER), "a body in {}", text);
    }
    Ok(())
}

proptest! {
    #![proptest_config(cases(CASES))]

    #[test]
    fn records_of_real_items_are_read(record in real_record()) {
        let record: EventRecord = serde_json::from_value(record).unwrap();
        let events = events_of(&record);
        prop_assert!(events.is_ok(), "{:?}", events.err());
        well_formed(&record, &events.unwrap())?;
    }

    #[test]
    fn damaged_records_are_read_or_refused_without_panicking(
        record in real_record(),
        damages in proptest::collection::vec(damage(), 1..5),
    ) {
        let mut record = record;
        for damage in &damages {
            apply(&mut record, damage);
        }
        // A record the Lambda runtime cannot read never reaches the function.
        let Ok(record) = serde_json::from_value::<EventRecord>(record) else {
            return Ok(());
        };
        if let Ok(events) = events_of(&record) {
            well_formed(&record, &events)?;
        }
    }

    #[test]
    fn reactions_make_one_event_per_change(old in message(), new_reactions in reactions()) {
        let mut old = old;
        old.deleted = false;
        // Stored the new way (one attribute per user), from a message stored the old way.
        let reacted = new_reactions
            .iter()
            .flat_map(|(e, us)| us.iter().map(move |u| (crate::services::model::message::reaction_attribute(u), e.clone())))
            .collect();
        let new = MessageItem { legacy_reactions: Default::default(), reacted, ..old.clone() };
        let record: EventRecord =
            serde_json::from_value(record("MODIFY", Some(image(&new)), Some(image(&old)))).unwrap();
        let events = events_of(&record).unwrap();
        well_formed(&record, &events)?;
        let pairs = |m: &MessageItem| -> Vec<(String, UserId)> {
            m.reactions().into_iter().flat_map(|(e, us)| us.into_iter().map(move |u| (e.clone(), u))).collect()
        };
        let (before, after) = (pairs(&old), pairs(&new));
        let added = after.iter().filter(|p| !before.contains(p)).count();
        let removed = before.iter().filter(|p| !after.contains(p)).count();
        let count = |kind: &str| events.iter().filter(|e| e.event.kind == kind).count();
        prop_assert_eq!(count("chat.reaction.added"), added);
        prop_assert_eq!(count("chat.reaction.removed"), removed);
        prop_assert_eq!(events.len(), added + removed);
    }
}

/// A void holds a number, not a message: writing one makes no event, whoever reads the stream.
#[test]
fn a_void_makes_no_event() {
    use crate::services::model::message::{VoidItem, VoidKind};
    let id: ConversationId = CONVERSATION.parse().unwrap();
    let key = keys::message(&id, 3);
    let void = VoidItem {
        pk: key.pk,
        sk: key.sk,
        kind: VoidKind::Void,
        id: crate::domain::MessageId::generate(),
        conversation_id: id,
        seq: 3,
        msg_rev: 5,
        created_at: Timestamp::from_unix_millis(1_795_612_490_123),
    };
    let record: EventRecord =
        serde_json::from_value(record("INSERT", Some(image(&void)), None)).unwrap();
    assert_eq!(events_of(&record).unwrap().len(), 0);
}
