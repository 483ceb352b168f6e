//! What every function stands on: configuration, time and the clock, telemetry and metrics, the
//! AWS SDK's set-up. It knows nothing of chats.

pub mod aws;
pub mod config;
pub mod metrics;
pub mod telemetry;
pub mod time;
