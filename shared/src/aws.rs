//! The AWS SDK configuration every binary loads once in `main`.
//!
//! Timeouts and retries are bounded so that a frozen dependency costs a request a few seconds,
//! not the function's whole timeout: the caller gets 503 and may retry. Endpoints come from the
//! SDK's own `AWS_ENDPOINT_URL_*` variables (the local stack sets them), so there is no local
//! switch in code.

use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, SdkConfig};

/// Per attempt: connecting, then the whole attempt; and the operation with its retries.
pub const CONNECT_TIMEOUT: Duration = Duration::from_millis(1_000);
pub const ATTEMPT_TIMEOUT: Duration = Duration::from_millis(2_000);
pub const OPERATION_TIMEOUT: Duration = Duration::from_millis(5_000);
pub const MAX_ATTEMPTS: u32 = 3;

pub async fn load_sdk_config() -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(CONNECT_TIMEOUT)
                .operation_attempt_timeout(ATTEMPT_TIMEOUT)
                .operation_timeout(OPERATION_TIMEOUT)
                .build(),
        )
        .retry_config(RetryConfig::standard().with_max_attempts(MAX_ATTEMPTS))
        .load()
        .await
}
