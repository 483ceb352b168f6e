//! `migrate-inbox`: brings the inbox of `TABLE_NAME` into the `~archived#` / `~big#` layout,
//! enters every conversation in the search and removes `memberNames` from `META` (see the
//! library, and docs/operations.md, "Migrating the inbox"), through the SDK's usual
//! configuration (`AWS_ENDPOINT_URL_DYNAMODB` for a local endpoint; `eval "$(tools/stack.sh env)"`
//! points it at the local stack). Prints what it did as one JSON line. Idempotent: run it again
//! after a failure.
#![allow(clippy::print_stdout, reason = "a command-line tool reports on stdout")]

use std::process::ExitCode;

use chat_shared::adapters::store::StoreConfig;
use chat_shared::domain::error::ErrorChain;
use chat_shared::platform::config::process_env;
use chat_shared::platform::time::Clock;

async fn run() -> Result<String, String> {
    let env = process_env();
    let clock = Clock::from_env(&env).map_err(|e| e.to_string())?;
    let config = StoreConfig::from_env(&env).map_err(|e| e.to_string())?;
    let sdk = chat_shared::platform::aws::load_sdk_config()
        .await
        .map_err(|e| e.to_string())?;
    let client = aws_sdk_dynamodb::Client::new(&sdk);
    let report = migrate_inbox::migrate(&client, config.table_name.as_str(), clock)
        .await
        .map_err(|e| ErrorChain(&e).to_string())?;
    serde_json::to_string(&report).map_err(|e| e.to_string())
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    if std::env::args().len() > 1 {
        eprintln!("usage: TABLE_NAME=<table> migrate-inbox (no arguments)");
        return ExitCode::from(2);
    }
    match run().await {
        Ok(line) => {
            println!("{line}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("migrate-inbox: {e}");
            ExitCode::FAILURE
        }
    }
}
