//! `local-gateway serve [--port N]`: the local HTTP API on 127.0.0.1.
//! `local-gateway token USER [--name NAME] [--ttl SECONDS]`: prints a token of the local issuer.
//!
//! Both use the issuer key under `$CHAT_STACK_DIR/issuer` (made on first use).
#![allow(clippy::print_stdout, reason = "a command-line tool reports on stdout")]

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use chat_shared::config::process_env;
use chat_shared::deps::HttpDeps;
use local_gateway::event::ApiFacts;
use local_gateway::issuer::LocalIssuer;
use local_gateway::server::{Gateway, parse_origins, serve};

const USAGE: &str = "usage: local-gateway serve [--port N]\n       local-gateway token USER [--name NAME] [--ttl SECONDS]";

fn issuer_dir() -> PathBuf {
    let stack = std::env::var("CHAT_STACK_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../.local-stack"));
    stack.join("issuer")
}

fn flag(args: &[String], name: &str) -> Option<String> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .cloned()
}

async fn run_serve(args: &[String]) -> Result<(), String> {
    let port: u16 = flag(args, "--port")
        .or_else(|| std::env::var("GATEWAY_PORT").ok())
        .unwrap_or_else(|| "3000".to_owned())
        .parse()
        .map_err(|_| "the port must be a number".to_owned())?;
    let issuer = LocalIssuer::load_or_create(&issuer_dir()).map_err(|e| e.to_string())?;
    let deps = HttpDeps::from_env(&process_env())
        .await
        .map_err(|e| e.to_string())?;
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .map_err(|e| format!("cannot listen on 127.0.0.1:{port}: {e}"))?;
    let address = listener.local_addr().map_err(|e| e.to_string())?;
    let facts = ApiFacts {
        api_id: "local".to_owned(),
        stage: "$default".to_owned(),
        domain_name: address.to_string(),
    };
    let origins =
        parse_origins(&std::env::var("CORS_ALLOWED_ORIGINS").unwrap_or_else(|_| "*".to_owned()));
    let gateway = Arc::new(Gateway::new(deps, issuer, facts, origins));
    println!("local gateway on http://{address} (JWKS: http://{address}/_local/jwks.json)");
    let shutdown = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    serve(listener, gateway, shutdown)
        .await
        .map_err(|e| e.to_string())
}

fn run_token(args: &[String]) -> Result<(), String> {
    let user = args.first().filter(|u| !u.starts_with("--")).ok_or(USAGE)?;
    let ttl: i64 = flag(args, "--ttl")
        .unwrap_or_else(|| "43200".to_owned())
        .parse()
        .map_err(|_| "--ttl takes seconds".to_owned())?;
    let issuer = LocalIssuer::load_or_create(&issuer_dir()).map_err(|e| e.to_string())?;
    let token = issuer
        .mint(user, flag(args, "--name").as_deref(), ttl)
        .map_err(|e| e.to_string())?;
    println!("{token}");
    Ok(())
}

#[tokio::main]
async fn main() -> ExitCode {
    chat_shared::telemetry::init();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("serve") => run_serve(&args[1..]).await,
        Some("token") => run_token(&args[1..]),
        _ => Err(USAGE.to_owned()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("local-gateway: {e}");
            ExitCode::from(2)
        }
    }
}
