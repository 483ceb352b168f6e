//! Posting to WebSocket connections through the API Gateway Management API (`@connections`).
//! The endpoint (`https://{apiId}.execute-api.{region}.amazonaws.com/{stage}` in AWS, the local
//! gateway's `http://127.0.0.1:3000/local` locally) comes from the SDK's own
//! `AWS_ENDPOINT_URL_APIGATEWAYMANAGEMENTAPI`.

use aws_sdk_apigatewaymanagement::Client;
use aws_sdk_apigatewaymanagement::operation::post_to_connection::PostToConnectionError;
use aws_sdk_apigatewaymanagement::primitives::Blob;
use serde_json::Value;

use crate::store::{DynamoStore, StoreError};

/// Why a post did not arrive.
#[derive(Debug, thiserror::Error)]
pub enum PushError {
    /// The connection is closed or never existed (410): its record should go.
    #[error("the connection is gone")]
    Gone,
    #[error("the message is too large for a WebSocket frame")]
    PayloadTooLarge,
    #[error("API Gateway's connection limit was exceeded")]
    LimitExceeded,
    #[error("the post failed: {0}")]
    Other(String),
}

#[derive(Debug, Clone)]
pub struct Pusher {
    client: Client,
}

impl Pusher {
    pub fn new(client: Client) -> Self {
        Self { client }
    }

    pub async fn from_env() -> Self {
        let sdk = crate::aws::load_sdk_config().await;
        Self::new(Client::new(&sdk))
    }

    /// Posts one JSON message to one connection.
    pub async fn post(&self, connection_id: &str, message: &Value) -> Result<(), PushError> {
        let result = self
            .client
            .post_to_connection()
            .connection_id(connection_id)
            .data(Blob::new(message.to_string().into_bytes()))
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(error) => Err(match error.as_service_error() {
                Some(PostToConnectionError::GoneException(_)) => PushError::Gone,
                Some(PostToConnectionError::PayloadTooLargeException(_)) => {
                    PushError::PayloadTooLarge
                }
                Some(PostToConnectionError::LimitExceededException(_)) => PushError::LimitExceeded,
                _ => PushError::Other(crate::error::ErrorChain(&error).to_string()),
            }),
        }
    }

    /// Posts an answer to the connection a frame came from. A gone connection loses its record;
    /// nothing here fails the caller.
    pub async fn answer(
        &self,
        store: &DynamoStore,
        connection_id: &str,
        message: &Value,
    ) -> Result<(), StoreError> {
        match self.post(connection_id, message).await {
            Ok(()) => Ok(()),
            Err(PushError::Gone) => crate::connections::close(store, connection_id)
                .await
                .map(|_| ()),
            Err(error) => {
                tracing::warn!(%error, "answer not delivered");
                Ok(())
            }
        }
    }
}
