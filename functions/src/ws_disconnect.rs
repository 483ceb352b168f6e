//! `ws-disconnect` (`$disconnect`): removes the connection record, gives its socket slot back and
//! notes when the user was last seen. API Gateway calls it on a best-effort basis, so the
//! record's TTL and the 410 answers of `@connections` (which delete records too, and leave the
//! slot to be taken over by the next `$connect`) are the real cleanup.

use aws_lambda_events::event::apigw::{ApiGatewayProxyResponse, ApiGatewayWebsocketProxyRequest};
use chat_shared::edge::ws;
use chat_shared::services::deps::RouteDeps;
use chat_shared::services::{connections, profiles};
use lambda_runtime::{Error, LambdaEvent};

pub async fn handle(
    deps: &RouteDeps,
    event: LambdaEvent<ApiGatewayWebsocketProxyRequest>,
) -> Result<ApiGatewayProxyResponse, Error> {
    let request = event.payload;
    let Some(connection) = ws::connection_id(&request) else {
        return Ok(ws::status(200));
    };
    if let Some(closed) = connections::disconnect(&deps.store, connection).await? {
        profiles::seen(&deps.store, &closed.user_id, deps.store.now()).await?;
    }
    Ok(ws::status(200))
}
