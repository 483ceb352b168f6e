//! The cold-start benchmark (`local-invoke cold-start`, run by `tools/bench-cold-start.sh`):
//! every function's release bootstrap, and a hello-world Rust Lambda built with the same profile
//! as the floor, started again and again under the Runtime Interface Emulator. Starts are
//! interleaved (one start of each bootstrap per round) so that drift in the machine hits them all
//! alike, and each is compared with the floor as a ratio of medians.
//!
//! Per start: init (the emulator's `INIT REPORT`: from exec until the runtime asks for its first
//! event), the first invoke and the median warm invoke (the emulator's `INVOKE RTDONE` duration),
//! and the bootstrap's peak RSS (`VmHWM`, read before the emulator stops it).
//!
//! With `--compare NAME=VALUE` each function is also started, in the same round, with that
//! variable added, and its init is a column of its own: `tools/bench-cold-start.sh` compares
//! `TLS_ROOTS=system` (the SDK's default trust store, read from the system at init) with the
//! default (Amazon's roots, compiled in; `chat_shared::aws`).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use crate::{Emulator, FunctionDef, InvokeError, environment, functions};

/// What one benchmark run needs.
#[derive(Debug)]
pub struct Options {
    /// `<dir>/<binary>/bootstrap`, as `cargo lambda build` lays them out, or `<dir>/<binary>`
    /// (`target/ci`).
    pub bootstraps: PathBuf,
    /// The hello-world bootstrap.
    pub floor: PathBuf,
    pub starts: usize,
    /// Warm invokes after the first, per start.
    pub warm: usize,
    pub emulator: PathBuf,
    pub work: PathBuf,
    /// A variable to start each function with once more per round, for the comparison column.
    pub compare: Option<(String, String)>,
}

/// One bootstrap under test: a function of the template, or the floor.
struct Subject {
    name: String,
    bootstrap: PathBuf,
    env: Vec<(String, String)>,
    event: Vec<u8>,
    samples: Vec<Sample>,
    /// Init with `Options::compare`; none for the floor.
    compare_init_ms: Vec<f64>,
}

#[derive(Debug, Clone, Copy)]
struct Sample {
    init_ms: f64,
    first_ms: f64,
    warm_ms: f64,
    rss_kib: u64,
}

/// The event file a function is invoked with: its first in `events/` (an empty table answers
/// most of them with 404 or 401 after the reads, which still makes every client's first call).
pub fn event_for(root: &Path, binary: &str) -> PathBuf {
    let events = root.join("events");
    let file = match binary {
        "ws-authorizer" => "websocket/authorizer-token.json".to_owned(),
        "stream-publisher" => "stream/table-changes.json".to_owned(),
        "stream-analytics" => "kinesis/analytics-events.json".to_owned(),
        "rotate-cursor-keys" => "schedule/rotate-cursor-keys.json".to_owned(),
        _ => match (binary.strip_prefix("http-"), binary.strip_prefix("ws-")) {
            (Some(route), _) => format!("http/{route}.json"),
            (_, Some(route)) => format!("websocket/{route}.json"),
            _ => format!("{binary}.json"),
        },
    };
    events.join(file)
}

/// `INIT REPORT(durationMs: 7.95)` and every `INVOKE RTDONE(… duration: 1.23ms)`, in order.
fn parse_log(log: &str) -> (Option<f64>, Vec<f64>) {
    let number = |s: &str| {
        s.chars()
            .take_while(|c| c.is_ascii_digit() || *c == '.')
            .collect::<String>()
            .parse::<f64>()
            .ok()
    };
    let init = log
        .lines()
        .find_map(|l| l.split("INIT REPORT(durationMs: ").nth(1).and_then(number));
    let invokes = log
        .lines()
        .filter(|l| l.contains("INVOKE RTDONE("))
        .filter_map(|l| l.rsplit("duration: ").next().and_then(number))
        .collect();
    (init, invokes)
}

fn peak_rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

fn median(mut values: Vec<f64>) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    values.sort_by(f64::total_cmp);
    let mid = values.len() / 2;
    if values.len() % 2 == 1 {
        values[mid]
    } else {
        (values[mid - 1] + values[mid]) / 2.0
    }
}

async fn start_once(
    o: &Options,
    subject: &Subject,
    round: usize,
    env: &[(String, String)],
) -> Result<Sample, InvokeError> {
    let log = o.work.join(format!("{}-{round}.log", subject.name));
    let emulator = Emulator::start(&o.emulator, &subject.bootstrap, env, &log).await?;
    let mut answers = Vec::new();
    for _ in 0..=o.warm {
        answers.push(emulator.invoke(&subject.event).await?);
    }
    let rss = emulator.bootstrap_pid().and_then(peak_rss_kib);
    let text = emulator.stop().await?;
    let (init, invokes) = parse_log(&text);
    let fail = |what: &str| {
        InvokeError::Template(format!("{}: {what} (log {})", subject.name, log.display()))
    };
    let init_ms = init.ok_or_else(|| fail("no INIT REPORT"))?;
    let first_ms = *invokes.first().ok_or_else(|| fail("no INVOKE RTDONE"))?;
    if answers.iter().any(|a| a.status != 200) {
        return Err(fail("the emulator answered other than 200"));
    }
    let _ = std::fs::remove_file(&log);
    Ok(Sample {
        init_ms,
        first_ms,
        warm_ms: median(invokes.get(1..).unwrap_or_default().to_vec()),
        rss_kib: rss.ok_or_else(|| fail("the bootstrap's peak RSS was not readable"))?,
    })
}

/// Runs the benchmark and returns its table (Markdown) and whether every aim was met.
pub async fn run(
    o: &Options,
    template: &str,
    local_value: impl Fn(&str) -> Option<String>,
    extra: impl Fn(&str) -> Result<Vec<(String, String)>, InvokeError>,
) -> Result<(String, bool), InvokeError> {
    let root = crate::repository_root();
    std::fs::create_dir_all(&o.work)?;
    let mut subjects = vec![Subject {
        name: "hello world (floor)".to_owned(),
        bootstrap: o.floor.clone(),
        env: vec![(
            "AWS_LAMBDA_FUNCTION_NAME".to_owned(),
            "cold-start-floor".to_owned(),
        )],
        event: b"{\"hello\": \"lambda\"}".to_vec(),
        samples: Vec::new(),
        compare_init_ms: Vec::new(),
    }];
    let mut defs: Vec<FunctionDef> = functions(template)?;
    defs.sort_by(|a, b| a.binary.cmp(&b.binary));
    for def in defs {
        subjects.push(Subject {
            bootstrap: Some(o.bootstraps.join(&def.binary).join("bootstrap"))
                .filter(|p| p.is_file())
                .unwrap_or_else(|| o.bootstraps.join(&def.binary)),
            env: environment(&def, &local_value, &extra(&def.binary)?)?,
            event: std::fs::read(event_for(&root, &def.binary))?,
            name: def.binary,
            samples: Vec::new(),
            compare_init_ms: Vec::new(),
        });
    }
    let compare_env: Vec<(String, String)> = o.compare.iter().cloned().collect();
    for round in 0..o.starts {
        for (i, subject) in subjects.iter_mut().enumerate() {
            let sample = start_once(o, subject, round, &subject.env).await?;
            subject.samples.push(sample);
            if i > 0 && !compare_env.is_empty() {
                let env = [subject.env.clone(), compare_env.clone()].concat();
                let sample = start_once(o, subject, round, &env).await?;
                subject.compare_init_ms.push(sample.init_ms);
            }
        }
    }

    let init_of = |s: &Subject| median(s.samples.iter().map(|x| x.init_ms).collect());
    let floor_init = init_of(&subjects[0]);
    let mut all_met = true;
    let compared = o
        .compare
        .as_ref()
        .map_or_else(|| "compared".to_owned(), |(k, v)| format!("{k}={v}"));
    let mut table = format!(
        "| bootstrap | stripped size (MB) | init (ms) | init ÷ floor | init, {compared} (ms) | ÷ floor | first invoke (ms) | warm invoke (ms) | peak RSS (MB) | aims |\n\
         |---|---:|---:|---:|---:|---:|---:|---:|---:|---|\n",
    );
    for s in &subjects {
        let size = std::fs::metadata(&s.bootstrap)?.len() as f64 / 1_000_000.0;
        let init = init_of(s);
        let ratio = if floor_init > 0.0 {
            init / floor_init
        } else {
            0.0
        };
        let (other, other_ratio) = if s.compare_init_ms.is_empty() || floor_init <= 0.0 {
            ("–".to_owned(), "–".to_owned())
        } else {
            let init = median(s.compare_init_ms.clone());
            (format!("{init:.1}"), format!("{:.2}", init / floor_init))
        };
        let first = median(s.samples.iter().map(|x| x.first_ms).collect());
        let warm = median(s.samples.iter().map(|x| x.warm_ms).collect());
        let rss = s
            .samples
            .iter()
            .map(|x| x.rss_kib)
            .max()
            .unwrap_or_default() as f64
            / 1024.0;
        let mut missed = Vec::new();
        if ratio > 2.0 {
            missed.push("init > 2× floor");
        }
        if size >= 8.0 {
            missed.push("size ≥ 8 MB");
        }
        if rss >= 32.0 {
            missed.push("RSS ≥ 32 MB");
        }
        all_met &= missed.is_empty();
        let _ = writeln!(
            table,
            "| {} | {size:.2} | {init:.1} | {ratio:.2} | {other} | {other_ratio} | {first:.1} | {warm:.2} | {rss:.1} | {} |",
            s.name,
            if missed.is_empty() {
                "met".to_owned()
            } else {
                missed.join(", ")
            }
        );
    }
    let _ = writeln!(
        table,
        "\nMedians of {} starts per bootstrap ({} warm invokes each); peak RSS is the highest of the starts. \
         Aims: init within 2× the floor, stripped size under 8 MB (10⁶ bytes), peak RSS under 32 MB (MiB); \
         init is judged by the `init (ms)` column, as the functions ship.{}",
        o.starts,
        o.warm,
        o.compare.as_ref().map_or_else(String::new, |(k, v)| format!(
            " The `{k}={v}` column starts each function once more per round with that variable set."
        ))
    );
    Ok((table, all_met))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_emulator_log_gives_init_and_invoke_durations() {
        let log = "x (rapid) INIT REPORT(durationMs: 7.954000)\n\
                   x (rapid) INVOKE RTDONE(status: success, produced bytes: 0, duration: 12.500000ms)\n\
                   x (rapid) INVOKE RTDONE(status: success, produced bytes: 0, duration: 1.250000ms)\n";
        let (init, invokes) = parse_log(log);
        assert_eq!(init, Some(7.954));
        assert_eq!(invokes, vec![12.5, 1.25]);
        assert_eq!(parse_log("nothing"), (None, Vec::new()));
    }

    #[test]
    fn every_function_has_an_event_file() {
        let root = crate::repository_root();
        let template = std::fs::read_to_string(root.join("template.yaml")).unwrap();
        for def in functions(&template).unwrap() {
            let event = event_for(&root, &def.binary);
            assert!(event.is_file(), "{}: no {}", def.binary, event.display());
        }
    }

    #[test]
    fn medians() {
        assert_eq!(median(vec![3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(vec![4.0, 1.0, 2.0, 3.0]), 2.5);
        assert_eq!(median(Vec::new()), 0.0);
    }
}
