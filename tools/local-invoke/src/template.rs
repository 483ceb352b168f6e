//! The functions of `template.yaml` as Lambda would run them: binary, environment variable names
//! (the globals' and the function's own), logging, timeout and memory.

use serde_norway::Value;

use crate::InvokeError;

/// One `AWS::Serverless::Function` with the globals applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FunctionDef {
    pub logical_id: String,
    /// `Handler`: the function's name (`http-get-me`), which the one binary (`chat-lambda`) reads
    /// as `_HANDLER` to pick the function it runs.
    pub handler: String,
    /// `Metadata.BuildProperties.Binary`: the binary that `sam build` builds (`chat-lambda`).
    pub binary: String,
    /// Names of the variables in `Environment.Variables`, globals first, without duplicates.
    pub variables: Vec<String>,
    /// `LoggingConfig.LogFormat`, which Lambda passes on as `AWS_LAMBDA_LOG_FORMAT`.
    pub log_format: Option<String>,
    /// `LoggingConfig.ApplicationLogLevel`, passed on as `AWS_LAMBDA_LOG_LEVEL`.
    pub log_level: Option<String>,
    pub timeout_seconds: Option<u64>,
    pub memory_mb: Option<u64>,
}

impl FunctionDef {
    /// Matches the logical id (`HttpGetMeFunction`) or the handler (`http-get-me`).
    pub fn is_named(&self, name: &str) -> bool {
        self.logical_id == name || self.handler == name
    }
}

fn text_at(v: &Value, path: &[&str]) -> Option<String> {
    let mut cur = v;
    for key in path {
        cur = cur.get(*key)?;
    }
    match cur {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn variable_names(v: &Value) -> Vec<String> {
    v.get("Environment")
        .and_then(|e| e.get("Variables"))
        .and_then(Value::as_mapping)
        .map(|m| {
            m.keys()
                .filter_map(|k| k.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

fn number_at(v: &Value, path: &[&str]) -> Option<u64> {
    text_at(v, path).and_then(|s| s.parse().ok())
}

/// Every function of the template, in template order.
pub fn functions(text: &str) -> Result<Vec<FunctionDef>, InvokeError> {
    let doc: Value =
        serde_norway::from_str(text).map_err(|e| InvokeError::Template(e.to_string()))?;
    let globals = doc
        .get("Globals")
        .and_then(|g| g.get("Function"))
        .cloned()
        .unwrap_or(Value::Null);
    let resources = doc
        .get("Resources")
        .and_then(Value::as_mapping)
        .ok_or_else(|| InvokeError::Template("no Resources".to_owned()))?;
    let mut out = Vec::new();
    for (id, resource) in resources {
        if text_at(resource, &["Type"]).as_deref() != Some("AWS::Serverless::Function") {
            continue;
        }
        let logical_id = id.as_str().unwrap_or("?").to_owned();
        let binary =
            text_at(resource, &["Metadata", "BuildProperties", "Binary"]).ok_or_else(|| {
                InvokeError::Template(format!("{logical_id}: no Metadata.BuildProperties.Binary"))
            })?;
        let props = resource.get("Properties").cloned().unwrap_or(Value::Null);
        let handler = text_at(&props, &["Handler"])
            .or_else(|| text_at(&globals, &["Handler"]))
            .ok_or_else(|| InvokeError::Template(format!("{logical_id}: no Handler")))?;
        let mut variables = variable_names(&globals);
        for name in variable_names(&props) {
            if !variables.contains(&name) {
                variables.push(name);
            }
        }
        let either = |path: &[&str]| text_at(&props, path).or_else(|| text_at(&globals, path));
        out.push(FunctionDef {
            logical_id,
            handler,
            binary,
            variables,
            log_format: either(&["LoggingConfig", "LogFormat"]),
            log_level: either(&["LoggingConfig", "ApplicationLogLevel"]),
            timeout_seconds: number_at(&props, &["Timeout"]).or(number_at(&globals, &["Timeout"])),
            memory_mb: number_at(&props, &["MemorySize"]).or(number_at(&globals, &["MemorySize"])),
        });
    }
    Ok(out)
}

/// The function named by logical id or handler.
pub fn find(text: &str, name: &str) -> Result<FunctionDef, InvokeError> {
    functions(text)?
        .into_iter()
        .find(|f| f.is_named(name))
        .ok_or_else(|| InvokeError::UnknownFunction(name.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEMPLATE: &str = r#"
Globals:
  Function:
    Timeout: 10
    MemorySize: 256
    LoggingConfig: { LogFormat: JSON, ApplicationLogLevel: INFO }
    Environment:
      Variables:
        TABLE_NAME: !Ref ChatTable
Resources:
  ChatTable:
    Type: AWS::DynamoDB::Table
  HttpGetMeFunction:
    Type: AWS::Serverless::Function
    Metadata:
      BuildProperties: { Binary: chat-lambda }
    Properties:
      Handler: http-get-me
      Timeout: 3
      Environment:
        Variables:
          TABLE_NAME: !Ref ChatTable
          REDIS_IAM_USER: !Ref CacheUser
"#;

    #[test]
    fn functions_carry_the_globals_and_their_own_settings() {
        let all = functions(TEMPLATE).unwrap();
        assert_eq!(all.len(), 1);
        let f = &all[0];
        assert_eq!(
            (f.handler.as_str(), f.binary.as_str()),
            ("http-get-me", "chat-lambda")
        );
        assert_eq!(f.variables, ["TABLE_NAME", "REDIS_IAM_USER"]);
        assert_eq!(f.log_format.as_deref(), Some("JSON"));
        assert_eq!((f.timeout_seconds, f.memory_mb), (Some(3), Some(256)));
        assert!(find(TEMPLATE, "HttpGetMeFunction").is_ok());
        assert!(find(TEMPLATE, "http-get-me").is_ok());
        assert!(matches!(
            find(TEMPLATE, "nope"),
            Err(InvokeError::UnknownFunction(_))
        ));
    }
}
