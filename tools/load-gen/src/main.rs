//! `load-gen`: the load and delivery benchmark, the fan-out benchmark and the hot-conversation
//! benchmark, against a gateway (the local one by default). See BENCHMARKS.md and
//! `tools/bench-load.sh`, `tools/bench-fan-out.sh`, `tools/bench-hot.sh`, which start the stack
//! and the gateway around it.
//!
//! ```text
//! load-gen delivery [--url http://127.0.0.1:3000] [--users 100] [--sockets 2]
//!                   [--groups 50,25,10,5,3,2] [--rate 5] [--seconds 60] [--grace 15]
//!                   [--seed 1] [--out target/bench/load] [--lenient]
//! load-gen fan-out  [--url …] [--members 256] [--sockets 2] [--messages 10] [--label x]
//!                   [--push-concurrency N] [--gateway-log file]
//! load-gen hot      [--url …] [--writers 50,200] [--timeout 60] [--gateway-log file]
//! ```
//! Exits 1 when a message is lost, a push is missed or duplicated, or a send is refused
//! (delivery; with `--lenient`, a stress run, only when a message is lost), when a socket never
//! gets one (fan-out), or when an attempt is refused or a conversation's seq or rev has a gap
//! (hot); 2 when the run itself fails.
//!
//! `fan-out --push-concurrency N` (the gateway's `PUSH_CONCURRENCY`) also measures the bare
//! client at N posts in flight (`bare.rs`); it needs the stack's environment (`CHAT_STACK_DIR`,
//! `TABLE_NAME`, `AWS_REGION`) to find the gateway's `gateway-iam.json` and the table;
//! `--gateway-log` reads each `stream-fan-out` invocation's duration from the gateway's log.

#![allow(
    clippy::print_stdout,
    reason = "a command-line tool: its report is its output"
)]

mod api;
mod bare;
mod delivery;
mod fan_out;
mod hot;

use std::time::Duration;

fn flag<T: std::str::FromStr>(args: &[String], name: &str, default: T) -> Result<T, String> {
    match args.iter().position(|a| a == name) {
        None => Ok(default),
        Some(i) => args
            .get(i + 1)
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| format!("{name} needs a valid value")),
    }
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run(&args).await {
        Ok(true) => std::process::ExitCode::SUCCESS,
        Ok(false) => std::process::ExitCode::FAILURE,
        Err(error) => {
            eprintln!("load-gen: {error}");
            std::process::ExitCode::from(2)
        }
    }
}

async fn run(args: &[String]) -> Result<bool, api::Error> {
    let url: String = flag(args, "--url", "http://127.0.0.1:3000".to_owned())?;
    match args.first().map(String::as_str) {
        Some("delivery") => {
            let groups: String = flag(args, "--groups", "50,25,10,5,3,2".to_owned())?;
            let options = delivery::Options {
                base: url,
                users: flag(args, "--users", 100)?,
                sockets: flag(args, "--sockets", 2)?,
                groups: groups
                    .split(',')
                    .map(|g| g.trim().parse())
                    .collect::<Result<_, _>>()
                    .map_err(|_| "--groups: sizes separated by commas")?,
                rate: flag(args, "--rate", 5.0)?,
                duration: Duration::from_secs_f64(flag(args, "--seconds", 60.0)?),
                grace: Duration::from_secs_f64(flag(args, "--grace", 15.0)?),
                seed: flag(args, "--seed", 1)?,
                out: flag(args, "--out", "target/bench/load".into())?,
            };
            if options.users < 2 || options.sockets == 0 || options.rate <= 0.0 {
                return Err("--users ≥ 2, --sockets ≥ 1 and --rate > 0".into());
            }
            let lenient = args.iter().any(|a| a == "--lenient");
            let report = delivery::run(&options).await?;
            println!("{}", report.text);
            Ok(report.passes(lenient))
        }
        Some("fan-out") => {
            let options = fan_out::Options {
                base: url,
                members: flag(args, "--members", 256)?,
                sockets: flag(args, "--sockets", 2)?,
                messages: flag(args, "--messages", 10)?,
                label: flag(args, "--label", "-".to_owned())?,
                timeout: Duration::from_secs(30),
                bare: match flag(args, "--push-concurrency", 0)? {
                    0 => None,
                    n => Some(bare::Options::from_env(n)?),
                },
                gateway_log: match flag(args, "--gateway-log", String::new())? {
                    path if path.is_empty() => None,
                    path => Some(path.into()),
                },
            };
            if options.members < 2 || options.sockets == 0 {
                return Err("--members ≥ 2 and --sockets ≥ 1".into());
            }
            let report = fan_out::run(&options).await?;
            println!("{}", report.row);
            Ok(report.missing == 0)
        }
        Some("hot") => {
            let writers: String = flag(args, "--writers", "50,200".to_owned())?;
            let options = hot::Options {
                base: url,
                writers: writers
                    .split(',')
                    .map(|w| w.trim().parse())
                    .collect::<Result<_, _>>()
                    .map_err(|_| "--writers: counts separated by commas")?,
                timeout: Duration::from_secs_f64(flag(args, "--timeout", 60.0)?),
                gateway_log: match flag(args, "--gateway-log", String::new())? {
                    path if path.is_empty() => None,
                    path => Some(path.into()),
                },
            };
            if options.writers.is_empty()
                || options
                    .writers
                    .iter()
                    .any(|&w| !(2..=hot::MAX_WRITERS).contains(&w))
            {
                return Err(format!("--writers: each from 2 to {}", hot::MAX_WRITERS).into());
            }
            let report = hot::run(&options).await?;
            println!("{}", report.text);
            Ok(report.passes)
        }
        _ => {
            Err("usage: load-gen delivery|fan-out|hot [flags] (see the crate's doc comment)".into())
        }
    }
}
