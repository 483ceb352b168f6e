//! Lambda entry point: wiring only (tracing, configuration, clients built once, the runtime loop).

use chat_shared::config::process_env;
use chat_shared::deps::HttpDeps;
use lambda_http::{Error, run, service_fn};

#[tokio::main]
async fn main() -> Result<(), Error> {
    chat_shared::telemetry::init();
    let deps = HttpDeps::from_env(&process_env()).await?;
    run(service_fn(|req| {
        http_create_realtime_ticket::handle(&deps, req)
    }))
    .await
}
