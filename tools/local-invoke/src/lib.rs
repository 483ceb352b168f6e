//! Runs a compiled bootstrap the way `sam local invoke` does, without Docker: under AWS's Runtime
//! Interface Emulator (the program SAM runs inside its container), with the environment that
//! `template.yaml` gives the function, pointed at the local stack.
//!
//! The environment is built from the template's variable *names*: each must have a local value,
//! or the run fails naming it. A variable added to the template therefore breaks the runtime
//! tests until the local stack knows what to give it, instead of being silently missing.

pub mod cold_start;
pub mod emulator;
pub mod template;

pub use emulator::{Emulator, Invocation};
pub use template::{FunctionDef, functions};

use std::path::{Path, PathBuf};

/// Everything that can go wrong before or while invoking.
#[derive(Debug, thiserror::Error)]
pub enum InvokeError {
    #[error("template.yaml: {0}")]
    Template(String),
    #[error("no function {0:?} in template.yaml (give its logical id or its handler)")]
    UnknownFunction(String),
    #[error(
        "{function}: template.yaml gives it {variable}, which the local stack has no value for"
    )]
    NoLocalValue { function: String, variable: String },
    #[error("the Runtime Interface Emulator is not at {0} (run tools/install.sh)")]
    NoEmulator(PathBuf),
    #[error("no bootstrap at {0} (build the function first)")]
    NoBootstrap(PathBuf),
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("invoke: {0}")]
    Http(#[from] reqwest::Error),
    #[error("the emulator exited before it was ready: {0}")]
    Exited(String),
    #[error("the emulator did not start within {0} s")]
    NotReady(u64),
    #[error("{0}")]
    NoGateway(String),
}

/// The repository root (this crate lives in `tools/local-invoke`).
pub fn repository_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The emulator shipped in the pinned `aws-sam-cli` wheel, which `tools/install.sh` installs
/// into `tools/.venv`; `AWS_LAMBDA_RIE` overrides it.
pub fn emulator_path() -> Result<PathBuf, InvokeError> {
    if let Some(path) = std::env::var_os("AWS_LAMBDA_RIE") {
        return Ok(PathBuf::from(path));
    }
    let lib = repository_root().join("tools/.venv/lib");
    let arch = if cfg!(target_arch = "aarch64") {
        "arm64"
    } else {
        "x86_64"
    };
    let wanted = format!("site-packages/samcli/local/rapid/aws-lambda-rie-{arch}");
    for entry in std::fs::read_dir(&lib).map_err(|_| InvokeError::NoEmulator(lib.clone()))? {
        let candidate = entry?.path().join(&wanted);
        if candidate.is_file() {
            return Ok(candidate);
        }
    }
    Err(InvokeError::NoEmulator(lib.join("python3.*").join(wanted)))
}

/// The environment Lambda would give the function: the template's variables with their local
/// values, its logging configuration as Lambda passes it on, and `extra` (the SDK's endpoints and
/// credentials, which Lambda provides by other means).
pub fn environment(
    function: &FunctionDef,
    local_value: impl Fn(&str) -> Option<String>,
    extra: &[(String, String)],
) -> Result<Vec<(String, String)>, InvokeError> {
    let mut env = Vec::new();
    for name in &function.variables {
        let value = local_value(name).ok_or_else(|| InvokeError::NoLocalValue {
            function: function.logical_id.clone(),
            variable: name.clone(),
        })?;
        env.push((name.clone(), value));
    }
    if let Some(format) = &function.log_format {
        env.push(("AWS_LAMBDA_LOG_FORMAT".to_owned(), format.clone()));
    }
    if let Some(level) = &function.log_level {
        env.push(("AWS_LAMBDA_LOG_LEVEL".to_owned(), level.clone()));
    }
    if let Some(timeout) = function.timeout_seconds {
        env.push((
            "AWS_LAMBDA_FUNCTION_TIMEOUT".to_owned(),
            timeout.to_string(),
        ));
    }
    if let Some(memory) = function.memory_mb {
        env.push((
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE".to_owned(),
            memory.to_string(),
        ));
    }
    env.push((
        "AWS_LAMBDA_FUNCTION_NAME".to_owned(),
        function.handler.clone(),
    ));
    // Lambda passes the function's `Handler` to a custom runtime as `_HANDLER`: the one binary
    // runs the function it names.
    env.push(("_HANDLER".to_owned(), function.handler.clone()));
    env.extend(extra.iter().cloned());
    Ok(env)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn def() -> FunctionDef {
        FunctionDef {
            logical_id: "HttpGetMeFunction".to_owned(),
            handler: "http-get-me".to_owned(),
            binary: "chat-lambda".to_owned(),
            variables: vec!["TABLE_NAME".to_owned(), "REDIS_IAM_USER".to_owned()],
            log_format: Some("JSON".to_owned()),
            log_level: Some("INFO".to_owned()),
            timeout_seconds: Some(10),
            memory_mb: None,
        }
    }

    #[test]
    fn every_template_variable_needs_a_local_value() {
        let err = environment(&def(), |_| None, &[]).unwrap_err();
        assert!(
            matches!(err, InvokeError::NoLocalValue { ref variable, .. } if variable == "TABLE_NAME")
        );
        let env = environment(
            &def(),
            |name| {
                (name == "TABLE_NAME")
                    .then(|| "t".to_owned())
                    .or(Some(String::new()))
            },
            &[("AWS_REGION".to_owned(), "us-east-1".to_owned())],
        )
        .unwrap();
        let get = |k: &str| env.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
        assert_eq!(get("TABLE_NAME"), Some("t"));
        assert_eq!(get("REDIS_IAM_USER"), Some(""));
        assert_eq!(get("AWS_LAMBDA_LOG_FORMAT"), Some("JSON"));
        assert_eq!(get("AWS_LAMBDA_FUNCTION_TIMEOUT"), Some("10"));
        assert_eq!(get("AWS_REGION"), Some("us-east-1"));
        assert_eq!(get("_HANDLER"), Some("http-get-me"));
    }
}
