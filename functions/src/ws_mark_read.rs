//! `ws-mark-read` (route `markRead`): the same read as `POST /conversations/{id}/read`, answered
//! with `{"type": "ack", "action": "markRead", "lastReadSeq", "unreadCount"}`.

use aws_lambda_events::event::apigw::{ApiGatewayProxyResponse, ApiGatewayWebsocketProxyRequest};
use chat_shared::domain::ConversationId;
use chat_shared::domain::error::ApiError;
use chat_shared::domain::limits::LimitKind;
use chat_shared::edge::ws;
use chat_shared::services::deps::RouteDeps;
use chat_shared::services::messages::{self, MarkRead};
use lambda_runtime::{Error, LambdaEvent};
use serde::Deserialize;
use serde_json::json;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Frame {
    #[allow(dead_code, reason = "the route key, already used by API Gateway")]
    action: String,
    conversation_id: ConversationId,
    seq: u64,
}

pub async fn handle(
    deps: &RouteDeps,
    event: LambdaEvent<ApiGatewayWebsocketProxyRequest>,
) -> Result<ApiGatewayProxyResponse, Error> {
    let request = event.payload;
    let Some(user) = ws::user(&request) else {
        return Ok(ws::status(401));
    };
    let outcome = async {
        let frame: Frame = ws::frame(&request)?;
        deps.limiter
            .acquire(LimitKind::Default, user.as_str())
            .await?;
        let state = messages::mark_read(
            deps,
            &user,
            &frame.conversation_id,
            &MarkRead { seq: frame.seq },
        )
        .await?;
        Ok::<_, ApiError>(
            json!({"type": "ack", "action": "markRead", "lastReadSeq": state.last_read_seq,
                                 "unreadCount": state.unread_count}),
        )
    }
    .await;
    Ok(ws::answer("markRead", None, outcome))
}
