//! Real-time tickets against DynamoDB Local: stored hashed, single use under concurrency, refused
//! once expired.

use chat_shared::adapters::store::Consistency;
use chat_shared::services::realtime::{TicketItem, consume, issue};

use crate::support;

#[tokio::test]
async fn a_ticket_is_stored_hashed_and_opens_one_connection_even_when_raced() {
    let store = support::fresh_store().await;
    let ada = "ada".parse().unwrap();
    let ticket = issue(&store, &ada).await.unwrap();
    let raw = format!(
        "{:?}",
        store
            .client()
            .scan()
            .table_name(store.table().as_str())
            .send()
            .await
            .unwrap()
            .items()
    );
    assert!(!raw.contains(&ticket.ticket), "only the hash is stored");

    let tries = support::join_all((0..10).map(|_| consume(&store, &ticket.ticket))).await;
    let passed = tries
        .into_iter()
        .filter(|t| t.as_ref().unwrap().is_some())
        .count();
    assert_eq!(passed, 1);
}

#[tokio::test]
async fn an_expired_ticket_is_refused_though_dynamodb_still_holds_it() {
    let store = support::fresh_store().await;
    let bob = "bob".parse().unwrap();
    let ticket = issue(&store, &bob).await.unwrap();
    // Age it: DynamoDB Local never deletes expired items, so the read must refuse it.
    let hash = {
        let digest =
            aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, ticket.ticket.as_bytes());
        digest
            .as_ref()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    };
    let key = chat_shared::adapters::store::keys::ticket(&hash);
    let mut item: TicketItem = store.get(&key, Consistency::Strong).await.unwrap().unwrap();
    item.expires_at -= 120;
    store.put(&item, None).await.unwrap();
    assert_eq!(consume(&store, &ticket.ticket).await.unwrap(), None);
}
