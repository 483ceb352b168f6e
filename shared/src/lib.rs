//! The library every chat Lambda links, in five layers (`tests/layers.rs` holds the direction):
//!
//! - [`platform`]: configuration, time and the clock, telemetry and metrics, the AWS SDK's set-up;
//! - [`domain`]: types that validate on parse, the contract's errors, limits, pure decisions;
//! - [`adapters`]: the DynamoDB store with its keys, Redis, `@connections`, Kinesis, cursors;
//! - [`services`]: the use cases, each a read, a decision, its writes and its pushes;
//! - [`edge`]: HTTP and WebSocket requests and answers, the one error map, JWTs.
//!
//! A layer uses the layers before it in this list, never one after it, and the modules of a layer
//! form no cycle. The functions in `functions/` are thin adapters on top: they parse an event
//! into the types here, call a service and map the outcome back.

pub mod adapters;
pub mod domain;
pub mod edge;
pub mod platform;
pub mod services;

/// Property tests over every parser and validator (`proptest`).
#[cfg(test)]
mod prop;

pub use domain::error::{ApiError, ErrorCode};
