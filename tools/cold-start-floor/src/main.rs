//! The least a Rust Lambda can be: the runtime client and an echo. Built with the same release
//! profile as the functions, it is the cold-start floor in BENCHMARKS.md (no tracing, no config,
//! no SDK clients: whatever a function adds at start shows as its distance from this).

use lambda_runtime::{Error, LambdaEvent, run, service_fn};
use serde_json::{Value, json};

async fn hello(event: LambdaEvent<Value>) -> Result<Value, Error> {
    Ok(json!({ "hello": "world", "echo": event.payload }))
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    run(service_fn(hello)).await
}
