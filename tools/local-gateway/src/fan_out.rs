//! Plays `stream-fan-out`'s event source mapping: the table's stream read with the function's
//! role, each batch handed to the function's handler with its own deps (its calls held to its
//! role), a partial batch failure read again from the failed record. Every gateway over a table
//! runs one, as every stack has one mapping; a second gateway over the same table (a test's
//! clock moved ahead) must not, or the table's connections would get every push twice.

use chat_shared::services::delivery;

use crate::server::Gateway;

/// The function, as the template names it.
pub const FUNCTION: &str = "stream-fan-out";

/// Starts the poller; it stops when the returned task is aborted (or with the runtime).
pub async fn start(gateway: &Gateway) -> Result<tokio::task::JoinHandle<()>, String> {
    let deps = gateway
        .functions
        .ws(FUNCTION)
        .ok_or("stream-fan-out is not in the template")?;
    let sdk = chat_shared::platform::aws::load_sdk_config()
        .await
        .map_err(|e| e.to_string())?;
    let stream_arn = crate::stream_poller::table_stream_arn(gateway).await?;
    let streams = gateway.functions.dynamodb_streams(FUNCTION, &sdk);
    Ok(tokio::spawn(async move {
        let handler = |event| {
            let deps = deps.clone();
            async move { delivery::deliver(&deps.store, &deps.pusher, &event).await }
        };
        crate::stream_poller::run(streams, stream_arn, handler, std::future::pending()).await;
    }))
}
