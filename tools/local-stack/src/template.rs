//! The parts of `template.yaml` the local stack builds from, as typed structs.
//!
//! CloudFormation's short-form tags (`!Ref`, `!Sub` …) parse as tagged YAML values. The resources
//! are read as CloudFormation deploys them with every parameter at its default: a `Ref` to a
//! parameter is its `Default`, an `Fn::If` is decided on the template's `Conditions`, and a value
//! of `Ref AWS::NoValue` drops its property. Any other intrinsic is left as it is, so only the
//! properties that mean something in AWS alone may use one.

use serde::Deserialize;
use serde_norway::Value;

use crate::{AwsOnly, SetupError};

/// The logical ids of the resources that the local stack creates.
pub const TABLE_RESOURCE: &str = "ChatTable";
pub const STREAM_RESOURCE: &str = "EventStream";

#[derive(Debug)]
pub struct Template {
    pub table: TableProperties,
    pub stream: StreamProperties,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct TableProperties {
    pub billing_mode: String,
    pub attribute_definitions: Vec<AttributeDef>,
    pub key_schema: Vec<KeyElement>,
    #[serde(default)]
    pub global_secondary_indexes: Vec<IndexDef>,
    #[serde(default)]
    pub local_secondary_indexes: Vec<IndexDef>,
    pub stream_specification: Option<StreamSpec>,
    pub time_to_live_specification: Option<TtlSpec>,
    // Meaningful in AWS only.
    pub point_in_time_recovery_specification: Option<AwsOnly>,
    #[serde(rename = "SSESpecification")]
    pub sse_specification: Option<AwsOnly>,
    pub deletion_protection_enabled: Option<AwsOnly>,
    pub tags: Option<AwsOnly>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct AttributeDef {
    pub attribute_name: String,
    pub attribute_type: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct KeyElement {
    pub attribute_name: String,
    pub key_type: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct IndexDef {
    pub index_name: String,
    pub key_schema: Vec<KeyElement>,
    pub projection: ProjectionDef,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct ProjectionDef {
    pub projection_type: String,
    #[serde(default)]
    pub non_key_attributes: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct StreamSpec {
    pub stream_view_type: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct TtlSpec {
    pub attribute_name: String,
    pub enabled: bool,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct StreamProperties {
    pub stream_mode_details: Option<StreamModeDef>,
    pub shard_count: Option<i32>,
    // Meaningful in AWS only.
    pub retention_period_hours: Option<AwsOnly>,
    pub stream_encryption: Option<AwsOnly>,
    pub tags: Option<AwsOnly>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct StreamModeDef {
    pub stream_mode: String,
}

fn properties<T: serde::de::DeserializeOwned>(
    doc: &Value,
    logical_id: &str,
) -> Result<T, SetupError> {
    let props = doc
        .get("Resources")
        .and_then(|r| r.get(logical_id))
        .and_then(|r| r.get("Properties"))
        .ok_or_else(|| SetupError::Template(format!("no Resources.{logical_id}.Properties")))?;
    let props = AtDefaults { doc }
        .resolve(props)
        .map_err(|e| SetupError::Template(format!("{logical_id}: {e}")))?
        .unwrap_or(Value::Null);
    serde_norway::from_value(props).map_err(|e| SetupError::Template(format!("{logical_id}: {e}")))
}

/// An intrinsic function, short form (`!If [...]`) or long (`{"Fn::If": [...]}`): its name without
/// `Fn::` and its argument.
fn intrinsic(value: &Value) -> Option<(String, &Value)> {
    match value {
        Value::Tagged(tagged) => {
            let tag = tagged.tag.to_string();
            Some((tag.trim_start_matches('!').to_owned(), &tagged.value))
        }
        Value::Mapping(map) if map.len() == 1 => {
            let (key, arg) = map.iter().next()?;
            let key = key.as_str()?;
            match key.strip_prefix("Fn::") {
                Some(name) => Some((name.to_owned(), arg)),
                None if key == "Ref" => Some((key.to_owned(), arg)),
                None => None,
            }
        }
        _ => None,
    }
}

/// The template's values at its parameters' defaults (see the module's doc).
struct AtDefaults<'a> {
    doc: &'a Value,
}

impl AtDefaults<'_> {
    /// The value with the parameters' defaults in; `None` for `Ref AWS::NoValue`.
    fn resolve(&self, value: &Value) -> Result<Option<Value>, String> {
        if let Some((name, arg)) = intrinsic(value) {
            return match name.as_str() {
                "Ref" => {
                    let target = arg.as_str().ok_or("a Ref names no parameter or resource")?;
                    if target == "AWS::NoValue" {
                        return Ok(None);
                    }
                    match self.doc.get("Parameters").and_then(|p| p.get(target)) {
                        Some(parameter) => match parameter.get("Default") {
                            Some(default) => Ok(Some(default.clone())),
                            None => Err(format!("parameter {target} has no Default")),
                        },
                        // A resource or a pseudo parameter: a value only AWS has.
                        None => Ok(Some(value.clone())),
                    }
                }
                "If" => {
                    let args = arg.as_sequence().filter(|a| a.len() == 3);
                    let (Some(args), Some(condition)) = (args, args.and_then(|a| a[0].as_str()))
                    else {
                        return Err("an If takes a condition name and two values".to_owned());
                    };
                    let branch = if self.condition(condition)? {
                        &args[1]
                    } else {
                        &args[2]
                    };
                    self.resolve(branch)
                }
                _ => Ok(Some(value.clone())),
            };
        }
        match value {
            Value::Mapping(map) => {
                let mut out = serde_norway::Mapping::new();
                for (key, item) in map {
                    if let Some(item) = self.resolve(item)? {
                        out.insert(key.clone(), item);
                    }
                }
                Ok(Some(Value::Mapping(out)))
            }
            Value::Sequence(items) => {
                let mut out = Vec::with_capacity(items.len());
                for item in items {
                    if let Some(item) = self.resolve(item)? {
                        out.push(item);
                    }
                }
                Ok(Some(Value::Sequence(out)))
            }
            other => Ok(Some(other.clone())),
        }
    }

    /// A condition of the template's `Conditions`, at the defaults.
    fn condition(&self, name: &str) -> Result<bool, String> {
        let condition = self
            .doc
            .get("Conditions")
            .and_then(|c| c.get(name))
            .ok_or_else(|| format!("no condition {name}"))?;
        self.truth(condition)
    }

    fn truth(&self, value: &Value) -> Result<bool, String> {
        let (name, arg) = match value {
            Value::Mapping(map) if map.len() == 1 && map.contains_key("Condition") => {
                ("Condition".to_owned(), &map["Condition"])
            }
            _ => intrinsic(value).ok_or("a condition is not a condition function")?,
        };
        let args = || arg.as_sequence().ok_or(format!("{name} takes a list"));
        match name.as_str() {
            "Condition" => self.condition(arg.as_str().ok_or("Condition takes a name")?),
            "Equals" => match args()?.as_slice() {
                [a, b] => Ok(self.scalar(a)? == self.scalar(b)?),
                _ => Err("Equals takes two values".to_owned()),
            },
            "Not" => match args()?.as_slice() {
                [c] => Ok(!self.truth(c)?),
                _ => Err("Not takes one condition".to_owned()),
            },
            "And" => args()?
                .iter()
                .try_fold(true, |all, c| Ok(all && self.truth(c)?)),
            "Or" => args()?
                .iter()
                .try_fold(false, |any, c| Ok(any || self.truth(c)?)),
            other => Err(format!("{other} is not a condition function")),
        }
    }

    /// A value compared by Equals, as the string CloudFormation compares.
    fn scalar(&self, value: &Value) -> Result<String, String> {
        match self.resolve(value)? {
            Some(Value::String(s)) => Ok(s),
            Some(Value::Number(n)) => Ok(n.to_string()),
            Some(Value::Bool(b)) => Ok(b.to_string()),
            _ => Err("Equals compares a value only AWS has".to_owned()),
        }
    }
}

/// An HTTP API route of a function in the template: `Events.*` of `Type: HttpApi`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct TemplateRoute {
    pub method: String,
    pub path: String,
    /// `Handler`: the function's name (the one binary runs the function it names).
    pub function: String,
}

/// Every `HttpApi` event of every `AWS::Serverless::Function`, sorted.
pub fn http_api_routes(text: &str) -> Result<Vec<TemplateRoute>, SetupError> {
    let doc = parse_template(text)?;
    let mut routes = Vec::new();
    for (id, function, event) in function_events(resources(&doc)?, "HttpApi") {
        let text_at = |path: &[&str]| at(event, path).and_then(Value::as_str).map(str::to_owned);
        let (Some(method), Some(path)) = (
            text_at(&["Properties", "Method"]),
            text_at(&["Properties", "Path"]),
        ) else {
            return Err(SetupError::Template(format!(
                "{id}: an HttpApi event needs Method and Path"
            )));
        };
        routes.push(TemplateRoute {
            method: method.to_ascii_uppercase(),
            path,
            function: handler_of(id, function)?.to_owned(),
        });
    }
    routes.sort();
    Ok(routes)
}

/// The filter patterns (`FilterCriteria.Filters[].Pattern`, as JSON) of the `DynamoDB` event of
/// the function whose `Handler` is `handler`: what its event source mapping hands it. Empty when
/// the event has none (every record).
pub fn stream_filters(text: &str, handler: &str) -> Result<Vec<serde_json::Value>, SetupError> {
    let doc = parse_template(text)?;
    let resources = resources(&doc)?;
    let is_it = |function: &Value| {
        at(function, &["Properties", "Handler"]).and_then(Value::as_str) == Some(handler)
    };
    if !of_type(resources, "AWS::Serverless::Function").any(|(_, f)| is_it(f)) {
        return Err(SetupError::Template(format!(
            "no function with Handler {handler}"
        )));
    }
    let mut patterns = Vec::new();
    for (_, _, event) in function_events(resources, "DynamoDB").filter(|(_, f, _)| is_it(f)) {
        let filters =
            at(event, &["Properties", "FilterCriteria", "Filters"]).and_then(Value::as_sequence);
        for filter in filters.into_iter().flatten() {
            let pattern = filter
                .get("Pattern")
                .and_then(Value::as_str)
                .ok_or_else(|| {
                    SetupError::Template(format!("{handler}: a filter without Pattern"))
                })?;
            patterns.push(
                serde_json::from_str(pattern).map_err(|e| {
                    SetupError::Template(format!("{handler}: filter {pattern}: {e}"))
                })?,
            );
        }
    }
    Ok(patterns)
}

fn parse_template(text: &str) -> Result<Value, SetupError> {
    serde_norway::from_str(text).map_err(|e| SetupError::Template(e.to_string()))
}

/// The template's `Resources`.
fn resources(doc: &Value) -> Result<&serde_norway::Mapping, SetupError> {
    doc.get("Resources")
        .and_then(Value::as_mapping)
        .ok_or_else(|| SetupError::Template("no Resources".to_owned()))
}

/// A function's `Handler` (the name the one binary runs it by).
fn handler_of<'a>(id: &str, function: &'a Value) -> Result<&'a str, SetupError> {
    at(function, &["Properties", "Handler"])
        .and_then(Value::as_str)
        .ok_or_else(|| SetupError::Template(format!("{id}: no Handler")))
}

/// Each event of type `kind` (`HttpApi`, `DynamoDB`, …) of each `AWS::Serverless::Function`, as
/// (the function's logical id, the function, the event).
fn function_events<'a>(
    resources: &'a serde_norway::Mapping,
    kind: &'a str,
) -> impl Iterator<Item = (&'a str, &'a Value, &'a Value)> {
    of_type(resources, "AWS::Serverless::Function").flat_map(move |(id, function)| {
        at(function, &["Properties", "Events"])
            .and_then(Value::as_mapping)
            .into_iter()
            .flatten()
            .map(|(_, event)| event)
            .filter(move |event| at(event, &["Type"]).and_then(Value::as_str) == Some(kind))
            .map(move |event| (id, function, event))
    })
}

/// What every `AWS::Serverless::Function` must come with: without its log group Lambda creates
/// one that keeps logs forever, and without the alarms a failing or throttled function tells no one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum OpsPiece {
    /// An `AWS::Logs::LogGroup` named `!Sub "/aws/lambda/${AWS::StackName}-<handler>"`.
    LogGroup,
    /// That group's `RetentionInDays: !Ref LogRetentionDays`.
    Retention,
    /// The function's `LoggingConfig.LogGroup: !Ref` that group, so it exists before the first run.
    LoggingConfig,
    /// An `AWS/Lambda` `Errors` alarm on the function (except [`NO_ERRORS_ALARM`]).
    ErrorsAlarm,
    /// An `AWS/Lambda` `Throttles` alarm on the function.
    ThrottlesAlarm,
}

/// The one function without an Errors alarm: it refuses a connection by failing the invocation,
/// so its Errors count refusals, which anyone can cause.
pub const NO_ERRORS_ALARM: &str = "ws-authorizer";

/// The [`OpsPiece`]s each function lacks, as (handler, piece), sorted. `Retention` and
/// `LoggingConfig` concern the group of the function's name, so a missing group is one `LogGroup`.
pub fn missing_function_ops(text: &str) -> Result<Vec<(String, OpsPiece)>, SetupError> {
    let doc = parse_template(text)?;
    let resources = resources(&doc)?;
    let mut missing = Vec::new();
    for (id, function) in of_type(resources, "AWS::Serverless::Function") {
        let handler = handler_of(id, function)?;
        let mut lacks = |piece| missing.push((handler.to_owned(), piece));
        let name = format!("/aws/lambda/${{AWS::StackName}}-{handler}");
        let group = of_type(resources, "AWS::Logs::LogGroup")
            .find(|(_, g)| is(at(g, &["Properties", "LogGroupName"]), "Sub", &name));
        match group {
            None => lacks(OpsPiece::LogGroup),
            Some((group_id, group)) => {
                let retention = at(group, &["Properties", "RetentionInDays"]);
                if !is(retention, "Ref", "LogRetentionDays") {
                    lacks(OpsPiece::Retention);
                }
                let logging = at(function, &["Properties", "LoggingConfig", "LogGroup"]);
                if !is(logging, "Ref", group_id) {
                    lacks(OpsPiece::LoggingConfig);
                }
            }
        }
        if handler != NO_ERRORS_ALARM && !has_lambda_alarm(resources, id, "Errors") {
            lacks(OpsPiece::ErrorsAlarm);
        }
        if !has_lambda_alarm(resources, id, "Throttles") {
            lacks(OpsPiece::ThrottlesAlarm);
        }
    }
    missing.sort();
    Ok(missing)
}

/// The resources of a CloudFormation type, with their logical ids.
fn of_type<'a>(
    resources: &'a serde_norway::Mapping,
    kind: &'a str,
) -> impl Iterator<Item = (&'a str, &'a Value)> {
    resources
        .iter()
        .filter(move |(_, r)| r.get("Type").and_then(Value::as_str) == Some(kind))
        .filter_map(|(id, r)| Some((id.as_str()?, r)))
}

fn at<'a>(value: &'a Value, path: &[&str]) -> Option<&'a Value> {
    path.iter().try_fold(value, |v, key| v.get(*key))
}

/// Whether `value` is the intrinsic `name` (`Ref`, `Sub`) of exactly the string `arg`.
fn is(value: Option<&Value>, name: &str, arg: &str) -> bool {
    value
        .and_then(intrinsic)
        .is_some_and(|(n, a)| n == name && a.as_str() == Some(arg))
}

/// Whether an alarm watches the function's `AWS/Lambda` `metric`, and only it: its one dimension is
/// `FunctionName: !Ref <function>`.
fn has_lambda_alarm(resources: &serde_norway::Mapping, function_id: &str, metric: &str) -> bool {
    of_type(resources, "AWS::CloudWatch::Alarm").any(|(_, alarm)| {
        let prop = |key: &str| at(alarm, &["Properties", key]);
        let dimensions = prop("Dimensions").and_then(Value::as_sequence);
        prop("Namespace").and_then(Value::as_str) == Some("AWS/Lambda")
            && prop("MetricName").and_then(Value::as_str) == Some(metric)
            && matches!(dimensions.map(Vec::as_slice), Some([d])
                if d.get("Name").and_then(Value::as_str) == Some("FunctionName")
                    && is(d.get("Value"), "Ref", function_id))
    })
}

impl Template {
    pub fn parse(text: &str) -> Result<Self, SetupError> {
        let doc: Value =
            serde_norway::from_str(text).map_err(|e| SetupError::Template(e.to_string()))?;
        Ok(Self {
            table: properties(&doc, TABLE_RESOURCE)?,
            stream: properties(&doc, STREAM_RESOURCE)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = r#"
Resources:
  ChatTable:
    Type: AWS::DynamoDB::Table
    Properties:
      BillingMode: PAY_PER_REQUEST
      AttributeDefinitions: [{ AttributeName: PK, AttributeType: S }]
      KeySchema: [{ AttributeName: PK, KeyType: HASH }]
      SSESpecification: { SSEEnabled: true }
  EventStream:
    Type: AWS::Kinesis::Stream
    Properties:
      StreamModeDetails: { StreamMode: ON_DEMAND }
      StreamEncryption: { EncryptionType: KMS, KeyId: !Sub "alias/aws/kinesis" }
"#;

    #[test]
    fn reads_the_table_and_stream_and_tolerates_aws_only_tags() {
        let t = Template::parse(MINIMAL).unwrap();
        assert_eq!(t.table.billing_mode, "PAY_PER_REQUEST");
        assert_eq!(t.table.key_schema[0].attribute_name, "PK");
        assert!(t.table.global_secondary_indexes.is_empty());
        assert_eq!(
            t.stream.stream_mode_details.unwrap().stream_mode,
            "ON_DEMAND"
        );
    }

    const PARAMETERS: &str = r#"
Parameters:
  Mode: { Type: String, Default: ON_DEMAND, AllowedValues: [ON_DEMAND, PROVISIONED] }
  Shards: { Type: Number, Default: 3 }
  Hours: { Type: Number, Default: 24 }
Conditions:
  Provisioned: !Equals [!Ref Mode, PROVISIONED]
  NotProvisioned: { "Fn::Not": [{ Condition: Provisioned }] }
Resources:
  ChatTable:
    Type: AWS::DynamoDB::Table
    Properties:
      BillingMode: PAY_PER_REQUEST
      AttributeDefinitions: [{ AttributeName: PK, AttributeType: S }]
      KeySchema: [{ AttributeName: PK, KeyType: HASH }]
  EventStream:
    Type: AWS::Kinesis::Stream
    Properties:
      StreamModeDetails: { StreamMode: !Ref Mode }
      ShardCount: !If [Provisioned, !Ref Shards, !Ref AWS::NoValue]
      RetentionPeriodHours: !If [NotProvisioned, !Ref Hours, 48]
      StreamEncryption: { EncryptionType: KMS, KeyId: !Sub "alias/aws/kinesis" }
"#;

    #[test]
    fn parameters_are_taken_at_their_defaults() {
        let t = Template::parse(PARAMETERS).unwrap();
        let mode = t.stream.stream_mode_details.unwrap().stream_mode;
        assert_eq!(mode, "ON_DEMAND");
        assert_eq!(
            t.stream.shard_count, None,
            "AWS::NoValue drops the property"
        );
        assert_eq!(t.stream.retention_period_hours.unwrap().0, Value::from(24));

        let provisioned = PARAMETERS.replace("Default: ON_DEMAND", "Default: PROVISIONED");
        let t = Template::parse(&provisioned).unwrap();
        let mode = t.stream.stream_mode_details.unwrap().stream_mode;
        assert_eq!(mode, "PROVISIONED");
        assert_eq!(t.stream.shard_count, Some(3));
        assert_eq!(t.stream.retention_period_hours.unwrap().0, Value::from(48));
    }

    #[test]
    fn a_parameter_without_a_default_is_an_error() {
        let text = PARAMETERS.replace(", Default: ON_DEMAND", "");
        let err = Template::parse(&text).unwrap_err().to_string();
        assert!(err.contains("parameter Mode has no Default"), "{err}");
    }

    #[test]
    fn an_unknown_table_property_is_an_error_not_silently_dropped() {
        let text = MINIMAL.replace(
            "      SSESpecification",
            "      ContributorInsightsSpecification",
        );
        let err = Template::parse(&text).unwrap_err().to_string();
        assert!(err.contains("ContributorInsightsSpecification"), "{err}");
    }

    #[test]
    fn the_repository_template_defines_the_indexes_the_code_uses() {
        use chat_shared::adapters::store::keys::{attr, index};
        let t = Template::of_this_repository().unwrap();
        let gsi: Vec<_> = t
            .table
            .global_secondary_indexes
            .iter()
            .map(|i| i.index_name.as_str())
            .collect();
        let lsi: Vec<_> = t
            .table
            .local_secondary_indexes
            .iter()
            .map(|i| i.index_name.as_str())
            .collect();
        assert_eq!(gsi, [index::GSI1]);
        assert_eq!(lsi, [index::BY_REV, index::BY_ACTIVITY]);
        let attrs: Vec<_> = t
            .table
            .attribute_definitions
            .iter()
            .map(|a| a.attribute_name.as_str())
            .collect();
        for a in [
            attr::PK,
            attr::SK,
            attr::GSI1_PK,
            attr::GSI1_SK,
            attr::MSG_REV,
            attr::ACTIVITY_KEY,
        ] {
            assert!(attrs.contains(&a), "{a} is not defined in template.yaml");
        }
        assert_eq!(
            t.table.time_to_live_specification.unwrap().attribute_name,
            attr::EXPIRES_AT
        );
        assert_eq!(
            t.table.stream_specification.unwrap().stream_view_type,
            "NEW_AND_OLD_IMAGES"
        );
        // At the defaults, the stream is on demand (the shard count is for PROVISIONED only).
        assert_eq!(
            t.stream.stream_mode_details.unwrap().stream_mode,
            "ON_DEMAND"
        );
        assert_eq!(t.stream.shard_count, None);
    }

    /// ws-ping with every piece, and ws-authorizer with every piece but the Errors alarm.
    const OPS: &str = r#"
Parameters:
  LogRetentionDays: { Type: Number, Default: 30 }
Resources:
  PingFunction:
    Type: AWS::Serverless::Function
    Properties:
      Handler: ws-ping
      LoggingConfig: { LogGroup: !Ref PingLogGroup }
  PingLogGroup:
    Type: AWS::Logs::LogGroup
    Properties:
      LogGroupName: !Sub "/aws/lambda/${AWS::StackName}-ws-ping"
      RetentionInDays: !Ref LogRetentionDays
  PingErrorsAlarm:
    Type: AWS::CloudWatch::Alarm
    Properties:
      Namespace: AWS/Lambda
      MetricName: Errors
      Dimensions: [{ Name: FunctionName, Value: !Ref PingFunction }]
  PingThrottlesAlarm:
    Type: AWS::CloudWatch::Alarm
    Properties:
      Namespace: AWS/Lambda
      MetricName: Throttles
      Dimensions: [{ Name: FunctionName, Value: !Ref PingFunction }]
  AuthorizerFunction:
    Type: AWS::Serverless::Function
    Properties:
      Handler: ws-authorizer
      LoggingConfig: { LogGroup: !Ref AuthorizerLogGroup }
  AuthorizerLogGroup:
    Type: AWS::Logs::LogGroup
    Properties:
      LogGroupName: !Sub "/aws/lambda/${AWS::StackName}-ws-authorizer"
      RetentionInDays: !Ref LogRetentionDays
  AuthorizerThrottlesAlarm:
    Type: AWS::CloudWatch::Alarm
    Properties:
      Namespace: AWS/Lambda
      MetricName: Throttles
      Dimensions: [{ Name: FunctionName, Value: !Ref AuthorizerFunction }]
"#;

    fn missing(text: &str) -> Vec<(String, OpsPiece)> {
        missing_function_ops(text).unwrap()
    }

    fn one(binary: &str, piece: OpsPiece) -> Vec<(String, OpsPiece)> {
        vec![(binary.to_owned(), piece)]
    }

    #[test]
    fn functions_with_every_ops_piece_lack_nothing() {
        assert_eq!(missing(OPS), []);
    }

    /// `OPS` without the entry at `path` (dotted, under `Resources`).
    fn ops_without(path: &str) -> String {
        let mut doc: Value = serde_norway::from_str(OPS).unwrap();
        let (parents, last) = path.rsplit_once('.').unwrap_or(("", path));
        let parent = parents
            .split('.')
            .filter(|k| !k.is_empty())
            .fold(&mut doc["Resources"], |v, k| &mut v[k]);
        parent.as_mapping_mut().unwrap().remove(last).unwrap();
        serde_norway::to_string(&doc).unwrap()
    }

    #[test]
    fn each_ops_piece_removed_is_reported_alone() {
        use OpsPiece::*;
        for (path, piece) in [
            ("PingLogGroup", LogGroup),
            ("PingLogGroup.Properties.RetentionInDays", Retention),
            ("PingFunction.Properties.LoggingConfig", LoggingConfig),
            ("PingErrorsAlarm", ErrorsAlarm),
            ("PingThrottlesAlarm", ThrottlesAlarm),
        ] {
            assert_eq!(missing(&ops_without(path)), one("ws-ping", piece), "{path}");
        }
        let text = ops_without("AuthorizerThrottlesAlarm");
        assert_eq!(missing(&text), one("ws-authorizer", ThrottlesAlarm));
    }

    #[test]
    fn an_ops_piece_of_the_wrong_shape_is_reported() {
        use OpsPiece::*;
        for (from, to, piece) in [
            ("StackName}-ws-ping", "StackName}-ping", LogGroup),
            ("!Ref LogRetentionDays", "30", Retention),
            ("!Ref Ping", "!Ref Authorizer", LoggingConfig),
            ("Value: !Ref Ping", "Value: !Ref Authorizer", ErrorsAlarm),
        ] {
            let text = OPS.replacen(from, to, 1);
            assert_eq!(missing(&text), one("ws-ping", piece), "{from} -> {to}");
        }
    }

    #[test]
    fn every_function_in_the_repository_template_has_its_log_group_and_alarms() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../template.yaml");
        let text = std::fs::read_to_string(path).unwrap();
        assert_eq!(missing(&text), []);
        // The exclusion stays deliberate: ws-authorizer's Errors are refusals, not failures.
        let doc: Value = serde_norway::from_str(&text).unwrap();
        let resources = doc["Resources"].as_mapping().unwrap();
        let handler = ["Properties", "Handler"];
        let (authorizer, _) = of_type(resources, "AWS::Serverless::Function")
            .find(|(_, f)| at(f, &handler).and_then(Value::as_str) == Some(NO_ERRORS_ALARM))
            .unwrap();
        assert!(!has_lambda_alarm(resources, authorizer, "Errors"));
    }
}
