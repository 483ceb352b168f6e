//! IAM on the local stack, as AWS enforces it: every function's calls go through the gateway's
//! proxy with credentials named after it, and a call its role (template.yaml after SAM's
//! transform) does not allow fails with the error AWS gives, read by the SDK as on AWS.

use aws_sdk_dynamodb::error::ProvideErrorMetadata;
use aws_sdk_dynamodb::types::AttributeValue;

use crate::support::{self, LocalApi};

fn s(v: &str) -> AttributeValue {
    AttributeValue::S(v.to_owned())
}

/// The error code and message of a refused SDK call.
fn refusal<E: ProvideErrorMetadata>(error: &E) -> (String, String) {
    (
        error.code().unwrap_or_default().to_owned(),
        error.message().unwrap_or_default().to_owned(),
    )
}

#[tokio::test]
async fn a_call_outside_the_role_is_refused_as_aws_refuses_it() {
    let api = LocalApi::start().await;
    let get_me = &api.gateway.functions.http("http-get-me").unwrap().store;
    let table = get_me.table().as_str();
    // Within the role: its own profile's partition.
    get_me
        .client()
        .put_item()
        .table_name(table)
        .item("PK", s("USER#ada"))
        .item("SK", s("PROFILE"))
        .send()
        .await
        .unwrap();
    // Another partition than the role's USER#*: refused before it reaches the table.
    let refused = get_me
        .client()
        .put_item()
        .table_name(table)
        .item("PK", s("CONV#1"))
        .item("SK", s("META"))
        .send()
        .await
        .unwrap_err();
    let (code, message) = refusal(&refused);
    assert_eq!(code, "AccessDeniedException");
    assert!(
        message.starts_with("User: arn:aws:sts::000000000000:assumed-role/HttpGetMeFunctionRole/http-get-me is not authorized to perform: dynamodb:PutItem on resource: arn:aws:dynamodb:")
            && message.ends_with("because no identity-based policy allows the dynamodb:PutItem action"),
        "{message}"
    );
    assert_eq!(
        refused.raw_response().map(|r| r.status().as_u16()),
        Some(400)
    );
    let stored = api
        .gateway
        .deps
        .store
        .client()
        .get_item()
        .table_name(table)
        .key("PK", s("CONV#1"))
        .key("SK", s("META"))
        .send()
        .await
        .unwrap();
    assert!(stored.item.is_none(), "nothing was written");
    // An action the role does not have at all, on a key it may touch.
    let refused = get_me
        .client()
        .delete_item()
        .table_name(table)
        .key("PK", s("USER#ada"))
        .key("SK", s("PROFILE"))
        .send()
        .await
        .unwrap_err();
    assert_eq!(refusal(&refused).0, "AccessDeniedException");
}

#[tokio::test]
async fn every_key_of_a_batch_and_every_part_of_a_transaction_is_checked() {
    let api = LocalApi::start().await;
    let mark_read = &api.gateway.functions.http("http-mark-read").unwrap().store;
    let table = mark_read.table().as_str();
    let keys = |pks: &[&str]| {
        aws_sdk_dynamodb::types::KeysAndAttributes::builder()
            .set_keys(Some(
                pks.iter()
                    .map(|pk| [("PK".to_owned(), s(pk)), ("SK".to_owned(), s("X"))].into())
                    .collect(),
            ))
            .build()
            .unwrap()
    };
    mark_read
        .client()
        .batch_get_item()
        .request_items(table, keys(&["USER#a", "CONV#1"]))
        .send()
        .await
        .unwrap();
    // One key of the batch outside USER#/CONV# refuses the whole batch.
    let refused = mark_read
        .client()
        .batch_get_item()
        .request_items(table, keys(&["USER#a", "TICKET#x"]))
        .send()
        .await
        .unwrap_err();
    assert_eq!(refusal(&refused).0, "AccessDeniedException");
    // A transaction is its parts: mark-read may update CONV#, but not put there.
    let update = aws_sdk_dynamodb::types::Update::builder()
        .table_name(table)
        .key("PK", s("CONV#1"))
        .key("SK", s("MEMBER#a"))
        .update_expression("SET n = :n")
        .expression_attribute_values(":n", AttributeValue::N("1".into()))
        .build()
        .unwrap();
    let put = aws_sdk_dynamodb::types::Put::builder()
        .table_name(table)
        .item("PK", s("CONV#1"))
        .item("SK", s("MSG#1"))
        .build()
        .unwrap();
    let refused = mark_read
        .client()
        .transact_write_items()
        .transact_items(
            aws_sdk_dynamodb::types::TransactWriteItem::builder()
                .update(update)
                .build(),
        )
        .transact_items(
            aws_sdk_dynamodb::types::TransactWriteItem::builder()
                .put(put)
                .build(),
        )
        .send()
        .await
        .unwrap_err();
    let (code, message) = refusal(&refused);
    assert_eq!(code, "AccessDeniedException");
    assert!(message.contains("dynamodb:PutItem"), "{message}");
    // An index is a resource of its own: a role with Query on the table only may not read GSI1.
    let send = &api
        .gateway
        .functions
        .http("http-send-message")
        .unwrap()
        .store;
    let on_table = send
        .client()
        .query()
        .table_name(table)
        .key_condition_expression("PK = :pk")
        .expression_attribute_values(":pk", s("CONV#1"))
        .send()
        .await;
    assert!(on_table.is_ok(), "{on_table:?}");
    let on_index = send
        .client()
        .query()
        .table_name(table)
        .index_name("ByRev")
        .key_condition_expression("PK = :pk")
        .expression_attribute_values(":pk", s("CONV#1"))
        .send()
        .await
        .unwrap_err();
    assert_eq!(refusal(&on_index).0, "AccessDeniedException");
}

#[tokio::test]
async fn unknown_keys_and_wrong_secrets_are_refused_and_the_event_stream_is_the_publishers() {
    let (api, stream) =
        LocalApi::start_with_event_stream(support::fresh_deps().await, "iam-events").await;
    let sdk = support::sdk_config().await;
    let functions = &api.gateway.functions;
    let put = |function: &str| {
        let client = functions.kinesis(function, sdk);
        let stream = stream.clone();
        async move {
            client
                .put_records()
                .stream_name(stream)
                .records(
                    aws_sdk_kinesis::types::PutRecordsRequestEntry::builder()
                        .partition_key("p")
                        .data(aws_sdk_kinesis::primitives::Blob::new("{}"))
                        .build()
                        .unwrap(),
                )
                .send()
                .await
        }
    };
    put("stream-publisher").await.unwrap();
    let refused = put("http-send-message").await.unwrap_err();
    assert_eq!(refusal(&refused).0, "AccessDeniedException");
    // A key that is no function of the template, and a function's key with a guessed secret.
    let table = api.gateway.deps.store.table().as_str().to_owned();
    for (key, secret, expected) in [
        (
            "mallory",
            functions.iam().secret().to_owned(),
            "UnrecognizedClientException",
        ),
        (
            "http-get-me",
            "guess".to_owned(),
            "InvalidSignatureException",
        ),
    ] {
        let config = aws_sdk_dynamodb::config::Builder::from(sdk)
            .endpoint_url(functions.aws_url())
            .credentials_provider(aws_credential_types::Credentials::new(
                key, secret, None, None, "t",
            ))
            .build();
        let refused = aws_sdk_dynamodb::Client::from_conf(config)
            .get_item()
            .table_name(&table)
            .key("PK", s("USER#ada"))
            .key("SK", s("PROFILE"))
            .send()
            .await
            .unwrap_err();
        assert_eq!(refusal(&refused).0, expected, "{key}");
    }
}

/// `AUTH user token` then `PING` on a new connection to `url`; the error code of the first refusal.
async fn auth_and_ping(url: &str, user: &str, token: &str) -> Result<String, String> {
    let client = redis::Client::open(url).unwrap();
    let mut connection = client
        .get_multiplexed_async_connection()
        .await
        .map_err(|e| e.to_string())?;
    let code = |e: redis::RedisError| e.code().unwrap_or("?").to_owned();
    redis::cmd("PING")
        .query_async::<String>(&mut connection)
        .await
        .map_err(code)
        .expect_err("PING before AUTH");
    redis::cmd("AUTH")
        .arg(user)
        .arg(token)
        .query_async::<()>(&mut connection)
        .await
        .map_err(code)?;
    redis::cmd("PING")
        .query_async::<String>(&mut connection)
        .await
        .map_err(code)
}

/// Redis as ElastiCache with IAM authentication: a function whose role may connect does, with a
/// token its own credentials signed; a function whose role may not, a token signed with another
/// secret, for another user or cache, or too old, is refused as ElastiCache refuses it.
#[tokio::test]
async fn redis_takes_iam_tokens_of_roles_allowed_to_connect_only() {
    use aws_credential_types::Credentials;
    use chat_shared::adapters::redis_link::IamUser;
    use std::time::{Duration, SystemTime};

    let api = LocalApi::start().await;
    let door = api.gateway.functions.door().redis.unwrap();
    let iam = api.gateway.functions.iam();
    let region = std::env::var("AWS_REGION").unwrap();
    let user = IamUser::new(&door.user, &door.cache).unwrap();
    let now = SystemTime::now();
    let token = |who: &IamUser, credentials: &Credentials, at: SystemTime| {
        who.token(credentials, &region, at).unwrap()
    };

    // Nothing before AUTH: `auth_and_ping` checks PING is refused first.
    let get_me = iam.credentials("http-get-me");
    assert_eq!(
        auth_and_ping(&door.url, &door.user, &token(&user, &get_me, now)).await,
        Ok("PONG".to_owned())
    );
    // The functions' own links go the same way.
    let link = &api.gateway.functions.http("http-get-me").unwrap().redis;
    let mut connection = link.connection().await.expect("http-get-me reaches Redis");
    let pong: String = redis::cmd("PING")
        .query_async(&mut connection)
        .await
        .unwrap();
    assert_eq!(pong, "PONG");

    let wrongpass = Err("WRONGPASS".to_owned());
    // stream-publisher uses no Redis: its role has no elasticache:Connect.
    let no_grant = iam.credentials("stream-publisher");
    assert_eq!(
        auth_and_ping(&door.url, &door.user, &token(&user, &no_grant, now)).await,
        wrongpass
    );
    let forged = Credentials::new("http-get-me", "not-the-secret", None, None, "test");
    assert_eq!(
        auth_and_ping(&door.url, &door.user, &token(&user, &forged, now)).await,
        wrongpass
    );
    let stale = now - Duration::from_secs(16 * 60);
    assert_eq!(
        auth_and_ping(&door.url, &door.user, &token(&user, &get_me, stale)).await,
        wrongpass
    );
    let other_user = IamUser::new("admin", &door.cache).unwrap();
    for (as_user, signed_for) in [
        (door.user.as_str(), &other_user),
        ("admin", &other_user),
        ("default", &user),
    ] {
        assert_eq!(
            auth_and_ping(&door.url, as_user, &token(signed_for, &get_me, now)).await,
            wrongpass,
            "AUTH {as_user}"
        );
    }
    let other_cache = IamUser::new(&door.user, "another-cache").unwrap();
    assert_eq!(
        auth_and_ping(&door.url, &door.user, &token(&other_cache, &get_me, now)).await,
        wrongpass
    );
}

/// A root, a leaf certificate for 127.0.0.1 that it issued, and the leaf's key, as PEM texts
/// (rcgen's validity, 1975 to 4096, does not depend on today).
fn certificates() -> (String, String, String) {
    let mut root = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    root.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let root =
        rcgen::CertifiedIssuer::self_signed(root, rcgen::KeyPair::generate().unwrap()).unwrap();
    let leaf_key = rcgen::KeyPair::generate().unwrap();
    let leaf = rcgen::CertificateParams::new(vec!["127.0.0.1".to_owned()])
        .unwrap()
        .signed_by(&leaf_key, &root)
        .unwrap();
    (root.pem(), leaf.pem(), leaf_key.serialize_pem())
}

/// The IAM proxy over HTTPS (the cold-start benchmark's TLS columns): a function's SDK client
/// that trusts the root of its certificate (`TLS_ROOTS=<file>`) is served and held to its role
/// as over HTTP; one that trusts Amazon's roots alone, as a function does on AWS, cannot connect.
#[tokio::test]
async fn the_iam_proxy_over_https_serves_clients_that_trust_its_root() {
    use aws_sdk_dynamodb::error::SdkError;
    use chat_shared::platform::aws::TlsRoots;

    let api = LocalApi::start().await;
    let (root, cert, key) = certificates();
    let url = api
        .gateway
        .functions
        .iam()
        .start_tls(cert.as_bytes(), key.as_bytes())
        .await
        .unwrap();
    assert!(url.starts_with("https://127.0.0.1:"), "{url}");
    let get_me = &api.gateway.functions.http("http-get-me").unwrap().store;
    let table = get_me.table().as_str();
    let trusting = |roots: TlsRoots| {
        let mut config = get_me.client().config().to_builder().endpoint_url(&url);
        config.set_http_client(roots.https_client());
        aws_sdk_dynamodb::Client::from_conf(config.build())
    };
    let get = |client: &aws_sdk_dynamodb::Client, pk: &str| {
        client
            .get_item()
            .table_name(table)
            .key("PK", s(pk))
            .key("SK", s("PROFILE"))
            .send()
    };

    let client = trusting(TlsRoots::Pem(root.into_bytes()));
    get(&client, "USER#ada").await.unwrap();
    let refused = get(&client, "CONV#1").await.unwrap_err();
    assert_eq!(refusal(&refused).0, "AccessDeniedException");

    let amazon_only = trusting(TlsRoots::Amazon);
    let failed = get(&amazon_only, "USER#ada").await.unwrap_err();
    assert!(matches!(failed, SdkError::DispatchFailure(_)), "{failed:?}");
}
