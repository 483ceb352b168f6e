//! `analytics-report [--day YYYY-MM-DD] [--json]`: prints the daily aggregates that
//! `stream-analytics` keeps (messages, active senders and new conversations of a UTC day, and the
//! messages of each conversation), read from `TABLE_NAME` through the SDK's usual configuration
//! (`eval "$(tools/stack.sh env)"` points it at the local stack). The day defaults to today (UTC, by
//! the application clock: `CHAT_CLOCK_OFFSET`).
#![allow(clippy::print_stdout, reason = "a command-line tool reports on stdout")]

use std::process::ExitCode;

use chat_shared::adapters::store::DynamoStore;
use chat_shared::adapters::store::StoreConfig;
use chat_shared::platform::config::process_env;
use chat_shared::platform::time::Clock;
use chat_shared::services::analytics::{Day, DayReport, report};

const USAGE: &str = "usage: analytics-report [--day YYYY-MM-DD] [--json]";

struct Options {
    day: Day,
    json: bool,
}

/// The options; the day defaults to `clock`'s today.
fn options(args: &[String], clock: Clock) -> Result<Options, String> {
    let mut out = Options {
        day: Day::of(clock.now()),
        json: false,
    };
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--day" => {
                let raw = args.next().ok_or(USAGE)?;
                out.day = raw.parse()?;
            }
            "--json" => out.json = true,
            "-h" | "--help" => return Err(USAGE.to_owned()),
            other => return Err(format!("unknown argument {other}\n{USAGE}")),
        }
    }
    Ok(out)
}

fn text(report: &DayReport, table: &str) -> String {
    let mut out = format!(
        "Aggregates of {} (UTC) in table {table}\n\
         messages            {}\n\
         active senders      {}\n\
         new conversations   {}\n",
        report.day, report.messages, report.active_senders, report.new_conversations
    );
    if !report.conversations.is_empty() {
        out.push_str("\nconversation                  messages  created\n");
        for c in &report.conversations {
            out.push_str(&format!(
                "{:<28}  {:>8}  {}\n",
                c.conversation_id,
                c.messages,
                if c.created { "yes" } else { "" }
            ));
        }
    }
    out
}

async fn run(args: &[String]) -> Result<(), String> {
    let env = process_env();
    let clock = Clock::from_env(&env).map_err(|e| e.to_string())?;
    let options = options(args, clock)?;
    let config = StoreConfig::from_env(&env).map_err(|e| e.to_string())?;
    let sdk = chat_shared::platform::aws::load_sdk_config()
        .await
        .map_err(|e| e.to_string())?;
    let table = config.table_name.to_string();
    let store = DynamoStore::new(
        aws_sdk_dynamodb::Client::new(&sdk),
        config.table_name,
        clock,
    );
    let found = report(&store, options.day)
        .await
        .map_err(|e| chat_shared::domain::error::ErrorChain(&e).to_string())?;
    if options.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&found).map_err(|e| e.to_string())?
        );
    } else {
        print!("{}", text(&found, &table));
    }
    Ok(())
}

#[tokio::main]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run(&args).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("analytics-report: {e}");
            ExitCode::from(2)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chat_shared::services::analytics::ConversationDay;

    fn args(raw: &[&str]) -> Vec<String> {
        raw.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn the_day_defaults_to_today_and_is_checked() {
        let clock = Clock::system();
        let before = Day::of(clock.now());
        let chosen = options(&[], clock).unwrap().day;
        assert!(
            chosen == before || chosen == Day::of(clock.now()),
            "at midnight, either"
        );
        // The application clock, not the machine's: a year on, another day.
        let year_on = clock.later_by(366 * 86_400);
        assert!(options(&[], year_on).unwrap().day > Day::of(clock.now()));
        let chosen = options(&args(&["--day", "2026-11-25", "--json"]), clock).unwrap();
        assert_eq!(chosen.day.to_string(), "2026-11-25");
        assert!(chosen.json);
        assert!(options(&args(&["--day", "25/11/2026"]), clock).is_err());
        assert!(options(&args(&["--day"]), clock).is_err());
        assert!(options(&args(&["--week"]), clock).is_err());
    }

    #[test]
    fn the_text_report_lists_totals_then_conversations() {
        let report = DayReport {
            day: "2026-11-25".parse().unwrap(),
            messages: 3,
            active_senders: 2,
            new_conversations: 1,
            conversations: vec![ConversationDay {
                conversation_id: "01JDQ7Z8K3M4N5P6Q7R8S9T0VW".to_owned(),
                messages: 3,
                created: true,
            }],
        };
        let out = text(&report, "chat-local");
        assert!(out.starts_with("Aggregates of 2026-11-25 (UTC) in table chat-local\n"));
        assert!(out.contains("active senders      2\n"));
        assert!(
            out.contains("01JDQ7Z8K3M4N5P6Q7R8S9T0VW           3  yes\n"),
            "{out}"
        );
    }
}
