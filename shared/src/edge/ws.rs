//! The WebSocket side of the functions: reading API Gateway's WebSocket events.

use aws_lambda_events::event::apigw::{ApiGatewayProxyResponse, ApiGatewayWebsocketProxyRequest};

use crate::domain::UserId;

/// The user the `$connect` authorizer put in the context (`userId`, else the principal).
pub fn user(request: &ApiGatewayWebsocketProxyRequest) -> Option<UserId> {
    // A WebSocket event carries the authorizer's context flat; the crate files it under `fields`.
    let context = &request.request_context.authorizer.fields;
    context
        .get("userId")
        .or_else(|| context.get("principalId"))
        .and_then(|v| v.as_str())
        .and_then(|s| s.parse().ok())
}

/// The user and connection of an event that came through the `$connect` authorizer.
pub fn caller(request: &ApiGatewayWebsocketProxyRequest) -> Option<(UserId, &str)> {
    Some((user(request)?, connection_id(request)?))
}

/// The connection the event is about.
pub fn connection_id(request: &ApiGatewayWebsocketProxyRequest) -> Option<&str> {
    request.request_context.connection_id.as_deref()
}

/// A bare status answer (`$connect` refuses the connection with anything but 2xx).
pub fn status(code: i64) -> ApiGatewayProxyResponse {
    let mut response = ApiGatewayProxyResponse::default();
    response.status_code = code;
    response
}

/// What the WebSocket message routes build once: the table and the `@connections` client.
#[derive(Debug, Clone)]
pub struct WsDeps {
    pub store: crate::adapters::store::DynamoStore,
    pub pusher: crate::adapters::push::Pusher,
}

impl WsDeps {
    pub async fn from_env<F: Fn(&str) -> Option<String>>(
        env: &crate::platform::config::Env<F>,
    ) -> Result<Self, crate::platform::config::ConfigError> {
        let table = crate::adapters::store::StoreConfig::from_env(env)?.table_name;
        let in_flight = crate::adapters::push::in_flight_from_env(env)?;
        let clock = crate::platform::time::Clock::from_env(env)?;
        let sdk = crate::platform::aws::load_sdk_config().await?;
        Ok(Self {
            store: crate::adapters::store::DynamoStore::new(
                aws_sdk_dynamodb::Client::new(&sdk),
                table,
                clock,
            ),
            pusher: crate::adapters::push::Pusher::new(aws_sdk_apigatewaymanagement::Client::new(
                &sdk,
            ))
            .with_in_flight(in_flight),
        })
    }
}

/// A frame's JSON body as `T` (which names `action` among its fields), with the HTTP routes'
/// errors: not JSON is `invalid_json`, the wrong shape `validation_failed`.
pub fn frame<T: serde::de::DeserializeOwned>(
    request: &ApiGatewayWebsocketProxyRequest,
) -> Result<T, crate::domain::error::ApiError> {
    crate::edge::http::parse_json(request.body.as_deref().unwrap_or_default().as_bytes())
}

/// A frame's answer as the route's response: the `ack` an action makes, or
/// `{"type": "error", "action", "clientMessageId"?, "error": {code, message}}`. Every message route
/// is two-way (a `$default` route response in `template.yaml`), so API Gateway sends this body back
/// on the frame's connection: no function posts its answer to `@connections`.
pub fn answer(
    action: &str,
    client_message_id: Option<&str>,
    outcome: Result<serde_json::Value, crate::domain::error::ApiError>,
) -> ApiGatewayProxyResponse {
    let frame = match outcome {
        Ok(ack) => ack,
        Err(error) => {
            error.log();
            let mut frame = serde_json::json!({"type": "error", "action": action, "error": error.error_object()});
            if let Some(id) = client_message_id {
                frame["clientMessageId"] = serde_json::json!(id);
            }
            frame
        }
    };
    respond(&frame)
}

/// `frame` as the route's response, which API Gateway sends back on the frame's connection.
pub fn respond(frame: &serde_json::Value) -> ApiGatewayProxyResponse {
    let mut response = status(200);
    response.body = Some(aws_lambda_events::encodings::Body::Text(frame.to_string()));
    response
}
