//! Shared set-up: SDK clients pointed at the local stack, and fresh tables made from
//! `template.yaml` exactly as the local stack makes its own.

use aws_config::SdkConfig;
use chat_shared::store::DynamoStore;
use local_stack::Template;
use tokio::sync::OnceCell;

/// Endpoints are required: a test run without the stack fails loudly instead of reaching AWS.
fn require_env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!("{name} is not set: run tools/test.sh, or start tools/stack.sh and eval its env")
    })
}

pub async fn sdk_config() -> &'static SdkConfig {
    static CONFIG: OnceCell<SdkConfig> = OnceCell::const_new();
    CONFIG
        .get_or_init(|| async {
            for name in [
                "AWS_ENDPOINT_URL_DYNAMODB",
                "AWS_ENDPOINT_URL_KINESIS",
                "AWS_REGION",
            ] {
                require_env(name);
            }
            chat_shared::aws::load_sdk_config().await
        })
        .await
}

pub fn unique_name(prefix: &str) -> String {
    format!("{prefix}-{}", ulid::Ulid::new().to_string().to_lowercase())
}

pub async fn dynamo() -> aws_sdk_dynamodb::Client {
    aws_sdk_dynamodb::Client::new(sdk_config().await)
}

pub async fn kinesis() -> aws_sdk_kinesis::Client {
    aws_sdk_kinesis::Client::new(sdk_config().await)
}

/// A new table, created from the repository's `template.yaml`, behind the shared store adapter.
pub async fn fresh_store() -> DynamoStore {
    let template = Template::of_this_repository().unwrap();
    let name = unique_name("test");
    let client = dynamo().await;
    local_stack::create_table(&client, &name, &template.table)
        .await
        .unwrap();
    DynamoStore::new(client, name.parse().unwrap())
}
