//! The DynamoDB calls of every route, counted by an interceptor on the client the route functions
//! use, against each route's budget (docs/routes.md). A route that makes more calls fails here.

use std::collections::BTreeMap;

use chat_shared::adapters::store::DynamoStore;
use reqwest::Method;
use serde_json::json;

use crate::dynamo_meter::DynamoMeter;
use crate::support::{self, LocalApi};

struct Budgeted {
    api: LocalApi,
    log: DynamoMeter,
    report: BTreeMap<String, (usize, usize, Vec<&'static str>)>,
}

impl Budgeted {
    /// Calls a route and checks its DynamoDB calls against `budget`.
    async fn call(
        &mut self,
        route: &str,
        budget: usize,
        method: Method,
        path: &str,
        user: &str,
        body: Option<serde_json::Value>,
    ) -> serde_json::Value {
        self.log.take();
        let (status, answer) = self.api.call(method, path, user, body).await;
        assert!(status < 300, "{route}: {status} {answer}");
        let calls = self.log.take().operations();
        assert!(
            calls.len() <= budget,
            "{route} made {} DynamoDB calls, over its budget of {budget}: {calls:?}",
            calls.len()
        );
        self.report
            .insert(route.to_owned(), (calls.len(), budget, calls));
        answer
    }
}

#[tokio::test]
#[allow(
    clippy::print_stdout,
    reason = "prints the table of counts beside the assertions"
)]
async fn every_route_stays_within_its_dynamodb_budget() {
    let log = DynamoMeter::default();
    let client = log.client(support::sdk_config().await);
    let table = support::fresh_store().await.table().clone();
    let deps = support::deps_with(
        DynamoStore::new(client, table, support::clock()),
        support::redis_link(),
    )
    .await;
    // The routes' own calls: the fan-out's (for messages, reads and typing) are another
    // function's, in another invocation (the cost benchmark counts them with the route).
    let api = LocalApi::start_beside(deps, support::local_stack()).await;
    let mut b = Budgeted {
        api,
        log,
        report: BTreeMap::new(),
    };
    let (me, bob, cy) = ("ada", "bob", "cy");

    // Budgets are for a cold cache, the worst case. No route pushes: `stream-fan-out` does, in its
    // own invocation (not counted here; the cost benchmark counts it with the route). The group
    // has 2 members, then 3 once cy joins.
    b.call("GET /me (first call)", 3, Method::GET, "/me", me, None)
        .await;
    b.call("GET /me", 2, Method::GET, "/me", me, None).await;
    b.call("GET /me (bob)", 3, Method::GET, "/me", bob, None)
        .await;
    b.call("GET /me (cy)", 3, Method::GET, "/me", cy, None)
        .await;
    b.call(
        "PATCH /me",
        3,
        Method::PATCH,
        "/me",
        me,
        Some(json!({"displayName": "Ada"})),
    )
    .await;
    b.call(
        "GET /users/{userId}",
        2,
        Method::GET,
        "/users/bob",
        me,
        None,
    )
    .await;
    let direct = b
        .call(
            "POST /conversations (direct, new)",
            7,
            Method::POST,
            "/conversations",
            me,
            Some(json!({"participantIds": [bob]})),
        )
        .await;
    b.call(
        "POST /conversations (direct, existing)",
        6,
        Method::POST,
        "/conversations",
        me,
        Some(json!({"participantIds": [bob]})),
    )
    .await;
    let group = b
        .call(
            "POST /conversations (group)",
            7,
            Method::POST,
            "/conversations",
            me,
            Some(json!({"participantIds": [bob], "kind": "group", "clientRequestId": "g1"})),
        )
        .await;
    let id = group["id"].as_str().unwrap().to_owned();
    let c = format!("/conversations/{id}");
    b.call(
        "GET /conversations",
        5 + 2,
        Method::GET,
        "/conversations",
        me,
        None,
    )
    .await;
    b.call("GET /conversations/{id}", 3, Method::GET, &c, me, None)
        .await;
    b.call(
        "PATCH /conversations/{id}",
        5,
        Method::PATCH,
        &c,
        me,
        Some(json!({"title": "T"})),
    )
    .await;
    b.call(
        "PATCH /conversations/{id}/settings",
        5,
        Method::PATCH,
        &format!("{c}/settings"),
        me,
        Some(json!({"muted": true})),
    )
    .await;
    b.call(
        "POST /conversations/{id}/members",
        8,
        Method::POST,
        &format!("{c}/members"),
        me,
        Some(json!({"userIds": [cy]})),
    )
    .await;
    // A send: one read, the counter, one transaction, `lastMessage` and my read position; then the
    // members query and one move per member (3). No push: `stream-fan-out` reads it off the stream.
    b.call(
        "POST /conversations/{id}/messages",
        5 + 1 + 3,
        Method::POST,
        &format!("{c}/messages"),
        me,
        Some(json!({"body": "hi", "clientMessageId": "m1"})),
    )
    .await;
    b.call(
        "POST /conversations/{id}/messages (retry)",
        2 + 2 + 1 + 3,
        Method::POST,
        &format!("{c}/messages"),
        me,
        Some(json!({"body": "hi", "clientMessageId": "m1"})),
    )
    .await;
    b.call(
        "GET /conversations/{id}/messages",
        2,
        Method::GET,
        &format!("{c}/messages"),
        bob,
        None,
    )
    .await;
    b.call(
        "POST /conversations/{id}/read",
        3,
        Method::POST,
        &format!("{c}/read"),
        bob,
        Some(json!({"seq": 1})),
    )
    .await;
    b.call("GET /me/unread", 3, Method::GET, "/me/unread", bob, None)
        .await;
    b.call(
        "PATCH /conversations/{id}/messages/{seq}",
        5,
        Method::PATCH,
        &format!("{c}/messages/1"),
        me,
        Some(json!({"body": "hello"})),
    )
    .await;
    b.call(
        "PUT …/reactions/{emoji}",
        4,
        Method::PUT,
        &format!("{c}/messages/1/reactions/%F0%9F%91%8D"),
        bob,
        None,
    )
    .await;
    b.call(
        "DELETE …/reactions/{emoji}",
        4,
        Method::DELETE,
        &format!("{c}/messages/1/reactions/%F0%9F%91%8D"),
        bob,
        None,
    )
    .await;
    b.call(
        "DELETE /conversations/{id}/messages/{seq}",
        5,
        Method::DELETE,
        &format!("{c}/messages/1"),
        me,
        None,
    )
    .await;
    b.call(
        "GET /conversations/{id}/changes",
        4,
        Method::GET,
        &format!("{c}/changes?sinceRev=0"),
        cy,
        None,
    )
    .await;
    b.call(
        "DELETE /conversations/{id}/members/{userId} (owner removes)",
        3,
        Method::DELETE,
        &format!("{c}/members/cy"),
        me,
        None,
    )
    .await;
    b.call(
        "DELETE /conversations/{id}/members/{userId} (owner leaves)",
        3,
        Method::DELETE,
        &format!("{c}/members/me"),
        me,
        None,
    )
    .await;

    b.call(
        "POST /realtime/tickets",
        1,
        Method::POST,
        "/realtime/tickets",
        me,
        None,
    )
    .await;

    // The send path itself: exactly one consistent read, the counter and one transaction.
    b.log.take();
    let (status, _) = b
        .api
        .call(
            Method::POST,
            &format!("{c}/messages"),
            bob,
            Some(json!({"body": "again", "clientMessageId": "m2"})),
        )
        .await;
    assert_eq!(status, 201);
    let calls = b.log.take().operations();
    assert_eq!(
        &calls[..3],
        ["BatchGetItem", "UpdateItem", "TransactWriteItems"],
        "{calls:?}"
    );
    assert!(
        calls[3..]
            .iter()
            .all(|c| *c == "Query" || *c == "UpdateItem"),
        "{calls:?}"
    );

    // A warm cache makes reads cheaper.
    b.call(
        "GET /conversations/{id} (warm)",
        1,
        Method::GET,
        &format!("/conversations/{}", direct["id"].as_str().unwrap()),
        me,
        None,
    )
    .await;
    let _ = b
        .call(
            "GET /conversations/{id} (warm, again)",
            1,
            Method::GET,
            &format!("/conversations/{}", direct["id"].as_str().unwrap()),
            me,
            None,
        )
        .await;

    // The table of calls, for `--no-capture` readers.
    for (route, (calls, budget, names)) in &b.report {
        println!("{route:70} {calls:>2} / {budget:>2}  {names:?}");
    }
}
