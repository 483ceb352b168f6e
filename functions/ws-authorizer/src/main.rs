//! Lambda entry point: wiring only (tracing, configuration, clients built once).

use chat_shared::config::process_env;
use lambda_runtime::{Error, run, service_fn};
use ws_authorizer::Deps;

#[tokio::main]
async fn main() -> Result<(), Error> {
    chat_shared::telemetry::init();
    let deps = Deps::from_env(&process_env()).await?;
    run(service_fn(|event| ws_authorizer::handle(&deps, event))).await
}
