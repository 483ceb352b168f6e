//! Edits, unsends, reactions and catch-up with `/changes`, over real HTTP.

use std::collections::BTreeMap;

use reqwest::Method;
use serde_json::{Value, json};

use crate::support::LocalApi;

async fn setup(api: &LocalApi) -> String {
    api.sign_up(&["ada".into(), "bob".into(), "cy".into(), "eve".into()])
        .await;
    let (_, group) = api
        .call(
            Method::POST,
            "/conversations",
            "ada",
            Some(json!({"participantIds": ["bob", "cy"], "kind": "group"})),
        )
        .await;
    group["id"].as_str().unwrap().to_owned()
}

async fn send(api: &LocalApi, user: &str, id: &str, body: &str) -> Value {
    let cmid = format!(
        "{user}-{}",
        body.len() * 7919 + body.bytes().map(usize::from).sum::<usize>()
    );
    let (status, message) = api
        .call(
            Method::POST,
            &format!("/conversations/{id}/messages"),
            user,
            Some(json!({"body": body, "clientMessageId": cmid})),
        )
        .await;
    assert_eq!(status, 201, "{message}");
    message
}

/// The timeline as a client keeps it: messages by seq.
fn timeline(items: &[Value]) -> BTreeMap<u64, Value> {
    items
        .iter()
        .map(|m| (m["seq"].as_u64().unwrap(), m.clone()))
        .collect()
}

async fn full_history(api: &LocalApi, id: &str) -> Vec<Value> {
    api.call(
        Method::GET,
        &format!("/conversations/{id}/messages?limit=100"),
        "cy",
        None,
    )
    .await
    .1["items"]
        .as_array()
        .unwrap()
        .clone()
}

#[tokio::test]
async fn changes_since_a_revision_bring_an_old_view_up_to_date() {
    let api = LocalApi::start().await;
    let id = setup(&api).await;
    let c = format!("/conversations/{id}");
    for n in 0..6 {
        send(
            &api,
            if n % 2 == 0 { "ada" } else { "bob" },
            &id,
            &format!("message {n}"),
        )
        .await;
    }
    // A client caught up here, at rev r.
    let old = full_history(&api, &id).await;
    let r = api.call(Method::GET, &c, "cy", None).await.1["rev"]
        .as_u64()
        .unwrap();
    assert_eq!(r, 6);

    // Others send, edit, unsend and react.
    send(&api, "bob", &id, "message 6").await;
    api.call(
        Method::PATCH,
        &format!("{c}/messages/2"),
        "bob",
        Some(json!({"body": "message 1, edited"})),
    )
    .await;
    api.call(Method::DELETE, &format!("{c}/messages/3"), "ada", None)
        .await;
    api.call(
        Method::PUT,
        &format!("{c}/messages/1/reactions/%F0%9F%91%8D"),
        "bob",
        None,
    )
    .await;
    api.call(
        Method::PUT,
        &format!("{c}/messages/1/reactions/%F0%9F%8E%89"),
        "cy",
        None,
    )
    .await;
    api.call(
        Method::PUT,
        &format!("{c}/messages/5/reactions/%E2%9D%A4%EF%B8%8F"),
        "ada",
        None,
    )
    .await;
    api.call(
        Method::DELETE,
        &format!("{c}/messages/5/reactions/%E2%9D%A4%EF%B8%8F"),
        "ada",
        None,
    )
    .await;

    // Catch up in small pages.
    let mut view = timeline(&old);
    let mut since = r;
    let mut changed_seqs = Vec::new();
    loop {
        let (status, page) = api
            .call(
                Method::GET,
                &format!("{c}/changes?sinceRev={since}&limit=2"),
                "cy",
                None,
            )
            .await;
        assert_eq!(status, 200, "{page}");
        let items = page["items"].as_array().unwrap();
        let revs: Vec<u64> = items.iter().map(|m| m["rev"].as_u64().unwrap()).collect();
        assert!(
            revs.windows(2).all(|w| w[0] < w[1]),
            "ascending rev: {revs:?}"
        );
        assert!(revs.iter().all(|rev| *rev > since));
        for m in items {
            changed_seqs.push(m["seq"].as_u64().unwrap());
            view.insert(m["seq"].as_u64().unwrap(), m.clone());
        }
        since = page["rev"].as_u64().unwrap();
        if !page["hasMore"].as_bool().unwrap() {
            break;
        }
    }
    changed_seqs.sort_unstable();
    assert_eq!(
        changed_seqs,
        [1, 2, 3, 5, 7],
        "exactly the changed messages"
    );
    assert_eq!(
        since, 13,
        "every change took the next rev: 6 + 1 send + 6 changes"
    );
    let fresh = timeline(&full_history(&api, &id).await);
    assert_eq!(
        view, fresh,
        "the old view plus the changes is the fresh timeline"
    );

    let unsent = &fresh[&3];
    assert_eq!(
        (unsent["deleted"].as_bool(), unsent["body"].as_str()),
        (Some(true), Some(""))
    );
    assert_eq!(unsent["seq"], 3, "a tombstone keeps its seq");
    assert_eq!(fresh[&2]["body"], "message 1, edited");
    assert!(fresh[&2]["editedAt"].is_string());
    assert_eq!(fresh[&1]["reactions"], json!({"👍": ["bob"], "🎉": ["cy"]}));
    assert_eq!(fresh[&5]["reactions"], json!({}));
    let (_, nothing) = api
        .call(
            Method::GET,
            &format!("{c}/changes?sinceRev={since}"),
            "cy",
            None,
        )
        .await;
    assert_eq!(
        (
            nothing["items"].as_array().unwrap().len(),
            nothing["rev"].as_u64()
        ),
        (0, Some(13))
    );
}

#[tokio::test]
async fn only_the_sender_edits_or_unsends_and_reactions_are_one_per_user() {
    let api = LocalApi::start().await;
    let id = setup(&api).await;
    let c = format!("/conversations/{id}");
    send(&api, "ada", &id, "original").await;
    let m = format!("{c}/messages/1");
    for (method, body) in [
        (Method::PATCH, Some(json!({"body": "hijacked"}))),
        (Method::DELETE, None),
    ] {
        let (status, answer) = api.call(method.clone(), &m, "bob", body.clone()).await;
        assert_eq!(
            (status, &answer["error"]["code"]),
            (403, &json!("forbidden")),
            "{method}"
        );
        let (status, answer) = api.call(method.clone(), &m, "eve", body).await;
        assert_eq!(
            (status, &answer["error"]["code"]),
            (404, &json!("not_found")),
            "{method}"
        );
    }
    for path in [
        format!("{m}/reactions/%F0%9F%91%8D"),
        format!("{c}/changes"),
    ] {
        let (status, _) = api.call(Method::GET, &path, "eve", None).await;
        assert!(status == 404, "{path}: {status}");
    }
    let (status, _) = api
        .call(
            Method::PUT,
            &format!("{m}/reactions/%F0%9F%91%8D"),
            "eve",
            None,
        )
        .await;
    assert_eq!(status, 404);

    // Reacting twice is one reaction; a new one replaces the previous.
    let thumbs = format!("{m}/reactions/%F0%9F%91%8D");
    let (_, once) = api.call(Method::PUT, &thumbs, "bob", None).await;
    let (_, twice) = api.call(Method::PUT, &thumbs, "bob", None).await;
    assert_eq!(once, twice, "idempotent, no new rev");
    assert_eq!(twice["reactions"], json!({"👍": ["bob"]}));
    let (_, replaced) = api
        .call(
            Method::PUT,
            &format!("{m}/reactions/%F0%9F%98%82"),
            "bob",
            None,
        )
        .await;
    assert_eq!(replaced["reactions"], json!({"😂": ["bob"]}));
    let (_, removed) = api
        .call(
            Method::DELETE,
            &format!("{m}/reactions/%F0%9F%98%82"),
            "bob",
            None,
        )
        .await;
    assert_eq!(removed["reactions"], json!({}));
    let (status, again) = api
        .call(
            Method::DELETE,
            &format!("{m}/reactions/%F0%9F%98%82"),
            "bob",
            None,
        )
        .await;
    assert_eq!(
        (status, &again["rev"]),
        (200, &removed["rev"]),
        "removing again changes nothing"
    );
    for bad in ["x", "%F0%9F%91%8D%F0%9F%91%8D", "%E2%9D%A4"] {
        let (status, answer) = api
            .call(Method::PUT, &format!("{m}/reactions/{bad}"), "bob", None)
            .await;
        assert_eq!(
            (status, &answer["error"]["field"]),
            (400, &json!("emoji")),
            "{bad}"
        );
    }

    // Edit, then unsend: the tombstone refuses edits and reactions.
    let (status, edited) = api
        .call(Method::PATCH, &m, "ada", Some(json!({"body": "fixed"})))
        .await;
    assert_eq!((status, &edited["body"]), (200, &json!("fixed")));
    let (status, bad) = api
        .call(Method::PATCH, &m, "ada", Some(json!({"body": "  "})))
        .await;
    assert_eq!((status, &bad["error"]["field"]), (400, &json!("body")));
    let (status, tombstone) = api.call(Method::DELETE, &m, "ada", None).await;
    assert_eq!(
        (status, &tombstone["deleted"], &tombstone["body"]),
        (200, &json!(true), &json!(""))
    );
    let (status, again) = api.call(Method::DELETE, &m, "ada", None).await;
    assert_eq!((status, &again["rev"]), (200, &tombstone["rev"]));
    let (status, answer) = api
        .call(Method::PATCH, &m, "ada", Some(json!({"body": "back"})))
        .await;
    assert_eq!(
        (status, &answer["error"]["code"]),
        (409, &json!("conflict"))
    );
    let (status, answer) = api.call(Method::PUT, &thumbs, "cy", None).await;
    assert_eq!(
        (status, &answer["error"]["code"]),
        (409, &json!("conflict"))
    );
    let (_, conversation) = api.call(Method::GET, &c, "bob", None).await;
    assert_eq!(conversation["lastMessage"]["deleted"], true);
    assert_eq!(conversation["lastMessage"]["preview"], "");
    let (status, _) = api
        .call(
            Method::PATCH,
            &format!("{c}/messages/9"),
            "ada",
            Some(json!({"body": "x"})),
        )
        .await;
    assert_eq!(status, 404, "no such message");
}
