//! The shared DynamoDB adapter against DynamoDB Local: conditions, transactions with their
//! cancellation reasons, and queries read to the end through every page.

use chat_shared::adapters::store::keys::{self, attr, index};
use chat_shared::adapters::store::{
    CancellationCode, Consistency, DynamoStore, Expr, Query, StoreError, Write,
};
use chat_shared::domain::{ConversationId, UserId};
use serde::{Deserialize, Serialize};
use tokio::task::JoinSet;

use crate::support;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Profile {
    #[serde(rename = "PK")]
    pk: String,
    #[serde(rename = "SK")]
    sk: String,
    #[serde(rename = "displayName")]
    display_name: String,
}

fn profile(user: &UserId, name: &str) -> Profile {
    let key = keys::profile(user);
    Profile {
        pk: key.pk,
        sk: key.sk,
        display_name: name.to_owned(),
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Meta {
    #[serde(rename = "PK")]
    pk: String,
    #[serde(rename = "SK")]
    sk: String,
    #[serde(rename = "lastSeq")]
    last_seq: u64,
}

/// A connection record, indexed by user on GSI1. `padding` makes items big enough that
/// DynamoDB's 1 MB page limit cuts the query short.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Connection {
    #[serde(rename = "PK")]
    pk: String,
    #[serde(rename = "SK")]
    sk: String,
    #[serde(rename = "GSI1PK")]
    gsi1pk: String,
    #[serde(rename = "GSI1SK")]
    gsi1sk: String,
    padding: String,
    #[serde(rename = "expiresAt", skip_serializing_if = "Option::is_none")]
    expires_at: Option<i64>,
}

fn connection(user: &UserId, n: usize, padding: usize) -> Connection {
    let id = format!("c{n:05}");
    let key = keys::connection(&id);
    Connection {
        pk: key.pk,
        sk: key.sk,
        gsi1pk: keys::user_pk(user),
        gsi1sk: format!("CONN#{id}"),
        padding: "x".repeat(padding),
        expires_at: None,
    }
}

fn user(raw: &str) -> UserId {
    raw.parse().unwrap()
}

async fn put_all(store: &DynamoStore, items: Vec<Connection>) {
    let mut tasks = JoinSet::new();
    for chunk in items.chunks(25) {
        let (store, chunk) = (store.clone(), chunk.to_vec());
        tasks.spawn(async move {
            for item in chunk {
                store.put(&item, None).await.unwrap();
            }
        });
    }
    while let Some(done) = tasks.join_next().await {
        done.unwrap();
    }
}

#[tokio::test]
async fn a_conditional_put_on_an_existing_item_fails_and_keeps_the_first() {
    let store = support::fresh_store().await;
    let ada = user("auth0|ada#1");
    store
        .put(&profile(&ada, "Ada"), Some(Expr::item_absent()))
        .await
        .unwrap();

    let second = store
        .put(&profile(&ada, "Impostor"), Some(Expr::item_absent()))
        .await;
    assert!(
        matches!(second, Err(StoreError::ConditionFailed)),
        "{second:?}"
    );

    let stored: Profile = store
        .get(&keys::profile(&ada), Consistency::Strong)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.display_name, "Ada");
}

#[tokio::test]
async fn a_cancelled_transaction_reports_a_reason_per_write_and_writes_nothing() {
    let store = support::fresh_store().await;
    let conversation = ConversationId::generate();
    let meta_key = keys::conversation_meta(&conversation);
    let meta = Meta {
        pk: meta_key.pk.clone(),
        sk: meta_key.sk.clone(),
        last_seq: 5,
    };
    store.put(&meta, None).await.unwrap();
    let taken = user("taken");
    store.put(&profile(&taken, "Taken"), None).await.unwrap();
    let fresh = user("fresh");

    let bump_from = |seen: u64| Write::Update {
        key: meta_key.clone(),
        update: Expr::new("SET lastSeq = :next")
            .when("lastSeq = :seen")
            .number(":next", seen + 1)
            .number(":seen", seen),
    };
    let result = store
        .transact(vec![
            Write::put(&profile(&fresh, "Fresh"), Some(Expr::item_absent())).unwrap(),
            Write::put(&profile(&taken, "Again"), Some(Expr::item_absent())).unwrap(),
            bump_from(4), // stale: the stored lastSeq is 5
        ])
        .await;

    let error = result.unwrap_err();
    assert_eq!(
        error.cancellation_reasons(),
        Some(
            &[
                CancellationCode::None,
                CancellationCode::ConditionalCheckFailed,
                CancellationCode::ConditionalCheckFailed,
            ][..]
        )
    );
    assert!(!error.is_unavailable(), "a failed condition is not a 503");
    // Nothing of the transaction was written.
    let absent: Option<Profile> = store
        .get(&keys::profile(&fresh), Consistency::Strong)
        .await
        .unwrap();
    assert_eq!(absent, None);
    let unchanged: Meta = store
        .get(&meta_key, Consistency::Strong)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(unchanged.last_seq, 5);

    // With the right expectation the same kind of transaction goes through.
    store
        .transact(vec![
            Write::put(&profile(&fresh, "Fresh"), Some(Expr::item_absent())).unwrap(),
            bump_from(5),
        ])
        .await
        .unwrap();
    let bumped: Meta = store
        .get(&meta_key, Consistency::Strong)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(bumped.last_seq, 6);
}

/// A "transaction" of one put, update or delete is written as that write alone (half the write
/// units), and its refusal reads as the transaction's would.
#[tokio::test]
async fn a_one_write_transaction_is_a_plain_write_with_the_same_answers() {
    let table = support::fresh_store().await;
    let meter = crate::dynamo_meter::DynamoMeter::default();
    let store = DynamoStore::new(
        meter.client(support::sdk_config().await),
        table.table().clone(),
        support::clock(),
    );
    let ada = user("ada");
    let set_name = |name: &str| Write::Update {
        key: keys::profile(&ada),
        update: Expr::new("SET displayName = :name")
            .when("attribute_exists(PK)")
            .string(":name", name),
    };

    // The item is absent: the condition refuses, as in a transaction, and nothing is written.
    let error = store.transact(vec![set_name("Ada")]).await.unwrap_err();
    assert_eq!(
        error.cancellation_reasons(),
        Some(&[CancellationCode::ConditionalCheckFailed][..])
    );
    assert!(!error.is_unavailable());
    let absent: Option<Profile> = store
        .get(&keys::profile(&ada), Consistency::Strong)
        .await
        .unwrap();
    assert_eq!(absent, None);

    store
        .transact(vec![
            Write::put(&profile(&ada, "Ada"), Some(Expr::item_absent())).unwrap(),
        ])
        .await
        .unwrap();
    store.transact(vec![set_name("Ada L.")]).await.unwrap();
    let stored: Option<Profile> = store
        .get(&keys::profile(&ada), Consistency::Strong)
        .await
        .unwrap();
    assert_eq!(stored, Some(profile(&ada, "Ada L.")));
    store
        .transact(vec![Write::Delete {
            key: keys::profile(&ada),
            condition: None,
        }])
        .await
        .unwrap();
    assert_eq!(
        meter.take().operations(),
        [
            "UpdateItem",
            "GetItem",
            "PutItem",
            "UpdateItem",
            "GetItem",
            "DeleteItem"
        ]
    );
}

#[tokio::test]
async fn a_gsi_query_is_read_to_the_end_across_pages() {
    let store = support::fresh_store().await;
    let (ada, bob) = (user("ada"), user("bob"));
    let mut items: Vec<Connection> = (0..240).map(|n| connection(&ada, n, 8_000)).collect();
    items.extend((240..260).map(|n| connection(&bob, n, 10)));
    put_all(&store, items).await;

    let query = Query::partition(Some(index::GSI1), attr::GSI1_PK, keys::user_pk(&ada));

    // 240 items of 8 KB are about 1.9 MB: DynamoDB stops the first page at 1 MB.
    let first = store.query_page::<Connection>(&query, None).await.unwrap();
    assert!(
        first.items.len() < 240,
        "one page held {}",
        first.items.len()
    );
    assert!(first.next.is_some());

    let all: Vec<Connection> = store.query_all(&query).await.unwrap();
    assert_eq!(all.len(), 240);
    let ids: Vec<&str> = all.iter().map(|c| c.gsi1sk.as_str()).collect();
    let mut sorted = ids.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(ids, sorted, "ascending, no duplicates");
    assert!(all.iter().all(|c| c.gsi1pk == keys::user_pk(&ada)));

    // Small pages, by count: page after page until the end, nothing lost.
    let small = Query {
        page_size: Some(7),
        ascending: false,
        ..query
    };
    let (mut pages, mut seen, mut start) = (0, Vec::new(), None);
    loop {
        let page = store.query_page::<Connection>(&small, start).await.unwrap();
        assert!(page.items.len() <= 7);
        pages += 1;
        seen.extend(page.items.into_iter().map(|c| c.gsi1sk));
        match page.next {
            Some(next) => start = Some(next),
            None => break,
        }
    }
    assert!(pages >= 240 / 7);
    assert_eq!(seen.len(), 240);
    assert_eq!(
        seen.first().map(String::as_str),
        Some("CONN#c00239"),
        "descending"
    );
}

#[tokio::test]
async fn expired_items_read_as_absent() {
    let store = support::fresh_store().await;
    let ada = user("ada");
    let now = support::clock().now().unix_seconds();
    let mut expired = connection(&ada, 1, 0);
    expired.expires_at = Some(now - 10);
    let mut live = connection(&ada, 2, 0);
    live.expires_at = Some(now + 600);
    store.put(&expired, None).await.unwrap();
    store.put(&live, None).await.unwrap();

    let gone: Option<Connection> = store
        .get(&keys::connection("c00001"), Consistency::Strong)
        .await
        .unwrap();
    assert_eq!(
        gone, None,
        "DynamoDB Local never deletes it; the adapter hides it"
    );
    let query = Query::partition(Some(index::GSI1), attr::GSI1_PK, keys::user_pk(&ada));
    let listed: Vec<Connection> = store.query_all(&query).await.unwrap();
    assert_eq!(listed, vec![live]);
}

#[derive(Debug, Serialize, Deserialize)]
struct Message {
    #[serde(rename = "PK")]
    pk: String,
    #[serde(rename = "SK")]
    sk: String,
    #[serde(rename = "msgRev")]
    msg_rev: u64,
}

#[tokio::test]
async fn the_rev_index_lists_changes_after_a_revision_consistently() {
    let store = support::fresh_store().await;
    let conversation = ConversationId::generate();
    // Five messages; message 2 is edited later and so carries the newest revision.
    for (seq, rev) in [(1, 1), (2, 7), (3, 3), (4, 4), (5, 5)] {
        let key = keys::message(&conversation, seq);
        let item = Message {
            pk: key.pk,
            sk: key.sk,
            msg_rev: rev,
        };
        store.put(&item, None).await.unwrap();
    }
    let since_three = Expr::new("#pk = :pk AND #rev > :since")
        .name("#pk", attr::PK)
        .name("#rev", attr::MSG_REV)
        .string(":pk", keys::conversation_pk(&conversation))
        .number(":since", 3);
    let query = Query {
        consistency: Consistency::Strong,
        ..Query::new(Some(index::BY_REV), since_three)
    };
    let changed: Vec<Message> = store.query_all(&query).await.unwrap();
    let revs: Vec<u64> = changed.iter().map(|m| m.msg_rev).collect();
    assert_eq!(revs, [4, 5, 7]);
    assert_eq!(changed[2].sk, keys::message(&conversation, 2).sk);
}
