//! `ws-typing` (route `typing`): tells the other members that I am (or stopped) typing. Each frame
//! counts against my default limit first (it costs a read), then, in a conversation I am in, at
//! most one per 2 seconds per conversation goes out: the excess is dropped silently. The typing
//! limit is keyed by conversations I am in only, so ids a client makes up open no allowance of
//! their own. Nothing is answered (an empty response: the two-way route sends no frame), except
//! an error for a frame that is wrong, a conversation I am not in, or the default limit reached,
//! as the route's response.

use aws_lambda_events::event::apigw::{ApiGatewayProxyResponse, ApiGatewayWebsocketProxyRequest};
use chat_shared::adapters::store::{Consistency, keys};
use chat_shared::domain::ConversationId;
use chat_shared::domain::error::ApiError;
use chat_shared::domain::limits::LimitKind;
use chat_shared::edge::ws;
use chat_shared::services::delivery::TypingItem;
use chat_shared::services::deps::RouteDeps;
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
    deps: &RouteDeps,
    event: LambdaEvent<ApiGatewayWebsocketProxyRequest>,
) -> Result<ApiGatewayProxyResponse, Error> {
    let request = event.payload;
    let Some(user) = ws::user(&request) else {
        return Ok(ws::status(401));
    };
    let frame: Frame = match ws::frame(&request) {
        Ok(frame) => frame,
        Err(error) => return Ok(ws::answer("typing", None, Err(error))),
    };
    if let Err(limited) = deps
        .limiter
        .acquire(LimitKind::Default, user.as_str())
        .await
    {
        return Ok(ws::answer("typing", None, Err(limited)));
    }
    let member: Option<serde_json::Value> = deps
        .store
        .get(
            &keys::membership(&frame.conversation_id, &user),
            Consistency::Strong,
        )
        .await?;
    if member.is_none() {
        return Ok(ws::answer("typing", None, Err(ApiError::NotFound)));
    }
    let subject = format!("{user}|{}", frame.conversation_id);
    if deps
        .limiter
        .acquire(LimitKind::Typing, &subject)
        .await
        .is_err()
    {
        return Ok(ws::status(200));
    }
    // The other members hear of it from `stream-fan-out`, which reads this item off the stream.
    let item = TypingItem::new(
        &frame.conversation_id,
        &user,
        frame.is_typing,
        deps.store.now(),
    );
    deps.store.put(&item, None).await?;
    Ok(ws::status(200))
}
