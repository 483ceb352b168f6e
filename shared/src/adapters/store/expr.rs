//! Expressions with their placeholder names and values, as DynamoDB takes them.

use std::collections::HashMap;
use std::fmt::Display;

use aws_sdk_dynamodb::types::AttributeValue;

/// A condition, key condition, filter or update expression. For an update, `condition` is the
/// optional `ConditionExpression` that guards it; names and values serve both.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Expr {
    pub expression: String,
    pub condition: Option<String>,
    pub names: Option<HashMap<String, String>>,
    pub values: Option<HashMap<String, AttributeValue>>,
}

/// Names and values, split out of an optional expression.
pub(super) type Parts = (
    Option<String>,
    Option<HashMap<String, String>>,
    Option<HashMap<String, AttributeValue>>,
);

impl Expr {
    pub fn new(expression: impl Into<String>) -> Self {
        Self {
            expression: expression.into(),
            ..Self::default()
        }
    }

    /// `SET c1, c2, …`: an update of these clauses (names and values added after).
    pub fn set<C: Into<String>>(clauses: impl IntoIterator<Item = C>) -> Self {
        let clauses: Vec<String> = clauses.into_iter().map(Into::into).collect();
        Self::new(format!("SET {}", clauses.join(", ")))
    }

    /// `attribute_not_exists(PK)`: the item must not exist yet.
    pub fn item_absent() -> Self {
        Self::new("attribute_not_exists(PK)")
    }

    /// The item is absent, or present but expired at `now_seconds` (DynamoDB deletes expired items
    /// late, and reads treat them as absent): a key that may be taken over.
    pub fn absent_or_expired(now_seconds: i64) -> Self {
        Self::new("attribute_not_exists(PK) OR expiresAt < :now").number(":now", now_seconds)
    }

    /// The item is present and not expired at `now_seconds`.
    pub fn present_and_unexpired(now_seconds: i64) -> Self {
        Self::new("attribute_exists(PK) AND expiresAt >= :now").number(":now", now_seconds)
    }

    /// `attribute_exists(PK)`: the item must exist.
    pub fn item_present() -> Self {
        Self::new("attribute_exists(PK)")
    }

    /// Guards an update expression with a condition.
    pub fn when(mut self, condition: impl Into<String>) -> Self {
        self.condition = Some(condition.into());
        self
    }

    pub fn name(mut self, placeholder: &str, attribute: &str) -> Self {
        self.names
            .get_or_insert_with(HashMap::new)
            .insert(placeholder.to_owned(), attribute.to_owned());
        self
    }

    pub fn value_raw(mut self, placeholder: &str, value: AttributeValue) -> Self {
        self.values
            .get_or_insert_with(HashMap::new)
            .insert(placeholder.to_owned(), value);
        self
    }

    pub fn string(self, placeholder: &str, value: impl Into<String>) -> Self {
        self.value_raw(placeholder, AttributeValue::S(value.into()))
    }

    pub fn number(self, placeholder: &str, value: impl Display) -> Self {
        self.value_raw(placeholder, AttributeValue::N(value.to_string()))
    }

    pub fn boolean(self, placeholder: &str, value: bool) -> Self {
        self.value_raw(placeholder, AttributeValue::Bool(value))
    }

    pub(super) fn split(expr: Option<Self>) -> Parts {
        match expr {
            Some(e) => (Some(e.expression), e.names, e.values),
            None => (None, None, None),
        }
    }
}
