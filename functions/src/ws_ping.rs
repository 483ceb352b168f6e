//! `ws-ping` (route `ping`): answers `{"type": "pong"}` as the route's response. A ping counts
//! against the sender's default limit like any other route, so a client cannot make the stack
//! answer without bound; past it, the answer is the `rate_limited` error instead.

use aws_lambda_events::event::apigw::{ApiGatewayProxyResponse, ApiGatewayWebsocketProxyRequest};
use chat_shared::domain::limits::LimitKind;
use chat_shared::edge::ws;
use chat_shared::services::deps::RouteDeps;
use lambda_runtime::{Error, LambdaEvent};
use serde_json::json;

pub async fn handle(
    deps: &RouteDeps,
    event: LambdaEvent<ApiGatewayWebsocketProxyRequest>,
) -> Result<ApiGatewayProxyResponse, Error> {
    let Some(user) = ws::user(&event.payload) else {
        return Ok(ws::status(401));
    };
    let outcome = deps
        .limiter
        .acquire(LimitKind::Default, user.as_str())
        .await
        .map(|_| json!({"type": "pong"}));
    Ok(ws::answer("ping", None, outcome))
}
