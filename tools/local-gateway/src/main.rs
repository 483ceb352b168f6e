//! `local-gateway serve [--port N]`: the local HTTP and WebSocket APIs on 127.0.0.1, the table
//! stream's poller (into `stream-publisher`) and the event stream's (into `stream-analytics`).
//! `local-gateway token USER [--name NAME] [--ttl SECONDS]`: prints a token of the local issuer.
//! `serve` also serves the web client's built files at `/` where no API route matches, from
//! `--web-root DIR`, else `$WEB_CLIENT_DIR`, else `examples/web-client/dist`.
//!
//! Both use the issuer key under `$CHAT_STACK_DIR/issuer` (made on first use).
#![allow(clippy::print_stdout, reason = "a command-line tool reports on stdout")]

use chat_functions::{stream_analytics, stream_publisher};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use chat_shared::platform::config::process_env;
use chat_shared::platform::time::Clock;
use chat_shared::services::deps::RouteDeps;
use local_gateway::event::ApiFacts;
use local_gateway::functions::LocalStack;
use local_gateway::issuer::LocalIssuer;
use local_gateway::server::{Gateway, parse_origins, serve};

const USAGE: &str = "usage: local-gateway serve [--port N] [--web-root DIR]\n       local-gateway token USER [--name NAME] [--ttl SECONDS]";

/// `$CHAT_STACK_DIR`, else the repository's `.local-stack`.
fn stack_dir() -> PathBuf {
    std::env::var("CHAT_STACK_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../.local-stack"))
}

fn issuer_dir() -> PathBuf {
    stack_dir().join("issuer")
}

/// The web client's files: `--web-root DIR`, else `$WEB_CLIENT_DIR`, else the repository's
/// `examples/web-client/dist` (built by `npm run build` there).
fn web_root(args: &[String]) -> PathBuf {
    flag(args, "--web-root")
        .or_else(|| std::env::var(local_gateway::web::WEB_ROOT_ENV).ok())
        .filter(|dir| !dir.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../examples/web-client/dist")
        })
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
    let mut deps = RouteDeps::from_env(&process_env())
        .await
        .map_err(|e| e.to_string())?;
    let stack = LocalStack::from_env()?;
    let issuer = LocalIssuer::load_or_create(&issuer_dir(), deps.store.clock())
        .map_err(|e| e.to_string())?;
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .map_err(|e| format!("cannot listen on 127.0.0.1:{port}: {e}"))?;
    let address = listener.local_addr().map_err(|e| e.to_string())?;
    // The functions post to this gateway's own @connections.
    deps.pusher = deps.pusher.at_endpoint(&format!("http://{address}/local"));
    let facts = ApiFacts {
        api_id: "local".to_owned(),
        stage: "$default".to_owned(),
        domain_name: address.to_string(),
    };
    let origins =
        parse_origins(&std::env::var("CORS_ALLOWED_ORIGINS").unwrap_or_else(|_| "*".to_owned()));
    let web = web_root(args);
    let gateway = Arc::new(
        Gateway::new(deps, &stack, issuer, facts, origins)
            .await?
            .with_web_root(Some(web.clone())),
    );
    let mut door = gateway.functions.door();
    // The IAM proxy over HTTPS too, for the cold-start benchmark's TLS columns: its certificate
    // chain and key, and the root a bootstrap is to trust it by (CHAT_IAM_TLS_ROOTS).
    if let (Ok(cert), Ok(key)) = (
        std::env::var("CHAT_IAM_TLS_CERT"),
        std::env::var("CHAT_IAM_TLS_KEY"),
    ) {
        let read = |path: &str| std::fs::read(path).map_err(|e| format!("{path}: {e}"));
        let url = gateway
            .functions
            .iam()
            .start_tls(&read(&cert)?, &read(&key)?)
            .await?;
        let roots = std::env::var("CHAT_IAM_TLS_ROOTS").unwrap_or(cert);
        door.tls = Some(local_gateway::functions::TlsDoor { url, roots });
    }
    let door = door
        .write(&stack_dir())
        .map_err(|e| format!("gateway-iam.json: {e}"))?;
    let events = start_event_pipeline(&gateway, &stack).await?;
    let fan_out = local_gateway::fan_out::start(&gateway).await?;
    let analytics = start_analytics(&gateway, &stack).await?;
    println!("local gateway on http://{address} (JWKS: http://{address}/_local/jwks.json)");
    println!(
        "every function's AWS calls are held to its role in template.yaml; bootstraps of other \
         processes (tools/local-invoke.sh) reach the emulators through the IAM proxy at {}",
        gateway.functions.aws_url()
    );
    let shown = web.canonicalize().unwrap_or_else(|_| web.clone());
    if web.join("index.html").is_file() {
        println!("web client: http://{address}/ (from {})", shown.display());
    } else {
        println!(
            "web client: no index.html in {} (build it: cd examples/web-client && npm run build)",
            shown.display()
        );
    }
    // Ctrl-C, or the TERM that tools/lib/gateway.sh stops it with.
    let shutdown = async {
        let terminate = async {
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(mut term) => {
                    term.recv().await;
                }
                Err(_) => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            () = terminate => {}
        }
    };
    let served = serve(listener, gateway, shutdown)
        .await
        .map_err(|e| e.to_string());
    events.abort();
    fan_out.task.abort();
    analytics.abort();
    let _ = std::fs::remove_file(door);
    served
}

/// Plays the table stream's event source mapping: the poller, with `stream-publisher`'s role as
/// Lambda's mapping has it, hands each batch to `stream-publisher`, which writes to
/// `EVENT_STREAM_NAME`.
async fn start_event_pipeline(
    gateway: &Gateway,
    stack: &LocalStack,
) -> Result<tokio::task::JoinHandle<()>, String> {
    const FUNCTION: &str = "stream-publisher";
    let sdk = chat_shared::platform::aws::load_sdk_config()
        .await
        .map_err(|e| e.to_string())?;
    let publisher = stream_publisher::Deps {
        sink: chat_shared::services::events::KinesisSink::new(
            gateway.functions.kinesis(FUNCTION, &sdk),
            stack.event_stream.clone(),
        ),
    };
    let stream_arn = local_gateway::stream_poller::table_stream_arn(gateway).await?;
    let streams = gateway.functions.dynamodb_streams(FUNCTION, &sdk);
    println!(
        "events: {stream_arn} -> Kinesis stream {}",
        stack.event_stream
    );
    let filters = local_gateway::filter::Filters::of_function(FUNCTION)?;
    Ok(tokio::spawn(async move {
        let handler = |event| {
            let sink = publisher.sink.clone();
            let admitted = filters.apply(event);
            async move {
                match admitted {
                    Some(event) => stream_publisher::publish_batch(&sink, event).await,
                    None => Default::default(),
                }
            }
        };
        local_gateway::stream_poller::run(streams, stream_arn, handler, std::future::pending())
            .await;
    }))
}

/// Plays the event stream's event source mapping: the poller, with `stream-analytics`'s role,
/// hands each batch of `EVENT_STREAM_NAME` to `stream-analytics`, which counts it into the table's
/// aggregates.
async fn start_analytics(
    gateway: &Gateway,
    stack: &LocalStack,
) -> Result<tokio::task::JoinHandle<()>, String> {
    const FUNCTION: &str = "stream-analytics";
    let store = gateway
        .functions
        .http(FUNCTION)
        .map(|d| d.store.clone())
        .ok_or("stream-analytics is not in the template")?;
    let analytics = Arc::new(stream_analytics::Deps {
        store,
        window: chat_shared::services::analytics::DedupeWindow::from_env(&process_env())
            .map_err(|e| e.to_string())?,
    });
    let sdk = chat_shared::platform::aws::load_sdk_config()
        .await
        .map_err(|e| e.to_string())?;
    let kinesis = gateway.functions.kinesis(FUNCTION, &sdk);
    let stream = stack.event_stream.clone();
    println!(
        "analytics: Kinesis stream {stream} -> aggregates in {}",
        gateway.deps.store.table()
    );
    Ok(tokio::spawn(async move {
        let handler = |event| {
            let analytics = analytics.clone();
            async move { stream_analytics::count_batch(&analytics, &event, None).await }
        };
        local_gateway::kinesis_poller::run(kinesis, stream, handler, std::future::pending()).await;
    }))
}

fn run_token(args: &[String]) -> Result<(), String> {
    let user = args.first().filter(|u| !u.starts_with("--")).ok_or(USAGE)?;
    let ttl: i64 = flag(args, "--ttl")
        .unwrap_or_else(|| "43200".to_owned())
        .parse()
        .map_err(|_| "--ttl takes seconds".to_owned())?;
    let clock = Clock::from_env(&process_env()).map_err(|e| e.to_string())?;
    let issuer = LocalIssuer::load_or_create(&issuer_dir(), clock).map_err(|e| e.to_string())?;
    let token = issuer
        .mint(user, flag(args, "--name").as_deref(), ttl)
        .map_err(|e| e.to_string())?;
    println!("{token}");
    Ok(())
}

#[tokio::main]
async fn main() -> ExitCode {
    chat_shared::platform::telemetry::init();
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
