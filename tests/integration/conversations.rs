//! Conversations through the local gateway over real HTTP, against DynamoDB Local.

use std::collections::HashSet;

use reqwest::Method;
use serde_json::{Value, json};

use crate::support::{LocalApi, join_all, urlencode};

fn users(prefix: &str, n: usize) -> Vec<String> {
    (0..n).map(|i| format!("{prefix}{i:03}")).collect()
}

#[tokio::test]
async fn concurrent_creates_of_a_pair_or_a_self_make_one_conversation() {
    let api = LocalApi::start().await;
    api.sign_up(&["ada".into(), "bob".into()]).await;

    let creates = (0..20).map(|i| {
        // Both sides of the pair race, with the ids in either order.
        let (me, other) = if i % 2 == 0 {
            ("ada", "bob")
        } else {
            ("bob", "ada")
        };
        api.call(
            Method::POST,
            "/conversations",
            me,
            Some(json!({"participantIds": [other, me]})),
        )
    });
    let answers = join_all(creates).await;
    let created = answers.iter().filter(|(s, _)| *s == 201).count();
    let found = answers.iter().filter(|(s, _)| *s == 200).count();
    assert_eq!((created, found), (1, 19), "{answers:?}");
    let ids: HashSet<&str> = answers
        .iter()
        .map(|(_, b)| b["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids.len(), 1);
    let (_, direct) = &answers[0];
    assert_eq!(direct["kind"], "direct");
    assert_eq!(direct["memberCount"], 2);

    let selfs = join_all((0..20).map(|_| {
        api.call(
            Method::POST,
            "/conversations",
            "ada",
            Some(json!({"participantIds": []})),
        )
    }))
    .await;
    assert_eq!(
        selfs.iter().filter(|(s, _)| *s == 201).count(),
        1,
        "{selfs:?}"
    );
    assert!(selfs.iter().all(|(s, _)| *s == 201 || *s == 200));
    let self_ids: HashSet<&str> = selfs
        .iter()
        .map(|(_, b)| b["id"].as_str().unwrap())
        .collect();
    assert_eq!(self_ids.len(), 1);
    assert_eq!(selfs[0].1["kind"], "self");
    assert_eq!(selfs[0].1["memberCount"], 1);

    // Ada's list holds the direct and the self conversation, once each.
    let (status, page) = api.call(Method::GET, "/conversations", "ada", None).await;
    assert_eq!(status, 200);
    assert_eq!(page["items"].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn a_retried_group_create_gives_one_group_and_a_group_of_two_sits_beside_the_direct() {
    let api = LocalApi::start().await;
    api.sign_up(&["ada".into(), "bob".into(), "cy".into()])
        .await;
    let body =
        json!({"participantIds": ["bob", "cy"], "title": "Trip", "clientRequestId": "req-1"});
    let tries = join_all(
        (0..5).map(|_| api.call(Method::POST, "/conversations", "ada", Some(body.clone()))),
    )
    .await;
    let ids: HashSet<&str> = tries
        .iter()
        .map(|(_, b)| b["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids.len(), 1, "{tries:?}");
    assert_eq!(tries.iter().filter(|(s, _)| *s == 201).count(), 1);
    let (status, again) = api
        .call(Method::POST, "/conversations", "ada", Some(body))
        .await;
    assert_eq!(
        (status, again["id"].as_str()),
        (200, ids.iter().next().copied())
    );
    assert_eq!(again["title"], "Trip");
    let owner: Vec<&Value> = again["members"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["role"] == "owner")
        .collect();
    assert_eq!(owner.len(), 1);
    assert_eq!(owner[0]["userId"], "ada");

    // Without a request id, every group is new.
    let (s1, g1) = api
        .call(
            Method::POST,
            "/conversations",
            "ada",
            Some(json!({"participantIds": ["bob", "cy"]})),
        )
        .await;
    let (s2, g2) = api
        .call(
            Method::POST,
            "/conversations",
            "ada",
            Some(json!({"participantIds": ["bob", "cy"]})),
        )
        .await;
    assert_eq!((s1, s2), (201, 201));
    assert_ne!(g1["id"], g2["id"]);

    let (_, direct) = api
        .call(
            Method::POST,
            "/conversations",
            "ada",
            Some(json!({"participantIds": ["bob"]})),
        )
        .await;
    let (status, pair_group) = api
        .call(
            Method::POST,
            "/conversations",
            "ada",
            Some(json!({"participantIds": ["bob"], "kind": "group"})),
        )
        .await;
    assert_eq!(status, 201);
    assert_eq!(pair_group["kind"], "group");
    assert_eq!(pair_group["memberCount"], 2);
    assert_ne!(pair_group["id"], direct["id"]);
    assert_eq!(direct["kind"], "direct");
}

/// Around the size where a group stops fitting one transaction (META and, per member, a
/// membership and an inbox entry: 100 writes at most), every group is made whole. 50 members
/// once made 101 writes and a 500.
#[tokio::test]
async fn groups_at_the_edge_of_one_transaction_are_made_whole() {
    let api = LocalApi::start().await;
    let people = users("edge", 51);
    api.sign_up(&people).await;
    for size in [49, 50, 51] {
        let others: Vec<&String> = people[1..size].iter().collect();
        let (status, group) = api
            .call(
                Method::POST,
                "/conversations",
                &people[0],
                Some(json!({"participantIds": others, "kind": "group"})),
            )
            .await;
        assert_eq!(status, 201, "{size}: {group}");
        assert_eq!(group["memberCount"], size);
        let id = group["id"].as_str().unwrap();
        let (status, last) = api
            .call(
                Method::GET,
                &format!("/conversations/{id}"),
                &people[size - 1],
                None,
            )
            .await;
        assert_eq!(
            (status, &last["memberCount"]),
            (200, &json!(size)),
            "{last}"
        );
    }
}

#[tokio::test]
async fn a_group_holds_1024_members_and_refuses_the_1025th() {
    let api = LocalApi::start().await;
    let people = users("m", 1024);
    api.sign_up(&people).await;
    let others: Vec<&String> = people[1..].iter().collect();
    let (status, group) = api
        .call(
            Method::POST,
            "/conversations",
            &people[0],
            Some(json!({"participantIds": others, "title": "Everyone"})),
        )
        .await;
    assert_eq!(status, 201, "{group}");
    assert_eq!(group["memberCount"], 1024);
    assert_eq!(group["members"].as_array().unwrap().len(), 1024);
    let id = group["id"].as_str().unwrap().to_owned();

    // Every member sees it, with the list's 10 members at most.
    let (_, page) = api
        .call(Method::GET, "/conversations", &people[1023], None)
        .await;
    assert_eq!(page["items"][0]["id"], id.as_str());
    assert_eq!(page["items"][0]["members"].as_array().unwrap().len(), 10);

    api.sign_up(&["late".into()]).await;
    let (status, refused) = api
        .call(
            Method::POST,
            &format!("/conversations/{id}/members"),
            &people[7],
            Some(json!({"userIds": ["late"]})),
        )
        .await;
    assert_eq!(
        (status, &refused["error"]["code"]),
        (409, &json!("conflict"))
    );
    let (_, after) = api
        .call(
            Method::GET,
            &format!("/conversations/{id}"),
            &people[0],
            None,
        )
        .await;
    assert_eq!(after["memberCount"], 1024);
    let (status, _) = api
        .call(Method::GET, &format!("/conversations/{id}"), "late", None)
        .await;
    assert_eq!(status, 404);

    // With one member gone there is room again.
    let (status, _) = api
        .call(
            Method::DELETE,
            &format!("/conversations/{id}/members/me"),
            &people[9],
            None,
        )
        .await;
    assert_eq!(status, 204);
    let (status, grown) = api
        .call(
            Method::POST,
            &format!("/conversations/{id}/members"),
            &people[7],
            Some(json!({"userIds": ["late"]})),
        )
        .await;
    assert_eq!((status, &grown["memberCount"]), (200, &json!(1024)));
}

#[tokio::test]
async fn a_user_with_250_conversations_pages_through_them_all() {
    let api = LocalApi::start().await;
    // 13 creators make at most 20 each: the creation limit is not in the way.
    let creators = users("creator", 13);
    let mut everyone = creators.clone();
    everyone.push("reader".into());
    api.sign_up(&everyone).await;
    // 250 groups, named so that `q` can find some.
    for round in 0..25 {
        let calls = (0..10).map(|k| {
            let n = round * 10 + k;
            let creator = &creators[n % 13];
            let title = if n % 50 == 7 {
                format!("Needle {n}")
            } else {
                format!("Group {n}")
            };
            api.call(
                Method::POST,
                "/conversations",
                creator,
                Some(json!({"participantIds": ["reader"], "title": title, "kind": "group"})),
            )
        });
        for (status, body) in join_all(calls).await {
            assert_eq!(status, 201, "{body}");
        }
    }

    let mut seen: Vec<(String, String)> = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let path = match &cursor {
            Some(c) => format!("/conversations?limit=37&cursor={}", urlencode(c)),
            None => "/conversations?limit=37".to_owned(),
        };
        let (status, page) = api.call(Method::GET, &path, "reader", None).await;
        assert_eq!(status, 200, "{page}");
        pages += 1;
        for item in page["items"].as_array().unwrap() {
            seen.push((
                item["lastActivityAt"].as_str().unwrap().to_owned(),
                item["id"].as_str().unwrap().to_owned(),
            ));
            assert_eq!(item["me"]["unreadCount"], 0);
        }
        match page["nextCursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => break,
        }
        assert!(pages < 20, "paging does not end");
    }
    assert_eq!(seen.len(), 250);
    let unique: HashSet<&String> = seen.iter().map(|(_, id)| id).collect();
    assert_eq!(unique.len(), 250, "no duplicates");
    assert!(seen.windows(2).all(|w| w[0] >= w[1]), "most recent first");

    // q finds by the start of a word of the title, case-insensitively, or of a member's name,
    // from the search entries the fan-out keeps (so after it has read the creations).
    api.fan_out_drained().await;
    let found = all_pages(&api, "reader", "q=NEEDLE&limit=100").await;
    let titles: Vec<&str> = found.iter().map(|c| c["title"].as_str().unwrap()).collect();
    assert_eq!(titles.len(), 5, "{titles:?}");
    assert!(titles.iter().all(|t| t.starts_with("Needle")));
    let by_name = all_pages(&api, "reader", "q=name%20of%20creator003&limit=100").await;
    assert_eq!(by_name.len(), 19); // n % 13 == 3 for n < 250
    assert!(by_name.iter().all(|c| c["createdBy"] == "creator003"));

    // archived: out of the default list, alone in archived=true.
    let archived_id = seen[3].1.clone();
    let (status, settings) = api
        .call(
            Method::PATCH,
            &format!("/conversations/{archived_id}/settings"),
            "reader",
            Some(json!({"archived": true, "muted": true})),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(settings["me"]["archived"], true);
    assert_eq!(settings["me"]["muted"], true);
    let (_, archived) = api
        .call(Method::GET, "/conversations?archived=true", "reader", None)
        .await;
    let ids: Vec<&str> = archived["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [archived_id.as_str()]);
    let (_, first) = api
        .call(Method::GET, "/conversations?limit=5", "reader", None)
        .await;
    assert!(
        first["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|c| c["id"] != archived_id.as_str())
    );

    // Cursors: another user's, an edited one, one for other filters.
    let (_, page) = api
        .call(Method::GET, "/conversations?limit=2", "reader", None)
        .await;
    let cursor = page["nextCursor"].as_str().unwrap().to_owned();
    let (status, body) = api
        .call(
            Method::GET,
            &format!("/conversations?cursor={}", urlencode(&cursor)),
            "creator000",
            None,
        )
        .await;
    assert_eq!(
        (status, &body["error"]["code"]),
        (400, &json!("invalid_cursor"))
    );
    let mut edited = cursor.clone().into_bytes();
    edited[5] = if edited[5] == b'A' { b'B' } else { b'A' };
    let edited = String::from_utf8(edited).unwrap();
    let (status, body) = api
        .call(
            Method::GET,
            &format!("/conversations?cursor={}", urlencode(&edited)),
            "reader",
            None,
        )
        .await;
    assert_eq!(
        (status, &body["error"]["code"]),
        (400, &json!("invalid_cursor"))
    );
    let (status, _) = api
        .call(
            Method::GET,
            &format!("/conversations?archived=true&cursor={}", urlencode(&cursor)),
            "reader",
            None,
        )
        .await;
    assert_eq!(status, 400);
    for bad in ["0", "101", "-1", "x"] {
        let (status, body) = api
            .call(
                Method::GET,
                &format!("/conversations?limit={bad}"),
                "reader",
                None,
            )
            .await;
        assert_eq!(
            (status, &body["error"]["field"]),
            (400, &json!("limit")),
            "{bad}"
        );
    }
}

/// Every item of a list, following `nextCursor` to the end.
async fn all_pages(api: &LocalApi, user: &str, query: &str) -> Vec<Value> {
    let mut items = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..50 {
        let path = match &cursor {
            Some(c) => format!("/conversations?{query}&cursor={}", urlencode(c)),
            None => format!("/conversations?{query}"),
        };
        let (status, page) = api.call(Method::GET, &path, user, None).await;
        assert_eq!(status, 200, "{page}");
        items.extend(page["items"].as_array().unwrap().iter().cloned());
        match page["nextCursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => return items,
        }
    }
    panic!("paging did not end");
}

#[tokio::test]
async fn non_members_get_404_members_403_and_the_owner_hands_over_on_leaving() {
    let api = LocalApi::start().await;
    api.sign_up(&["ada".into(), "bob".into(), "cy".into(), "eve".into()])
        .await;
    let (_, group) = api
        .call(
            Method::POST,
            "/conversations",
            "ada",
            Some(json!({"participantIds": ["bob"]  , "kind": "group", "title": "T"})),
        )
        .await;
    let id = group["id"].as_str().unwrap().to_owned();
    // cy joins later than bob.
    let (status, _) = api
        .call(
            Method::POST,
            &format!("/conversations/{id}/members"),
            "bob",
            Some(json!({"userIds": ["cy"]})),
        )
        .await;
    assert_eq!(status, 200);

    let c = format!("/conversations/{id}");
    let routes: Vec<(Method, String, Option<Value>)> = vec![
        (Method::GET, c.clone(), None),
        (Method::PATCH, c.clone(), Some(json!({"title": "Mine now"}))),
        (
            Method::PATCH,
            format!("{c}/settings"),
            Some(json!({"muted": true})),
        ),
        (
            Method::POST,
            format!("{c}/members"),
            Some(json!({"userIds": ["eve"]})),
        ),
        (Method::DELETE, format!("{c}/members/me"), None),
        (Method::DELETE, format!("{c}/members/bob"), None),
    ];
    for (method, path, body) in &routes {
        let (status, answer) = api.call(method.clone(), path, "eve", body.clone()).await;
        assert_eq!(
            (status, &answer["error"]["code"]),
            (404, &json!("not_found")),
            "{method} {path}"
        );
    }
    // A conversation that does not exist answers the same.
    let (status, _) = api
        .call(
            Method::GET,
            "/conversations/01JDQ7Z8K3M4N5P6Q7R8S9T0VW",
            "ada",
            None,
        )
        .await;
    assert_eq!(status, 404);

    let (status, answer) = api
        .call(Method::DELETE, &format!("{c}/members/cy"), "bob", None)
        .await;
    assert_eq!(
        (status, &answer["error"]["code"]),
        (403, &json!("forbidden"))
    );

    let (status, _) = api
        .call(Method::DELETE, &format!("{c}/members/me"), "ada", None)
        .await;
    assert_eq!(status, 204);
    let (_, after) = api.call(Method::GET, &c, "bob", None).await;
    let roles: Vec<(&str, &str)> = after["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| (m["userId"].as_str().unwrap(), m["role"].as_str().unwrap()))
        .collect();
    assert_eq!(after["memberCount"], 2);
    assert!(roles.contains(&("bob", "owner")), "{roles:?}");
    assert!(roles.contains(&("cy", "member")), "{roles:?}");
    let (status, _) = api.call(Method::GET, &c, "ada", None).await;
    assert_eq!(status, 404, "a member who left is a non-member");

    // The new owner may remove others; the title may be changed by any member.
    let (status, renamed) = api
        .call(Method::PATCH, &c, "cy", Some(json!({"title": "Renamed"})))
        .await;
    assert_eq!((status, &renamed["title"]), (200, &json!("Renamed")));
    let (status, _) = api
        .call(Method::DELETE, &format!("{c}/members/cy"), "bob", None)
        .await;
    assert_eq!(status, 204);
    let (_, page) = api.call(Method::GET, "/conversations", "cy", None).await;
    assert!(
        page["items"].as_array().unwrap().is_empty(),
        "a removed member's list no longer has it"
    );

    // Direct and self conversations: no title, no member changes.
    let (_, direct) = api
        .call(
            Method::POST,
            "/conversations",
            "ada",
            Some(json!({"participantIds": ["bob"]})),
        )
        .await;
    let d = format!("/conversations/{}", direct["id"].as_str().unwrap());
    for (method, path, body) in [
        (Method::PATCH, d.clone(), Some(json!({"title": "x"}))),
        (
            Method::POST,
            format!("{d}/members"),
            Some(json!({"userIds": ["cy"]})),
        ),
        (Method::DELETE, format!("{d}/members/me"), None),
    ] {
        let (status, answer) = api.call(method.clone(), &path, "ada", body).await;
        assert_eq!(
            (status, &answer["error"]["code"]),
            (409, &json!("conflict")),
            "{method} {path}"
        );
    }
}

#[tokio::test]
async fn bad_input_gets_the_contract_error_and_writes_nothing() {
    let api = LocalApi::start().await;
    api.sign_up(&["ada".into(), "bob".into()]).await;
    let many: Vec<String> = users("p", 1024);
    let cases: Vec<(Value, u16, &str, Option<&str>)> = vec![
        (
            json!({"participantIds": ["bob"], "extra": 1}),
            400,
            "validation_failed",
            Some("extra"),
        ),
        (
            json!({"participantIds": "bob"}),
            400,
            "validation_failed",
            Some("participantIds"),
        ),
        (json!({}), 400, "validation_failed", Some("participantIds")),
        (
            json!({"participantIds": ["bob", 7]}),
            400,
            "validation_failed",
            Some("participantIds[1]"),
        ),
        (
            json!({"participantIds": ["bob"], "kind": "group", "title": ""}),
            400,
            "validation_failed",
            Some("title"),
        ),
        (
            json!({"participantIds": ["bob"], "kind": "group", "title": "x".repeat(101)}),
            400,
            "validation_failed",
            Some("title"),
        ),
        (
            json!({"participantIds": ["bob"], "kind": "channel"}),
            400,
            "validation_failed",
            Some("kind"),
        ),
        (
            json!({"participantIds": ["bob"], "title": "Direct with a title"}),
            409,
            "conflict",
            None,
        ),
        (
            json!({"participantIds": many}),
            400,
            "validation_failed",
            Some("participantIds"),
        ),
        (
            json!({"participantIds": ["bob", "ghost", "phantom"]}),
            422,
            "unknown_users",
            None,
        ),
        (
            json!({"participantIds": ["bob", "bob2"], "clientRequestId": "bad id!"}),
            400,
            "validation_failed",
            Some("clientRequestId"),
        ),
    ];
    for (body, status, code, field) in cases {
        let (got, answer) = api
            .call(Method::POST, "/conversations", "ada", Some(body.clone()))
            .await;
        assert_eq!(
            (got, answer["error"]["code"].as_str()),
            (status, Some(code)),
            "{body}"
        );
        if let Some(field) = field {
            assert_eq!(answer["error"]["field"], field, "{body}");
        }
        if code == "unknown_users" {
            assert_eq!(
                answer["error"]["details"]["userIds"],
                json!(["ghost", "phantom"])
            );
        }
    }
    let token = api.token("ada", None);
    let malformed = api
        .request(Method::POST, "/conversations", &token)
        .body("{\"participantIds\": [")
        .send()
        .await
        .unwrap();
    let (status, answer) = crate::support::status_json(malformed).await;
    assert_eq!(
        (status, &answer["error"]["code"]),
        (400, &json!("invalid_json"))
    );
    let huge = json!({"participantIds": ["bob"], "title": "x".repeat(100 * 1024)});
    let (status, answer) = api
        .call(Method::POST, "/conversations", "ada", Some(huge))
        .await;
    assert_eq!(
        (status, &answer["error"]["code"]),
        (413, &json!("payload_too_large"))
    );

    // Nothing was written: neither user has a conversation.
    for user in ["ada", "bob"] {
        let (_, page) = api.call(Method::GET, "/conversations", user, None).await;
        assert_eq!(page["items"], json!([]), "{user}");
    }

    // Bad input on the other routes.
    let (_, group) = api
        .call(
            Method::POST,
            "/conversations",
            "ada",
            Some(json!({"participantIds": ["bob"], "kind": "group", "title": "G"})),
        )
        .await;
    let c = format!("/conversations/{}", group["id"].as_str().unwrap());
    for (method, path, body, field) in [
        (Method::PATCH, c.clone(), json!({"title": ""}), "title"),
        (
            Method::PATCH,
            c.clone(),
            json!({"title": "x".repeat(101)}),
            "title",
        ),
        (
            Method::PATCH,
            c.clone(),
            json!({"title": "ok", "kind": "direct"}),
            "kind",
        ),
        (
            Method::PATCH,
            format!("{c}/settings"),
            json!({"muted": "yes"}),
            "muted",
        ),
        (
            Method::PATCH,
            format!("{c}/settings"),
            json!({"archived": null}),
            "archived",
        ),
        (
            Method::POST,
            format!("{c}/members"),
            json!({"userIds": []}),
            "userIds",
        ),
        (
            Method::POST,
            format!("{c}/members"),
            json!({"users": ["bob"]}),
            "users",
        ),
    ] {
        let (status, answer) = api
            .call(method.clone(), &path, "ada", Some(body.clone()))
            .await;
        assert_eq!(
            (status, &answer["error"]["field"]),
            (400, &json!(field)),
            "{method} {path} {body}"
        );
    }
    // A body is an object: serde alone would read `[]` as settings with no field set.
    for body in [json!([]), json!([true, true]), json!(null)] {
        let (status, answer) = api
            .call(
                Method::PATCH,
                &format!("{c}/settings"),
                "ada",
                Some(body.clone()),
            )
            .await;
        assert_eq!(
            (status, &answer["error"]["code"]),
            (400, &json!("validation_failed")),
            "{body}"
        );
    }
    let (status, answer) = api
        .call(
            Method::POST,
            &format!("{c}/members"),
            "ada",
            Some(json!({"userIds": ["ghost"]})),
        )
        .await;
    assert_eq!(
        (status, &answer["error"]["details"]["userIds"]),
        (422, &json!(["ghost"]))
    );
    let (_, unchanged) = api.call(Method::GET, &c, "ada", None).await;
    assert_eq!(
        (
            unchanged["title"].as_str(),
            unchanged["memberCount"].as_u64()
        ),
        (Some("G"), Some(2))
    );
    assert_eq!(unchanged["me"]["muted"], false);
}

/// The cursor keys live in the table and rotate without a deployment (`cursor_keys::rotate`): a
/// cursor issued before a rotation still opens after it, one issued after it opens too, and the
/// first is refused once a second rotation has dropped its key. The gateway here reads the keys
/// again on every request (refresh period zero) instead of every 5 minutes.
#[tokio::test]
async fn cursors_outlive_one_rotation_of_the_keys_but_not_two() {
    let deps = crate::support::fresh_deps().await;
    let deps = chat_shared::services::deps::RouteDeps {
        cursor_keys: chat_shared::adapters::cursor_keys::CursorKeys::stored_refreshing_after(
            std::time::Duration::ZERO,
        ),
        ..deps
    };
    let api = LocalApi::start_with(deps).await;
    api.sign_up(&["rot".into(), "other".into()]).await;
    for _ in 0..3 {
        api.group("rot", &["other"]).await;
    }
    let cursor = |page: &Value| page["nextCursor"].as_str().unwrap().to_owned();
    let next = |cursor: String| {
        let api = &api;
        async move {
            let path = format!("/conversations?limit=2&cursor={}", urlencode(&cursor));
            let (status, body) = api.call(Method::GET, &path, "rot", None).await;
            (status, body["error"]["code"].clone())
        }
    };
    let (_, page) = api
        .call(Method::GET, "/conversations?limit=2", "rot", None)
        .await;
    let before = cursor(&page);
    let store = &api.gateway.deps.store;
    chat_shared::adapters::cursor_keys::rotate(store)
        .await
        .unwrap();
    assert_eq!(
        next(before.clone()).await,
        (200, Value::Null),
        "one rotation"
    );
    let (_, page) = api
        .call(Method::GET, "/conversations?limit=2", "rot", None)
        .await;
    let after = cursor(&page);
    assert_ne!(after, before, "sealed with the new key");
    chat_shared::adapters::cursor_keys::rotate(store)
        .await
        .unwrap();
    assert_eq!(
        next(before).await,
        (400, json!("invalid_cursor")),
        "two rotations"
    );
    assert_eq!(next(after).await, (200, Value::Null));
}
