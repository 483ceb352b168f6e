//! The cold-start benchmark (`local-invoke cold-start`, run by `tools/bench-cold-start.sh`):
//! every function's release bootstrap, and a hello-world Rust Lambda built with the same profile
//! as the floor, started again and again under the Runtime Interface Emulator. Starts are
//! interleaved (one start of each bootstrap per round, in an order shuffled per round) so that
//! drift in the machine, and a busy emulator after a heavy start, hit them all
//! alike, and each is compared with the floor as a ratio of medians.
//!
//! Per start: init (the emulator's `INIT REPORT`: from exec until the runtime asks for its first
//! event), the first invoke and the median warm invoke (the emulator's `INVOKE RTDONE` duration),
//! and the bootstrap's peak RSS (`VmHWM`, read before the emulator stops it).
//!
//! Each [`Variant`] starts every function once more per round with its variables changed, and
//! gives its init and first invoke columns of their own. `tools/bench-cold-start.sh` compares:
//! - `TLS_ROOTS=system` (the SDK's default trust store, read from the system at init) with the
//!   default (Amazon's roots, compiled in; `chat_shared::platform::aws`);
//! - **over TLS**: every AWS endpoint the IAM proxy's HTTPS front (`local_iam::tls`), its
//!   certificate the one root trusted, so that the first call pays the handshake every cold start
//!   on AWS pays (the plain columns are the emulators' plain HTTP);
//! - **Redis without IAM**: the stack's Redis directly, no `AUTH`, against the default's IAM
//!   token signed at the first connection (the one secret-like step left in a cold start; the
//!   cursor keys are read from the table by `http-list-conversations`' first list, in both).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use crate::{Emulator, FunctionDef, InvokeError, environment, functions};

/// The size aim, in 10⁶ bytes: one binary holds every function (docs/decisions/0003-one-binary.md);
/// it was 8 MB when each function had a binary of its own.
const MAX_SIZE_MB: f64 = 12.0;

/// What one benchmark run needs.
#[derive(Debug)]
pub struct Options {
    /// `<dir>/<binary>/bootstrap`, as `cargo lambda build` lays them out, or `<dir>/<binary>`
    /// (`target/release`): the one binary, `chat-lambda`, for every function.
    pub bootstraps: PathBuf,
    /// The hello-world bootstrap.
    pub floor: PathBuf,
    pub starts: usize,
    /// Warm invokes after the first, per start.
    pub warm: usize,
    pub emulator: PathBuf,
    pub work: PathBuf,
    /// Each is started once more per round, for its columns.
    pub variants: Vec<Variant>,
    /// Variables every function's starts get besides the template's (`--env`).
    pub env: Vec<(String, String)>,
    /// Only these functions (by handler), when not empty (`--only a,b`): to look at a few.
    pub only: Vec<String>,
}

/// A start with some variables set (`Some`) or removed (`None`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Variant {
    pub label: String,
    pub env: Vec<(String, Option<String>)>,
}

impl Variant {
    /// `LABEL:NAME=VALUE,-NAME,…` (`-NAME` removes the variable).
    pub fn parse(spec: &str) -> Result<Self, String> {
        let (label, changes) = spec
            .split_once(':')
            .ok_or_else(|| format!("{spec:?}: a variant is LABEL:NAME=VALUE,-NAME,…"))?;
        let env = changes
            .split(',')
            .map(|change| match change.strip_prefix('-') {
                Some(name) if !name.is_empty() => Ok((name.to_owned(), None)),
                _ => change
                    .split_once('=')
                    .filter(|(name, _)| !name.is_empty())
                    .map(|(name, value)| (name.to_owned(), Some(value.to_owned())))
                    .ok_or_else(|| format!("{change:?}: NAME=VALUE or -NAME")),
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self {
            label: label.to_owned(),
            env,
        })
    }

    /// `base` with this variant's changes.
    fn apply(&self, base: &[(String, String)]) -> Vec<(String, String)> {
        let mut env: Vec<(String, String)> = base
            .iter()
            .filter(|(name, _)| self.env.iter().all(|(changed, _)| changed != name))
            .cloned()
            .collect();
        env.extend(
            self.env
                .iter()
                .filter_map(|(name, value)| value.clone().map(|v| (name.clone(), v))),
        );
        env
    }
}

/// The order of the starts of round `round`: a permutation of `0..count`, another each round
/// (Fisher-Yates on a xorshift seeded by the round, so that a run repeats). A start right after
/// one whose first invoke left the emulators busy (`stream-publisher`'s puts to kinesis-mock) is
/// slower; in a fixed order the same function would always pay for it.
fn round_order(count: usize, round: usize) -> Vec<usize> {
    let mut order: Vec<usize> = (0..count).collect();
    let mut state =
        0x9E37_79B9_7F4A_7C15_u64 ^ (round as u64 + 1).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    for i in (1..count).rev() {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        let j = (state % (i as u64 + 1)) as usize;
        order.swap(i, j);
    }
    order
}

/// One bootstrap under test: a function of the template, or the floor.
struct Subject {
    name: String,
    bootstrap: PathBuf,
    env: Vec<(String, String)>,
    event: Vec<u8>,
    samples: Vec<Sample>,
    /// Per variant (`Options::variants`), its samples; none for the floor.
    variant_samples: Vec<Vec<Sample>>,
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
pub fn event_for(root: &Path, handler: &str) -> PathBuf {
    let events = root.join("events");
    let file = match handler {
        "ws-authorizer" => "websocket/authorizer-token.json".to_owned(),
        "stream-publisher" => "stream/table-changes.json".to_owned(),
        "stream-fan-out" => "stream/fan-out.json".to_owned(),
        "stream-analytics" => "kinesis/analytics-events.json".to_owned(),
        "rotate-cursor-keys" => "schedule/rotate-cursor-keys.json".to_owned(),
        _ => match (handler.strip_prefix("http-"), handler.strip_prefix("ws-")) {
            (Some(route), _) => format!("http/{route}.json"),
            (_, Some(route)) => format!("websocket/{route}.json"),
            _ => format!("{handler}.json"),
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
    // An AWS call that could not be sent (a refused connection, a failed TLS handshake) would
    // time a fallback, not the function.
    if text.contains("dispatch failure") {
        return Err(fail("an AWS call could not be sent (dispatch failure)"));
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
        variant_samples: Vec::new(),
    }];
    let mut defs: Vec<FunctionDef> = functions(template)?;
    defs.retain(|d| o.only.is_empty() || o.only.contains(&d.handler));
    defs.sort_by(|a, b| a.handler.cmp(&b.handler));
    for def in defs {
        subjects.push(Subject {
            bootstrap: Some(o.bootstraps.join(&def.binary).join("bootstrap"))
                .filter(|p| p.is_file())
                .unwrap_or_else(|| o.bootstraps.join(&def.binary)),
            env: [
                environment(&def, &local_value, &extra(&def.handler)?)?,
                o.env.clone(),
            ]
            .concat(),
            event: std::fs::read(event_for(&root, &def.handler))?,
            name: def.handler,
            samples: Vec::new(),
            variant_samples: vec![Vec::new(); o.variants.len()],
        });
    }
    for round in 0..o.starts {
        for index in round_order(subjects.len(), round) {
            let subject = &mut subjects[index];
            let sample = start_once(o, subject, round, &subject.env).await?;
            subject.samples.push(sample);
            for i in 0..subject.variant_samples.len() {
                let env = o.variants[i].apply(&subject.env);
                let sample = start_once(o, subject, round, &env).await?;
                subject.variant_samples[i].push(sample);
            }
        }
    }

    let init_of = |s: &Subject| median(s.samples.iter().map(|x| x.init_ms).collect());
    let floor_init = init_of(&subjects[0]);
    let mut all_met = true;
    let mut table =
        "| function | stripped size (MB) | init (ms) | init ÷ floor | first invoke (ms) | warm invoke (ms) | peak RSS (MB) | aims |"
            .to_owned();
    let mut rule = "|---|---:|---:|---:|---:|---:|---:|---|".to_owned();
    for variant in &o.variants {
        let _ = write!(
            table,
            " init, {0} (ms) | ÷ floor | first invoke, {0} (ms) |",
            variant.label
        );
        rule.push_str("---:|---:|---:|");
    }
    let _ = writeln!(table, "\n{rule}");
    for s in &subjects {
        let size = std::fs::metadata(&s.bootstrap)?.len() as f64 / 1_000_000.0;
        let init = init_of(s);
        let ratio = if floor_init > 0.0 {
            init / floor_init
        } else {
            0.0
        };
        let mut variants = String::new();
        for samples in &s.variant_samples {
            let init = median(samples.iter().map(|x| x.init_ms).collect());
            let first = median(samples.iter().map(|x| x.first_ms).collect());
            let ratio = if floor_init > 0.0 {
                init / floor_init
            } else {
                0.0
            };
            let _ = write!(variants, " {init:.1} | {ratio:.2} | {first:.1} |");
        }
        if s.variant_samples.is_empty() {
            variants = " – | – | – |".repeat(o.variants.len());
        }
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
        if size >= MAX_SIZE_MB {
            missed.push("size ≥ 12 MB");
        }
        if rss >= 32.0 {
            missed.push("RSS ≥ 32 MB");
        }
        all_met &= missed.is_empty();
        let _ = writeln!(
            table,
            "| {} | {size:.2} | {init:.1} | {ratio:.2} | {first:.1} | {warm:.2} | {rss:.1} | {} |{variants}",
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
         Aims: init within 2× the floor, stripped size under 12 MB (10⁶ bytes; one binary for every function), peak RSS under 32 MB (MiB); \
         init is judged by the `init (ms)` column, as the functions ship.{}",
        o.starts,
        o.warm,
        o.variants
            .iter()
            .map(|v| format!(
                " The `{}` columns start each function once more per round with {}.",
                v.label,
                v.env
                    .iter()
                    .map(|(name, value)| value.as_ref().map_or_else(
                        || format!("`{name}` unset"),
                        |value| format!("`{name}={value}`")
                    ))
                    .collect::<Vec<_>>()
                    .join(", ")
            ))
            .collect::<String>()
    );
    Ok((table, all_met))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_round_starts_each_subject_once_in_another_order() {
        let orders: Vec<Vec<usize>> = (0..10).map(|round| round_order(31, round)).collect();
        for order in &orders {
            let mut sorted = order.clone();
            sorted.sort_unstable();
            assert_eq!(sorted, (0..31).collect::<Vec<_>>());
        }
        // Who comes right before subject 24 varies from round to round.
        let before = |order: &Vec<usize>| {
            let at = order.iter().position(|&s| s == 24).unwrap();
            at.checked_sub(1).map(|i| order[i])
        };
        let predecessors: std::collections::BTreeSet<_> = orders.iter().map(before).collect();
        assert!(predecessors.len() >= 5, "{predecessors:?}");
        assert_eq!(round_order(31, 3), round_order(31, 3), "a run repeats");
    }

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
            let event = event_for(&root, &def.handler);
            assert!(event.is_file(), "{}: no {}", def.handler, event.display());
        }
    }

    #[test]
    fn a_variant_sets_and_removes_variables() {
        let variant = Variant::parse("no IAM:REDIS_URL=redis://x,-REDIS_IAM_USER").unwrap();
        assert_eq!(variant.label, "no IAM");
        let base = [
            ("REDIS_URL".to_owned(), "redis://front".to_owned()),
            ("REDIS_IAM_USER".to_owned(), "u".to_owned()),
            ("TABLE_NAME".to_owned(), "t".to_owned()),
        ];
        assert_eq!(
            variant.apply(&base),
            [
                ("TABLE_NAME".to_owned(), "t".to_owned()),
                ("REDIS_URL".to_owned(), "redis://x".to_owned()),
            ]
        );
        for bad in ["no colon", "x:", "x:=v", "x:-", "x:NAME"] {
            assert!(Variant::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn medians() {
        assert_eq!(median(vec![3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(vec![4.0, 1.0, 2.0, 3.0]), 2.5);
        assert_eq!(median(Vec::new()), 0.0);
    }
}
