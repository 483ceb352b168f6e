//! Brings inbox data written before the `~archived#` / `~big#` layout of the `ByActivity` index
//! and before the search entries into today's shape (docs/operations.md, "Migrating the inbox").
//! Four legacy shapes are fixed:
//!
//! 1. an archived entry (`archived = true`) whose `activityKey` has no `~archived#` prefix: it
//!    sits among the shown entries, where the list skips it, and no archived list finds it. It is
//!    moved to `~archived#<lastActivityAt>#<c>`, on condition that it is still archived at the key
//!    read; a send or a settings change that moved it meanwhile left it correct.
//! 2. a group whose `META` has more than 16 members (`SMALL_GROUP_MEMBERS`) but no `big`: `META`
//!    is marked `big` first (a send reads it, and moves only entries without `big`), then every
//!    member's entry is made big (`big`, `~big#<c>`, no `lastSeq`), as adding the 17th member does.
//! 3. a conversation made before the search entries (`services::search`) has none: every
//!    conversation is entered as `stream-fan-out` enters a new one ([`indexing::apply`] of
//!    [`Upkeep::Made`]: idempotent puts of every member's entries). Groups that are big or
//!    should be are entered after their fix in the same run, so as big ones (titles only).
//! 4. a `META` that still holds `memberNames` (the names the old `q` read): the map is removed,
//!    which shrinks the item every send's counter update rewrites.
//! 5. an open connection (an unexpired `CONN#id` record) made before the users' live-connections
//!    items (`LIVE#u`, which the fan-out reads): its id is added to its user's item, unless it is
//!    there. A connection closed between the scan and the addition leaves its id behind, which
//!    the first push to it (410) removes.
//!
//! Every write is conditioned or idempotent, so the migration may run while traffic flows, and
//! again. A run stopped between a group's `META` and its entries is finished by the next one:
//! every big group's entries are checked (and only those out of shape are written), and every
//! conversation is entered again.

use std::collections::{BTreeMap, HashMap};

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::AttributeValue;
use chat_shared::adapters::store::keys::{self, attr, prefix};
use chat_shared::adapters::store::retry::{Attempt, retry_races};
use chat_shared::adapters::store::{Consistency, DynamoStore, Expr, Item, Key, Query, StoreError};
use chat_shared::domain::error::ApiError;
use chat_shared::domain::{ConversationId, TableName, UserId, ValidationError};
use chat_shared::platform::time::Clock;
use chat_shared::services::connections::ConnectionItem;
use chat_shared::services::indexing::{self, Upkeep};
use chat_shared::services::model::conversation::{
    BIG_PREFIX, InboxItem, SHOWN_BOUND, SMALL_GROUP_MEMBERS,
};
use futures::stream::{self, StreamExt, TryStreamExt};
use serde::{Deserialize, Serialize};

/// Items the scan evaluates per request (before its filter): short requests, well inside the
/// SDK's per-attempt timeout.
const SCAN_PAGE: i32 = 1_000;
/// Single-item updates in flight at once.
const UPDATES_IN_FLIGHT: usize = 16;
/// Conversations entered in the search at once: each is a few requests in a row (`META`, its
/// members, their profiles, the puts in batches of 25).
const INDEXING_IN_FLIGHT: usize = 8;
/// The legacy map of members' names on `META`.
const MEMBER_NAMES: &str = "memberNames";

/// What a run did, by kind. A second run over the same data fixes nothing ([`Report::fixed`] is
/// 0), though it enters every conversation in the search again.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    /// Items the scan read (DynamoDB's `ScannedCount`), candidates or not.
    pub scanned: u64,
    /// Archived entries moved under `~archived#`.
    pub archived_fixed: u64,
    /// Archived entries moved by a send or a settings change between the scan and the fix (left
    /// as they are: correct).
    pub archived_skipped: u64,
    /// Groups of more than 16 members whose `META` was marked `big`.
    pub groups_marked_big: u64,
    /// Big groups whose members' entries were checked: those marked by this run and those big
    /// before it.
    pub big_groups_checked: u64,
    /// Entries of big groups moved under `~big#`.
    pub entries_made_big: u64,
    /// Entries of big groups deleted between their read and their update (their member left).
    pub entries_skipped: u64,
    /// Conversations entered in the search, their members' entries put: every readable `META`
    /// (a group after its fixes above), whether its entries were there or not.
    pub conversations_indexed: u64,
    /// `META` items whose `memberNames` was removed.
    pub names_removed: u64,
    /// `META` items with `memberNames` gone between the scan and the removal (no code deletes a
    /// conversation: expected 0).
    pub names_skipped: u64,
    /// Open connections added to their user's live connections.
    pub connections_listed: u64,
    /// Open connections already there (made since the update, or by a run before).
    pub connections_already_listed: u64,
    /// Candidate items left as they are because an id or attribute in them did not parse.
    pub unreadable: u64,
}

impl Report {
    /// Items found out of shape and written: 0 on a run after a complete one. Not
    /// `conversations_indexed`: a conversation's search entries are put whether they were there
    /// or not (the puts are idempotent; telling which are missing would cost a read per entry), so
    /// every run enters every conversation again and counts it, while changing no item of a table
    /// whose entries are complete.
    pub fn fixed(&self) -> u64 {
        self.archived_fixed
            + self.groups_marked_big
            + self.entries_made_big
            + self.names_removed
            + self.connections_listed
    }

    /// Items found to fix that were not written (moved or deleted meanwhile, or unreadable).
    pub fn skipped(&self) -> u64 {
        self.archived_skipped + self.entries_skipped + self.names_skipped + self.unreadable
    }
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("table name: {0}")]
    Table(#[from] ValidationError),
    #[error("DynamoDB Scan failed")]
    Scan(#[source] Box<dyn std::error::Error + Send + Sync>),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("entering a conversation in the search failed")]
    Index(#[source] ApiError),
}

/// What the scan returns: legacy archived entries, and every conversation's `META` (each is
/// entered in the search; [`classify`] tells the groups that are big or should be, and those
/// holding `memberNames`).
fn candidates_filter() -> Expr {
    Expr::new(
        "(begins_with(#sk, :inbox) AND archived = :true AND attribute_exists(activityKey) \
         AND NOT begins_with(activityKey, :bound)) \
         OR #sk = :meta \
         OR (begins_with(#pk, :conn) AND #sk = :connsk)",
    )
    .name("#pk", attr::PK)
    .name("#sk", attr::SK)
    .string(":inbox", prefix::INBOX)
    .boolean(":true", true)
    .string(":bound", SHOWN_BOUND)
    .string(":meta", prefix::META)
    .string(":conn", prefix::CONNECTION)
    .string(":connsk", keys::connection("x").sk)
}

/// The part of `META` the migration reads.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct MetaHead {
    id: String,
    member_count: u32,
    #[serde(default)]
    big: bool,
}

/// The part of a membership the migration reads.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct MemberHead {
    user_id: Option<String>,
}

/// The part of an inbox entry that says whether it is in a big conversation's shape.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct EntryHead {
    activity_key: Option<String>,
    #[serde(default)]
    big: bool,
    last_seq: Option<u64>,
}

/// One item the scan returned, read.
#[derive(Debug, PartialEq)]
enum Candidate {
    /// An archived entry among the shown ones.
    Archived(Box<InboxItem>),
    /// A conversation's `META`.
    Conversation {
        id: ConversationId,
        /// `Some(marked)` for a group that is big (`marked`) or has more than 16 members.
        group: Option<bool>,
        /// It still holds `memberNames`.
        member_names: bool,
    },
    /// A connection's record: (its user, its id), if it has not expired.
    Connection(UserId, String),
    /// An item the filter let through that is not one of the shapes after all.
    Neither,
    Unreadable,
}

fn classify(item: Item, now_seconds: i64) -> Candidate {
    let sk = match item.get(attr::SK) {
        Some(AttributeValue::S(sk)) => sk.clone(),
        _ => return Candidate::Neither,
    };
    let is_connection = matches!(item.get(attr::PK), Some(AttributeValue::S(pk))
        if pk.starts_with(prefix::CONNECTION));
    if is_connection {
        match serde_dynamo::from_item::<_, ConnectionItem>(item) {
            Ok(c) if c.expires_at > now_seconds => {
                Candidate::Connection(c.user_id, c.connection_id)
            }
            Ok(_) => Candidate::Neither,
            Err(_) => Candidate::Unreadable,
        }
    } else if sk.starts_with(prefix::INBOX) {
        match serde_dynamo::from_item::<_, InboxItem>(item) {
            Ok(entry) if entry.archived && !entry.activity_key.starts_with(SHOWN_BOUND) => {
                Candidate::Archived(Box::new(entry))
            }
            Ok(_) => Candidate::Neither,
            Err(_) => Candidate::Unreadable,
        }
    } else if sk == prefix::META {
        let member_names = item.contains_key(MEMBER_NAMES);
        let Ok(meta) = serde_dynamo::from_item::<_, MetaHead>(item) else {
            return Candidate::Unreadable;
        };
        let group = (meta.big || meta.member_count > SMALL_GROUP_MEMBERS).then_some(meta.big);
        match meta.id.parse() {
            Ok(id) => Candidate::Conversation {
                id,
                group,
                member_names,
            },
            Err(_) => Candidate::Unreadable,
        }
    } else {
        Candidate::Neither
    }
}

/// The fix of a legacy archived entry: its own key (as read), and the update that moves it
/// under `~archived#` if it is still archived where it was read.
fn archived_fix(entry: &InboxItem) -> (Key, Expr) {
    let update = Expr::set(["activityKey = :key"])
        .when("archived = :true AND activityKey = :seen")
        .string(":key", entry.place(true))
        .boolean(":true", true)
        .string(":seen", entry.activity_key.clone());
    (Key::new(entry.pk.clone(), entry.sk.clone()), update)
}

/// Adds an open connection's id to its user's live connections (refused when it is there).
fn listing_fix(user: &UserId, connection_id: &str) -> (Key, Expr) {
    let update = Expr::new("ADD connectionIds :ids")
        .when("NOT contains(connectionIds, :id)")
        .value_raw(":ids", AttributeValue::Ss(vec![connection_id.to_owned()]))
        .string(":id", connection_id);
    (keys::live_connections(user), update)
}

/// Marks a group's `META` big (refused when it is gone or big already).
fn meta_fix() -> Expr {
    Expr::set(["big = :true"])
        .when("attribute_exists(PK) AND attribute_not_exists(big)")
        .boolean(":true", true)
}

/// Removes the legacy `memberNames` from a `META` (refused when it is gone).
fn names_fix() -> Expr {
    Expr::new(format!("REMOVE {MEMBER_NAMES}")).when("attribute_exists(PK)")
}

fn big_key(id: &ConversationId) -> String {
    format!("{BIG_PREFIX}{id}")
}

/// Makes an entry big, as `plan_add` does when a group passes 16 members.
fn entry_fix(id: &ConversationId) -> Expr {
    Expr::new("SET big = :true, activityKey = :key REMOVE lastSeq")
        .when("attribute_exists(PK)")
        .boolean(":true", true)
        .string(":key", big_key(id))
}

fn is_big_shape(entry: &EntryHead, id: &ConversationId) -> bool {
    entry.big
        && entry.activity_key.as_deref() == Some(big_key(id).as_str())
        && entry.last_seq.is_none()
}

/// Whether a conditioned update was written or refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Written,
    Refused,
}

/// One conditioned update; a conflict with a transaction on the item is retried.
async fn update(store: &DynamoStore, key: &Key, update: &Expr) -> Result<Outcome, StoreError> {
    retry_races(
        || async {
            match store
                .update::<serde::de::IgnoredAny>(key, update.clone())
                .await
            {
                Ok(_) => Ok(Attempt::Done(Outcome::Written)),
                Err(StoreError::ConditionFailed) => Ok(Attempt::Done(Outcome::Refused)),
                Err(e) if e.cancellation_reasons().is_some() => Ok(Attempt::Retry),
                Err(e) => Err(e),
            }
        },
        || StoreError::Unavailable {
            operation: "UpdateItem",
            source: "kept meeting transactions on the item".into(),
        },
    )
    .await
}

/// Runs updates, [`UPDATES_IN_FLIGHT`] at once; how many were written and refused.
async fn update_all(
    store: &DynamoStore,
    updates: Vec<(Key, Expr)>,
) -> Result<(u64, u64), StoreError> {
    let results: Vec<Result<Outcome, StoreError>> = stream::iter(updates)
        .map(|(key, expr)| async move { update(store, &key, &expr).await })
        .buffer_unordered(UPDATES_IN_FLIGHT)
        .collect()
        .await;
    let (mut written, mut refused) = (0, 0);
    for result in results {
        match result? {
            Outcome::Written => written += 1,
            Outcome::Refused => refused += 1,
        }
    }
    Ok((written, refused))
}

/// Enters conversations in the search, [`INDEXING_IN_FLIGHT`] at once (the first failure stops
/// the rest); how many.
async fn index_all(store: &DynamoStore, ids: Vec<ConversationId>) -> Result<u64, Error> {
    let count = ids.len() as u64;
    stream::iter(ids.into_iter().map(Ok))
        .try_for_each_concurrent(INDEXING_IN_FLIGHT, |id| async move {
            indexing::apply(store, &Upkeep::Made(id))
                .await
                .map_err(Error::Index)
        })
        .await?;
    Ok(count)
}

/// Marks a group big if it is not yet, then makes every member's entry that is not big so.
async fn convert_group(
    store: &DynamoStore,
    id: &ConversationId,
    marked: bool,
    report: &mut Report,
) -> Result<(), Error> {
    if !marked
        && update(store, &keys::conversation_meta(id), &meta_fix()).await? == Outcome::Written
    {
        report.groups_marked_big += 1;
    }
    report.big_groups_checked += 1;
    // Its own reading of the members (not `conversations::member_items`): an id it cannot
    // parse is counted and passed over rather than failing the run.
    let query = Query::prefix(keys::conversation_pk(id), keys::member_prefix());
    let members: Vec<MemberHead> = store.query_all(&query).await?;
    let mut users = Vec::with_capacity(members.len());
    for member in members {
        match member.user_id.as_deref().map(str::parse::<UserId>) {
            Some(Ok(user)) => users.push(user),
            _ => report.unreadable += 1,
        }
    }
    let entry_keys: Vec<Key> = users.iter().map(|u| keys::inbox_entry(u, id)).collect();
    let entries: HashMap<Key, EntryHead> =
        store.batch_get(&entry_keys, Consistency::Strong).await?;
    // An entry that is absent has nothing to fix (the update would not create it anyway).
    let fixes: Vec<(Key, Expr)> = entry_keys
        .into_iter()
        .filter(|k| entries.get(k).is_some_and(|e| !is_big_shape(e, id)))
        .map(|k| (k, entry_fix(id)))
        .collect();
    let (written, refused) = update_all(store, fixes).await?;
    report.entries_made_big += written;
    report.entries_skipped += refused;
    Ok(())
}

/// Scans `table` for the legacy shapes and fixes them (see the crate's documentation). The
/// clock is the application's (`CHAT_CLOCK_OFFSET`), by which the store's reads judge expiry.
pub async fn migrate(client: &Client, table: &str, clock: Clock) -> Result<Report, Error> {
    let table: TableName = table.parse()?;
    let store = DynamoStore::new(client.clone(), table.clone(), clock);
    let filter = candidates_filter();
    let mut report = Report::default();
    // Conversation id → whether its `META` is marked big already: groups are converted after the
    // scan, each once, then entered in the search. Other conversations are entered page by page.
    let mut groups: BTreeMap<ConversationId, bool> = BTreeMap::new();
    let mut start: Option<Item> = None;
    loop {
        let page = client
            .scan()
            .table_name(table.as_str())
            .filter_expression(filter.expression.clone())
            .set_expression_attribute_names(filter.names.clone())
            .set_expression_attribute_values(filter.values.clone())
            .limit(SCAN_PAGE)
            .set_exclusive_start_key(start.take())
            .send()
            .await
            .map_err(|e| Error::Scan(Box::new(e)))?;
        report.scanned += u64::try_from(page.scanned_count).unwrap_or_default();
        let (mut fixes, mut names, mut small) = (Vec::new(), Vec::new(), Vec::new());
        let mut listings = Vec::new();
        let now = store.now().unix_seconds();
        for item in page.items.unwrap_or_default() {
            match classify(item, now) {
                Candidate::Archived(entry) => fixes.push(archived_fix(&entry)),
                Candidate::Connection(user, id) => listings.push(listing_fix(&user, &id)),
                Candidate::Conversation {
                    id,
                    group,
                    member_names,
                } => {
                    if member_names {
                        names.push((keys::conversation_meta(&id), names_fix()));
                    }
                    match group {
                        Some(marked) => {
                            let seen = groups.entry(id).or_insert(marked);
                            *seen = *seen && marked;
                        }
                        None => small.push(id),
                    }
                }
                Candidate::Unreadable => report.unreadable += 1,
                Candidate::Neither => {}
            }
        }
        let (written, refused) = update_all(&store, fixes).await?;
        report.archived_fixed += written;
        report.archived_skipped += refused;
        let (written, refused) = update_all(&store, names).await?;
        report.names_removed += written;
        report.names_skipped += refused;
        let (written, refused) = update_all(&store, listings).await?;
        report.connections_listed += written;
        report.connections_already_listed += refused;
        report.conversations_indexed += index_all(&store, small).await?;
        match page.last_evaluated_key {
            Some(next) if !next.is_empty() => start = Some(next),
            _ => break,
        }
    }
    for (id, marked) in &groups {
        convert_group(&store, id, *marked, &mut report).await?;
    }
    // After the fixes: a group marked big above is entered as a big one (its title only).
    report.conversations_indexed += index_all(&store, groups.into_keys().collect()).await?;
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chat_shared::platform::time::Timestamp;
    use chat_shared::services::model::conversation::{ARCHIVED_PREFIX, activity_key};

    fn entry(archived: bool, activity_key: &str) -> InboxItem {
        let id: ConversationId = "01JDQ7Z8K3M4N5P6Q7R8S9T0VW".parse().unwrap();
        let user: UserId = "auth0|a#b%c".parse().unwrap();
        let mut item = InboxItem::new(
            &user,
            &id,
            Timestamp::from_unix_millis(1_700_000_000_000),
            3,
            false,
        );
        item.archived = archived;
        item.activity_key = activity_key.to_owned();
        item
    }

    #[test]
    fn only_archived_entries_among_the_shown_ones_are_candidates() {
        let legacy = entry(true, "2023-11-14T22:13:20.000Z#01JDQ7Z8K3M4N5P6Q7R8S9T0VW");
        let item = serde_dynamo::to_item(&legacy).unwrap();
        assert_eq!(
            classify(item, 0),
            Candidate::Archived(Box::new(legacy.clone()))
        );
        for done in [
            entry(true, &format!("{ARCHIVED_PREFIX}{}", legacy.activity_key)),
            entry(true, "~big#01JDQ7Z8K3M4N5P6Q7R8S9T0VW"),
            entry(false, &legacy.activity_key),
        ] {
            assert_eq!(
                classify(serde_dynamo::to_item(&done).unwrap(), 0),
                Candidate::Neither
            );
        }
    }

    #[test]
    fn a_legacy_archived_entry_moves_under_the_prefix_where_it_was_read() {
        let id: ConversationId = "01JDQ7Z8K3M4N5P6Q7R8S9T0VW".parse().unwrap();
        let legacy = entry(
            true,
            &activity_key(Timestamp::from_unix_millis(1_700_000_000_000), &id),
        );
        let (key, update) = archived_fix(&legacy);
        // The item's own key, as read: the user id in it stays escaped.
        assert_eq!(key, keys::inbox_entry(&"auth0|a#b%c".parse().unwrap(), &id));
        assert_eq!(update.expression, "SET activityKey = :key");
        assert_eq!(
            update.condition.as_deref(),
            Some("archived = :true AND activityKey = :seen")
        );
        let values = update.values.unwrap();
        assert_eq!(
            values[":key"],
            AttributeValue::S(format!("{ARCHIVED_PREFIX}{}", legacy.activity_key))
        );
        assert_eq!(
            values[":seen"],
            AttributeValue::S(legacy.activity_key.clone())
        );
    }

    #[test]
    fn every_meta_is_a_candidate_telling_groups_and_member_names() {
        let meta = |count: u32, big: Option<bool>, names: bool| {
            let mut item: Item = [
                (
                    "PK",
                    AttributeValue::S("CONV#01JDQ7Z8K3M4N5P6Q7R8S9T0VW".into()),
                ),
                ("SK", AttributeValue::S("META".into())),
                ("id", AttributeValue::S("01JDQ7Z8K3M4N5P6Q7R8S9T0VW".into())),
                ("memberCount", AttributeValue::N(count.to_string())),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v))
            .collect();
            if let Some(big) = big {
                item.insert("big".into(), AttributeValue::Bool(big));
            }
            if names {
                item.insert(
                    "memberNames".into(),
                    AttributeValue::M([("u0".to_owned(), AttributeValue::S("ada".into()))].into()),
                );
            }
            classify(item, 0)
        };
        let id: ConversationId = "01JDQ7Z8K3M4N5P6Q7R8S9T0VW".parse().unwrap();
        let conversation = |group, member_names| Candidate::Conversation {
            id: id.clone(),
            group,
            member_names,
        };
        assert_eq!(meta(17, None, false), conversation(Some(false), false));
        assert_eq!(meta(12, Some(true), true), conversation(Some(true), true));
        assert_eq!(meta(16, None, true), conversation(None, true));
        assert_eq!(meta(2, Some(false), false), conversation(None, false));
        let mut broken = [("SK", "META"), ("id", "not-a-ulid")]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), AttributeValue::S(v.to_owned())))
            .collect::<Item>();
        broken.insert("memberCount".into(), AttributeValue::N("2".into()));
        assert_eq!(classify(broken, 0), Candidate::Unreadable);
    }

    #[test]
    fn member_names_go_from_a_meta_that_exists() {
        let update = names_fix();
        assert_eq!(update.expression, "REMOVE memberNames");
        assert_eq!(update.condition.as_deref(), Some("attribute_exists(PK)"));
        assert_eq!(update.values, None);
    }

    #[test]
    fn an_entry_is_big_with_the_flag_the_key_and_no_last_seq() {
        let id: ConversationId = "01JDQ7Z8K3M4N5P6Q7R8S9T0VW".parse().unwrap();
        let shaped = |big, key: &str, last_seq| EntryHead {
            activity_key: Some(key.to_owned()),
            big,
            last_seq,
        };
        assert!(is_big_shape(
            &shaped(true, "~big#01JDQ7Z8K3M4N5P6Q7R8S9T0VW", None),
            &id
        ));
        assert!(!is_big_shape(
            &shaped(false, "~big#01JDQ7Z8K3M4N5P6Q7R8S9T0VW", None),
            &id
        ));
        assert!(!is_big_shape(
            &shaped(true, "~big#01JDQ7Z8K3M4N5P6Q7R8S9T0VW", Some(4)),
            &id
        ));
        assert!(!is_big_shape(
            &shaped(true, "2023-11-14T22:13:20.000Z#x", None),
            &id
        ));
        let update = entry_fix(&id);
        assert_eq!(
            update.expression,
            "SET big = :true, activityKey = :key REMOVE lastSeq"
        );
        assert_eq!(update.condition.as_deref(), Some("attribute_exists(PK)"));
    }

    #[test]
    fn only_open_connections_are_listed() {
        let user: UserId = "auth0|a#b%c".parse().unwrap();
        let record = |expires_at: i64| {
            let key = keys::connection("Jk3eAcX1IAMCJ2Q=");
            serde_dynamo::to_item(ConnectionItem {
                pk: key.pk,
                sk: key.sk,
                gsi1pk: keys::user_pk(&user),
                gsi1sk: "CONN#Jk3eAcX1IAMCJ2Q=".into(),
                connection_id: "Jk3eAcX1IAMCJ2Q=".into(),
                user_id: user.clone(),
                connected_at: Timestamp::from_unix_millis(1_700_000_000_000),
                expires_at,
                socket_slot: Some(0),
            })
            .unwrap()
        };
        assert_eq!(
            classify(record(1_000), 999),
            Candidate::Connection(user.clone(), "Jk3eAcX1IAMCJ2Q=".into())
        );
        assert_eq!(classify(record(1_000), 1_000), Candidate::Neither);
    }
}
