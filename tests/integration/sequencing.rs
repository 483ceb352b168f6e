//! Contention-free sequencing over real concurrent HTTP requests (docs/decisions/0007): many
//! writers in one conversation at once are all stored, one attempt each, with `seq` and `rev`
//! gap-free; a number whose write never lands becomes a void after 5 s, and only then.

use std::collections::HashSet;

use chat_shared::services::messages::sequence;
use futures::StreamExt;
use reqwest::Method;
use serde_json::{Value, json};

use crate::support::{self, LocalApi, join_all};

/// `n` users, all members of one group (the first its owner); the group's id.
async fn group_of(api: &LocalApi, n: usize) -> (Vec<String>, String) {
    let users: Vec<String> = (0..n).map(|i| format!("w{i:03}")).collect();
    api.sign_up(&users).await;
    let others: Vec<&str> = users[1..].iter().map(String::as_str).collect();
    let id = api.group(&users[0], &others).await;
    (users, id)
}

/// Every message of the conversation by paging history from the newest page back.
async fn whole_history(api: &LocalApi, user: &str, id: &str) -> Vec<Value> {
    let mut all = Vec::new();
    let mut path = format!("/conversations/{id}/messages?limit=100");
    loop {
        let (status, page) = api.call(Method::GET, &path, user, None).await;
        assert_eq!(status, 200, "{page}");
        let mut items = page["items"].as_array().unwrap().clone();
        let oldest = items.first().map(|m| m["seq"].as_u64().unwrap());
        items.append(&mut all);
        all = items;
        match (page["hasMore"].as_bool(), oldest) {
            (Some(true), Some(oldest)) => {
                path = format!("/conversations/{id}/messages?limit=100&beforeSeq={oldest}");
            }
            _ => return all,
        }
    }
}

/// Every change since `since` by paging `/changes`; the items and the `rev` caught up to.
async fn all_changes(api: &LocalApi, user: &str, id: &str, since: u64) -> (Vec<Value>, u64) {
    let (mut items, mut since) = (Vec::new(), since);
    loop {
        let (status, page) = api
            .call(
                Method::GET,
                &format!("/conversations/{id}/changes?sinceRev={since}&limit=100"),
                user,
                None,
            )
            .await;
        assert_eq!(status, 200, "{page}");
        items.extend(page["items"].as_array().unwrap().iter().cloned());
        since = page["rev"].as_u64().unwrap();
        if page["hasMore"] != true {
            return (items, since);
        }
    }
}

fn numbers(items: &[Value], field: &str) -> Vec<u64> {
    let mut out: Vec<u64> = items.iter().map(|m| m[field].as_u64().unwrap()).collect();
    out.sort_unstable();
    out
}

#[tokio::test]
async fn fifty_writers_sending_at_once_are_all_stored_on_their_first_attempt() {
    let api = LocalApi::start().await;
    // Ten members, five messages each, all at once; one attempt each (no client retry). (Larger
    // groups are in the hot-conversation benchmark: until the fan-out leaves the sender's path,
    // each send queries every member, which DynamoDB Local serves slowly on two cores.)
    let (users, id) = group_of(&api, 10).await;
    let sends = users.iter().flat_map(|u| (0..5).map(move |n| (u, n))).map(|(u, n)| {
        let (api, id) = (&api, &id);
        async move {
            api.call(
                Method::POST,
                &format!("/conversations/{id}/messages"),
                u,
                Some(json!({"body": format!("{u} says {n}"), "clientMessageId": format!("{u}-{n}")})),
            )
            .await
        }
    });
    let answers = join_all(sends).await;
    let refused: Vec<&(u16, Value)> = answers.iter().filter(|(s, _)| *s != 201).collect();
    assert!(refused.is_empty(), "refused: {refused:?}");
    let sent: Vec<Value> = answers.into_iter().map(|(_, m)| m).collect();
    assert_eq!(numbers(&sent, "seq"), (1..=50).collect::<Vec<_>>());
    assert_eq!(numbers(&sent, "rev"), (1..=50).collect::<Vec<_>>());

    let history = whole_history(&api, &users[3], &id).await;
    assert_eq!(numbers(&history, "seq"), (1..=50).collect::<Vec<_>>());
    assert!(history.iter().all(|m| m["kind"] == "text"));
    let (changes, rev) = all_changes(&api, &users[3], &id, 0).await;
    assert_eq!((changes.len(), rev), (50, 50));
    let (_, conversation) = api
        .call(
            Method::GET,
            &format!("/conversations/{id}"),
            &users[3],
            None,
        )
        .await;
    assert_eq!(
        (&conversation["lastSeq"], &conversation["rev"]),
        (&json!(50), &json!(50))
    );
    // The last message is the one with the highest seq, whatever order they landed in.
    assert_eq!(conversation["lastMessage"]["seq"], 50);
    // Every sender has read up to at least their own newest message.
    assert!(conversation["me"]["lastReadSeq"].as_u64().unwrap() >= 1);
}

#[tokio::test]
async fn thirty_reactions_and_an_edit_on_one_message_at_once_all_land() {
    let api = LocalApi::start().await;
    let (users, id) = group_of(&api, 30).await;
    let (status, _) = api
        .call(
            Method::POST,
            &format!("/conversations/{id}/messages"),
            &users[0],
            Some(json!({"body": "goal!", "clientMessageId": "g"})),
        )
        .await;
    assert_eq!(status, 201);
    let reactions = users.iter().map(|u| {
        let (api, id) = (&api, &id);
        async move {
            api.call(
                Method::PUT,
                &format!("/conversations/{id}/messages/1/reactions/%F0%9F%91%8D"),
                u,
                None,
            )
            .await
        }
    });
    let edit = async {
        api.call(
            Method::PATCH,
            &format!("/conversations/{id}/messages/1"),
            &users[0],
            Some(json!({"body": "GOAL!"})),
        )
        .await
    };
    let (answers, edited) = tokio::join!(join_all(reactions), edit);
    let refused: Vec<&(u16, Value)> = answers.iter().filter(|(s, _)| *s != 200).collect();
    assert!(refused.is_empty(), "refused: {refused:?}");
    assert_eq!(edited.0, 200, "{}", edited.1);

    let (_, page) = api
        .call(
            Method::GET,
            &format!("/conversations/{id}/messages"),
            &users[1],
            None,
        )
        .await;
    let message = &page["items"][0];
    assert_eq!(message["body"], "GOAL!", "the edit is not overwritten");
    let reacted: HashSet<&str> = message["reactions"]["👍"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u.as_str().unwrap())
        .collect();
    assert_eq!(reacted.len(), 30, "no reaction overwrote another");
    // 1 send, 30 reactions, 1 edit: rev 32, every one accounted for.
    let (changes, rev) = all_changes(&api, &users[1], &id, 0).await;
    assert_eq!((changes.len(), rev), (1, 32));
    assert_eq!(changes[0]["rev"], message["rev"]);
}

/// A writer that took numbers and died (a killed sandbox) leaves a gap: readers stop before it
/// while it may still land, and fill it with a void once it is 5 s overdue.
#[tokio::test]
async fn a_number_whose_write_never_lands_is_a_void_after_five_seconds() {
    let deps = support::fresh_deps().await;
    let api = LocalApi::start_with(deps.clone()).await;
    api.sign_up(&["ada".into(), "bob".into()]).await;
    let id = api.group("ada", &["bob"]).await;
    let send = |body: &'static str, cmid: &'static str| {
        let (api, id) = (&api, &id);
        async move {
            let (status, m) = api
                .call(
                    Method::POST,
                    &format!("/conversations/{id}/messages"),
                    "ada",
                    Some(json!({"body": body, "clientMessageId": cmid})),
                )
                .await;
            assert_eq!(status, 201, "{m}");
            m
        }
    };
    send("one", "c1").await;
    let conversation: chat_shared::domain::ConversationId = id.parse().unwrap();
    // The dead writer: seq 2 and rev 2 taken, never written.
    let taken = sequence::issue(
        &deps.store,
        &conversation,
        sequence::Issue::Message,
        deps.store.now(),
    )
    .await
    .unwrap();
    assert_eq!((taken.seq, taken.rev), (Some(2), 2));
    send("three", "c3").await;

    // At once: history and /changes stop below the gap, so nobody goes on past it.
    let (_, page) = api
        .call(
            Method::GET,
            &format!("/conversations/{id}/messages"),
            "bob",
            None,
        )
        .await;
    assert_eq!(numbers(page["items"].as_array().unwrap(), "seq"), [1]);
    let (_, after) = api
        .call(
            Method::GET,
            &format!("/conversations/{id}/messages?afterSeq=1"),
            "bob",
            None,
        )
        .await;
    assert_eq!(after["items"], json!([]));
    let (changes, rev) = all_changes(&api, "bob", &id, 0).await;
    assert_eq!((numbers(&changes, "seq"), rev), (vec![1], 1));

    // Five seconds later (the application clock moved): the first reader fills the void.
    // Five seconds later: a gateway whose application clock is 6 s ahead, over the same table,
    // each function under its own role. Its first history read fills the void.
    let later = LocalApi::start_beside(
        chat_shared::services::deps::RouteDeps {
            store: deps.store.at_clock(support::clock().later_by(6)),
            ..deps.clone()
        },
        support::local_stack(),
    )
    .await;
    let kinds = |page: &Value| -> Vec<(u64, String)> {
        page["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| {
                (
                    m["seq"].as_u64().unwrap(),
                    m["kind"].as_str().unwrap().to_owned(),
                )
            })
            .collect()
    };
    // A page of 2 read past the gap (it finds 1 and 3) fills it, and still holds 2: the newest.
    let (status, page) = later
        .call(
            Method::GET,
            &format!("/conversations/{id}/messages?limit=2"),
            "bob",
            None,
        )
        .await;
    assert_eq!(status, 200, "{page}");
    assert_eq!(
        kinds(&page),
        [(2, "void".to_owned()), (3, "text".to_owned())]
    );
    assert_eq!(page["hasMore"], true);
    let (status, page) = later
        .call(
            Method::GET,
            &format!("/conversations/{id}/messages"),
            "bob",
            None,
        )
        .await;
    assert_eq!(status, 200, "{page}");
    assert_eq!(
        kinds(&page),
        [
            (1, "text".to_owned()),
            (2, "void".to_owned()),
            (3, "text".to_owned())
        ]
    );
    // The dead writer's rev 2 is voided in the ledger by the first /changes read after 5 s.
    let (_, rev) = all_changes(&later, "bob", &id, 0).await;
    assert_eq!(rev, 4);
    // Over HTTP now (real time): the void is there for everyone, and /changes goes past it.
    let history = whole_history(&api, "bob", &id).await;
    assert_eq!(history[1]["kind"], "void");
    assert_eq!(history[1]["senderId"], Value::Null);
    let (changes, rev) = all_changes(&api, "bob", &id, 0).await;
    assert_eq!(numbers(&changes, "seq"), [1, 2, 3]);
    // The void took a revision of its own (4); rev 2 was voided in the ledger.
    assert_eq!(rev, 4);
    // Never unread, never the last message.
    let (_, conversation) = api
        .call(Method::GET, &format!("/conversations/{id}"), "bob", None)
        .await;
    assert_eq!(conversation["me"]["unreadCount"], 2);
    assert_eq!(conversation["lastMessage"]["seq"], 3);
    // Replying to it, editing it or reacting to it is 409.
    for (method, path, body) in [
        (
            Method::POST,
            format!("/conversations/{id}/messages"),
            Some(json!({"body": "re", "clientMessageId": "r", "replyToSeq": 2})),
        ),
        (
            Method::PATCH,
            format!("/conversations/{id}/messages/2"),
            Some(json!({"body": "x"})),
        ),
        (
            Method::PUT,
            format!("/conversations/{id}/messages/2/reactions/%F0%9F%91%8D"),
            None,
        ),
    ] {
        let (status, answer) = api.call(method, &path, "ada", body).await;
        assert_eq!(
            (status, &answer["error"]["code"]),
            (409, &json!("conflict")),
            "{path}"
        );
    }
    // The refused reply gave its own numbers back: a void, not a gap.
    let history = whole_history(&api, "bob", &id).await;
    assert_eq!(numbers(&history, "seq"), [1, 2, 3, 4]);
    assert_eq!(history[3]["kind"], "void");

    // A hundred revisions on, a /changes read moves `settledRev` up, so that later reads of the
    // ledger start there.
    let sends = (0..100).map(|n| {
        let (api, id) = (&api, &id);
        let who = if n % 2 == 0 { "ada" } else { "bob" };
        async move {
            api.call(
                Method::POST,
                &format!("/conversations/{id}/messages"),
                who,
                Some(json!({"body": format!("m{n}"), "clientMessageId": format!("m{n}")})),
            )
            .await
            .0
        }
    });
    // Ten at a time: what matters here is how many, not contention (the tests above measure it).
    let statuses: Vec<u16> = futures::stream::iter(sends)
        .buffer_unordered(10)
        .collect()
        .await;
    assert!(statuses.iter().all(|s| *s == 201), "{statuses:?}");
    let (_, rev) = all_changes(&api, "bob", &id, 0).await;
    assert_eq!(rev, 105);
    let meta: chat_shared::services::conversations::MetaItem = deps
        .store
        .get(
            &chat_shared::adapters::store::keys::conversation_meta(&id.parse().unwrap()),
            chat_shared::adapters::store::Consistency::Strong,
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(meta.settled_rev(), 105);
}
