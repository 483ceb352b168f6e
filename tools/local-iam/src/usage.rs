//! What each function asked IAM for, so that a run of the suite can be compared with what each
//! function is granted (`local-iam report`). With `CHAT_IAM_USAGE_DIR` set, every distinct
//! (function, action, resource, partition key prefixes, decision) is appended once per process,
//! as a JSON line, to `<dir>/<pid>.jsonl`. Resources are written as the template names them
//! (`ChatTable`, `ChatTable/index/GSI1`, `EventStream`, `@connections/*`), so runs on different
//! tables add up.

use std::collections::BTreeSet;
use std::io::Write;
use std::path::PathBuf;
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

use crate::policy::{Authorization, Decision, StackFacts};

/// `CHAT_IAM_USAGE_DIR`: where the records go.
pub const USAGE_DIR_ENV: &str = "CHAT_IAM_USAGE_DIR";

/// One kind of call a function made.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct UsageLine {
    pub function: String,
    pub action: String,
    pub resource: String,
    /// The partition key prefixes (`USER#`, `CONV#`), sorted, for the table's actions.
    pub keys: Vec<String>,
    pub allowed: bool,
}

#[derive(Debug, Default)]
pub struct Usage {
    file: Option<PathBuf>,
    seen: Mutex<BTreeSet<UsageLine>>,
}

impl Usage {
    pub fn from_env() -> Self {
        let file = std::env::var_os(USAGE_DIR_ENV)
            .map(PathBuf::from)
            .map(|dir| dir.join(format!("{}.jsonl", std::process::id())));
        Self {
            file,
            seen: Mutex::default(),
        }
    }

    pub fn record(
        &self,
        function: &str,
        request: &Authorization,
        decision: &Decision,
        facts: &StackFacts,
    ) {
        let Some(file) = &self.file else { return };
        let mut keys: Vec<String> = request
            .context
            .get("dynamodb:leadingkeys")
            .into_iter()
            .flatten()
            .map(|k| recorded_key(k))
            .collect();
        keys.sort();
        keys.dedup();
        let line = UsageLine {
            function: function.to_owned(),
            action: request.action.clone(),
            resource: template_name(&request.resource, facts),
            keys,
            allowed: decision.allowed(),
        };
        let new = match self.seen.lock() {
            Ok(mut seen) => seen.insert(line.clone()),
            Err(_) => false,
        };
        if new
            && let Ok(text) = serde_json::to_string(&line)
            && let Some(dir) = file.parent()
            && std::fs::create_dir_all(dir).is_ok()
            && let Ok(mut out) = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(file)
        {
            let _ = writeln!(out, "{text}");
        }
    }
}

/// A resource ARN in the template's words.
pub fn template_name(resource: &str, facts: &StackFacts) -> String {
    let table = facts.table_arn(&facts.table);
    if let Some(rest) = resource.strip_prefix(&table) {
        return format!("ChatTable{rest}");
    }
    if resource == facts.stream_arn(&facts.event_stream) {
        return "EventStream".to_owned();
    }
    if let Some(stream) = resource.find("/stream/") {
        // DynamoDB Local's stream ARNs carry their own region and a creation time.
        if resource[..stream].ends_with(&format!("table/{}", facts.table)) {
            return "ChatTable/stream/*".to_owned();
        }
    }
    if resource == facts.elasticache_arn("replicationgroup", &facts.cache_id()) {
        return "Cache".to_owned();
    }
    if resource == facts.elasticache_arn("user", &facts.cache_user()) {
        return "CacheUser".to_owned();
    }
    if let Some(at) = resource.find("/@connections/") {
        let method = resource[..at].rsplit('/').next().unwrap_or_default();
        return format!("{method} @connections/*");
    }
    resource.to_owned()
}

/// Every line recorded under `dir`.
pub fn read_dir(dir: &std::path::Path) -> std::io::Result<BTreeSet<UsageLine>> {
    let mut all = BTreeSet::new();
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.extension().is_some_and(|e| e == "jsonl") {
            for line in std::fs::read_to_string(&path)?.lines() {
                if let Ok(usage) = serde_json::from_str(line) {
                    all.insert(usage);
                }
            }
        }
    }
    Ok(all)
}

/// How a partition key is recorded: by its prefix up to the first `#` (the rest names a user, a
/// conversation or a connection, which the record must not keep), except the configuration
/// items, whose whole key is a fixed name that a grant may name exactly (`CONFIG#cursor-keys`).
fn recorded_key(key: &str) -> String {
    match key.find('#') {
        Some(_) if key.starts_with("CONFIG#") => key.to_owned(),
        Some(i) => key[..=i].to_owned(),
        None => key.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::recorded_key;

    #[test]
    fn keys_are_recorded_by_prefix_but_configuration_items_whole() {
        assert_eq!(recorded_key("USER#ada"), "USER#");
        assert_eq!(recorded_key("CONV#01J#x"), "CONV#");
        assert_eq!(recorded_key("CONFIG#cursor-keys"), "CONFIG#cursor-keys");
        assert_eq!(recorded_key("plain"), "plain");
    }
}
