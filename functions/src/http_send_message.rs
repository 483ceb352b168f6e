//! `POST /conversations/{id}/messages`: 201 with the new message, 200 with the stored one on a
//! retry (same sender and `clientMessageId`), 409 when that id came with another body. The
//! members hear of it from `stream-fan-out`, not from this function.

use chat_shared::domain::limits::LimitKind;
use chat_shared::edge::http::{Reply, conversation_id, json_body, respond_limited};
use chat_shared::services::deps::RouteDeps;
use chat_shared::services::messages::{self, SendMessage};
use lambda_http::{Body, Error, Request, Response};

pub async fn handle(deps: &RouteDeps, req: Request) -> Result<Response<Body>, Error> {
    let req = &req;
    Ok(respond_limited(
        req,
        &deps.limiter,
        LimitKind::SendMessage,
        |caller| async move {
            let id = conversation_id(req)?;
            let request: SendMessage = json_body(req)?;
            let sent = messages::send(deps, &caller.user_id, &id, &request).await?;
            Reply::json(if sent.new { 201 } else { 200 }, &sent.message)
        },
    )
    .await)
}
