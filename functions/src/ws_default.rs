//! `ws-default` (`$default`): a frame whose `action` no route handles gets an `unknown_action`
//! error, posted to the sender.

use aws_lambda_events::event::apigw::{ApiGatewayProxyResponse, ApiGatewayWebsocketProxyRequest};
use chat_shared::edge::ws::{self, WsDeps};
use lambda_runtime::{Error, LambdaEvent};
use serde_json::json;

pub async fn handle(
    deps: &WsDeps,
    event: LambdaEvent<ApiGatewayWebsocketProxyRequest>,
) -> Result<ApiGatewayProxyResponse, Error> {
    if let Some(connection) = ws::connection_id(&event.payload) {
        let error = json!({"type": "error", "error": {"code": "unknown_action",
                           "message": "no route handles this action"}});
        deps.pusher.answer(&deps.store, connection, &error).await?;
    }
    Ok(ws::status(200))
}
