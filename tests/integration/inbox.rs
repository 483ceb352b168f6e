//! The inbox of 0007 part 3 over real HTTP: big groups ordered on read (no entry moved by a send),
//! archived lists in full pages, and a list read right after a send's answer.

use std::collections::HashSet;

use reqwest::Method;
use serde_json::{Value, json};

use crate::support::{LocalApi, urlencode};
use chat_shared::adapters::store::keys;
use chat_shared::adapters::store::{Consistency, DynamoStore};
use chat_shared::domain::{ConversationId, UserId};
use chat_shared::services::conversations::model::InboxItem;

fn users(prefix: &str, n: usize) -> Vec<String> {
    (0..n).map(|i| format!("{prefix}{i:03}")).collect()
}

async fn send(api: &LocalApi, user: &str, id: &str, text: &str) -> Value {
    let (status, body) = api
        .call(
            Method::POST,
            &format!("/conversations/{id}/messages"),
            user,
            Some(json!({"body": text, "clientMessageId": format!("{user}-{text}")})),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    body
}

async fn create_group(api: &LocalApi, owner: &str, others: &[String], title: &str) -> String {
    let (status, body) = api
        .call(
            Method::POST,
            "/conversations",
            owner,
            Some(json!({"participantIds": others, "kind": "group", "title": title})),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    body["id"].as_str().unwrap().to_owned()
}

/// Every page of `query` as `user`: the ids of each page, asserting that every page but the last
/// holds `limit` items and only the last has no cursor.
async fn pages(api: &LocalApi, user: &str, query: &str, limit: usize) -> Vec<Vec<String>> {
    let mut pages = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!(
                "/conversations?{query}&limit={limit}&cursor={}",
                urlencode(c)
            ),
            None => format!("/conversations?{query}&limit={limit}"),
        };
        let (status, page) = api.call(Method::GET, &path, user, None).await;
        assert_eq!(status, 200, "{page}");
        let ids: Vec<String> = page["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["id"].as_str().unwrap().to_owned())
            .collect();
        let next = page["nextCursor"].as_str().map(str::to_owned);
        if next.is_some() {
            assert_eq!(ids.len(), limit, "a page with a cursor is full: {page}");
        }
        pages.push(ids);
        match next {
            Some(next) => cursor = Some(next),
            None => return pages,
        }
        assert!(pages.len() < 100, "paging does not end");
    }
}

async fn entry(store: &DynamoStore, user: &str, id: &str) -> InboxItem {
    let user: UserId = user.parse().unwrap();
    let id: ConversationId = id.parse().unwrap();
    store
        .get(&keys::inbox_entry(&user, &id), Consistency::Strong)
        .await
        .unwrap()
        .unwrap()
}

/// A reader in 6 small groups and 2 big ones (17 and 20 members): a send into any of them puts it
/// first in the very next list read; pages of 3 merge both kinds in order; a send into a big group
/// moves no inbox entry; a small group passing 16 members turns big and keeps its place.
#[tokio::test]
async fn big_groups_are_ordered_on_read_and_pages_merge_both_kinds() {
    let api = LocalApi::start().await;
    let crowd = users("crowd", 20);
    let mut everyone = crowd.clone();
    everyone.push("reader".into());
    api.sign_up(&everyone).await;
    let reader = vec!["reader".to_owned()];
    let mut small = Vec::new();
    for (n, creator) in crowd[..6].iter().enumerate() {
        small.push(create_group(&api, creator, &reader, &format!("Small {n}")).await);
    }
    let with_reader =
        |n: usize| -> Vec<String> { crowd[1..n].iter().cloned().chain(reader.clone()).collect() };
    let big_a = create_group(&api, &crowd[0], &with_reader(16), "Big A").await;
    let big_b = create_group(&api, &crowd[0], &with_reader(19), "Big B").await;
    let store = &api.gateway.deps.store;
    let before = entry(store, "reader", &big_a).await;
    assert!(before.big, "17 members make a big group: {before:?}");

    // Newest first: B, A, then the small ones newest first.
    let mut expected: Vec<String> = vec![big_b.clone(), big_a.clone()];
    expected.extend(small.iter().rev().cloned());
    assert_eq!(pages(&api, "reader", "", 3).await.concat(), expected);

    // A send into each kind, each read right after its answer.
    // small[k] is crowd[k]'s, the big ones crowd[0]'s.
    let order = [
        (2, &small[2]),
        (0, &big_a),
        (0, &small[0]),
        (0, &big_b),
        (0, &big_a),
    ];
    for (n, (sender, id)) in order.iter().enumerate() {
        send(&api, &crowd[*sender], id, &format!("m{n}")).await;
        let first = &pages(&api, "reader", "", 3).await[0];
        assert_eq!(&first[0], *id, "after send {n}");
        expected.retain(|c| c != *id);
        expected.insert(0, (*id).clone());
    }
    let listed = pages(&api, "reader", "", 3).await.concat();
    assert_eq!(listed, expected);
    assert_eq!(listed.iter().collect::<HashSet<_>>().len(), 8);

    // The big group's entry did not move: no write unit of inbox upkeep per message.
    let after = entry(store, "reader", &big_a).await;
    assert_eq!(
        (&after.activity_key, after.last_activity_at),
        (&before.activity_key, before.last_activity_at)
    );
    // A small one's did, with the conversation's lastSeq.
    let moved = entry(store, "reader", &small[0]).await;
    assert_eq!(moved.last_seq, Some(1));

    // A small group of 16 gets a 17th member: every entry turns big, the order holds.
    let sixteen = create_group(&api, &crowd[0], &with_reader(15), "Sixteen").await;
    expected.insert(0, sixteen.clone());
    assert!(!entry(store, "reader", &sixteen).await.big);
    let (status, body) = api
        .call(
            Method::POST,
            &format!("/conversations/{sixteen}/members"),
            &crowd[0],
            Some(json!({"userIds": [crowd[19]]})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    for user in ["reader", crowd[0].as_str(), crowd[19].as_str()] {
        assert!(entry(store, user, &sixteen).await.big, "{user}");
    }
    send(&api, &crowd[5], &small[5], "late").await;
    expected.retain(|c| c != &small[5]);
    expected.insert(0, small[5].clone());
    send(&api, &crowd[19], &sixteen, "joined").await;
    expected.retain(|c| c != &sixteen);
    expected.insert(0, sixteen.clone());
    assert_eq!(pages(&api, "reader", "", 4).await.concat(), expected);
}

/// 45 conversations of one user, 12 archived (small and big): `archived=true` answers pages of 5,
/// 5 and 2 and the default list pages of 5 to 33, each in order, each full but the last.
#[tokio::test]
async fn archived_lists_come_in_full_pages() {
    let api = LocalApi::start().await;
    let crowd = users("peer", 20);
    let mut everyone = crowd.clone();
    everyone.push("owner".into());
    api.sign_up(&everyone).await;
    let mut ids = Vec::new();
    // 41 small (3 creators, at most 20 creations an hour each) and 4 big groups.
    // One after another: the list's order is the order of creation.
    for n in 0..41 {
        let creator = &crowd[n % 3];
        ids.push(create_group(&api, creator, &["owner".to_owned()], &format!("G{n}")).await);
    }
    let big_members: Vec<String> = crowd[4..20].to_vec();
    for n in 0..4 {
        ids.push(create_group(&api, "owner", &big_members, &format!("Big {n}")).await);
    }
    // Archive every fourth small one and two of the big ones (41 and 43).
    let mut archived: Vec<String> = ids[..40].iter().step_by(4).cloned().collect();
    archived.extend([ids[41].clone(), ids[43].clone()]);
    assert_eq!(archived.len(), 12);
    for id in &archived {
        let (status, body) = api
            .call(
                Method::PATCH,
                &format!("/conversations/{id}/settings"),
                "owner",
                Some(json!({"archived": true})),
            )
            .await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["me"]["archived"], true);
    }
    let shown = pages(&api, "owner", "", 5).await;
    assert_eq!(
        shown.iter().map(Vec::len).collect::<Vec<_>>(),
        [5, 5, 5, 5, 5, 5, 3]
    );
    let hidden = pages(&api, "owner", "archived=true", 5).await;
    assert_eq!(hidden.iter().map(Vec::len).collect::<Vec<_>>(), [5, 5, 2]);
    let (shown, hidden) = (shown.concat(), hidden.concat());
    assert_eq!(
        hidden.iter().collect::<HashSet<_>>(),
        archived.iter().collect::<HashSet<_>>()
    );
    assert!(shown.iter().all(|c| !archived.contains(c)));
    assert_eq!(shown.len() + hidden.len(), 45);
    // Newest first in both: creation order reversed.
    let rank = |id: &String| ids.iter().position(|c| c == id).unwrap();
    assert!(
        shown.windows(2).all(|w| rank(&w[0]) > rank(&w[1])),
        "{shown:?}"
    );
    assert!(
        hidden.windows(2).all(|w| rank(&w[0]) > rank(&w[1])),
        "{hidden:?}"
    );
    let store = &api.gateway.deps.store;
    assert!(entry(store, "owner", &ids[41]).await.big);

    // A message unarchives a small conversation (it is shown again, first); a big one stays.
    send(&api, &crowd[0], &archived[0], "back").await;
    send(&api, "owner", &archived[10], "still").await;
    let first = &pages(&api, "owner", "", 5).await[0];
    assert_eq!(first[0], archived[0]);
    let hidden = pages(&api, "owner", "archived=true", 5).await.concat();
    assert_eq!(hidden.len(), 11);
    assert_eq!(
        hidden[0], archived[10],
        "the big group's send moves it up, archived"
    );
    // Unarchiving puts it back among the shown ones at its own place.
    let (status, _) = api
        .call(
            Method::PATCH,
            &format!("/conversations/{}/settings", archived[10]),
            "owner",
            Some(json!({"archived": false})),
        )
        .await;
    assert_eq!(status, 200);
    let first = &pages(&api, "owner", "", 5).await[0];
    assert_eq!(first[0], archived[10]);
}

async fn unread(api: &LocalApi, user: &str) -> (u64, u64) {
    let (status, body) = api.call(Method::GET, "/me/unread", user, None).await;
    assert_eq!(status, 200, "{body}");
    (
        body["unreadCount"].as_u64().unwrap(),
        body["conversations"].as_u64().unwrap(),
    )
}

async fn settings(api: &LocalApi, user: &str, id: &str, body: Value) {
    let (status, answer) = api
        .call(
            Method::PATCH,
            &format!("/conversations/{id}/settings"),
            user,
            Some(body),
        )
        .await;
    assert_eq!(status, 200, "{answer}");
}

/// `GET /me/unread` over small and big conversations, archived and muted ones left out, each
/// answer right after the write it follows.
#[tokio::test]
async fn the_total_unread_counts_unarchived_unmuted_conversations() {
    let api = LocalApi::start().await;
    let crowd = users("friend", 17);
    let mut everyone = crowd.clone();
    everyone.push("reader".into());
    api.sign_up(&everyone).await;
    let me = vec!["reader".to_owned()];
    assert_eq!(unread(&api, "reader").await, (0, 0));
    let a = create_group(&api, &crowd[0], &me, "A").await;
    let b = create_group(&api, &crowd[1], &me, "B").await;
    let archived = create_group(&api, &crowd[2], &me, "Archived").await;
    let muted = create_group(&api, &crowd[3], &me, "Muted").await;
    let big_members: Vec<String> = crowd[1..].iter().cloned().chain(me.clone()).collect();
    let big = create_group(&api, &crowd[0], &big_members, "Big").await;
    for n in 0..3 {
        send(&api, &crowd[0], &a, &format!("a{n}")).await;
        send(&api, &crowd[5], &big, &format!("big{n}")).await;
    }
    for n in 0..2 {
        send(&api, &crowd[1], &b, &format!("b{n}")).await;
    }
    for n in 0..5 {
        send(&api, &crowd[2], &archived, &format!("x{n}")).await;
        send(&api, &crowd[3], &muted, &format!("m{n}")).await;
    }
    assert_eq!(unread(&api, "reader").await, (3 + 2 + 5 + 5 + 3, 5));
    settings(&api, "reader", &archived, json!({"archived": true})).await;
    settings(&api, "reader", &muted, json!({"muted": true})).await;
    assert_eq!(unread(&api, "reader").await, (3 + 2 + 3, 3));
    let (status, _) = api
        .call(
            Method::POST,
            &format!("/conversations/{b}/read"),
            "reader",
            Some(json!({"seq": 1})),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(unread(&api, "reader").await, (3 + 1 + 3, 3));
    // My own send reads everything up to it.
    send(&api, "reader", &a, "mine").await;
    assert_eq!(unread(&api, "reader").await, (1 + 3, 2));
    send(&api, "reader", &big, "mine").await;
    assert_eq!(unread(&api, "reader").await, (1, 1));
    // Unmuted, the muted one counts again; a message into the archived one unarchives it.
    settings(&api, "reader", &muted, json!({"muted": false})).await;
    send(&api, &crowd[2], &archived, "back").await;
    assert_eq!(unread(&api, "reader").await, (1 + 5 + 6, 3));
    // Others' totals are their own.
    assert_eq!(unread(&api, &crowd[16]).await, (4, 1));
}

/// Every conversation `q` finds for `user` (all pages of `limit`, each full but the last).
async fn search(api: &LocalApi, user: &str, q: &str, limit: usize) -> Vec<String> {
    pages(api, user, &format!("q={}", urlencode(q)), limit)
        .await
        .concat()
}

/// `q` over real HTTP, from the search entries the fan-out keeps: the start of any word of a title
/// or (in conversations of at most 16) of another member's current name, never the caller's own;
/// full pages in activity order; renames of people and titles, members in and out, a group turning
/// big, and archived conversations.
#[tokio::test]
async fn q_finds_current_names_and_titles_in_full_pages() {
    let api = LocalApi::start().await;
    let crowd = users("member", 17);
    let mut everyone = crowd.clone();
    everyone.extend(["reader".to_owned(), "ada".to_owned()]);
    api.sign_up(&everyone).await;
    api.rename("ada", "Ada Lovelace").await;
    api.rename("reader", "Reader Lovelace").await;
    api.rename(&crowd[16], "Zed Outsider").await;
    let reader = vec!["reader".to_owned()];
    let (status, direct) = api
        .call(
            Method::POST,
            "/conversations",
            "ada",
            Some(json!({"participantIds": ["reader"], "kind": "direct"})),
        )
        .await;
    assert_eq!(status, 201, "{direct}");
    let direct = direct["id"].as_str().unwrap().to_owned();
    let trip = create_group(&api, &crowd[0], &reader, "Trip to Rome").await;
    let mut clubs = Vec::new();
    for n in 0..7 {
        clubs.push(create_group(&api, &crowd[1], &reader, &format!("Book club {n}")).await);
    }
    let big_members: Vec<String> = crowd[..16].iter().cloned().chain(reader.clone()).collect();
    let big = create_group(&api, &crowd[0], &big_members, "Launch").await;
    api.fan_out_drained().await;

    assert_eq!(
        search(&api, "reader", "love", 20).await,
        vec![direct.clone()]
    );
    assert_eq!(
        search(&api, "reader", "ADA lovel", 20).await,
        vec![direct.clone()]
    );
    assert!(
        search(&api, "reader", "ove", 20).await.is_empty(),
        "word starts only"
    );
    assert!(
        search(&api, "reader", "reader", 20).await.is_empty(),
        "never my own name"
    );
    assert_eq!(search(&api, "reader", "rome", 20).await, vec![trip.clone()]);
    assert_eq!(
        search(&api, "reader", "launch", 20).await,
        vec![big.clone()]
    );
    // A big group is not found by its members' names; a small one is.
    assert_eq!(
        search(&api, "reader", "name of member002", 20).await,
        Vec::<String>::new()
    );
    assert_eq!(
        search(&api, "reader", "name of member000", 20).await,
        vec![trip.clone()]
    );
    // Seven clubs in pages of 3, newest first.
    let newest_first: Vec<String> = clubs.iter().rev().cloned().collect();
    assert_eq!(search(&api, "reader", "book", 3).await, newest_first);
    let found = pages(&api, "reader", "q=club", 3).await;
    assert_eq!(found.iter().map(Vec::len).collect::<Vec<_>>(), [3, 3, 1]);

    // Renames: a person, a title.
    api.rename("ada", "Grace Hopper").await;
    let (status, _) = api
        .call(
            Method::PATCH,
            &format!("/conversations/{trip}"),
            &crowd[0],
            Some(json!({"title": "Trip to Paris"})),
        )
        .await;
    assert_eq!(status, 200);
    api.fan_out_drained().await;
    assert!(search(&api, "reader", "ada", 20).await.is_empty());
    assert_eq!(
        search(&api, "reader", "hopper", 20).await,
        vec![direct.clone()]
    );
    assert!(search(&api, "reader", "rome", 20).await.is_empty());
    assert_eq!(
        search(&api, "reader", "paris", 20).await,
        vec![trip.clone()]
    );

    // A member in: found by them; out: not found by them; the one who left finds nothing there.
    let (status, _) = api
        .call(
            Method::POST,
            &format!("/conversations/{trip}/members"),
            &crowd[0],
            Some(json!({"userIds": [crowd[16]]})),
        )
        .await;
    assert_eq!(status, 200);
    api.fan_out_drained().await;
    assert_eq!(search(&api, "reader", "zed", 20).await, vec![trip.clone()]);
    assert_eq!(
        search(&api, &crowd[16], "paris", 20).await,
        vec![trip.clone()]
    );
    let (status, _) = api
        .call(
            Method::DELETE,
            &format!("/conversations/{trip}/members/me"),
            &crowd[16],
            None,
        )
        .await;
    assert_eq!(status, 204);
    api.fan_out_drained().await;
    assert!(search(&api, "reader", "zed", 20).await.is_empty());
    assert!(search(&api, &crowd[16], "paris", 20).await.is_empty());
    // Out and in again before the fan-out reads the removal: the removal's upkeep sees them back
    // (each entry once in its batch, or the batch is refused and the shard stops), and the
    // addition's puts them back.
    let add_zed = json!({"userIds": [crowd[16]]});
    let path = format!("/conversations/{trip}/members");
    let (status, _) = api
        .call(Method::POST, &path, &crowd[0], Some(add_zed.clone()))
        .await;
    assert_eq!(status, 200);
    let (status, _) = api
        .call(Method::DELETE, &format!("{path}/me"), &crowd[16], None)
        .await;
    assert_eq!(status, 204);
    let (status, _) = api
        .call(Method::POST, &path, &crowd[0], Some(add_zed))
        .await;
    assert_eq!(status, 200);
    api.fan_out_drained().await;
    assert_eq!(search(&api, "reader", "zed", 20).await, vec![trip.clone()]);
    assert_eq!(
        search(&api, &crowd[16], "paris", 20).await,
        vec![trip.clone()]
    );
    // The upkeep goes on after it: a later change is found.
    let (status, _) = api
        .call(
            Method::PATCH,
            &format!("/conversations/{trip}"),
            &crowd[0],
            Some(json!({"title": "Trip to Oslo"})),
        )
        .await;
    assert_eq!(status, 200);
    api.fan_out_drained().await;
    assert_eq!(search(&api, "reader", "oslo", 20).await, vec![trip.clone()]);

    // Archived conversations are found with archived=true only.
    settings(&api, "reader", &clubs[2], json!({"archived": true})).await;
    let shown = search(&api, "reader", "book", 20).await;
    assert_eq!(shown.len(), 6);
    assert!(!shown.contains(&clubs[2]));
    let hidden = pages(&api, "reader", "q=book&archived=true", 20)
        .await
        .concat();
    assert_eq!(hidden, [clubs[2].clone()]);
}

/// A small group turning big keeps its title in the search and loses its members' names.
#[tokio::test]
async fn a_group_turning_big_is_no_longer_found_by_names() {
    let api = LocalApi::start().await;
    let crowd = users("person", 17);
    let mut everyone = crowd.clone();
    everyone.push("reader".into());
    api.sign_up(&everyone).await;
    let members: Vec<String> = crowd[1..15]
        .iter()
        .cloned()
        .chain(["reader".to_owned()])
        .collect();
    let group = create_group(&api, &crowd[0], &members, "Choir").await;
    api.fan_out_drained().await;
    assert_eq!(
        search(&api, "reader", "name of person003", 20).await,
        vec![group.clone()]
    );
    let (status, _) = api
        .call(
            Method::POST,
            &format!("/conversations/{group}/members"),
            &crowd[0],
            Some(json!({"userIds": [crowd[15], crowd[16]]})),
        )
        .await;
    assert_eq!(status, 200);
    api.fan_out_drained().await;
    assert!(
        search(&api, "reader", "name of person003", 20)
            .await
            .is_empty()
    );
    assert!(
        search(&api, "reader", "name of person016", 20)
            .await
            .is_empty()
    );
    assert_eq!(
        search(&api, "reader", "choir", 20).await,
        vec![group.clone()]
    );
    assert_eq!(search(&api, &crowd[16], "choir", 20).await, [group]);
}
