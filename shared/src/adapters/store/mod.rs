//! The DynamoDB adapter: typed items in and out with `serde_dynamo`, conditions, transactions
//! with their cancellation reasons, and queries paged to the end.
//!
//! It knows the table's key attributes but nothing of chats: services say what to write, this
//! module says how. Every read treats an item whose TTL (`expiresAt`) has passed as absent,
//! because DynamoDB deletes expired items late (days on AWS, never in DynamoDB Local).

mod config;
pub mod keys;
pub mod retry;

mod error;
mod expr;

use std::collections::HashMap;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{
    AttributeValue, ConditionCheck, Delete, DeleteRequest, KeysAndAttributes, Put, PutRequest,
    TransactWriteItem, Update, WriteRequest,
};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

pub use config::StoreConfig;
pub use error::{CancellationCode, StoreError, TransactError};
pub use expr::Expr;

use crate::adapters::store::keys::attr;
use crate::domain::TableName;
use crate::platform::time::{Clock, Timestamp};

/// A raw item, as the SDK represents it.
pub type Item = HashMap<String, AttributeValue>;

/// A table key.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Key {
    #[serde(rename = "PK")]
    pub pk: String,
    #[serde(rename = "SK")]
    pub sk: String,
}

impl Key {
    pub fn new(pk: impl Into<String>, sk: impl Into<String>) -> Self {
        Self {
            pk: pk.into(),
            sk: sk.into(),
        }
    }

    fn to_item(&self) -> Item {
        HashMap::from([
            (attr::PK.to_owned(), AttributeValue::S(self.pk.clone())),
            (attr::SK.to_owned(), AttributeValue::S(self.sk.clone())),
        ])
    }
}

/// Whether a read must see every write acknowledged before it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Consistency {
    Strong,
    Eventual,
}

/// One write of a transaction.
#[derive(Debug, Clone)]
pub enum Write {
    Put { item: Item, condition: Option<Expr> },
    Update { key: Key, update: Expr },
    Delete { key: Key, condition: Option<Expr> },
    Check { key: Key, condition: Expr },
}

impl Write {
    /// A put of a serializable item, optionally conditioned.
    pub fn put<T: Serialize>(item: &T, condition: Option<Expr>) -> Result<Self, StoreError> {
        Ok(Self::Put {
            item: to_item(item)?,
            condition,
        })
    }
}

/// A query of one partition, on the table or an index.
#[derive(Debug, Clone)]
pub struct Query {
    pub index: Option<&'static str>,
    /// `KeyConditionExpression` with its names and values.
    pub key_condition: Expr,
    pub filter: Option<Expr>,
    pub ascending: bool,
    /// Items to read per request (DynamoDB also stops at 1 MB).
    pub page_size: Option<i32>,
    pub consistency: Consistency,
}

impl Query {
    /// A query with defaults: ascending, eventually consistent, pages as DynamoDB cuts them.
    pub fn new(index: Option<&'static str>, key_condition: Expr) -> Self {
        Self {
            index,
            key_condition,
            filter: None,
            ascending: true,
            page_size: None,
            consistency: Consistency::Eventual,
        }
    }

    /// Every item of a partition (`#pk = :pk`), optionally on an index whose partition key
    /// attribute is `pk_attr`.
    pub fn partition(index: Option<&'static str>, pk_attr: &str, pk: impl Into<String>) -> Self {
        Self::new(
            index,
            Expr::new("#pk = :pk")
                .name("#pk", pk_attr)
                .string(":pk", pk),
        )
    }

    /// The items of a table partition whose sort key starts with `sk_prefix`, read strongly
    /// (`#pk = :pk AND begins_with(#sk, :prefix)`): a member list, an inbox, a user's search
    /// entries, each read right after a write that may have changed it.
    pub fn prefix(pk: impl Into<String>, sk_prefix: impl Into<String>) -> Self {
        Self {
            consistency: Consistency::Strong,
            ..Self::new(
                None,
                Expr::new("#pk = :pk AND begins_with(#sk, :prefix)")
                    .name("#pk", attr::PK)
                    .name("#sk", attr::SK)
                    .string(":pk", pk)
                    .string(":prefix", sk_prefix),
            )
        }
    }
}

/// One page of a query: the items, and where the next page starts (`None` at the end).
#[derive(Debug, Clone)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next: Option<StartKey>,
}

/// DynamoDB's `LastEvaluatedKey`, kept as JSON so that a cursor can carry it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StartKey(pub serde_json::Map<String, serde_json::Value>);

impl StartKey {
    fn from_item(item: Item) -> Result<Self, StoreError> {
        serde_dynamo::from_item(item)
            .map(Self)
            .map_err(StoreError::Mapping)
    }

    fn into_item(self) -> Result<Item, StoreError> {
        serde_dynamo::to_item(self.0).map_err(StoreError::Mapping)
    }
}

/// The single-table store, and the application clock its reads judge expiry by (which the
/// services that use it read "now" from too).
#[derive(Debug, Clone)]
pub struct DynamoStore {
    client: Client,
    table: TableName,
    clock: Clock,
}

fn to_item<T: Serialize>(value: &T) -> Result<Item, StoreError> {
    serde_dynamo::to_item(value).map_err(StoreError::Mapping)
}

fn from_item<T: DeserializeOwned>(item: Item) -> Result<T, StoreError> {
    serde_dynamo::from_item(item).map_err(StoreError::Mapping)
}

fn string_attr(item: &Item, name: &str) -> String {
    match item.get(name) {
        Some(AttributeValue::S(s)) => s.clone(),
        _ => String::new(),
    }
}

/// True when the item carries a TTL in the past.
fn is_expired(item: &Item, now: Timestamp) -> bool {
    match item.get(attr::EXPIRES_AT) {
        Some(AttributeValue::N(n)) => n.parse::<i64>().is_ok_and(|t| t < now.unix_seconds()),
        _ => false,
    }
}

impl DynamoStore {
    /// The store of a function that needs nothing else: `TABLE_NAME`, `CHAT_CLOCK_OFFSET`, and
    /// the SDK's configuration from Lambda's environment.
    pub async fn from_env<F: Fn(&str) -> Option<String>>(
        env: &crate::platform::config::Env<F>,
    ) -> Result<Self, crate::platform::config::ConfigError> {
        let table = StoreConfig::from_env(env)?.table_name;
        let clock = Clock::from_env(env)?;
        let sdk = crate::platform::aws::load_sdk_config().await?;
        Ok(Self::new(Client::new(&sdk), table, clock))
    }

    pub fn new(client: Client, table: TableName, clock: Clock) -> Self {
        Self {
            client,
            table,
            clock,
        }
    }

    /// The application clock (`CHAT_CLOCK_OFFSET`).
    pub fn clock(&self) -> Clock {
        self.clock
    }

    /// Now, by the application clock.
    pub fn now(&self) -> Timestamp {
        self.clock.now()
    }

    /// The same table seen from another clock (tests: "a minute later").
    pub fn at_clock(&self, clock: Clock) -> Self {
        Self {
            clock,
            ..self.clone()
        }
    }

    pub fn table(&self) -> &TableName {
        &self.table
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    /// Reads one item; absent or expired is `None`.
    pub async fn get<T: DeserializeOwned>(
        &self,
        key: &Key,
        consistency: Consistency,
    ) -> Result<Option<T>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(self.table.as_str())
            .set_key(Some(key.to_item()))
            .consistent_read(consistency == Consistency::Strong)
            .send()
            .await
            .map_err(|e| StoreError::from_sdk("GetItem", e))?;
        match out.item {
            Some(item) if !is_expired(&item, self.now()) => from_item(item).map(Some),
            _ => Ok(None),
        }
    }

    /// Writes one item. With a condition, a refusal is [`StoreError::ConditionFailed`].
    pub async fn put<T: Serialize>(
        &self,
        item: &T,
        condition: Option<Expr>,
    ) -> Result<(), StoreError> {
        self.put_item(to_item(item)?, condition).await
    }

    async fn put_item(&self, item: Item, condition: Option<Expr>) -> Result<(), StoreError> {
        let (expression, names, values) = Expr::split(condition);
        self.client
            .put_item()
            .table_name(self.table.as_str())
            .set_item(Some(item))
            .set_condition_expression(expression)
            .set_expression_attribute_names(names)
            .set_expression_attribute_values(values)
            .send()
            .await
            .map_err(|e| StoreError::from_sdk("PutItem", e))?;
        Ok(())
    }

    /// Updates one item and returns it as it is after the update. A refused condition (the
    /// update's `when`) is [`StoreError::ConditionFailed`].
    pub async fn update<T: DeserializeOwned>(
        &self,
        key: &Key,
        update: Expr,
    ) -> Result<T, StoreError> {
        let out = self
            .client
            .update_item()
            .table_name(self.table.as_str())
            .set_key(Some(key.to_item()))
            .update_expression(update.expression)
            .set_condition_expression(update.condition)
            .set_expression_attribute_names(update.names)
            .set_expression_attribute_values(update.values)
            .return_values(aws_sdk_dynamodb::types::ReturnValue::AllNew)
            .send()
            .await
            .map_err(|e| StoreError::from_sdk("UpdateItem", e))?;
        from_item(out.attributes.unwrap_or_default())
    }

    /// Reads many items by key (any number: 100 per request, unprocessed keys retried with
    /// backoff). Absent and expired items are left out; the map is keyed by each item's key.
    pub async fn batch_get<T: DeserializeOwned>(
        &self,
        keys: &[Key],
        consistency: Consistency,
    ) -> Result<HashMap<Key, T>, StoreError> {
        let mut found = HashMap::new();
        let now = self.now();
        let mut unique: Vec<&Key> = keys.iter().collect();
        unique.sort_by(|a, b| (&a.pk, &a.sk).cmp(&(&b.pk, &b.sk)));
        unique.dedup();
        for chunk in unique.chunks(100) {
            let mut pending: Vec<Item> = chunk.iter().map(|k| k.to_item()).collect();
            let mut attempt = 0;
            while !pending.is_empty() {
                let request = KeysAndAttributes::builder()
                    .set_keys(Some(std::mem::take(&mut pending)))
                    .consistent_read(consistency == Consistency::Strong)
                    .build()
                    .map_err(StoreError::build)?;
                let out = self
                    .client
                    .batch_get_item()
                    .request_items(self.table.as_str(), request)
                    .send()
                    .await
                    .map_err(|e| StoreError::from_sdk("BatchGetItem", e))?;
                for item in out.responses.unwrap_or_default().into_values().flatten() {
                    if is_expired(&item, now) {
                        continue;
                    }
                    let key = Key {
                        pk: string_attr(&item, attr::PK),
                        sk: string_attr(&item, attr::SK),
                    };
                    found.insert(key, from_item(item)?);
                }
                pending = out
                    .unprocessed_keys
                    .and_then(|mut u| u.remove(self.table.as_str()))
                    .map(|k| k.keys)
                    .unwrap_or_default();
                attempt += 1;
                if !pending.is_empty() {
                    retry::unprocessed_backoff(attempt, "BatchGetItem").await?;
                }
            }
        }
        Ok(found)
    }

    /// Puts many items without conditions (25 per request, unprocessed items retried). Only for
    /// items that no one else writes yet: a put overwrites.
    pub async fn batch_put<T: Serialize>(&self, items: &[T]) -> Result<(), StoreError> {
        let requests = items
            .iter()
            .map(|item| {
                Ok(WriteRequest::builder()
                    .put_request(
                        PutRequest::builder()
                            .set_item(Some(to_item(item)?))
                            .build()
                            .map_err(StoreError::build)?,
                    )
                    .build())
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        self.batch_write(requests).await
    }

    /// Deletes many items without conditions (25 per request, unprocessed ones retried).
    pub async fn batch_delete(&self, keys: &[Key]) -> Result<(), StoreError> {
        let requests = keys
            .iter()
            .map(|key| {
                Ok(WriteRequest::builder()
                    .delete_request(
                        DeleteRequest::builder()
                            .set_key(Some(key.to_item()))
                            .build()
                            .map_err(StoreError::build)?,
                    )
                    .build())
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        self.batch_write(requests).await
    }

    async fn batch_write(&self, requests: Vec<WriteRequest>) -> Result<(), StoreError> {
        for chunk in requests.chunks(25) {
            let mut pending = chunk.to_vec();
            let mut attempt = 0;
            while !pending.is_empty() {
                let out = self
                    .client
                    .batch_write_item()
                    .request_items(self.table.as_str(), std::mem::take(&mut pending))
                    .send()
                    .await
                    .map_err(|e| StoreError::from_sdk("BatchWriteItem", e))?;
                pending = out
                    .unprocessed_items
                    .and_then(|mut u| u.remove(self.table.as_str()))
                    .unwrap_or_default();
                attempt += 1;
                if !pending.is_empty() {
                    retry::unprocessed_backoff(attempt, "BatchWriteItem").await?;
                }
            }
        }
        Ok(())
    }

    /// Deletes one item, optionally conditioned.
    pub async fn delete(&self, key: &Key, condition: Option<Expr>) -> Result<(), StoreError> {
        let (expression, names, values) = Expr::split(condition);
        self.client
            .delete_item()
            .table_name(self.table.as_str())
            .set_key(Some(key.to_item()))
            .set_condition_expression(expression)
            .set_expression_attribute_names(names)
            .set_expression_attribute_values(values)
            .send()
            .await
            .map_err(|e| StoreError::from_sdk("DeleteItem", e))?;
        Ok(())
    }

    /// Deletes one item under a condition and returns it as it was (`None` if it had no attributes).
    /// A refused condition is [`StoreError::ConditionFailed`].
    pub async fn delete_returning<T: DeserializeOwned>(
        &self,
        key: &Key,
        condition: Expr,
    ) -> Result<Option<T>, StoreError> {
        let out = self
            .client
            .delete_item()
            .table_name(self.table.as_str())
            .set_key(Some(key.to_item()))
            .condition_expression(condition.expression)
            .set_expression_attribute_names(condition.names)
            .set_expression_attribute_values(condition.values)
            .return_values(aws_sdk_dynamodb::types::ReturnValue::AllOld)
            .send()
            .await
            .map_err(|e| StoreError::from_sdk("DeleteItem", e))?;
        out.attributes
            .filter(|a| !a.is_empty())
            .map(from_item)
            .transpose()
    }

    /// Writes up to 100 items atomically. A refusal is [`StoreError::TransactionCanceled`] with
    /// one reason per write, in the order given, so the caller can tell which condition failed.
    ///
    /// One put, update or delete goes alone rather than in a transaction: a write of one item is
    /// atomic anyway, and a transaction bills each item twice. Its refusal is reported as the
    /// transaction's would be.
    pub async fn transact(&self, mut writes: Vec<Write>) -> Result<(), StoreError> {
        if writes.is_empty() || writes.len() > 100 {
            return Err(StoreError::Invalid("a transaction holds 1 to 100 writes"));
        }
        if writes.len() == 1
            && !matches!(writes[0], Write::Check { .. })
            && let Some(only) = writes.pop()
        {
            return self.write_one(only).await;
        }
        let items = writes
            .into_iter()
            .map(|w| self.transact_item(w))
            .collect::<Result<Vec<_>, _>>()?;
        // The token makes the SDK's own retries of this call idempotent: a retry of a
        // transaction that committed while its answer was lost succeeds instead of failing its
        // conditions against its own writes.
        self.client
            .transact_write_items()
            .set_transact_items(Some(items))
            .client_request_token(ulid::Ulid::new().to_string())
            .send()
            .await
            .map_err(StoreError::from_transact)?;
        Ok(())
    }

    /// [`Self::transact`] with each write under a name of the caller's: a cancellation comes
    /// back as every write's reason under its name ([`TransactError::reason`]), so that the
    /// caller reads it by what was written, not by the position of a write in a list.
    pub async fn transact_named<N>(&self, writes: Vec<(N, Write)>) -> Result<(), TransactError<N>> {
        let (names, writes): (Vec<N>, Vec<Write>) = writes.into_iter().unzip();
        match self.transact(writes).await {
            Ok(()) => Ok(()),
            Err(StoreError::TransactionCanceled { reasons }) if reasons.len() == names.len() => {
                Err(TransactError::Canceled(
                    names.into_iter().zip(reasons).collect(),
                ))
            }
            Err(error) => Err(TransactError::Store(error)),
        }
    }

    /// One write outside a transaction (see [`Self::transact`]), its refusal reported as the
    /// transaction's would be.
    async fn write_one(&self, write: Write) -> Result<(), StoreError> {
        let written = match write {
            Write::Put { item, condition } => self.put_item(item, condition).await,
            Write::Update { key, update } => self
                .update::<serde::de::IgnoredAny>(&key, update)
                .await
                .map(drop),
            Write::Delete { key, condition } => self.delete(&key, condition).await,
            Write::Check { .. } => Err(StoreError::Invalid(
                "a condition check goes in a transaction",
            )),
        };
        match written {
            Err(StoreError::ConditionFailed) => Err(StoreError::TransactionCanceled {
                reasons: vec![CancellationCode::ConditionalCheckFailed],
            }),
            other => other,
        }
    }

    fn transact_item(&self, write: Write) -> Result<TransactWriteItem, StoreError> {
        let table = self.table.as_str();
        let built = match write {
            Write::Put { item, condition } => {
                let (expression, names, values) = Expr::split(condition);
                TransactWriteItem::builder().put(
                    Put::builder()
                        .table_name(table)
                        .set_item(Some(item))
                        .set_condition_expression(expression)
                        .set_expression_attribute_names(names)
                        .set_expression_attribute_values(values)
                        .build()
                        .map_err(StoreError::build)?,
                )
            }
            Write::Update { key, update } => TransactWriteItem::builder().update(
                Update::builder()
                    .table_name(table)
                    .set_key(Some(key.to_item()))
                    .update_expression(update.expression)
                    .set_condition_expression(update.condition)
                    .set_expression_attribute_names(update.names)
                    .set_expression_attribute_values(update.values)
                    .build()
                    .map_err(StoreError::build)?,
            ),
            Write::Delete { key, condition } => {
                let (expression, names, values) = Expr::split(condition);
                TransactWriteItem::builder().delete(
                    Delete::builder()
                        .table_name(table)
                        .set_key(Some(key.to_item()))
                        .set_condition_expression(expression)
                        .set_expression_attribute_names(names)
                        .set_expression_attribute_values(values)
                        .build()
                        .map_err(StoreError::build)?,
                )
            }
            Write::Check { key, condition } => TransactWriteItem::builder().condition_check(
                ConditionCheck::builder()
                    .table_name(table)
                    .set_key(Some(key.to_item()))
                    .condition_expression(condition.expression)
                    .set_expression_attribute_names(condition.names)
                    .set_expression_attribute_values(condition.values)
                    .build()
                    .map_err(StoreError::build)?,
            ),
        };
        Ok(built.build())
    }

    /// Reads one page of a query, starting after `start`. Expired items are left out, so a page
    /// may hold fewer items than asked for while `next` is not `None`.
    pub async fn query_page<T: DeserializeOwned>(
        &self,
        query: &Query,
        start: Option<StartKey>,
    ) -> Result<Page<T>, StoreError> {
        let mut names = query.key_condition.names.clone().unwrap_or_default();
        let mut values = query.key_condition.values.clone().unwrap_or_default();
        let filter = query.filter.as_ref().map(|f| {
            names.extend(f.names.clone().unwrap_or_default());
            values.extend(f.values.clone().unwrap_or_default());
            f.expression.clone()
        });
        let out = self
            .client
            .query()
            .table_name(self.table.as_str())
            .set_index_name(query.index.map(str::to_owned))
            .key_condition_expression(query.key_condition.expression.clone())
            .set_filter_expression(filter)
            .set_expression_attribute_names(Some(names))
            .set_expression_attribute_values(Some(values))
            .scan_index_forward(query.ascending)
            .set_limit(query.page_size)
            .consistent_read(query.consistency == Consistency::Strong)
            .set_exclusive_start_key(start.map(StartKey::into_item).transpose()?)
            .send()
            .await
            .map_err(|e| StoreError::from_sdk("Query", e))?;
        let now = self.now();
        let items = out
            .items
            .unwrap_or_default()
            .into_iter()
            .filter(|item| !is_expired(item, now))
            .map(from_item)
            .collect::<Result<Vec<T>, _>>()?;
        let next = out
            .last_evaluated_key
            .filter(|k| !k.is_empty())
            .map(StartKey::from_item)
            .transpose()?;
        Ok(Page { items, next })
    }

    /// Reads every page of a query. DynamoDB stops a page at 1 MB, so reading one page would
    /// silently miss items: callers that need all of a partition use this.
    pub async fn query_all<T: DeserializeOwned>(
        &self,
        query: &Query,
    ) -> Result<Vec<T>, StoreError> {
        let mut all = Vec::new();
        let mut start = None;
        loop {
            let page = self.query_page(query, start).await?;
            all.extend(page.items);
            match page.next {
                Some(next) => start = Some(next),
                None => return Ok(all),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn items_with_a_past_ttl_are_expired() {
        let now = Timestamp::from_unix_millis(1_000_000);
        let with_ttl = |t: i64| {
            HashMap::from([(
                attr::EXPIRES_AT.to_owned(),
                AttributeValue::N(t.to_string()),
            )])
        };
        assert!(is_expired(&with_ttl(999), now));
        assert!(!is_expired(&with_ttl(1_000), now));
        assert!(!is_expired(&with_ttl(2_000), now));
        assert!(!is_expired(&HashMap::new(), now));
    }

    #[test]
    fn start_keys_round_trip_through_json() {
        let item = HashMap::from([
            ("PK".to_owned(), AttributeValue::S("CONV#1".to_owned())),
            ("msgRev".to_owned(), AttributeValue::N("42".to_owned())),
        ]);
        let key = StartKey::from_item(item.clone()).unwrap();
        let json = serde_json::to_string(&key).unwrap();
        let back: StartKey = serde_json::from_str(&json).unwrap();
        assert_eq!(back.into_item().unwrap(), item);
    }
}
