//! `local-stack setup --table NAME --stream NAME [--template PATH]`: creates the chat table and the
//! event stream in the emulators that `AWS_ENDPOINT_URL_DYNAMODB` and `AWS_ENDPOINT_URL_KINESIS`
//! point at, as `template.yaml` defines them. What already exists is left as it is.
#![allow(clippy::print_stdout, reason = "a command-line tool reports on stdout")]

use std::path::PathBuf;
use std::process::ExitCode;

use local_stack::{SetupError, Template};

const USAGE: &str = "usage: local-stack setup --table NAME --stream NAME [--template PATH]";

struct Args {
    table: String,
    stream: String,
    template: Option<PathBuf>,
}

fn parse_args(mut args: impl Iterator<Item = String>) -> Result<Args, String> {
    if args.next().as_deref() != Some("setup") {
        return Err(USAGE.to_owned());
    }
    let (mut table, mut stream, mut template) = (None, None, None);
    while let Some(flag) = args.next() {
        let value = args
            .next()
            .ok_or_else(|| format!("{flag} needs a value\n{USAGE}"))?;
        match flag.as_str() {
            "--table" => table = Some(value),
            "--stream" => stream = Some(value),
            "--template" => template = Some(PathBuf::from(value)),
            _ => return Err(format!("unknown option {flag}\n{USAGE}")),
        }
    }
    Ok(Args {
        table: table.ok_or(USAGE)?,
        stream: stream.ok_or(USAGE)?,
        template,
    })
}

async fn setup(args: Args) -> Result<(), SetupError> {
    let template = match &args.template {
        Some(path) => Template::load(path)?,
        None => Template::of_this_repository()?,
    };
    let sdk = chat_shared::platform::aws::load_sdk_config().await?;
    let dynamo = aws_sdk_dynamodb::Client::new(&sdk);
    let kinesis = aws_sdk_kinesis::Client::new(&sdk);

    if local_stack::table_exists(&dynamo, &args.table).await? {
        println!("table {} exists", args.table);
    } else {
        let stream_arn = local_stack::create_table(&dynamo, &args.table, &template.table).await?;
        println!(
            "table {} created (stream {})",
            args.table,
            stream_arn.unwrap_or_default()
        );
    }
    if local_stack::stream_exists(&kinesis, &args.stream).await? {
        println!("stream {} exists", args.stream);
    } else {
        local_stack::create_stream(&kinesis, &args.stream, &template.stream).await?;
        println!("stream {} created", args.stream);
    }
    Ok(())
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let args = match parse_args(std::env::args().skip(1)) {
        Ok(args) => args,
        Err(usage) => {
            eprintln!("{usage}");
            return ExitCode::from(2);
        }
    };
    match setup(args).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("local-stack: {e}");
            ExitCode::FAILURE
        }
    }
}
