//! The parts of `template.yaml` the local stack builds from, as typed structs.
//!
//! CloudFormation's short-form tags (`!Ref`, `!Sub` …) parse as tagged YAML values; the table and
//! stream definitions must not use them in the properties that this crate applies.

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
    serde_norway::from_value(props.clone())
        .map_err(|e| SetupError::Template(format!("{logical_id}: {e}")))
}

/// An HTTP API route of a function in the template: `Events.*` of `Type: HttpApi`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct TemplateRoute {
    pub method: String,
    pub path: String,
    /// `Metadata.BuildProperties.Binary`: the function's package name.
    pub function: String,
}

/// Every `HttpApi` event of every `AWS::Serverless::Function`, sorted.
pub fn http_api_routes(text: &str) -> Result<Vec<TemplateRoute>, SetupError> {
    let doc: Value =
        serde_norway::from_str(text).map_err(|e| SetupError::Template(e.to_string()))?;
    let resources = doc
        .get("Resources")
        .and_then(Value::as_mapping)
        .ok_or_else(|| SetupError::Template("no Resources".to_owned()))?;
    let text_at = |v: &Value, path: &[&str]| -> Option<String> {
        let mut cur = v;
        for key in path {
            cur = cur.get(*key)?;
        }
        cur.as_str().map(str::to_owned)
    };
    let mut routes = Vec::new();
    for (logical_id, resource) in resources {
        if text_at(resource, &["Type"]).as_deref() != Some("AWS::Serverless::Function") {
            continue;
        }
        let name = logical_id.as_str().unwrap_or("?");
        let function =
            text_at(resource, &["Metadata", "BuildProperties", "Binary"]).ok_or_else(|| {
                SetupError::Template(format!("{name}: no Metadata.BuildProperties.Binary"))
            })?;
        let events = resource
            .get("Properties")
            .and_then(|p| p.get("Events"))
            .and_then(Value::as_mapping);
        for (_, event) in events.into_iter().flatten() {
            if text_at(event, &["Type"]).as_deref() != Some("HttpApi") {
                continue;
            }
            let method = text_at(event, &["Properties", "Method"]);
            let path = text_at(event, &["Properties", "Path"]);
            let (Some(method), Some(path)) = (method, path) else {
                return Err(SetupError::Template(format!(
                    "{name}: an HttpApi event needs Method and Path"
                )));
            };
            routes.push(TemplateRoute {
                method: method.to_ascii_uppercase(),
                path,
                function: function.clone(),
            });
        }
    }
    routes.sort();
    Ok(routes)
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
        use chat_shared::keys::{attr, index};
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
    }
}
