//! Lambda entry point: wiring only (tracing, configuration, clients built once).

use chat_shared::config::process_env;
use chat_shared::deps::HttpDeps;
use lambda_runtime::{Error, run, service_fn};

#[tokio::main]
async fn main() -> Result<(), Error> {
    chat_shared::telemetry::init();
    let deps = HttpDeps::from_env(&process_env()).await?;
    run(service_fn(|event| ws_ping::handle(&deps, event))).await
}
