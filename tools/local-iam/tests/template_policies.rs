//! The roles in `template.yaml`, after SAM's transform, grant what each function's push path
//! needs. A static check of the calls the shared code makes for every function that pushes (the
//! enforced IAM of the local stack checks every call of every test besides): the push itself
//! (`Pusher::fan_out`: the members' live connections (`LIVE#u`, by `BatchGetItem`), a gone
//! connection's id pruned from them and its record deleted, the post),
//! the members (`member_items`: a query of the conversation's partition on the table) and
//! the views of `conversation.*` events (`views_for`: the conversation's `META`, the member list,
//! names and inbox entries).

use local_iam::policy::{Authorization, evaluate};
use local_iam::{Policies, StackFacts};

fn facts() -> StackFacts {
    StackFacts {
        partition: "aws".into(),
        region: "us-east-1".into(),
        account: "123456789012".into(),
        stack_name: "chat".into(),
        table: "chat-ChatTable-1ABC".into(),
        event_stream: "chat-EventStream-1ABC".into(),
        websocket_api: "abc123".into(),
        stage: "dev".into(),
    }
}

/// What a function of the push path asks for.
#[derive(Debug, Clone, Copy)]
enum Need {
    /// `Pusher::fan_out`: look-ups, pruning, posts.
    Push,
    /// `member_items`.
    Members,
    /// `views_for`.
    Views,
}

/// Every function that pushes, and what of the push path it runs (from the code: who calls
/// `Pusher::fan_out` / `post_all`: `delivery::deliver`).
const PUSHERS: &[(&str, &[Need])] = &[
    // Every push but a frame's answer (the route's response): the fan-out, from the table's
    // stream.
    ("stream-fan-out", &[Need::Push, Need::Members, Need::Views]),
];

fn authorizations(need: Need, facts: &StackFacts) -> Vec<Authorization> {
    let table = facts.table_arn(&facts.table);
    let on = |action: &str, resource: &str, key: &str| {
        Authorization::new(format!("dynamodb:{action}"), resource)
            .with("dynamodb:LeadingKeys", [key.to_owned()])
    };
    match need {
        Need::Push => vec![
            on("BatchGetItem", &table, "LIVE#ada"),
            on("UpdateItem", &table, "LIVE#ada"),
            on("DeleteItem", &table, "CONN#Jk3eAcX1IAMCJ2Q"),
            Authorization::new(
                "execute-api:ManageConnections",
                facts.connection_arn("POST", "Jk3eAcX1IAMCJ2Q"),
            ),
        ],
        Need::Members => vec![on("Query", &table, "CONV#01JDQ7Z8K3M4N5P6Q7R8S9T0VW")],
        Need::Views => vec![
            on("GetItem", &table, "CONV#01JDQ7Z8K3M4N5P6Q7R8S9T0VW"),
            on("Query", &table, "CONV#01JDQ7Z8K3M4N5P6Q7R8S9T0VW"),
            on("BatchGetItem", &table, "USER#ada"),
        ],
    }
}

#[test]
fn every_function_that_pushes_is_granted_its_push_path() {
    let facts = facts();
    let policies = Policies::of_this_repository(&facts).unwrap();
    let mut missing = Vec::new();
    for (function, needs) in PUSHERS {
        let role = policies
            .functions
            .get(*function)
            .unwrap_or_else(|| panic!("{function} is not in the template"));
        for need in *needs {
            for request in authorizations(*need, &facts) {
                if !evaluate(&role.statements, &request).allowed() {
                    missing.push(format!(
                        "{function} ({need:?}): {} on {} with {:?}",
                        request.action, request.resource, request.context
                    ));
                }
            }
        }
    }
    assert!(missing.is_empty(), "not granted:\n{}", missing.join("\n"));
}

/// Every function that has an `@connections` endpoint in its environment is in the list above.
#[test]
fn the_list_of_pushers_is_the_template_s() {
    let text =
        std::fs::read_to_string(local_iam::policies::repository_root().join("template.yaml"))
            .unwrap();
    let doc: serde_norway::Value = serde_norway::from_str(&text).unwrap();
    let mut with_endpoint: Vec<String> = doc["Resources"]
        .as_mapping()
        .unwrap()
        .values()
        .filter(|r| {
            r["Properties"]["Environment"]["Variables"]
                .get("AWS_ENDPOINT_URL_APIGATEWAYMANAGEMENTAPI")
                .is_some()
        })
        .map(|r| r["Properties"]["Handler"].as_str().unwrap().to_owned())
        .collect();
    with_endpoint.sort();
    let mut listed: Vec<String> = PUSHERS.iter().map(|(f, _)| (*f).to_owned()).collect();
    listed.sort();
    assert_eq!(with_endpoint, listed);
}

/// Exactly the functions with Redis in their environment may connect to the cache by IAM (on the
/// cache and on its user, as ElastiCache asks), and the user is the one the local stack's Redis
/// front admits: `<stack>-functions`, in IAM mode, in the cache's user group.
#[test]
fn the_functions_with_redis_and_only_they_may_connect_to_it() {
    let facts = facts();
    let policies = Policies::of_this_repository(&facts).unwrap();
    let text =
        std::fs::read_to_string(local_iam::policies::repository_root().join("template.yaml"))
            .unwrap();
    let doc: serde_norway::Value = serde_norway::from_str(&text).unwrap();
    let resources = doc["Resources"].as_mapping().unwrap();
    let user = &doc["Resources"]["CacheUser"]["Properties"];
    assert_eq!(
        user["UserId"],
        serde_norway::from_str::<serde_norway::Value>("!Sub \"${AWS::StackName}-functions\"")
            .unwrap()
    );
    assert_eq!(user["UserId"], user["UserName"], "IAM needs id = name");
    assert_eq!(user["AuthenticationMode"]["Type"].as_str(), Some("iam"));
    let connect = local_iam::redis_front::connect_authorizations(&facts);
    let mut with_redis = 0;
    for resource in resources.values() {
        let Some(function) = resource["Properties"]["Handler"].as_str() else {
            continue;
        };
        let variables = &resource["Properties"]["Environment"]["Variables"];
        let uses_redis = variables.get("REDIS_URL").is_some();
        assert_eq!(
            uses_redis,
            variables.get("REDIS_IAM_USER").is_some() && variables.get("REDIS_IAM_CACHE").is_some(),
            "{function}: REDIS_URL without the IAM user and cache, or the reverse"
        );
        with_redis += usize::from(uses_redis);
        let role = &policies.functions[function];
        for request in &connect {
            assert_eq!(
                evaluate(&role.statements, request).allowed(),
                uses_redis,
                "{function}: {}",
                request.resource
            );
        }
    }
    // The 20 HTTP routes, ws-connect, ws-ping, ws-send-message, ws-mark-read and ws-typing.
    assert_eq!(with_redis, 25, "functions with Redis");
}
