//! Each function's grants against what it asked for in a run of the suite (`usage`): every
//! grant (an action of a statement of its role) is marked used, or carries the reason written in
//! `tools/iam/unused-grants.json` for keeping it; a grant with neither fails `--check`. Calls the
//! suite saw refused (the tests of the refusals make some) are listed too.

use std::collections::{BTreeMap, BTreeSet};

use serde::Deserialize;

use crate::policies::Policies;
use crate::policy::{Authorization, StackFacts, evaluate};
use crate::usage::{UsageLine, template_name};

/// Why a grant no test uses is kept. Each field given narrows it: a function, an action, a policy
/// (`source`, e.g. a managed policy's ARN), the statement's partition key patterns (`keys`).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Reason {
    #[serde(default)]
    pub function: Option<String>,
    #[serde(default)]
    pub action: Option<String>,
    #[serde(default)]
    pub source: Option<String>,
    #[serde(default)]
    pub keys: Option<Vec<String>>,
    pub reason: String,
}

impl Reason {
    fn covers(&self, function: &str, action: &str, source: &str, keys: &[String]) -> bool {
        self.function.as_deref().is_none_or(|f| f == function)
            && self.action.as_deref().is_none_or(|a| a == action)
            && self.source.as_deref().is_none_or(|s| s == source)
            && self.keys.as_deref().is_none_or(|k| k == keys)
    }
}

/// The names the report's ARNs are resolved with: the template's own.
pub fn template_facts() -> StackFacts {
    StackFacts {
        partition: "aws".to_owned(),
        region: "us-east-1".to_owned(),
        account: "000000000000".to_owned(),
        stack_name: "chat".to_owned(),
        table: "ChatTable".to_owned(),
        event_stream: "EventStream".to_owned(),
        websocket_api: "WebSocketApi".to_owned(),
        stage: "Stage".to_owned(),
    }
}

/// A usage line as the request it was (keys made from their prefixes).
fn as_request(line: &UsageLine, facts: &StackFacts) -> Authorization {
    let resource = if let Some(rest) = line.resource.strip_prefix("ChatTable") {
        format!("{}{rest}", facts.table_arn(&facts.table))
    } else if line.resource == "EventStream" {
        facts.stream_arn(&facts.event_stream)
    } else if line.resource == "Cache" {
        facts.elasticache_arn("replicationgroup", &facts.cache_id())
    } else if line.resource == "CacheUser" {
        facts.elasticache_arn("user", &facts.cache_user())
    } else if let Some(method) = line.resource.strip_suffix(" @connections/*") {
        facts.connection_arn(method, "id")
    } else {
        line.resource.clone()
    };
    let request = Authorization::new(line.action.clone(), resource);
    if line.keys.is_empty() {
        request
    } else {
        request.with(
            "dynamodb:LeadingKeys",
            // A prefix stands for any key under it; a whole key (see `usage`) for itself.
            line.keys.iter().map(|k| {
                if k.ends_with('#') {
                    format!("{k}x")
                } else {
                    k.clone()
                }
            }),
        )
    }
}

/// The report, and whether every grant is used or reasoned.
pub fn report(
    policies: &Policies,
    usage: &BTreeSet<UsageLine>,
    reasons: &[Reason],
    facts: &StackFacts,
) -> (String, bool) {
    let mut out = String::new();
    let mut complete = true;
    for (function, role) in &policies.functions {
        let used: Vec<&UsageLine> = usage.iter().filter(|u| &u.function == function).collect();
        // For each statement and action: the key prefixes used through it.
        let mut through: BTreeMap<(usize, String), BTreeSet<String>> = BTreeMap::new();
        for line in used.iter().filter(|u| u.allowed) {
            let request = as_request(line, facts);
            for (index, statement) in role.statements.iter().enumerate() {
                if evaluate(std::slice::from_ref(statement), &request).allowed() {
                    let keys = through.entry((index, line.action.clone())).or_default();
                    keys.extend(line.keys.iter().cloned());
                    if line.keys.is_empty() {
                        keys.insert(String::new());
                    }
                }
            }
        }
        out.push_str(&format!(
            "\n### `{function}` ({})\n\n| action | resource | partition keys | in the suite |\n|---|---|---|---|\n",
            role.role
        ));
        for (index, statement) in role.statements.iter().enumerate() {
            let resources: Vec<String> = statement
                .resources
                .iter()
                .map(|r| template_name(r, facts))
                .collect();
            let keys: Vec<String> = statement
                .conditions
                .iter()
                .flat_map(|c| c.values.iter().cloned())
                .collect();
            let keys_text = if keys.is_empty() {
                String::new()
            } else {
                format!("`{}`", keys.join("` `"))
            };
            let verdicts: Vec<(String, String)> = statement
                .actions
                .iter()
                .map(|action| {
                    let verdict = match through.get(&(index, action.clone())) {
                        Some(seen) => {
                            let seen: Vec<&str> = seen
                                .iter()
                                .filter(|k| !k.is_empty())
                                .map(String::as_str)
                                .collect();
                            if seen.is_empty() {
                                "used".to_owned()
                            } else {
                                format!("used: {}", seen.join(" "))
                            }
                        }
                        None => match reasons
                            .iter()
                            .find(|r| r.covers(function, action, &statement.source, &keys))
                        {
                            Some(reason) => format!("not called: {}", reason.reason),
                            None => {
                                complete = false;
                                "**never used, and no reason written**".to_owned()
                            }
                        },
                    };
                    (action.clone(), verdict)
                })
                .collect();
            // A statement none of whose actions is called, for one reason: one row.
            let one_reason = verdicts.len() > 1
                && verdicts[0].1.starts_with("not called")
                && verdicts.iter().all(|(_, v)| *v == verdicts[0].1);
            let rows = if one_reason {
                let actions: Vec<&str> = verdicts.iter().map(|(a, _)| a.as_str()).collect();
                vec![(actions.join("`, `"), verdicts[0].1.clone())]
            } else {
                verdicts
            };
            for (action, verdict) in rows {
                out.push_str(&format!(
                    "| `{action}` | `{}` | {keys_text} | {verdict} |\n",
                    resources.join("`, `"),
                ));
            }
        }
        let refused: Vec<&&UsageLine> = used.iter().filter(|u| !u.allowed).collect();
        if !refused.is_empty() {
            out.push_str(
                "\nRefused in the suite (the tests of refusals ask for these on purpose):",
            );
            for line in refused {
                out.push_str(&format!(
                    " `{}` on `{}`{};",
                    line.action,
                    line.resource,
                    if line.keys.is_empty() {
                        String::new()
                    } else {
                        format!(" ({})", line.keys.join(" "))
                    }
                ));
            }
            out.push('\n');
        }
    }
    (out, complete)
}
