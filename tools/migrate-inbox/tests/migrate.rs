//! The migration against DynamoDB Local, on a fresh table made from `template.yaml`: legacy items
//! come out in the new shape, conversations with their search entries, everything else as it
//! was, and a second run changes no item.
//!
//! Needs the local stack (`tools/stack.sh start` and `eval "$(tools/stack.sh env)"`, or
//! `tools/test.sh`).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test helpers: a panic is a failed test"
)]

use std::collections::{BTreeMap, HashMap};

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::AttributeValue;
use chat_shared::adapters::store::keys;
use chat_shared::adapters::store::{DynamoStore, Key};
use chat_shared::domain::{ConversationId, UserId};
use chat_shared::platform::time::{Clock, Timestamp};
use chat_shared::services::model::conversation::{
    ARCHIVED_PREFIX, BIG_PREFIX, InboxItem, MemberItem, Role,
};
use migrate_inbox::{Report, migrate};

type Item = HashMap<String, AttributeValue>;

/// A client of the stack's DynamoDB Local, with an access key of this test's own: DynamoDB Local
/// keeps a database per key, so the test never reads or slows another's tables.
async fn client() -> Client {
    for name in ["AWS_ENDPOINT_URL_DYNAMODB", "AWS_REGION"] {
        if std::env::var(name).is_err() {
            panic!(
                "{name} is not set: run tools/test.sh, or start tools/stack.sh and eval its env"
            );
        }
    }
    let credentials = aws_credential_types::Credentials::new(
        format!("test{}", ulid::Ulid::new()),
        "local",
        None,
        None,
        "test",
    );
    let sdk = chat_shared::platform::aws::load_sdk_config()
        .await
        .unwrap()
        .into_builder()
        .credentials_provider(
            aws_credential_types::provider::SharedCredentialsProvider::new(credentials),
        )
        .build();
    Client::new(&sdk)
}

/// A new table, as the local stack makes its own.
async fn fresh_table(client: &Client) -> String {
    let template = local_stack::Template::of_this_repository().unwrap();
    let name = format!("migrate-{}", ulid::Ulid::new().to_string().to_lowercase());
    local_stack::create_table(client, &name, &template.table)
        .await
        .unwrap();
    name
}

/// Every item of the table by key.
async fn snapshot(client: &Client, table: &str) -> BTreeMap<(String, String), Item> {
    let mut all = BTreeMap::new();
    let mut start = None;
    loop {
        let page = client
            .scan()
            .table_name(table)
            .consistent_read(true)
            .set_exclusive_start_key(start.take())
            .send()
            .await
            .unwrap();
        for item in page.items.unwrap_or_default() {
            let key = |name: &str| item[name].as_s().unwrap().clone();
            all.insert((key("PK"), key("SK")), item);
        }
        match page.last_evaluated_key {
            Some(next) if !next.is_empty() => start = Some(next),
            _ => return all,
        }
    }
}

fn key_of(key: &Key) -> (String, String) {
    (key.pk.clone(), key.sk.clone())
}

fn at(seconds: i64) -> Timestamp {
    Timestamp::from_unix_millis(1_700_000_000_000 + seconds * 1_000)
}

fn user(raw: &str) -> UserId {
    raw.parse().unwrap()
}

/// A group's `META` as older code wrote it (raw, not today's struct): titled `team`, with
/// `memberNames`; `big` only when `big`.
fn meta(id: &ConversationId, member_count: u32, big: bool) -> Item {
    meta_of(id, Some("team"), member_count, big, true)
}

/// A `META` (a group's when titled, else a direct conversation's); `memberNames` only when
/// `member_names`.
fn meta_of(
    id: &ConversationId,
    title: Option<&str>,
    member_count: u32,
    big: bool,
    member_names: bool,
) -> Item {
    let key = keys::conversation_meta(id);
    let mut meta = serde_json::json!({
        "PK": key.pk,
        "SK": key.sk,
        "id": id,
        "kind": if title.is_some() { "group" } else { "direct" },
        "title": title,
        "createdBy": "u0",
        "createdAt": at(0),
        "updatedAt": at(60),
        "lastActivityAt": at(60),
        "lastSeq": 5,
        "rev": 9,
        "lastMessage": null,
        "memberCount": member_count,
    });
    if member_names {
        meta["memberNames"] = serde_json::json!({"u0": "ada"});
    }
    if big {
        meta["big"] = serde_json::Value::Bool(true);
    }
    serde_dynamo::to_item(meta).unwrap()
}

/// A profile as stored (`USER#u` / `PROFILE`).
fn profile(u: &UserId, display_name: &str) -> Item {
    let key = keys::profile(u);
    serde_dynamo::to_item(serde_json::json!({
        "PK": key.pk,
        "SK": key.sk,
        "userId": u,
        "displayName": display_name,
        "avatarUrl": null,
        "createdAt": at(0),
        "updatedAt": at(0),
    }))
    .unwrap()
}

/// A search entry: the user whose partition (`USER#<user_pk>`) holds it finds `c` by `words` (as
/// normalised and escaped) from `source` (`title` or `m:<escaped user id>`).
fn find(user_pk: &str, words: &str, c: &ConversationId, source: &str) -> ((String, String), Item) {
    let (pk, sk) = (
        format!("USER#{user_pk}"),
        format!("FIND#{words}#{c}#{source}"),
    );
    let item = [
        ("PK", AttributeValue::S(pk.clone())),
        ("SK", AttributeValue::S(sk.clone())),
        ("conversationId", AttributeValue::S(c.to_string())),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    ((pk, sk), item)
}

/// Each member's entries for the title `team` (one word).
fn team_entries(c: &ConversationId, users: &[UserId]) -> Vec<((String, String), Item)> {
    users
        .iter()
        .map(|u| find(&keys::user_pk(u)["USER#".len()..], "team", c, "title"))
        .collect()
}

/// Puts raw items.
async fn put_all(client: &Client, table: &str, items: impl IntoIterator<Item = Item>) {
    for item in items {
        client
            .put_item()
            .table_name(table)
            .set_item(Some(item))
            .send()
            .await
            .unwrap();
    }
}

fn members(id: &ConversationId, users: &[UserId]) -> Vec<MemberItem> {
    users
        .iter()
        .enumerate()
        .map(|(i, u)| {
            let role = if i == 0 { Role::Owner } else { Role::Member };
            MemberItem::new(id, u, role, at(0), 5)
        })
        .collect()
}

/// An entry as written before the new layout: `<at>#<c>` with `lastSeq`, archived or not.
fn old_entry(u: &UserId, id: &ConversationId, archived: bool) -> InboxItem {
    InboxItem {
        archived,
        ..InboxItem::new(u, id, at(60), 5, false)
    }
}

/// A connection's record, as `$connect` writes it, expiring at `expires_at` (unix seconds).
fn connection(u: &UserId, id: &str, expires_at: i64) -> Item {
    serde_dynamo::to_item(chat_shared::services::connections::ConnectionItem {
        pk: keys::connection(id).pk,
        sk: keys::connection(id).sk,
        gsi1pk: keys::user_pk(u),
        gsi1sk: format!("CONN#{id}"),
        connection_id: id.to_owned(),
        user_id: u.clone(),
        connected_at: at(0),
        expires_at,
        socket_slot: Some(0),
    })
    .unwrap()
}

/// A user's live connections item holding `ids`.
fn live(u: &UserId, ids: &[&str]) -> Item {
    let key = keys::live_connections(u);
    [
        ("PK", AttributeValue::S(key.pk)),
        ("SK", AttributeValue::S(key.sk)),
        (
            "connectionIds",
            AttributeValue::Ss(ids.iter().map(|&id| id.to_owned()).collect()),
        ),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect()
}

fn set(item: &mut Item, name: &str, value: AttributeValue) {
    item.insert(name.to_owned(), value);
}

#[tokio::test]
async fn legacy_entries_and_groups_take_the_new_shape_once() {
    let client = client().await;
    let table = fresh_table(&client).await;
    let store = DynamoStore::new(client.clone(), table.parse().unwrap(), Clock::system());

    // A group of 17 written before `big`: `META` without it, every entry `<at>#<c>` with
    // `lastSeq`, one of them archived (the first legacy shape too), one member without an entry.
    // One user id holds the key separator and the escape character.
    let legacy_group = ConversationId::generate();
    let mut legacy_users: Vec<UserId> = (0..17).map(|i| user(&format!("u{i}"))).collect();
    legacy_users[3] = user("auth0|odd#id%25");
    let legacy_entries: Vec<InboxItem> = legacy_users[..16]
        .iter()
        .enumerate()
        .map(|(i, u)| old_entry(u, &legacy_group, i == 1))
        .collect();
    let no_entry = keys::inbox_entry(&legacy_users[16], &legacy_group);

    // A small group: one archived entry among the shown ones, one shown entry.
    let small = ConversationId::generate();
    let small_users = [user("u0"), user("auth0|odd#id%25")];
    let archived_legacy = old_entry(&small_users[0], &small, true);
    let shown = old_entry(&small_users[1], &small, false);

    // What must not change: a small group whose archived entry is already under the prefix, and
    // a group that turned big under the new code.
    let settled = ConversationId::generate();
    let settled_users = [user("u0"), user("u1"), user("u2")];
    let mut archived_done = old_entry(&settled_users[0], &settled, true);
    archived_done.activity_key = archived_done.place(true);
    let big = ConversationId::generate();
    let big_users = [user("u0"), user("u5")];
    let big_entries: Vec<InboxItem> = big_users
        .iter()
        .map(|u| InboxItem::new(u, &big, at(60), 5, true))
        .collect();

    let metas = [
        meta(&legacy_group, 17, false),
        meta(&small, 2, false),
        meta(&settled, 3, false),
        meta(&big, 18, true),
    ];
    put_all(&client, &table, metas).await;
    let mut all_members = members(&legacy_group, &legacy_users);
    all_members.extend(members(&small, &small_users));
    all_members.extend(members(&settled, &settled_users));
    all_members.extend(members(&big, &big_users));
    store.batch_put(&all_members).await.unwrap();
    let mut entries = legacy_entries.clone();
    entries.extend([
        archived_legacy.clone(),
        shown.clone(),
        archived_done.clone(),
    ]);
    entries.extend(
        settled_users[1..]
            .iter()
            .map(|u| old_entry(u, &settled, false)),
    );
    entries.extend(big_entries);
    store.batch_put(&entries).await.unwrap();
    // A group `META` whose id does not parse: counted, left as it is.
    let unreadable: Item = [
        ("PK", AttributeValue::S("CONV#not-a-ulid".into())),
        ("SK", AttributeValue::S("META".into())),
        ("id", AttributeValue::S("not-a-ulid".into())),
        ("memberCount", AttributeValue::N("20".into())),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    put_all(&client, &table, [unreadable]).await;

    // Connections made before the live-connections items: one open (to be listed), one expired
    // (left out), and one open whose id its user's item holds already (made since the update).
    let now = Clock::system().now().unix_seconds();
    let (open, expired, listed) = (&legacy_users[0], &legacy_users[1], &legacy_users[3]);
    put_all(
        &client,
        &table,
        [
            connection(open, "open-1", now + 3600),
            connection(expired, "expired-1", now - 1),
            connection(listed, "listed-1", now + 3600),
            live(listed, &["listed-1"]),
        ],
    )
    .await;

    let before = snapshot(&client, &table).await;
    assert!(!before.contains_key(&key_of(&no_entry)));

    // What the table must hold afterwards: `before`, with these changes and no other.
    let mut expected = before.clone();
    set(
        expected
            .get_mut(&key_of(&keys::conversation_meta(&legacy_group)))
            .unwrap(),
        "big",
        AttributeValue::Bool(true),
    );
    for entry in &legacy_entries {
        let item = expected
            .get_mut(&(entry.pk.clone(), entry.sk.clone()))
            .unwrap();
        set(item, "big", AttributeValue::Bool(true));
        set(
            item,
            "activityKey",
            AttributeValue::S(format!("{BIG_PREFIX}{legacy_group}")),
        );
        assert!(item.remove("lastSeq").is_some());
    }
    set(
        expected
            .get_mut(&(archived_legacy.pk.clone(), archived_legacy.sk.clone()))
            .unwrap(),
        "activityKey",
        AttributeValue::S(format!("{ARCHIVED_PREFIX}{}", archived_legacy.activity_key)),
    );
    // Every readable `META` loses `memberNames`, and every member gets an entry for the title
    // (no member has a profile: no names to find a conversation by).
    for id in [&legacy_group, &small, &settled, &big] {
        let meta = expected
            .get_mut(&key_of(&keys::conversation_meta(id)))
            .unwrap();
        assert!(meta.remove("memberNames").is_some());
    }
    expected.extend(team_entries(&legacy_group, &legacy_users));
    expected.extend(team_entries(&small, &small_users));
    expected.extend(team_entries(&settled, &settled_users));
    expected.extend(team_entries(&big, &big_users));
    let open_listed = live(open, &["open-1"]);
    expected.insert(key_of(&keys::live_connections(open)), open_listed);

    let first = migrate(&client, &table, Clock::system()).await.unwrap();
    assert_eq!(
        first,
        Report {
            scanned: before.len() as u64,
            // The small group's entry and the legacy group's archived one (made big after).
            archived_fixed: 2,
            archived_skipped: 0,
            groups_marked_big: 1,
            // The legacy group and the one big already.
            big_groups_checked: 2,
            entries_made_big: 16,
            entries_skipped: 0,
            conversations_indexed: 4,
            names_removed: 4,
            names_skipped: 0,
            connections_listed: 1,
            connections_already_listed: 1,
            unreadable: 1,
        }
    );
    let after = snapshot(&client, &table).await;
    assert_same_items(&after, &expected);
    // The member without an entry still has none (the update does not create one).
    assert!(!after.contains_key(&key_of(&no_entry)));
    // The escaped user's entry in the legacy group is the one that changed.
    let odd = &after[&key_of(&keys::inbox_entry(&legacy_users[3], &legacy_group))];
    assert_eq!(odd["big"], AttributeValue::Bool(true));

    // Idempotent: nothing left to fix, the table as the first run left it (the conversations
    // are entered again: the same puts).
    let second = migrate(&client, &table, Clock::system()).await.unwrap();
    assert_eq!(second.fixed(), 0, "{second:?}");
    assert_eq!(
        second,
        Report {
            scanned: expected.len() as u64,
            big_groups_checked: 2,
            conversations_indexed: 4,
            connections_already_listed: 2,
            unreadable: 1,
            ..Report::default()
        }
    );
    assert_same_items(&snapshot(&client, &table).await, &expected);
}

/// A run stopped after marking a group's `META` big, before its entries: the next run finishes it.
#[tokio::test]
async fn a_group_marked_big_with_entries_left_behind_is_finished() {
    let client = client().await;
    let table = fresh_table(&client).await;
    let store = DynamoStore::new(client.clone(), table.parse().unwrap(), Clock::system());
    let id = ConversationId::generate();
    let users: Vec<UserId> = (0..17).map(|i| user(&format!("u{i}"))).collect();
    put_all(&client, &table, [meta(&id, 17, true)]).await;
    store.batch_put(&members(&id, &users)).await.unwrap();
    // Half of the entries were made big before the stop.
    let entries: Vec<InboxItem> = users
        .iter()
        .enumerate()
        .map(|(i, u)| InboxItem::new(u, &id, at(60), 5, i % 2 == 0))
        .collect();
    store.batch_put(&entries).await.unwrap();

    let report = migrate(&client, &table, Clock::system()).await.unwrap();
    assert_eq!(report.groups_marked_big, 0);
    assert_eq!(report.big_groups_checked, 1);
    assert_eq!(report.entries_made_big, 8);
    let after = snapshot(&client, &table).await;
    for u in &users {
        let entry = &after[&key_of(&keys::inbox_entry(u, &id))];
        assert_eq!(entry["big"], AttributeValue::Bool(true));
        assert_eq!(
            entry["activityKey"],
            AttributeValue::S(format!("{BIG_PREFIX}{id}"))
        );
        assert!(!entry.contains_key("lastSeq"));
    }
    let again = migrate(&client, &table, Clock::system()).await.unwrap();
    assert_eq!(again.fixed(), 0, "{again:?}");
}

/// Conversations made before the search entries get them: in a small group every member finds it
/// by the title and by each other member's name (never their own), in a group made big by the
/// run by the title only; a conversation already entered is left as it is. `memberNames` goes.
#[tokio::test]
async fn conversations_made_before_the_search_are_entered_once() {
    let client = client().await;
    let table = fresh_table(&client).await;
    let store = DynamoStore::new(client.clone(), table.parse().unwrap(), Clock::system());

    let (ada, bob, cy) = (user("ada"), user("bob"), user("cy"));
    // The key separator and the escape character, in the id and in the name.
    let grace = user("auth0|odd#id%25");
    let grace_pk = "auth0|odd%23id%2525";
    let mut profiles = vec![
        profile(&ada, "Ada  Lovelace"),
        profile(&grace, "Grace #1 Hopper"),
        profile(&bob, "Bob"),
    ];
    // `cy` has no profile: found by no name, still finds the others'.

    // A small group from before the search entries, with a title of five words (four are
    // entered).
    let small = ConversationId::generate();
    let small_users = [ada.clone(), grace.clone(), bob.clone(), cy.clone()];
    // A legacy group of 17 (`ada` and `bob` among them, every member with a profile): made big
    // by the run, so entered by its title only.
    let legacy_group = ConversationId::generate();
    let mut legacy_users = vec![ada.clone(), bob.clone()];
    legacy_users.extend((2..17).map(|i| user(&format!("m{i}"))));
    profiles.extend(
        legacy_users[2..]
            .iter()
            .map(|u| profile(u, &format!("Member {u}"))),
    );
    // A direct conversation made by today's code: no `memberNames`, its entries there already.
    let direct = ConversationId::generate();
    let direct_users = [ada.clone(), bob.clone()];
    let direct_entries = [
        find("ada", "bob", &direct, "m:bob"),
        find("bob", "ada lovelace", &direct, "m:ada"),
        find("bob", "lovelace", &direct, "m:ada"),
    ];

    put_all(&client, &table, profiles).await;
    put_all(
        &client,
        &table,
        [
            meta_of(&small, Some("Summer road  trip to Lisbon"), 4, false, true),
            meta(&legacy_group, 17, false),
            meta_of(&direct, None, 2, false, false),
        ],
    )
    .await;
    put_all(
        &client,
        &table,
        direct_entries.iter().map(|(_, i)| i.clone()),
    )
    .await;
    let mut all_members = members(&small, &small_users);
    all_members.extend(members(&legacy_group, &legacy_users));
    all_members.extend(members(&direct, &direct_users));
    store.batch_put(&all_members).await.unwrap();

    let before = snapshot(&client, &table).await;
    assert!(
        !before
            .keys()
            .any(|(_, sk)| sk.contains(small.as_str()) && sk.starts_with("FIND#"))
    );

    let mut expected = before.clone();
    for id in [&small, &legacy_group] {
        let meta = expected
            .get_mut(&key_of(&keys::conversation_meta(id)))
            .unwrap();
        assert!(meta.remove("memberNames").is_some());
    }
    set(
        expected
            .get_mut(&key_of(&keys::conversation_meta(&legacy_group)))
            .unwrap(),
        "big",
        AttributeValue::Bool(true),
    );
    expected.extend(team_entries(&legacy_group, &legacy_users));
    let title = [
        "summer road trip to lisbon",
        "road trip to lisbon",
        "trip to lisbon",
        "to lisbon",
    ];
    let names: [(&str, &[&str]); 3] = [
        ("ada", &["ada lovelace", "lovelace"]),
        (grace_pk, &["grace %231 hopper", "%231 hopper", "hopper"]),
        ("bob", &["bob"]),
    ];
    for viewer in ["ada", grace_pk, "bob", "cy"] {
        for words in title {
            expected.extend([find(viewer, words, &small, "title")]);
        }
        for (member, words) in names.iter().filter(|(m, _)| *m != viewer) {
            for words in *words {
                expected.extend([find(viewer, words, &small, &format!("m:{member}"))]);
            }
        }
    }
    // 4 × 4 title entries; names: ada 3 + 1, grace 2 + 1, bob 2 + 3, cy 2 + 3 + 1.
    assert_eq!(expected.len() - before.len(), 17 + 16 + 18);

    let first = migrate(&client, &table, Clock::system()).await.unwrap();
    assert_eq!(
        first,
        Report {
            scanned: before.len() as u64,
            groups_marked_big: 1,
            big_groups_checked: 1,
            conversations_indexed: 3,
            names_removed: 2,
            ..Report::default()
        }
    );
    let after = snapshot(&client, &table).await;
    assert_same_items(&after, &expected);
    // No one finds a conversation by their own name.
    for (pk, sk) in after.keys().filter(|(_, sk)| sk.starts_with("FIND#")) {
        assert!(
            !sk.ends_with(&format!("#m:{}", &pk["USER#".len()..])),
            "{pk} {sk}"
        );
    }

    // The second run puts the same entries again and changes no item.
    let second = migrate(&client, &table, Clock::system()).await.unwrap();
    assert_eq!(second.fixed(), 0, "{second:?}");
    assert_eq!(
        second,
        Report {
            scanned: expected.len() as u64,
            big_groups_checked: 1,
            conversations_indexed: 3,
            ..Report::default()
        }
    );
    assert_same_items(&snapshot(&client, &table).await, &expected);
}

/// Compares two snapshots item by item, naming the keys that differ.
fn assert_same_items(
    actual: &BTreeMap<(String, String), Item>,
    expected: &BTreeMap<(String, String), Item>,
) {
    let keys: std::collections::BTreeSet<_> = actual.keys().chain(expected.keys()).collect();
    let mut differ = Vec::new();
    for key in keys {
        if actual.get(key) != expected.get(key) {
            differ.push(format!(
                "{key:?}:\n  actual   {:?}\n  expected {:?}",
                actual.get(key),
                expected.get(key)
            ));
        }
    }
    assert!(differ.is_empty(), "items differ:\n{}", differ.join("\n"));
}
