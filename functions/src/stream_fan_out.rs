//! `stream-fan-out`: fed by the table's DynamoDB stream (the second and last reader of its shards;
//! `stream-publisher` is the first), it pushes messages, read positions, typing, and conversation
//! and member changes to every connection of the members concerned, outside the invocation of
//! the write that caused them, and reports the first record it could not deliver so that the
//! mapping resumes from there (`chat_shared::services::delivery`). It is the only function that
//! posts to `@connections`, and it runs outside the VPC: it needs no Redis, and no NAT gateway.

use aws_lambda_events::event::dynamodb::Event;
use aws_lambda_events::event::streams::DynamoDbEventResponse;
use chat_shared::services::delivery;
use chat_shared::services::deps::RouteDeps;
use lambda_runtime::{Error, LambdaEvent};

/// `deps` as every route's, without Redis (no `REDIS_URL`: the function is outside the VPC), so
/// the views it renders are read from the table.
pub async fn handle(
    deps: &RouteDeps,
    event: LambdaEvent<Event>,
) -> Result<DynamoDbEventResponse, Error> {
    Ok(delivery::deliver(deps, &event.payload).await)
}
