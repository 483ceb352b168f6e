//! The AWS SDK configuration every binary loads once in `main`.
//!
//! Timeouts and retries are bounded so that a frozen dependency costs a request a few seconds,
//! not the function's whole timeout: the caller gets 503 and may retry. Endpoints come from the
//! SDK's own `AWS_ENDPOINT_URL_*` variables (the local stack sets them), so there is no local
//! switch in code.
//!
//! Lambda hands a function its role's credentials and its region in the environment
//! (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`, `AWS_REGION`). When they
//! are there, they are taken from there alone: the rest of the default chain costs a cold start
//! time for nothing (the web-identity provider builds an STS client, and with it a TLS context
//! from the system's root certificates; the profile, container and instance providers look for
//! files and endpoints a function does not have). Without them, the SDK's default chain as usual.

use std::time::Duration;

use aws_config::environment::EnvironmentVariableCredentialsProvider;
use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region, SdkConfig};

/// Per attempt: connecting, then the whole attempt; and the operation with its retries.
pub const CONNECT_TIMEOUT: Duration = Duration::from_millis(1_000);
pub const ATTEMPT_TIMEOUT: Duration = Duration::from_millis(2_000);
pub const OPERATION_TIMEOUT: Duration = Duration::from_millis(5_000);
pub const MAX_ATTEMPTS: u32 = 3;

pub async fn load_sdk_config() -> SdkConfig {
    let mut loader = aws_config::defaults(BehaviorVersion::latest())
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(CONNECT_TIMEOUT)
                .operation_attempt_timeout(ATTEMPT_TIMEOUT)
                .operation_timeout(OPERATION_TIMEOUT)
                .build(),
        )
        .retry_config(RetryConfig::standard().with_max_attempts(MAX_ATTEMPTS));
    let set = |name| std::env::var_os(name).is_some_and(|v| !v.is_empty());
    if set("AWS_ACCESS_KEY_ID") && set("AWS_SECRET_ACCESS_KEY") {
        loader = loader.credentials_provider(EnvironmentVariableCredentialsProvider::new());
    }
    if let Some(region) = std::env::var("AWS_REGION").ok().filter(|r| !r.is_empty()) {
        loader = loader.region(Region::new(region));
    }
    loader.load().await
}
