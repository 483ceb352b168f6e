//! The bare client: the floor a fan-out is held to. It makes the fan-out's posts itself, straight
//! to the gateway's `@connections` (`POST /local/@connections/{id}`), signed as `stream-fan-out`
//! so that each goes through the same IAM check as the function's, with no stream, no handler and
//! no reads in between. Its credentials and the IAM proxy come from the running gateway's
//! `gateway-iam.json` (a function's name as access key, the functions' shared secret); it finds a
//! member's connections as the function does (the user's live connections item) through that
//! proxy with that role.

use std::path::PathBuf;

use aws_sdk_apigatewaymanagement::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_apigatewaymanagement::primitives::Blob;
use aws_sdk_dynamodb::error::DisplayErrorContext;
use aws_sdk_dynamodb::types::AttributeValue;
use futures::StreamExt;
use serde_json::Value;

use crate::api::Error;

/// The function whose posts the floor stands in for: its role allows `POST` to `@connections`
/// and reading users' live connections, so the floor's posts pass the very check the fan-out's
/// do.
pub const FUNCTION: &str = "stream-fan-out";

/// Where the stack and its gateway are, and how many posts to keep in flight.
#[derive(Debug, Clone)]
pub struct Options {
    /// The gateway's `PUSH_CONCURRENCY`: the fan-out's posts in flight, so the floor's too.
    pub concurrency: usize,
    /// `$CHAT_STACK_DIR/gateway-iam.json`, written by the gateway under test.
    pub door: PathBuf,
    pub table: String,
    pub region: String,
}

impl Options {
    /// From the stack's environment (`tools/stack.sh env`, and `CHAT_STACK_DIR`), as the
    /// benchmark scripts export it.
    pub fn from_env(concurrency: usize) -> Result<Self, Error> {
        let var = |name: &str| {
            std::env::var(name)
                .ok()
                .filter(|v| !v.is_empty())
                .ok_or_else(|| format!("{name} is not set: the bare client needs the stack's env"))
        };
        Ok(Self {
            concurrency: concurrency.max(1),
            door: PathBuf::from(var("CHAT_STACK_DIR")?).join("gateway-iam.json"),
            table: var("TABLE_NAME")?,
            region: var("AWS_REGION")?,
        })
    }
}

#[derive(Debug, Clone)]
pub struct Bare {
    connections: aws_sdk_apigatewaymanagement::Client,
    table: aws_sdk_dynamodb::Client,
    table_name: String,
    concurrency: usize,
}

impl Bare {
    /// Clients of the gateway at `base` (`http://127.0.0.1:3000`) and of its IAM proxy, signing
    /// as [`FUNCTION`].
    pub fn new(base: &str, o: &Options) -> Result<Self, Error> {
        let text = std::fs::read(&o.door).map_err(|e| format!("{}: {e}", o.door.display()))?;
        let door: Value =
            serde_json::from_slice(&text).map_err(|e| format!("{}: {e}", o.door.display()))?;
        let field = |name: &str| {
            door[name]
                .as_str()
                .map(str::to_owned)
                .ok_or_else(|| format!("{}: no {name}", o.door.display()))
        };
        let (proxy, secret) = (field("url")?, field("secret")?);
        let credentials = Credentials::new(FUNCTION, secret, None, None, "gateway-iam.json");
        let connections = aws_sdk_apigatewaymanagement::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new(o.region.clone()))
            .credentials_provider(credentials.clone())
            .endpoint_url(format!("{}/local", base.trim_end_matches('/')))
            .build();
        let table = aws_sdk_dynamodb::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new(o.region.clone()))
            .credentials_provider(credentials)
            .endpoint_url(proxy)
            .build();
        Ok(Self {
            connections: aws_sdk_apigatewaymanagement::Client::from_conf(connections),
            table: aws_sdk_dynamodb::Client::from_conf(table),
            table_name: o.table.clone(),
            concurrency: o.concurrency.max(1),
        })
    }

    /// The user's connection ids, as the fan-out reads them: the user's live connections item
    /// (`LIVE#u` / `LIVE`, a string set) by `BatchGetItem`. User ids here are `[a-z0-9]`, so the
    /// key needs no escaping.
    pub async fn connections_of(&self, user: &str) -> Result<Vec<String>, Error> {
        let key = std::collections::HashMap::from([
            ("PK".to_owned(), AttributeValue::S(format!("LIVE#{user}"))),
            ("SK".to_owned(), AttributeValue::S("LIVE".to_owned())),
        ]);
        let keys = aws_sdk_dynamodb::types::KeysAndAttributes::builder()
            .keys(key)
            .build()
            .map_err(|e| format!("the connections of {user}: {e}"))?;
        let out = self
            .table
            .batch_get_item()
            .request_items(&self.table_name, keys)
            .send()
            .await
            .map_err(|e| format!("the connections of {user}: {}", DisplayErrorContext(&e)))?;
        let ids = out
            .responses
            .and_then(|mut r| r.remove(&self.table_name))
            .into_iter()
            .flatten()
            .filter_map(|mut item| match item.remove("connectionIds") {
                Some(AttributeValue::Ss(ids)) => Some(ids),
                _ => None,
            })
            .flatten()
            .collect();
        Ok(ids)
    }

    /// One post; any answer but 200 is an error (the floor is only a floor if every post lands).
    pub async fn post(&self, connection_id: &str, body: &[u8]) -> Result<(), Error> {
        self.connections
            .post_to_connection()
            .connection_id(connection_id)
            .data(Blob::new(body))
            .send()
            .await
            .map_err(|e| format!("post to {connection_id}: {}", DisplayErrorContext(&e)))?;
        Ok(())
    }

    /// `body` to each connection, [`Options::concurrency`] posts in flight, as the fan-out posts
    /// (`buffer_unordered` over the targets).
    pub async fn post_all(&self, connection_ids: &[String], body: &[u8]) -> Result<(), Error> {
        futures::stream::iter(connection_ids)
            .map(|id| self.post(id, body))
            .buffer_unordered(self.concurrency)
            .collect::<Vec<_>>()
            .await
            .into_iter()
            .collect()
    }
}
