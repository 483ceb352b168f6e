//! `ws-send-message` (route `sendMessage`): the same send as the HTTP route (ordering,
//! idempotency, limits), answered with `{"type": "ack", "action": "sendMessage",
//! "clientMessageId", "message"}` as the route's response (API Gateway sends it back on the
//! sending connection). Every other connection of every member gets `message.created` from
//! `stream-fan-out`.

use aws_lambda_events::event::apigw::{ApiGatewayProxyResponse, ApiGatewayWebsocketProxyRequest};
use chat_shared::domain::error::ApiError;
use chat_shared::domain::limits::LimitKind;
use chat_shared::domain::{ClientMessageId, ConversationId, MessageBody};
use chat_shared::edge::ws;
use chat_shared::services::deps::RouteDeps;
use chat_shared::services::messages::{self, SendMessage};
use lambda_runtime::{Error, LambdaEvent};
use serde::Deserialize;
use serde_json::json;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Frame {
    #[allow(dead_code, reason = "the route key, already used by API Gateway")]
    action: String,
    conversation_id: ConversationId,
    body: MessageBody,
    client_message_id: ClientMessageId,
    #[serde(default)]
    reply_to_seq: Option<u64>,
}

pub async fn handle(
    deps: &RouteDeps,
    event: LambdaEvent<ApiGatewayWebsocketProxyRequest>,
) -> Result<ApiGatewayProxyResponse, Error> {
    let request = event.payload;
    let Some((user, connection)) = ws::caller(&request) else {
        return Ok(ws::status(401));
    };
    // The client's id, for the answer, even when the rest of the frame is wrong.
    let client_message_id =
        serde_json::from_str::<serde_json::Value>(request.body.as_deref().unwrap_or_default())
            .ok()
            .and_then(|v| v["clientMessageId"].as_str().map(str::to_owned));
    let outcome = async {
        let frame: Frame = ws::frame(&request)?;
        deps.limiter
            .acquire(LimitKind::SendMessage, user.as_str())
            .await?;
        let send = SendMessage {
            body: frame.body,
            client_message_id: frame.client_message_id.clone(),
            reply_to_seq: frame.reply_to_seq,
            sent_from: Some(connection.to_owned()),
        };
        let sent = messages::send(deps, &user, &frame.conversation_id, &send).await?;
        Ok::<_, ApiError>(json!({"type": "ack", "action": "sendMessage",
                                 "clientMessageId": frame.client_message_id, "message": sent.message}))
    }
    .await;
    Ok(ws::answer(
        "sendMessage",
        client_message_id.as_deref(),
        outcome,
    ))
}
