//! `ws-ping` (route `ping`): answers `{"type": "pong"}` to the sender through `@connections`.

use aws_lambda_events::event::apigw::{ApiGatewayProxyResponse, ApiGatewayWebsocketProxyRequest};
use chat_shared::ws::{self, WsDeps};
use lambda_runtime::{Error, LambdaEvent};
use serde_json::json;

pub async fn handle(
    deps: &WsDeps,
    event: LambdaEvent<ApiGatewayWebsocketProxyRequest>,
) -> Result<ApiGatewayProxyResponse, Error> {
    if let Some(connection) = ws::connection_id(&event.payload) {
        deps.pusher
            .answer(&deps.store, connection, &json!({"type": "pong"}))
            .await?;
    }
    Ok(ws::status(200))
}
