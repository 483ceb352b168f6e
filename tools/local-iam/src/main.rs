//! `local-iam report USAGE_DIR [--check]`: each function's grants (template.yaml after SAM's
//! transform) against what the functions asked for in a run of the suite with
//! `CHAT_IAM_USAGE_DIR=USAGE_DIR`, as the Markdown of `docs/iam.md`. With `--check`, exits 1 when
//! a grant is neither used nor given a reason in `tools/iam/unused-grants.json`.
#![allow(clippy::print_stdout, reason = "a command-line tool reports on stdout")]

use std::path::PathBuf;
use std::process::ExitCode;

use local_iam::Policies;
use local_iam::report::{Reason, report, template_facts};

const USAGE: &str = "usage: local-iam report USAGE_DIR [--check]";

fn run(args: &[String]) -> Result<bool, String> {
    let (Some("report"), Some(dir)) = (args.first().map(String::as_str), args.get(1)) else {
        return Err(USAGE.to_owned());
    };
    let check = args.iter().any(|a| a == "--check");
    let root = local_iam::policies::repository_root();
    let facts = template_facts();
    let policies = Policies::of_this_repository(&facts).map_err(|e| e.to_string())?;
    let usage =
        local_iam::usage::read_dir(&PathBuf::from(dir)).map_err(|e| format!("{dir}: {e}"))?;
    let reasons_path = root.join("tools/iam/unused-grants.json");
    let reasons: Vec<Reason> = serde_json::from_slice(
        &std::fs::read(&reasons_path).map_err(|e| format!("{}: {e}", reasons_path.display()))?,
    )
    .map_err(|e| format!("{}: {e}", reasons_path.display()))?;
    let (tables, complete) = report(&policies, &usage, &reasons, &facts);
    println!("{}{tables}", include_str!("../../iam/report-head.md"));
    if check && !complete {
        eprintln!(
            "local-iam: a grant is never used in the suite and has no reason in tools/iam/unused-grants.json"
        );
    }
    Ok(complete || !check)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run(&args) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("local-iam: {e}");
            ExitCode::from(2)
        }
    }
}
