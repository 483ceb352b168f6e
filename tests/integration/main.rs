//! Integration tests against the local stack: real DynamoDB Local and kinesis-local.
//!
//! Start the stack first (`tools/test.sh` does it all; or `tools/stack.sh start` and
//! `eval "$(tools/stack.sh env)"`). Each test makes its own uniquely named table or stream, so
//! tests run in parallel and never see each other's data.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test helpers: a panic is a failed test"
)]

mod analytics;
mod budgets;
mod cache;
mod changes;
mod conversations;
mod cost;
mod dynamo_meter;
mod events;
mod fan_out;
mod faults;
mod gateway_auth;
mod handlers;
mod iam;
mod inbox;
mod limits;
mod messages;
mod profiles;
mod push;
mod realtime;
mod runtime;
mod schema;
mod security;
mod sequencing;
mod store;
mod support;
mod web_client;
mod websocket;
mod websocket_gateway;
mod ws_contract;
mod ws_schema;
