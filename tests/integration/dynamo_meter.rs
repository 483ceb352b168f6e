//! An interceptor on the DynamoDB client the route functions use: it records every call's
//! operation (once per call, not per retry attempt) and, since it asks for
//! `ReturnConsumedCapacity: TOTAL` on each, the capacity units the call consumed. The budget test
//! holds routes to their call counts with it; the cost benchmark prices them.

use std::sync::{Arc, Mutex};

use aws_sdk_dynamodb::config::interceptors::{
    AfterDeserializationInterceptorContextRef, BeforeSerializationInterceptorContextMut,
    BeforeSerializationInterceptorContextRef,
};
use aws_sdk_dynamodb::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_sdk_dynamodb::error::BoxError;
use aws_sdk_dynamodb::operation as op;
use aws_sdk_dynamodb::types::{ConsumedCapacity, ReturnConsumedCapacity};

/// One DynamoDB call.
#[derive(Debug, Clone, PartialEq)]
pub struct Call {
    pub operation: &'static str,
    /// The `PK`/`SK` of every item a `TransactWriteItems` call writes (AWS bills those double).
    pub transactional_keys: Vec<(String, String)>,
    /// Its `ConditionCheck` parts: AWS bills each as a transactional write of its item, and
    /// nothing reaches the stream.
    pub condition_checks: usize,
}

/// What the calls since the last `take` made and consumed. Answers are summed, not matched to
/// their calls: calls run concurrently, and the interceptor cannot tell which answer is whose.
#[derive(Debug, Clone, Default)]
pub struct Metered {
    pub calls: Vec<Call>,
    /// Capacity units DynamoDB reported, for reads and for writes.
    pub read_units: f64,
    pub write_units: f64,
    /// Writes refused by their condition: AWS bills them, and nothing reaches the stream.
    pub failed_conditions: usize,
}

impl Metered {
    pub fn operations(&self) -> Vec<&'static str> {
        self.calls.iter().map(|c| c.operation).collect()
    }
}

fn writes(operation: &str) -> bool {
    matches!(
        operation,
        "PutItem" | "UpdateItem" | "DeleteItem" | "BatchWriteItem" | "TransactWriteItems"
    )
}

#[derive(Debug, Clone, Default)]
pub struct DynamoMeter(Arc<Mutex<Metered>>);

impl DynamoMeter {
    /// What was metered since the last `take`.
    pub fn take(&self) -> Metered {
        std::mem::take(&mut *self.0.lock().unwrap())
    }

    /// A client like `sdk`'s with this meter on it.
    pub fn client(&self, sdk: &aws_config::SdkConfig) -> aws_sdk_dynamodb::Client {
        aws_sdk_dynamodb::Client::from_conf(
            aws_sdk_dynamodb::config::Builder::from(sdk)
                .interceptor(self.clone())
                .build(),
        )
    }
}

/// Every operation the functions may call: (module, input type, output type, name, output
/// capacity shape), for the macros below (the SDK's `Input`/`Output` are type-erased).
macro_rules! with_operations {
    ($callback:ident!($($args:tt)*)) => {
        $callback!(($($args)*)
            get_item GetItemInput GetItemOutput "GetItem" one,
            put_item PutItemInput PutItemOutput "PutItem" one,
            update_item UpdateItemInput UpdateItemOutput "UpdateItem" one,
            delete_item DeleteItemInput DeleteItemOutput "DeleteItem" one,
            query QueryInput QueryOutput "Query" one,
            scan ScanInput ScanOutput "Scan" one,
            batch_get_item BatchGetItemInput BatchGetItemOutput "BatchGetItem" many,
            batch_write_item BatchWriteItemInput BatchWriteItemOutput "BatchWriteItem" many,
            transact_write_items TransactWriteItemsInput TransactWriteItemsOutput "TransactWriteItems" many,
            transact_get_items TransactGetItemsInput TransactGetItemsOutput "TransactGetItems" many,
        )
    };
}

/// The operation a call is, from the type of its input.
macro_rules! operation_name {
    (($input:expr) $($module:ident $in:ident $out:ident $name:literal $shape:ident,)*) => {{
        let input = $input;
        'found: {
            $(if input.downcast_ref::<op::$module::$in>().is_some() { break 'found $name; })*
            "other"
        }
    }};
}

/// Sets `ReturnConsumedCapacity: TOTAL` on the input, whichever operation it is.
macro_rules! ask_for_capacity {
    (($input:expr) $($module:ident $in:ident $out:ident $name:literal $shape:ident,)*) => {{
        let input = $input;
        $(if let Some(i) = input.downcast_mut::<op::$module::$in>() {
            i.return_consumed_capacity = Some(ReturnConsumedCapacity::Total);
        })*
    }};
}

/// The capacity an output reports, whichever operation it is.
macro_rules! capacity_of {
    (($output:expr) $($module:ident $in:ident $out:ident $name:literal $shape:ident,)*) => {{
        let output = $output;
        let mut found: (&str, Vec<ConsumedCapacity>) = ("other", Vec::new());
        $(if let Some(o) = output.downcast_ref::<op::$module::$out>() {
            found = ($name, capacity_of!(@$shape o));
        })*
        found
    }};
    (@one $o:expr) => { $o.consumed_capacity.clone().into_iter().collect() };
    (@many $o:expr) => { $o.consumed_capacity.clone().unwrap_or_default() };
}

impl Intercept for DynamoMeter {
    fn name(&self) -> &'static str {
        "DynamoMeter"
    }

    fn read_before_execution(
        &self,
        context: &BeforeSerializationInterceptorContextRef<'_>,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let operation = with_operations!(operation_name!(context.input()));
        let transaction = context
            .input()
            .downcast_ref::<op::transact_write_items::TransactWriteItemsInput>();
        let transactional_keys = transaction.map(transaction_keys).unwrap_or_default();
        let condition_checks = transaction.map_or(0, |t| {
            t.transact_items
                .iter()
                .flatten()
                .filter(|part| part.condition_check().is_some())
                .count()
        });
        self.0.lock().unwrap().calls.push(Call {
            operation,
            transactional_keys,
            condition_checks,
        });
        Ok(())
    }

    fn modify_before_serialization(
        &self,
        context: &mut BeforeSerializationInterceptorContextMut<'_>,
        _components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        with_operations!(ask_for_capacity!(context.input_mut()));
        Ok(())
    }

    fn read_after_deserialization(
        &self,
        context: &AfterDeserializationInterceptorContextRef<'_>,
        _components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        // Once per attempt; a retried attempt failed, so only the last one has capacity.
        let mut metered = self.0.lock().unwrap();
        match context.output_or_error() {
            Ok(output) => {
                let (operation, capacity): (&str, Vec<ConsumedCapacity>) =
                    with_operations!(capacity_of!(output));
                let units: f64 = capacity.iter().filter_map(|c| c.capacity_units).sum();
                if writes(operation) {
                    metered.write_units += units;
                } else {
                    metered.read_units += units;
                }
            }
            Err(error) => {
                let refused = error.as_operation_error().is_some_and(|e| {
                    e.downcast_ref::<op::put_item::PutItemError>()
                        .is_some_and(|e| e.is_conditional_check_failed_exception())
                        || e.downcast_ref::<op::update_item::UpdateItemError>()
                            .is_some_and(|e| e.is_conditional_check_failed_exception())
                        || e.downcast_ref::<op::delete_item::DeleteItemError>()
                            .is_some_and(|e| e.is_conditional_check_failed_exception())
                });
                metered.failed_conditions += usize::from(refused);
            }
        }
        Ok(())
    }
}

/// The keys a transaction writes (puts, updates and deletes; condition checks write nothing).
fn transaction_keys(
    input: &op::transact_write_items::TransactWriteItemsInput,
) -> Vec<(String, String)> {
    let text = |item: Option<
        &std::collections::HashMap<String, aws_sdk_dynamodb::types::AttributeValue>,
    >,
                name: &str| {
        item.and_then(|i| i.get(name))
            .and_then(|v| v.as_s().ok())
            .cloned()
            .unwrap_or_default()
    };
    input
        .transact_items
        .iter()
        .flatten()
        .filter_map(|t| {
            let key = if let Some(put) = t.put() {
                Some(put.item())
            } else if let Some(update) = t.update() {
                Some(update.key())
            } else {
                t.delete().map(|d| d.key())
            }?;
            Some((text(Some(key), "PK"), text(Some(key), "SK")))
        })
        .collect()
}
