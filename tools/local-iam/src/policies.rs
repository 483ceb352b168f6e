//! Each function's policies as deployed: `template.yaml` through SAM's own transform
//! (`tools/iam/sam_policies.py`, on the pinned `aws-sam-translator` in `tools/.venv`), then
//! resolved against the local stack ([`StackFacts`]). The transform takes about a second, so its
//! output is kept under `target/iam/`, named by the digest of everything it depends on.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::policy::{PolicyError, StackFacts, Statement, read_statement};

/// Why the policies could not be had.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("{0}: {1}")]
    Io(PathBuf, std::io::Error),
    #[error("the SAM transform needs tools/.venv (run tools/install.sh): {0}")]
    NoPython(std::io::Error),
    #[error("the SAM transform failed: {0}")]
    Transform(String),
    #[error("the SAM transform printed no JSON: {0}")]
    Json(serde_json::Error),
    #[error(transparent)]
    Policy(#[from] PolicyError),
}

/// The repository's root (this crate is `tools/local-iam`).
pub fn repository_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The transform's output for `template` (a path): every function's statements, unresolved.
pub fn transformed(template: &Path) -> Result<Value, LoadError> {
    let root = repository_root();
    let script = root.join("tools/iam/sam_policies.py");
    let managed = root.join("tools/iam/aws-managed-policies.json");
    let read = |p: &Path| std::fs::read(p).map_err(|e| LoadError::Io(p.to_owned(), e));
    let mut digest = aws_lc_rs::digest::Context::new(&aws_lc_rs::digest::SHA256);
    for part in [read(template)?, read(&script)?, read(&managed)?] {
        digest.update(&(part.len() as u64).to_be_bytes());
        digest.update(&part);
    }
    let name: String = digest
        .finish()
        .as_ref()
        .iter()
        .take(16)
        .map(|b| format!("{b:02x}"))
        .collect();
    let cache_dir = root.join("target/iam");
    let cached = cache_dir.join(format!("policies-{name}.json"));
    if let Ok(text) = std::fs::read(&cached)
        && let Ok(value) = serde_json::from_slice(&text)
    {
        return Ok(value);
    }
    let python = root.join("tools/.venv/bin/python");
    let output = std::process::Command::new(&python)
        .arg(&script)
        .arg(template)
        .env("AWS_DEFAULT_REGION", "us-east-1")
        .output()
        .map_err(LoadError::NoPython)?;
    if !output.status.success() {
        return Err(LoadError::Transform(
            String::from_utf8_lossy(&output.stderr).into_owned(),
        ));
    }
    let value: Value = serde_json::from_slice(&output.stdout).map_err(LoadError::Json)?;
    // Written whole, then renamed: tests running at once never read half a file.
    std::fs::create_dir_all(&cache_dir).map_err(|e| LoadError::Io(cache_dir.clone(), e))?;
    let partial = cache_dir.join(format!(".{name}.{}", ulid::Ulid::new()));
    std::fs::write(&partial, &output.stdout).map_err(|e| LoadError::Io(partial.clone(), e))?;
    std::fs::rename(&partial, &cached).map_err(|e| LoadError::Io(cached.clone(), e))?;
    Ok(value)
}

/// One function's role.
#[derive(Debug, Clone)]
pub struct FunctionPolicies {
    pub logical_id: String,
    pub role: String,
    pub statements: Vec<Statement>,
}

/// Every function's role, by function name (its `Handler`).
#[derive(Debug, Clone)]
pub struct Policies {
    pub functions: BTreeMap<String, FunctionPolicies>,
}

impl Policies {
    /// The repository's `template.yaml`, resolved against `facts`.
    pub fn of_this_repository(facts: &StackFacts) -> Result<Self, LoadError> {
        Self::of_template(&repository_root().join("template.yaml"), facts)
    }

    pub fn of_template(template: &Path, facts: &StackFacts) -> Result<Self, LoadError> {
        Ok(Self::resolve(&transformed(template)?, facts)?)
    }

    /// The transform's output resolved against `facts`.
    pub fn resolve(raw: &Value, facts: &StackFacts) -> Result<Self, PolicyError> {
        let mut functions = BTreeMap::new();
        for (name, function) in raw["functions"].as_object().into_iter().flatten() {
            let statements = function["statements"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|s| read_statement(s, facts))
                .collect::<Result<Vec<_>, _>>()?;
            functions.insert(
                name.clone(),
                FunctionPolicies {
                    logical_id: function["logicalId"]
                        .as_str()
                        .unwrap_or_default()
                        .to_owned(),
                    role: function["role"].as_str().unwrap_or_default().to_owned(),
                    statements,
                },
            );
        }
        Ok(Self { functions })
    }
}
