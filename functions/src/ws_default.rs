//! `ws-default` (`$default`): a frame whose `action` no route handles gets an `unknown_action`
//! error, as the route's response (API Gateway sends it back on the frame's connection). It calls
//! nothing: its deps are the WebSocket routes' common ones, unused.

use aws_lambda_events::event::apigw::{ApiGatewayProxyResponse, ApiGatewayWebsocketProxyRequest};
use chat_shared::edge::ws::{self, WsDeps};
use lambda_runtime::{Error, LambdaEvent};
use serde_json::json;

pub async fn handle(
    _deps: &WsDeps,
    _event: LambdaEvent<ApiGatewayWebsocketProxyRequest>,
) -> Result<ApiGatewayProxyResponse, Error> {
    Ok(ws::respond(
        &json!({"type": "error", "error": {"code": "unknown_action",
                                  "message": "no route handles this action"}}),
    ))
}
