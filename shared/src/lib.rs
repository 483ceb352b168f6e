//! The library every chat Lambda links: domain types that validate on parse, the error types and
//! their one mapping to the contract's status codes, typed configuration, tracing set-up, and the
//! adapters to AWS (the DynamoDB store so far).
//!
//! Handlers in `functions/` stay thin: they parse an event into the types here, call a service and
//! map the outcome back. Everything that can be tested without a Lambda runtime lives here.

pub mod analytics;
pub mod aws;
pub mod cache;
pub mod config;
pub mod connections;
pub mod conversations;
pub mod cursor;
pub mod cursor_keys;
pub mod deps;
pub mod domain;
pub mod error;
pub mod events;
pub mod http;
#[cfg(feature = "jwt")]
pub mod jwt;
pub mod keys;
pub mod limits;
pub mod messages;
pub mod metrics;
pub mod notify;
pub mod profiles;
pub mod push;
pub mod realtime;
pub mod redis_link;
pub mod store;
pub mod telemetry;
pub mod time;
pub mod ws;

/// Property tests over every parser and validator (`proptest`).
#[cfg(test)]
mod prop;

pub use error::{ApiError, ErrorCode};
