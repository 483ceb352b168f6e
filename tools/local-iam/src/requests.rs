//! What IAM authorizes for each AWS call, computed from the request as AWS computes it: the action
//! or actions, the resource ARN, and `dynamodb:LeadingKeys` (the partition key values the call
//! touches).
//!
//! - A single-item call (`GetItem`, `PutItem`, `UpdateItem`, `DeleteItem`): its own action on the
//!   table, with the item's partition key.
//! - `BatchGetItem` / `BatchWriteItem`: their own action per table, with every partition key of
//!   that table in the batch (so `ForAllValues` checks each).
//! - `TransactWriteItems` / `TransactGetItems`: no action of their own; each part is authorized as
//!   `PutItem`, `UpdateItem`, `DeleteItem`, `ConditionCheckItem` or `GetItem` with its own key.
//! - `Query` / `Scan`: on the table, or on `table/<t>/index/<i>` when it names an index; a query's
//!   leading key is the value its key condition sets the partition key (of the index, for an
//!   index) equal to. A key condition this module cannot read is refused, not guessed.
//! - DynamoDB Streams and Kinesis: the action on the stream's ARN (`*` where the request names
//!   no stream, as `GetRecords` with only an iterator).

use std::collections::BTreeMap;

use serde_json::Value;

use crate::policy::{Authorization, StackFacts};

/// The services the local proxy stands in front of, by `X-Amz-Target` prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Service {
    DynamoDb,
    DynamoDbStreams,
    Kinesis,
}

impl Service {
    /// The service and operation of an `X-Amz-Target` header (`DynamoDB_20120810.GetItem`).
    pub fn of_target(target: &str) -> Option<(Self, &str)> {
        let (prefix, operation) = target.split_once('.')?;
        let service = match prefix {
            "DynamoDB_20120810" => Self::DynamoDb,
            "DynamoDBStreams_20120810" => Self::DynamoDbStreams,
            "Kinesis_20131202" => Self::Kinesis,
            _ => return None,
        };
        Some((service, operation))
    }

    /// The SigV4 signing name.
    pub fn signing_name(self) -> &'static str {
        match self {
            Self::DynamoDb | Self::DynamoDbStreams => "dynamodb",
            Self::Kinesis => "kinesis",
        }
    }
}

/// The partition key attribute of a table and of each of its indexes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeySchema {
    pub table: String,
    pub indexes: BTreeMap<String, String>,
}

impl KeySchema {
    /// From a `DescribeTable` answer's `Table`.
    pub fn from_description(table: &Value) -> Option<Self> {
        let hash_of = |schema: &Value| {
            schema.as_array()?.iter().find_map(|k| {
                (k["KeyType"] == "HASH").then(|| k["AttributeName"].as_str().map(str::to_owned))?
            })
        };
        let mut indexes = BTreeMap::new();
        for kind in ["GlobalSecondaryIndexes", "LocalSecondaryIndexes"] {
            for index in table[kind].as_array().into_iter().flatten() {
                if let (Some(name), Some(hash)) =
                    (index["IndexName"].as_str(), hash_of(&index["KeySchema"]))
                {
                    indexes.insert(name.to_owned(), hash);
                }
            }
        }
        Some(Self {
            table: hash_of(&table["KeySchema"])?,
            indexes,
        })
    }
}

/// Why a request cannot be turned into authorizations (it is then refused).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum Unreadable {
    #[error("the request body is not a JSON object")]
    Body,
    #[error("{0} is missing or malformed")]
    Field(&'static str),
    #[error("the key condition names no partition key value this check can read")]
    KeyCondition,
}

/// The tables a DynamoDB request names, so that their key schemas can be looked up first.
pub fn tables_named(operation: &str, body: &Value) -> Vec<String> {
    let mut tables: Vec<String> = match operation {
        "BatchGetItem" | "BatchWriteItem" => body["RequestItems"]
            .as_object()
            .map(|m| m.keys().cloned().collect())
            .unwrap_or_default(),
        "TransactWriteItems" | "TransactGetItems" => body["TransactItems"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|part| {
                part.as_object()?
                    .values()
                    .next()?
                    .get("TableName")?
                    .as_str()
                    .map(str::to_owned)
            })
            .collect(),
        _ => body["TableName"]
            .as_str()
            .map(str::to_owned)
            .into_iter()
            .collect(),
    };
    tables.sort();
    tables.dedup();
    tables
}

/// The authorizations a call needs. `schemas` holds the key schema of every table it names.
pub fn authorizations(
    service: Service,
    operation: &str,
    body: &Value,
    facts: &StackFacts,
    schemas: &BTreeMap<String, KeySchema>,
) -> Result<Vec<Authorization>, Unreadable> {
    if !body.is_object() {
        return Err(Unreadable::Body);
    }
    match service {
        Service::DynamoDb => dynamodb(operation, body, facts, schemas),
        Service::DynamoDbStreams => {
            let stream = body["StreamArn"].as_str().unwrap_or("*");
            let resource = if operation == "ListStreams" {
                "*"
            } else {
                stream
            };
            Ok(vec![Authorization::new(
                format!("dynamodb:{operation}"),
                resource,
            )])
        }
        Service::Kinesis => {
            let resource = match (body["StreamARN"].as_str(), body["StreamName"].as_str()) {
                (Some(arn), _) => arn.to_owned(),
                (None, Some(name)) => facts.stream_arn(name),
                (None, None) if operation == "SubscribeToShard" => {
                    body["ConsumerARN"].as_str().unwrap_or("*").to_owned()
                }
                (None, None) => "*".to_owned(),
            };
            Ok(vec![Authorization::new(
                format!("kinesis:{operation}"),
                resource,
            )])
        }
    }
}

fn dynamodb(
    operation: &str,
    body: &Value,
    facts: &StackFacts,
    schemas: &BTreeMap<String, KeySchema>,
) -> Result<Vec<Authorization>, Unreadable> {
    let schema_of = |table: &str| schemas.get(table).ok_or(Unreadable::Field("TableName"));
    let leading = |table: &str, items: &[&Value]| -> Result<Vec<String>, Unreadable> {
        let hash = &schema_of(table)?.table;
        items
            .iter()
            .map(|item| key_text(&item[hash.as_str()]).ok_or(Unreadable::Field("Key")))
            .collect()
    };
    let one = |action: &str, table: &str, item: &Value| -> Result<Authorization, Unreadable> {
        Ok(
            Authorization::new(format!("dynamodb:{action}"), facts.table_arn(table))
                .with("dynamodb:LeadingKeys", leading(table, &[item])?),
        )
    };
    match operation {
        "GetItem" | "UpdateItem" | "DeleteItem" => {
            let table = table_of(body)?;
            Ok(vec![one(operation, table, &body["Key"])?])
        }
        "PutItem" => {
            let table = table_of(body)?;
            Ok(vec![one(operation, table, &body["Item"])?])
        }
        "BatchGetItem" | "BatchWriteItem" => {
            let requests = body["RequestItems"]
                .as_object()
                .ok_or(Unreadable::Field("RequestItems"))?;
            let mut out = Vec::new();
            for (table, request) in requests {
                let items: Vec<&Value> = if operation == "BatchGetItem" {
                    request["Keys"].as_array().into_iter().flatten().collect()
                } else {
                    request
                        .as_array()
                        .into_iter()
                        .flatten()
                        .map(|w| {
                            if w.get("PutRequest").is_some() {
                                &w["PutRequest"]["Item"]
                            } else {
                                &w["DeleteRequest"]["Key"]
                            }
                        })
                        .collect()
                };
                out.push(
                    Authorization::new(format!("dynamodb:{operation}"), facts.table_arn(table))
                        .with("dynamodb:LeadingKeys", leading(table, &items)?),
                );
            }
            Ok(out)
        }
        "TransactWriteItems" | "TransactGetItems" => {
            let parts = body["TransactItems"]
                .as_array()
                .ok_or(Unreadable::Field("TransactItems"))?;
            let mut out = Vec::new();
            for part in parts {
                let (kind, inner) = part
                    .as_object()
                    .and_then(|o| o.iter().next())
                    .ok_or(Unreadable::Field("TransactItems"))?;
                let action = match kind.as_str() {
                    "Put" => "PutItem",
                    "Update" => "UpdateItem",
                    "Delete" => "DeleteItem",
                    "ConditionCheck" => "ConditionCheckItem",
                    "Get" => "GetItem",
                    _ => return Err(Unreadable::Field("TransactItems")),
                };
                let item = if kind == "Put" {
                    &inner["Item"]
                } else {
                    &inner["Key"]
                };
                out.push(one(action, table_of(inner)?, item)?);
            }
            Ok(out)
        }
        "Query" | "Scan" => {
            let table = table_of(body)?;
            let index = body["IndexName"].as_str();
            let resource = match index {
                Some(index) => format!("{}/index/{index}", facts.table_arn(table)),
                None => facts.table_arn(table),
            };
            let mut authorization = Authorization::new(format!("dynamodb:{operation}"), resource);
            if operation == "Query" {
                let schema = schema_of(table)?;
                let hash = match index {
                    Some(index) => schema
                        .indexes
                        .get(index)
                        .ok_or(Unreadable::Field("IndexName"))?,
                    None => &schema.table,
                };
                let value = query_partition_value(body, hash).ok_or(Unreadable::KeyCondition)?;
                authorization = authorization.with("dynamodb:LeadingKeys", [value]);
            }
            Ok(vec![authorization])
        }
        "ListTables" => Ok(vec![Authorization::new("dynamodb:ListTables", "*")]),
        other => {
            let resource = body["TableName"]
                .as_str()
                .map_or_else(|| "*".to_owned(), |t| facts.table_arn(t));
            Ok(vec![Authorization::new(
                format!("dynamodb:{other}"),
                resource,
            )])
        }
    }
}

fn table_of(request: &Value) -> Result<&str, Unreadable> {
    request["TableName"]
        .as_str()
        .ok_or(Unreadable::Field("TableName"))
}

/// A key attribute's value as IAM compares it: the string, the number's text, or the base64 of
/// the bytes.
fn key_text(value: &Value) -> Option<String> {
    ["S", "N", "B"]
        .iter()
        .find_map(|t| value.get(*t).and_then(Value::as_str).map(str::to_owned))
}

/// The value a query's `KeyConditionExpression` sets `hash` (the partition key) equal to.
fn query_partition_value(body: &Value, hash: &str) -> Option<String> {
    let expression = body["KeyConditionExpression"].as_str()?;
    let names = &body["ExpressionAttributeNames"];
    let values = &body["ExpressionAttributeValues"];
    let name_of = |token: &str| -> Option<String> {
        let token = token.trim().trim_matches(|c| c == '(' || c == ')');
        if token.starts_with('#') {
            names[token].as_str().map(str::to_owned)
        } else {
            Some(token.to_owned())
        }
    };
    for clause in split_and(expression) {
        let Some((left, right)) = clause.split_once('=') else {
            continue;
        };
        // `<=` / `>=` are not an equality.
        if left.ends_with(['<', '>']) || right.starts_with('=') {
            continue;
        }
        let (left, right) = (left.trim(), right.trim());
        for (name, placeholder) in [(left, right), (right, left)] {
            if name_of(name).as_deref() == Some(hash) && placeholder.starts_with(':') {
                return key_text(&values[placeholder]);
            }
        }
    }
    None
}

/// The clauses of an expression joined by `AND` (any case).
fn split_and(expression: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let lower = expression.to_ascii_lowercase();
    let mut start = 0;
    let mut search = 0;
    while let Some(found) = lower[search..].find(" and ") {
        let at = search + found;
        parts.push(&expression[start..at]);
        start = at + 5;
        search = start;
    }
    parts.push(&expression[start..]);
    parts
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn facts() -> StackFacts {
        StackFacts::example("t")
    }

    fn schemas() -> BTreeMap<String, KeySchema> {
        BTreeMap::from([(
            "t".to_owned(),
            KeySchema {
                table: "PK".into(),
                indexes: BTreeMap::from([
                    ("GSI1".to_owned(), "GSI1PK".to_owned()),
                    ("ByRev".to_owned(), "PK".to_owned()),
                ]),
            },
        )])
    }

    const T: &str = "arn:aws:dynamodb:us-east-1:000000000000:table/t";

    fn of(
        service: Service,
        operation: &str,
        body: Value,
    ) -> Result<Vec<Authorization>, Unreadable> {
        authorizations(service, operation, &body, &facts(), &schemas())
    }

    fn keys(a: &Authorization) -> Vec<String> {
        a.context
            .get("dynamodb:leadingkeys")
            .cloned()
            .unwrap_or_default()
    }

    #[test]
    fn a_transaction_is_its_parts_each_with_its_own_key() {
        let parts = of(Service::DynamoDb, "TransactWriteItems", json!({"TransactItems": [
            {"Put": {"TableName": "t", "Item": {"PK": {"S": "CONV#1"}, "SK": {"S": "MSG#1"}}}},
            {"Update": {"TableName": "t", "Key": {"PK": {"S": "CONV#1"}, "SK": {"S": "META"}}}},
            {"ConditionCheck": {"TableName": "t", "Key": {"PK": {"S": "USER#a"}, "SK": {"S": "X"}}}},
            {"Delete": {"TableName": "t", "Key": {"PK": {"S": "IDEM#9"}, "SK": {"S": "X"}}}},
        ]})).unwrap();
        let actions: Vec<(&str, Vec<String>)> =
            parts.iter().map(|a| (a.action.as_str(), keys(a))).collect();
        assert_eq!(
            actions,
            [
                ("dynamodb:PutItem", vec!["CONV#1".to_owned()]),
                ("dynamodb:UpdateItem", vec!["CONV#1".to_owned()]),
                ("dynamodb:ConditionCheckItem", vec!["USER#a".to_owned()]),
                ("dynamodb:DeleteItem", vec!["IDEM#9".to_owned()]),
            ]
        );
        assert!(parts.iter().all(|a| a.resource == T));
    }

    #[test]
    fn batches_carry_every_partition_key_of_each_table() {
        let get = of(Service::DynamoDb, "BatchGetItem", json!({"RequestItems": {"t": {"Keys": [
            {"PK": {"S": "USER#a"}, "SK": {"S": "PROFILE"}}, {"PK": {"S": "CONV#1"}, "SK": {"S": "META"}}]}}})).unwrap();
        assert_eq!(get.len(), 1);
        assert_eq!(
            (get[0].action.as_str(), keys(&get[0])),
            (
                "dynamodb:BatchGetItem",
                vec!["USER#a".to_owned(), "CONV#1".to_owned()]
            )
        );
        let write = of(Service::DynamoDb, "BatchWriteItem", json!({"RequestItems": {"t": [
            {"PutRequest": {"Item": {"PK": {"S": "A"}}}}, {"DeleteRequest": {"Key": {"PK": {"S": "B"}}}}]}})).unwrap();
        assert_eq!(keys(&write[0]), ["A", "B"]);
    }

    #[test]
    fn a_query_is_authorized_on_its_index_with_the_partition_value() {
        let on_index = of(
            Service::DynamoDb,
            "Query",
            json!({"TableName": "t", "IndexName": "GSI1",
            "KeyConditionExpression": "#pk = :pk AND begins_with(#sk, :prefix)",
            "ExpressionAttributeNames": {"#pk": "GSI1PK", "#sk": "GSI1SK"},
            "ExpressionAttributeValues": {":pk": {"S": "USER#a"}, ":prefix": {"S": "CONN#"}}}),
        )
        .unwrap();
        assert_eq!(on_index[0].resource, format!("{T}/index/GSI1"));
        assert_eq!(keys(&on_index[0]), ["USER#a"]);
        let reversed = of(
            Service::DynamoDb,
            "Query",
            json!({"TableName": "t",
            "KeyConditionExpression": "SK >= :first and :pk = PK",
            "ExpressionAttributeValues": {":pk": {"S": "CONV#1"}, ":first": {"S": "A"}}}),
        )
        .unwrap();
        assert_eq!(reversed[0].resource, T);
        assert_eq!(keys(&reversed[0]), ["CONV#1"]);
        // The sort key's range is no partition key; nothing readable is refused.
        let unreadable = of(
            Service::DynamoDb,
            "Query",
            json!({"TableName": "t",
            "KeyConditionExpression": "SK >= :first", "ExpressionAttributeValues": {":first": {"S": "A"}}}),
        );
        assert_eq!(unreadable, Err(Unreadable::KeyCondition));
        let scan = of(Service::DynamoDb, "Scan", json!({"TableName": "t"})).unwrap();
        assert!(scan[0].context.is_empty());
    }

    #[test]
    fn streams_and_kinesis_are_authorized_on_the_stream() {
        let put = of(
            Service::Kinesis,
            "PutRecords",
            json!({"StreamName": "events", "Records": []}),
        )
        .unwrap();
        assert_eq!(
            (put[0].action.as_str(), put[0].resource.as_str()),
            (
                "kinesis:PutRecords",
                "arn:aws:kinesis:us-east-1:000000000000:stream/events"
            )
        );
        let records = of(
            Service::Kinesis,
            "GetRecords",
            json!({"ShardIterator": "x"}),
        )
        .unwrap();
        assert_eq!(records[0].resource, "*");
        let describe = of(
            Service::DynamoDbStreams,
            "DescribeStream",
            json!({"StreamArn": "arn:s"}),
        )
        .unwrap();
        assert_eq!(
            (describe[0].action.as_str(), describe[0].resource.as_str()),
            ("dynamodb:DescribeStream", "arn:s")
        );
        assert_eq!(
            Service::of_target("DynamoDBStreams_20120810.GetRecords"),
            Some((Service::DynamoDbStreams, "GetRecords"))
        );
        assert_eq!(Service::of_target("S3.GetObject"), None);
    }

    #[test]
    fn key_schemas_are_read_from_describe_table() {
        let schema = KeySchema::from_description(&json!({
            "KeySchema": [{"AttributeName": "SK", "KeyType": "RANGE"}, {"AttributeName": "PK", "KeyType": "HASH"}],
            "GlobalSecondaryIndexes": [{"IndexName": "GSI1", "KeySchema": [{"AttributeName": "GSI1PK", "KeyType": "HASH"}]}],
            "LocalSecondaryIndexes": [{"IndexName": "ByRev", "KeySchema": [{"AttributeName": "PK", "KeyType": "HASH"}]}]
        })).unwrap();
        assert_eq!(schema, schemas()["t"]);
        assert_eq!(
            tables_named(
                "TransactWriteItems",
                &json!({"TransactItems": [
            {"Put": {"TableName": "b"}}, {"Update": {"TableName": "a"}}, {"Delete": {"TableName": "b"}}]})
            ),
            ["a", "b"]
        );
    }
}
