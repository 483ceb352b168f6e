//! `ws-connect` (`$connect`, behind `ws-authorizer`): records the connection with its user (TTL
//! just past API Gateway's 2-hour limit, indexed by user for fan-out), holding one of the user's
//! 10 socket slots. Connects share the real-time limit with tickets (30 per minute per user):
//! past it, or with 10 sockets already open, the connection is refused with 429. Nothing is
//! posted to the connection from here: API Gateway answers 410 until `$connect` has returned.

use aws_lambda_events::event::apigw::{ApiGatewayProxyResponse, ApiGatewayWebsocketProxyRequest};
use chat_shared::domain::limits::LimitKind;
use chat_shared::edge::ws;
use chat_shared::services::connections;
use chat_shared::services::connections::Opened;
use chat_shared::services::deps::RouteDeps;
use lambda_runtime::{Error, LambdaEvent};

pub async fn handle(
    deps: &RouteDeps,
    event: LambdaEvent<ApiGatewayWebsocketProxyRequest>,
) -> Result<ApiGatewayProxyResponse, Error> {
    let request = event.payload;
    let Some((user, connection)) = ws::caller(&request) else {
        return Ok(ws::status(401));
    };
    if deps
        .limiter
        .acquire(LimitKind::Realtime, user.as_str())
        .await
        .is_err()
    {
        return Ok(ws::status(429));
    }
    match connections::open(&deps.store, connection, &user).await {
        Ok(Opened::Connected(_)) => Ok(ws::status(200)),
        Ok(Opened::Full) => Ok(ws::status(429)),
        Err(error) => {
            error.log();
            Ok(ws::status(i64::from(error.status())))
        }
    }
}
