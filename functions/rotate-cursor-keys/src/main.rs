//! Lambda entry point: wiring only (tracing, configuration, the DynamoDB client built once).

use chat_shared::config::process_env;
use lambda_runtime::{Error, run, service_fn};
use rotate_cursor_keys::Deps;

#[tokio::main]
async fn main() -> Result<(), Error> {
    chat_shared::telemetry::init();
    let deps = Deps::from_env(&process_env()).await?;
    run(service_fn(|event| rotate_cursor_keys::handle(&deps, event))).await
}
