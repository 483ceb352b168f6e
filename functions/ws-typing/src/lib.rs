//! `ws-typing` (route `typing`): tells the other members that I am (or stopped) typing. At most
//! one per 2 seconds per user and conversation: the excess is dropped silently. Nothing is
//! answered, except an error for a frame that is wrong or a conversation I am not in.

use aws_lambda_events::event::apigw::{ApiGatewayProxyResponse, ApiGatewayWebsocketProxyRequest};
use chat_shared::deps::HttpDeps;
use chat_shared::domain::ConversationId;
use chat_shared::error::ApiError;
use chat_shared::limits::LimitKind;
use chat_shared::{keys, notify, store::Consistency, ws};
use lambda_runtime::{Error, LambdaEvent};
use serde::Deserialize;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Frame {
    #[allow(dead_code, reason = "the route key, already used by API Gateway")]
    action: String,
    conversation_id: ConversationId,
    is_typing: bool,
}

pub async fn handle(
    deps: &HttpDeps,
    event: LambdaEvent<ApiGatewayWebsocketProxyRequest>,
) -> Result<ApiGatewayProxyResponse, Error> {
    let request = event.payload;
    let Some((user, connection)) = ws::caller(&request) else {
        return Ok(ws::status(401));
    };
    let frame: Frame = match ws::frame(&request) {
        Ok(frame) => frame,
        Err(error) => {
            ws::reply(deps, connection, "typing", None, Err(error)).await?;
            return Ok(ws::status(200));
        }
    };
    let subject = format!("{user}|{}", frame.conversation_id);
    if deps
        .limiter
        .acquire(LimitKind::Typing, &subject)
        .await
        .is_err()
    {
        return Ok(ws::status(200));
    }
    let member: Option<serde_json::Value> = deps
        .store
        .get(
            &keys::membership(&frame.conversation_id, &user),
            Consistency::Strong,
        )
        .await?;
    if member.is_none() {
        ws::reply(deps, connection, "typing", None, Err(ApiError::NotFound)).await?;
        return Ok(ws::status(200));
    }
    notify::typing(deps, &frame.conversation_id, &user, frame.is_typing).await;
    Ok(ws::status(200))
}
