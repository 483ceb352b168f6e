//! `local-invoke <Function> -e <event.json> [--bootstrap <path>]`: what `sam local invoke` does,
//! without Docker. Prints the function's answer on stdout and its logs on stderr.
//!
//! The function is a logical id of `template.yaml` or its handler (`http-get-me`). The bootstrap
//! defaults to `target/ci/chat-lambda` (what `tools/local-invoke.sh` builds), which runs the
//! function that `_HANDLER` names. Local values come from the
//! environment of `tools/stack.sh env`, and the local gateway (`tools/run-local.sh`) gives
//! `@connections`, the issuer's JWKS, and the stack's IAM: the function signs as itself and its
//! calls are held to its role, as on AWS.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use local_invoke::cold_start::Variant;
use local_invoke::{Emulator, InvokeError, emulator_path, environment, repository_root};

struct Args {
    function: String,
    event: PathBuf,
    bootstrap: Option<PathBuf>,
}

fn parse_args(mut args: impl Iterator<Item = String>) -> Result<Args, String> {
    let mut function = None;
    let mut event = None;
    let mut bootstrap = None;
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "-e" | "--event" => event = args.next().map(PathBuf::from),
            "--bootstrap" => bootstrap = args.next().map(PathBuf::from),
            other if !other.starts_with('-') && function.is_none() => {
                function = Some(other.to_owned())
            }
            other => return Err(format!("unexpected argument {other:?}")),
        }
    }
    Ok(Args {
        function: function.ok_or("name a function")?,
        event: event.ok_or("give an event file with -e")?,
        bootstrap,
    })
}

/// The local value of each variable the template may give a function: the running gateway's
/// Redis front and whom to connect to it as (its door), then this process's environment
/// (`tools/stack.sh env`) with the local gateway's defaults.
fn local_value(name: &str) -> Option<String> {
    if let Some(value) = read_door().ok().and_then(|door| door.redis_value(name)) {
        return Some(value);
    }
    let gateway = format!(
        "http://127.0.0.1:{}",
        std::env::var("GATEWAY_PORT").unwrap_or_else(|_| "3000".to_owned())
    );
    let default = match name {
        "AWS_ENDPOINT_URL_APIGATEWAYMANAGEMENTAPI" => Some(format!("{gateway}/local")),
        "JWT_ISSUER" => Some(local_gateway::issuer::LOCAL_ISSUER.to_owned()),
        "JWT_AUDIENCE" => Some(local_gateway::issuer::LOCAL_AUDIENCE.to_owned()),
        // The template's default.
        "EVENT_STREAM_RETENTION_HOURS" => Some("24".to_owned()),
        _ => None,
    };
    std::env::var(name).ok().or(default)
}

/// The running local gateway's door (`gateway-iam.json` in the stack's directory).
fn read_door() -> Result<local_gateway::functions::IamDoor, InvokeError> {
    let stack_dir = std::env::var("CHAT_STACK_DIR")
        .map_or_else(|_| repository_root().join(".local-stack"), PathBuf::from);
    local_gateway::functions::IamDoor::read(&stack_dir).map_err(InvokeError::NoGateway)
}

/// What Lambda provides by other means: the region, and the function's own credentials and
/// endpoints: the running local gateway's IAM proxy (`gateway-iam.json` in the stack's directory),
/// which holds every call to the function's role as deployed.
fn sdk_environment(function: &str) -> Result<Vec<(String, String)>, InvokeError> {
    let gateway_port = std::env::var("GATEWAY_PORT").unwrap_or_else(|_| "3000".to_owned());
    let door = read_door()?;
    let mut env: Vec<(String, String)> = [
        "AWS_REGION",
        "RUST_LOG",
        chat_shared::platform::time::Clock::OFFSET_ENV,
    ]
    .into_iter()
    .filter_map(|k| std::env::var(k).ok().map(|v| (k.to_owned(), v)))
    .collect();
    env.extend(door.sdk_environment(function));
    env.push(("AWS_EC2_METADATA_DISABLED".to_owned(), "true".to_owned()));
    // The local issuer's keys, found by discovery as in AWS, but from the document the gateway
    // serves for it (the issuer's own name serves nothing), unless JWKS_URL names them.
    match std::env::var("JWKS_URL") {
        Ok(url) => env.push(("JWKS_URL".to_owned(), url)),
        Err(_) => env.push((
            "OIDC_DISCOVERY_URL".to_owned(),
            std::env::var("OIDC_DISCOVERY_URL").unwrap_or_else(|_| {
                format!(
                    "http://127.0.0.1:{gateway_port}{}",
                    local_gateway::issuer::DISCOVERY_PATH
                )
            }),
        )),
    }
    Ok(env)
}

async fn run(args: Args) -> Result<bool, InvokeError> {
    let root = repository_root();
    let template = std::fs::read_to_string(root.join("template.yaml"))?;
    let function = local_invoke::template::find(&template, &args.function)?;
    let env = environment(&function, local_value, &sdk_environment(&function.handler)?)?;
    let bootstrap = args
        .bootstrap
        .unwrap_or_else(|| root.join("target/ci").join(&function.binary));
    let event = std::fs::read(&args.event)?;
    let log_path = std::env::temp_dir().join(format!(
        "local-invoke-{}-{}.log",
        function.handler,
        std::process::id()
    ));
    let emulator = Emulator::start(&emulator_path()?, &bootstrap, &env, &log_path).await?;
    let result = emulator.invoke(&event).await;
    let logs = emulator.stop().await?;
    let _ = std::fs::remove_file(&log_path);
    let invocation = result?;
    let _ = std::io::stderr().write_all(logs.as_bytes());
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(&invocation.body);
    let _ = writeln!(out);
    Ok(invocation.status == 200)
}

/// `local-invoke cold-start --bootstraps <dir> --floor <bootstrap> [--starts 10] [--warm 5]
/// [--work <dir>] [--env NAME=VALUE]… [--variant LABEL:NAME=VALUE,-NAME,…]… [--tls]
/// [--only HANDLER,…]`: the
/// cold-start table (`local_invoke::cold_start`) on stdout; exit 1 when a bootstrap misses an
/// aim. `--env` gives every function's starts a variable besides the template's. `--tls` adds
/// the "over TLS" variant: every AWS endpoint the running gateway's HTTPS front of its IAM proxy
/// (its door's `tls`), that certificate the one trusted root. `--only` starts those functions
/// (and the floor) only.
async fn cold_start(args: &[String]) -> Result<bool, InvokeError> {
    let value = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .cloned()
    };
    let number = |name: &str, default: usize| {
        value(name).map_or(Ok(default), |v| {
            v.parse()
                .map_err(|_| InvokeError::Template(format!("{name} must be a number")))
        })
    };
    let mut variants = args
        .windows(2)
        .filter(|pair| pair[0] == "--variant")
        .map(|pair| Variant::parse(&pair[1]).map_err(InvokeError::Template))
        .collect::<Result<Vec<_>, _>>()?;
    if args.iter().any(|a| a == "--tls") {
        let tls = read_door()?.tls.ok_or_else(|| {
            InvokeError::Template(
                "--tls: the gateway serves no HTTPS front (start it with CHAT_IAM_TLS_CERT and CHAT_IAM_TLS_KEY)"
                    .to_owned(),
            )
        })?;
        let mut env: Vec<(String, Option<String>)> = [
            "AWS_ENDPOINT_URL_DYNAMODB",
            "AWS_ENDPOINT_URL_DYNAMODB_STREAMS",
            "AWS_ENDPOINT_URL_KINESIS",
        ]
        .into_iter()
        .map(|name| (name.to_owned(), Some(tls.url.clone())))
        .collect();
        env.push(("TLS_ROOTS".to_owned(), Some(tls.roots.clone())));
        variants.push(Variant {
            label: "over TLS".to_owned(),
            env,
        });
    }
    let root = repository_root();
    let options = local_invoke::cold_start::Options {
        bootstraps: value("--bootstraps").map_or_else(|| root.join("target/lambda"), PathBuf::from),
        floor: value("--floor").map_or_else(
            || root.join("target/lambda/cold-start-floor/bootstrap"),
            PathBuf::from,
        ),
        starts: number("--starts", 10)?,
        warm: number("--warm", 5)?,
        emulator: emulator_path()?,
        work: value("--work").map_or_else(|| root.join("target/bench/cold-start"), PathBuf::from),
        variants,
        only: value("--only")
            .map(|list| list.split(',').map(str::to_owned).collect())
            .unwrap_or_default(),
        env: args
            .windows(2)
            .filter(|pair| pair[0] == "--env")
            .map(|pair| {
                pair[1]
                    .split_once('=')
                    .map(|(name, value)| (name.to_owned(), value.to_owned()))
                    .ok_or_else(|| InvokeError::Template("--env takes NAME=VALUE".to_owned()))
            })
            .collect::<Result<_, _>>()?,
    };
    let template = std::fs::read_to_string(root.join("template.yaml"))?;
    let (table, met) =
        local_invoke::cold_start::run(&options, &template, local_value, &sdk_environment).await?;
    let _ = write!(std::io::stdout(), "{table}");
    Ok(met)
}

#[tokio::main]
async fn main() -> ExitCode {
    let mut raw = std::env::args().skip(1).peekable();
    if raw.peek().map(String::as_str) == Some("cold-start") {
        let rest: Vec<String> = raw.skip(1).collect();
        return match cold_start(&rest).await {
            Ok(true) => ExitCode::SUCCESS,
            Ok(false) => ExitCode::FAILURE,
            Err(e) => {
                eprintln!("local-invoke cold-start: {e}");
                ExitCode::from(2)
            }
        };
    }
    let args = match parse_args(raw) {
        Ok(args) => args,
        Err(e) => {
            eprintln!(
                "local-invoke: {e}\nusage: local-invoke <Function> -e <event.json> [--bootstrap <path>]"
            );
            return ExitCode::from(2);
        }
    };
    match run(args).await {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("local-invoke: {e}");
            ExitCode::FAILURE
        }
    }
}
