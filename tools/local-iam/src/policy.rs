//! IAM policy statements and their evaluation, for the subset of IAM the template uses: `Allow`
//! and `Deny`, `Action` and `Resource` with `*` and `?` wildcards, and conditions with
//! `StringEquals` / `StringLike`, alone or under `ForAllValues:` / `ForAnyValue:`, with or without
//! `IfExists`. Anything else in a statement (`NotAction`, `NotResource`, `Principal`, another
//! operator) is refused when the policies load, so an unfamiliar statement is never guessed at.
//!
//! Evaluation follows AWS's order: an explicit `Deny` wins, else any matching `Allow`, else the
//! implicit deny. Condition semantics are AWS's, including the surprising ones (pinned by tests):
//! `ForAllValues` over a key the request does not carry is *true* (a `Scan` has no
//! `dynamodb:LeadingKeys`), a plain operator over an absent key is false, and condition key names
//! are case-insensitive while values are compared case-sensitively.

use std::collections::BTreeMap;

use serde_json::Value;

/// What a policy does with a statement's match.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effect {
    Allow,
    Deny,
}

/// One condition: `ForAllValues:StringLike` over `dynamodb:LeadingKeys` with these patterns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Condition {
    pub set: SetOperator,
    pub like: bool,
    pub if_exists: bool,
    /// Lower-cased, as IAM compares key names.
    pub key: String,
    pub values: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SetOperator {
    /// A single-valued key.
    Single,
    ForAllValues,
    ForAnyValue,
}

/// A statement with its intrinsic functions resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Statement {
    /// Which inline or managed policy it came from (for the reports).
    pub source: String,
    pub effect: Effect,
    pub actions: Vec<String>,
    pub resources: Vec<String>,
    pub conditions: Vec<Condition>,
}

/// What a request asks: an action on a resource, with the condition keys AWS computes for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authorization {
    /// `dynamodb:GetItem`.
    pub action: String,
    /// The resource's ARN.
    pub resource: String,
    /// Condition keys (lower-cased) and their values: `dynamodb:leadingkeys` → the partition keys.
    pub context: BTreeMap<String, Vec<String>>,
}

impl Authorization {
    pub fn new(action: impl Into<String>, resource: impl Into<String>) -> Self {
        Self {
            action: action.into(),
            resource: resource.into(),
            context: BTreeMap::new(),
        }
    }

    /// Adds values of a multi-valued key.
    pub fn with(mut self, key: &str, values: impl IntoIterator<Item = String>) -> Self {
        self.context
            .entry(key.to_ascii_lowercase())
            .or_default()
            .extend(values);
        self
    }
}

/// The outcome of evaluating a request against a function's statements.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Allowed by the statement of this source.
    Allowed { source: String },
    /// No statement allows it.
    ImplicitDeny,
    /// A `Deny` statement of this source matches.
    ExplicitDeny { source: String },
}

impl Decision {
    pub fn allowed(&self) -> bool {
        matches!(self, Self::Allowed { .. })
    }
}

/// Evaluates `request` against `statements`.
pub fn evaluate(statements: &[Statement], request: &Authorization) -> Decision {
    let matching = |effect: Effect| {
        statements
            .iter()
            .filter(move |s| s.effect == effect && matches(s, request))
    };
    if let Some(deny) = matching(Effect::Deny).next() {
        return Decision::ExplicitDeny {
            source: deny.source.clone(),
        };
    }
    match matching(Effect::Allow).next() {
        Some(allow) => Decision::Allowed {
            source: allow.source.clone(),
        },
        None => Decision::ImplicitDeny,
    }
}

fn matches(statement: &Statement, request: &Authorization) -> bool {
    statement.actions.iter().any(|a| {
        wildcard(
            &a.to_ascii_lowercase(),
            &request.action.to_ascii_lowercase(),
        )
    }) && statement
        .resources
        .iter()
        .any(|r| wildcard(r, &request.resource))
        && statement
            .conditions
            .iter()
            .all(|c| condition_holds(c, request.context.get(&c.key)))
}

fn condition_holds(condition: &Condition, present: Option<&Vec<String>>) -> bool {
    let value_matches = |value: &str| {
        condition.values.iter().any(|pattern| {
            if condition.like {
                wildcard(pattern, value)
            } else {
                pattern == value
            }
        })
    };
    let values = present.filter(|v| !v.is_empty());
    match condition.set {
        // AWS: true when the request carries no value of the key at all.
        SetOperator::ForAllValues => values.is_none_or(|v| v.iter().all(|x| value_matches(x))),
        SetOperator::ForAnyValue => values.map_or(condition.if_exists && present.is_none(), |v| {
            v.iter().any(|x| value_matches(x))
        }),
        SetOperator::Single => match values {
            None => condition.if_exists,
            Some(v) if v.len() == 1 => value_matches(&v[0]),
            // A multi-valued key under a single-valued operator: AWS's answer is not something
            // to rely on; refuse.
            Some(_) => false,
        },
    }
}

/// IAM's wildcards: `*` any run of characters, `?` any one character; everything else literal.
pub fn wildcard(pattern: &str, text: &str) -> bool {
    let (p, t): (Vec<char>, Vec<char>) = (pattern.chars().collect(), text.chars().collect());
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        match p.get(pi) {
            Some('*') => {
                star = Some((pi, ti));
                pi += 1;
            }
            Some(c) if *c == '?' || *c == t[ti] => {
                pi += 1;
                ti += 1;
            }
            _ => match star {
                Some((sp, st)) => {
                    pi = sp + 1;
                    ti = st + 1;
                    star = Some((sp, st + 1));
                }
                None => return false,
            },
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

/// Why a statement cannot be read.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PolicyError {
    #[error("{origin}: {reason}")]
    Unsupported { origin: String, reason: String },
    #[error("{origin}: cannot resolve {what} locally")]
    Unresolved { origin: String, what: String },
}

/// What the intrinsic functions of a statement resolve to on the local stack.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StackFacts {
    pub partition: String,
    pub region: String,
    pub account: String,
    pub stack_name: String,
    /// The table `ChatTable` is.
    pub table: String,
    /// The Kinesis stream `EventStream` is.
    pub event_stream: String,
    /// The WebSocket API's id and stage (`WebSocketApi`, `Stage`).
    pub websocket_api: String,
    pub stage: String,
}

impl StackFacts {
    /// A stack in us-east-1 of account `000000000000` with table `table` (unit tests).
    #[cfg(test)]
    pub(crate) fn example(table: &str) -> Self {
        Self {
            partition: "aws".into(),
            region: "us-east-1".into(),
            account: "000000000000".into(),
            stack_name: "chat".into(),
            table: table.into(),
            event_stream: "events".into(),
            websocket_api: "local".into(),
            stage: "dev".into(),
        }
    }

    pub fn table_arn(&self, table: &str) -> String {
        format!(
            "arn:{}:dynamodb:{}:{}:table/{table}",
            self.partition, self.region, self.account
        )
    }

    pub fn stream_arn(&self, stream: &str) -> String {
        format!(
            "arn:{}:kinesis:{}:{}:stream/{stream}",
            self.partition, self.region, self.account
        )
    }

    /// `arn:aws:execute-api:region:account:api/stage/METHOD/@connections/id`.
    pub fn connection_arn(&self, method: &str, connection: &str) -> String {
        format!(
            "arn:{}:execute-api:{}:{}:{}/{}/{method}/@connections/{connection}",
            self.partition, self.region, self.account, self.websocket_api, self.stage
        )
    }

    /// The cache's replication group id (`Cache`): the stack's name, then `-cache`, locally.
    pub fn cache_id(&self) -> String {
        format!("{}-cache", self.stack_name)
    }

    /// The functions' ElastiCache user (`CacheUser`), named as the template names it.
    pub fn cache_user(&self) -> String {
        format!("{}-functions", self.stack_name)
    }

    /// `arn:aws:elasticache:region:account:<kind>:<id>` (`replicationgroup` or `user`).
    pub fn elasticache_arn(&self, kind: &str, id: &str) -> String {
        format!(
            "arn:{}:elasticache:{}:{}:{kind}:{id}",
            self.partition, self.region, self.account
        )
    }

    /// The value of `Ref` or `Fn::GetAtt` (`name` is `X` or `X.Attr`).
    fn lookup(&self, name: &str) -> Option<String> {
        let (resource, attribute) = match name.split_once('.') {
            Some((r, a)) => (r, Some(a)),
            None => (name, None),
        };
        let sqs = |queue: &str| {
            format!(
                "arn:{}:sqs:{}:{}:{queue}",
                self.partition, self.region, self.account
            )
        };
        Some(match (resource, attribute) {
            ("AWS::Partition", None) => self.partition.clone(),
            ("AWS::Region", None) => self.region.clone(),
            ("AWS::AccountId", None) => self.account.clone(),
            ("AWS::StackName", None) => self.stack_name.clone(),
            ("ChatTable", None) => self.table.clone(),
            ("ChatTable", Some("Arn")) => self.table_arn(&self.table),
            ("EventStream", None) => self.event_stream.clone(),
            ("EventStream", Some("Arn")) => self.stream_arn(&self.event_stream),
            ("WebSocketApi", None) => self.websocket_api.clone(),
            ("Stage", None) => self.stage.clone(),
            ("Cache", None) => self.cache_id(),
            ("CacheUser", None) => self.cache_user(),
            ("CacheUser", Some("Arn")) => self.elasticache_arn("user", &self.cache_user()),
            // Queues are named after their logical id locally (nothing local sends to them).
            (queue, Some("Arn")) if queue.ends_with("Queue") => sqs(queue),
            (queue, Some("QueueName")) if queue.ends_with("Queue") => queue.to_owned(),
            _ => return None,
        })
    }

    /// Resolves `Ref`, `Fn::GetAtt`, `Fn::Sub` and `Fn::Join` in a statement's value.
    pub fn resolve(&self, value: &Value, source: &str) -> Result<String, PolicyError> {
        let unresolved = |what: &str| PolicyError::Unresolved {
            origin: source.to_owned(),
            what: what.to_owned(),
        };
        match value {
            Value::String(s) => Ok(s.clone()),
            Value::Object(map) if map.len() == 1 => {
                let (function, argument) = map.iter().next().ok_or_else(|| unresolved("{}"))?;
                match (function.as_str(), argument) {
                    ("Ref", Value::String(name)) => {
                        self.lookup(name).ok_or_else(|| unresolved(name))
                    }
                    ("Fn::GetAtt", Value::Array(parts)) => {
                        let name = parts
                            .iter()
                            .map(|p| p.as_str().unwrap_or_default())
                            .collect::<Vec<_>>()
                            .join(".");
                        self.lookup(&name).ok_or_else(|| unresolved(&name))
                    }
                    ("Fn::Sub", Value::String(text)) => {
                        self.substitute(text, &BTreeMap::new(), source)
                    }
                    ("Fn::Sub", Value::Array(parts)) => {
                        let text = parts
                            .first()
                            .and_then(Value::as_str)
                            .ok_or_else(|| unresolved("Fn::Sub"))?;
                        let mut vars = BTreeMap::new();
                        if let Some(Value::Object(given)) = parts.get(1) {
                            for (name, v) in given {
                                vars.insert(name.clone(), self.resolve(v, source)?);
                            }
                        }
                        self.substitute(text, &vars, source)
                    }
                    ("Fn::Join", Value::Array(parts)) => {
                        let separator = parts
                            .first()
                            .and_then(Value::as_str)
                            .ok_or_else(|| unresolved("Fn::Join"))?;
                        let items = parts
                            .get(1)
                            .and_then(Value::as_array)
                            .ok_or_else(|| unresolved("Fn::Join"))?;
                        let resolved = items
                            .iter()
                            .map(|i| self.resolve(i, source))
                            .collect::<Result<Vec<_>, _>>()?;
                        Ok(resolved.join(separator))
                    }
                    (other, _) => Err(unresolved(other)),
                }
            }
            other => Err(unresolved(&other.to_string())),
        }
    }

    fn substitute(
        &self,
        text: &str,
        vars: &BTreeMap<String, String>,
        source: &str,
    ) -> Result<String, PolicyError> {
        let mut out = String::new();
        let mut rest = text;
        while let Some(start) = rest.find("${") {
            out.push_str(&rest[..start]);
            let after = &rest[start + 2..];
            let end = after.find('}').ok_or_else(|| PolicyError::Unresolved {
                origin: source.to_owned(),
                what: text.to_owned(),
            })?;
            let name = &after[..end];
            let value = vars
                .get(name)
                .cloned()
                .or_else(|| self.lookup(name))
                .ok_or_else(|| PolicyError::Unresolved {
                    origin: source.to_owned(),
                    what: name.to_owned(),
                })?;
            out.push_str(&value);
            rest = &after[end + 1..];
        }
        out.push_str(rest);
        Ok(out)
    }
}

/// Reads one statement as the transform printed it (`tools/iam/sam_policies.py`), resolving its
/// intrinsic functions against `facts`.
pub fn read_statement(raw: &Value, facts: &StackFacts) -> Result<Statement, PolicyError> {
    let source = raw["source"].as_str().unwrap_or("?").to_owned();
    let unsupported = |reason: &str| PolicyError::Unsupported {
        origin: source.clone(),
        reason: reason.to_owned(),
    };
    let object = raw
        .as_object()
        .ok_or_else(|| unsupported("a statement is an object"))?;
    for key in object.keys() {
        if !matches!(
            key.as_str(),
            "source" | "Sid" | "Effect" | "Action" | "Resource" | "Condition"
        ) {
            return Err(unsupported(&format!("{key} is not evaluated locally")));
        }
    }
    let effect = match raw["Effect"].as_str() {
        Some("Allow") => Effect::Allow,
        Some("Deny") => Effect::Deny,
        _ => return Err(unsupported("Effect is Allow or Deny")),
    };
    let list = |value: &Value| -> Vec<Value> {
        match value {
            Value::Array(items) => items.clone(),
            Value::Null => Vec::new(),
            one => vec![one.clone()],
        }
    };
    let actions = list(&raw["Action"])
        .iter()
        .map(|a| {
            a.as_str()
                .map(str::to_owned)
                .ok_or_else(|| unsupported("an Action is a string"))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let resources = list(&raw["Resource"])
        .iter()
        .map(|r| facts.resolve(r, &source))
        .collect::<Result<Vec<_>, _>>()?;
    if actions.is_empty() || resources.is_empty() {
        return Err(unsupported("a statement needs Action and Resource"));
    }
    let mut conditions = Vec::new();
    if let Some(operators) = raw.get("Condition").and_then(Value::as_object) {
        for (operator, keys) in operators {
            let (set, rest) = match operator.split_once(':') {
                Some(("ForAllValues", rest)) => (SetOperator::ForAllValues, rest),
                Some(("ForAnyValue", rest)) => (SetOperator::ForAnyValue, rest),
                Some(_) => return Err(unsupported(&format!("condition operator {operator}"))),
                None => (SetOperator::Single, operator.as_str()),
            };
            let (base, if_exists) = match rest.strip_suffix("IfExists") {
                Some(base) => (base, true),
                None => (rest, false),
            };
            let like = match base {
                "StringLike" => true,
                "StringEquals" => false,
                _ => return Err(unsupported(&format!("condition operator {operator}"))),
            };
            let keys = keys
                .as_object()
                .ok_or_else(|| unsupported("a condition maps keys to values"))?;
            for (key, values) in keys {
                let values = list(values)
                    .iter()
                    .map(|v| facts.resolve(v, &source))
                    .collect::<Result<Vec<_>, _>>()?;
                conditions.push(Condition {
                    set,
                    like,
                    if_exists,
                    key: key.to_ascii_lowercase(),
                    values,
                });
            }
        }
    }
    Ok(Statement {
        source,
        effect,
        actions,
        resources,
        conditions,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn facts() -> StackFacts {
        StackFacts::example("chat-test")
    }

    fn statement(raw: Value) -> Statement {
        read_statement(&raw, &facts()).unwrap()
    }

    const TABLE: &str = "arn:aws:dynamodb:us-east-1:000000000000:table/chat-test";

    fn leading(action: &str, resource: &str, keys: &[&str]) -> Authorization {
        Authorization::new(action, resource)
            .with("dynamodb:LeadingKeys", keys.iter().map(|k| (*k).to_owned()))
    }

    #[test]
    fn wildcards_match_as_iam_does() {
        assert!(wildcard("USER#*", "USER#ada"));
        assert!(wildcard("USER#*", "USER#"));
        assert!(!wildcard("USER#*", "CONV#1"));
        assert!(wildcard("a?c", "abc"));
        assert!(!wildcard("a?c", "ac"));
        assert!(wildcard("*", ""));
        assert!(wildcard(
            "arn:*:table/*/index/*",
            "arn:aws:table/t/index/GSI1"
        ));
        assert!(!wildcard("arn:aws:x", "arn:aws:xy"));
        assert!(wildcard("*a*b", "xxaxxb"));
        assert!(!wildcard("*a*b", "xxaxxbx"));
    }

    #[test]
    fn intrinsics_resolve_against_the_local_stack() {
        let s = statement(json!({
            "source": "P0", "Effect": "Allow", "Action": "execute-api:ManageConnections",
            "Resource": [
                {"Fn::GetAtt": ["ChatTable", "Arn"]},
                {"Fn::Sub": "${ChatTable.Arn}/index/GSI1"},
                {"Fn::Sub": "arn:${AWS::Partition}:execute-api:${AWS::Region}:${AWS::AccountId}:${WebSocketApi}/${Stage}/POST/@connections/*"},
                {"Fn::Sub": ["arn:aws:sqs:${AWS::Region}:${AWS::AccountId}:${q}", {"q": {"Fn::GetAtt": ["EventFailureQueue", "QueueName"]}}]},
                {"Fn::GetAtt": ["EventStream", "Arn"]},
            ]
        }));
        assert_eq!(
            s.resources,
            [
                TABLE.to_owned(),
                format!("{TABLE}/index/GSI1"),
                "arn:aws:execute-api:us-east-1:000000000000:local/dev/POST/@connections/*"
                    .to_owned(),
                "arn:aws:sqs:us-east-1:000000000000:EventFailureQueue".to_owned(),
                "arn:aws:kinesis:us-east-1:000000000000:stream/events".to_owned(),
            ]
        );
        let unknown = read_statement(
            &json!({"source": "P1", "Effect": "Allow", "Action": "s3:GetObject", "Resource": {"Fn::GetAtt": ["Bucket", "Arn"]}}),
            &facts(),
        );
        assert_eq!(
            unknown,
            Err(PolicyError::Unresolved {
                origin: "P1".into(),
                what: "Bucket.Arn".into()
            })
        );
    }

    #[test]
    fn what_is_not_evaluated_locally_is_refused_when_loading() {
        for raw in [
            json!({"Effect": "Allow", "NotAction": "s3:*", "Resource": "*"}),
            json!({"Effect": "Allow", "Action": "s3:*", "NotResource": "x"}),
            json!({"Effect": "Allow", "Action": "s3:*", "Resource": "*", "Condition": {"NumericLessThan": {"k": "1"}}}),
            json!({"Effect": "Allow", "Action": "s3:*", "Resource": "*", "Condition": {"StringNotLike": {"k": "1"}}}),
            json!({"Effect": "Maybe", "Action": "s3:*", "Resource": "*"}),
        ] {
            assert!(read_statement(&raw, &facts()).is_err(), "{raw}");
        }
    }

    #[test]
    fn leading_keys_must_all_match_and_an_index_is_its_own_resource() {
        let policy = [
            statement(
                json!({"source": "P0", "Effect": "Allow", "Action": ["dynamodb:GetItem", "dynamodb:BatchGetItem"],
                "Resource": {"Fn::GetAtt": ["ChatTable", "Arn"]},
                "Condition": {"ForAllValues:StringLike": {"dynamodb:LeadingKeys": ["USER#*", "CONV#*"]}}}),
            ),
            statement(
                json!({"source": "P0", "Effect": "Allow", "Action": ["dynamodb:Query"],
                "Resource": {"Fn::Sub": "${ChatTable.Arn}/index/GSI1"},
                "Condition": {"ForAllValues:StringLike": {"dynamodb:LeadingKeys": ["USER#*"]}}}),
            ),
        ];
        let allowed = |r: &Authorization| evaluate(&policy, r).allowed();
        assert!(allowed(&leading("dynamodb:GetItem", TABLE, &["USER#ada"])));
        assert!(
            allowed(&leading("DynamoDB:getitem", TABLE, &["CONV#1"])),
            "actions are case-insensitive"
        );
        assert!(allowed(&leading(
            "dynamodb:BatchGetItem",
            TABLE,
            &["USER#a", "CONV#1"]
        )));
        assert!(
            !allowed(&leading(
                "dynamodb:BatchGetItem",
                TABLE,
                &["USER#a", "TICKET#x"]
            )),
            "one key outside"
        );
        assert!(
            !allowed(&leading("dynamodb:GetItem", TABLE, &["user#ada"])),
            "values are case-sensitive"
        );
        assert!(
            !allowed(&leading("dynamodb:Query", TABLE, &["CONV#1"])),
            "Query on the table"
        );
        assert!(allowed(&leading(
            "dynamodb:Query",
            &format!("{TABLE}/index/GSI1"),
            &["USER#a"]
        )));
        assert!(!allowed(&leading(
            "dynamodb:Query",
            &format!("{TABLE}/index/ByRev"),
            &["USER#a"]
        )));
        assert!(!allowed(&leading("dynamodb:PutItem", TABLE, &["USER#a"])));
        assert!(
            !allowed(&leading(
                "dynamodb:GetItem",
                &format!("{TABLE}x"),
                &["USER#a"]
            )),
            "another table"
        );
        // AWS: ForAllValues over a key the request does not carry is true (a Scan).
        assert!(allowed(&Authorization::new("dynamodb:GetItem", TABLE)));
    }

    #[test]
    fn an_explicit_deny_wins_and_single_valued_operators_need_the_key() {
        let policy = [
            statement(
                json!({"source": "A", "Effect": "Allow", "Action": "dynamodb:*", "Resource": "*"}),
            ),
            statement(
                json!({"source": "D", "Effect": "Deny", "Action": "dynamodb:DeleteItem", "Resource": "*",
                "Condition": {"StringEquals": {"dynamodb:LeadingKeys": "USER#root"}}}),
            ),
        ];
        assert_eq!(
            evaluate(
                &policy,
                &leading("dynamodb:DeleteItem", TABLE, &["USER#root"])
            ),
            Decision::ExplicitDeny { source: "D".into() }
        );
        assert!(
            evaluate(
                &policy,
                &leading("dynamodb:DeleteItem", TABLE, &["USER#ada"])
            )
            .allowed()
        );
        // The key absent: a plain StringEquals does not hold, so the Deny does not apply.
        assert!(evaluate(&policy, &Authorization::new("dynamodb:DeleteItem", TABLE)).allowed());
        // Two values under a single-valued operator: never relied upon (the Deny holds neither).
        let if_exists = [statement(
            json!({"source": "A", "Effect": "Allow", "Action": "dynamodb:GetItem", "Resource": "*",
            "Condition": {"StringLikeIfExists": {"dynamodb:LeadingKeys": "USER#*"}}}),
        )];
        assert!(evaluate(&if_exists, &Authorization::new("dynamodb:GetItem", TABLE)).allowed());
        assert!(
            !evaluate(
                &if_exists,
                &leading("dynamodb:GetItem", TABLE, &["USER#a", "USER#b"])
            )
            .allowed()
        );
        assert_eq!(
            evaluate(&[], &Authorization::new("x:y", "z")),
            Decision::ImplicitDeny
        );
    }
}
