//! `PATCH /conversations/{id}/messages/{seq}`: `{"body"}`, the sender only.

use chat_shared::domain::limits::LimitKind;
use chat_shared::edge::http::{Reply, conversation_id, json_body, message_seq, respond_limited};
use chat_shared::services::deps::RouteDeps;
use chat_shared::services::messages::{self, EditMessage};
use lambda_http::{Body, Error, Request, Response};

pub async fn handle(deps: &RouteDeps, req: Request) -> Result<Response<Body>, Error> {
    let req = &req;
    Ok(respond_limited(
        req,
        &deps.limiter,
        LimitKind::Default,
        |caller| async move {
            let (id, seq) = (conversation_id(req)?, message_seq(req)?);
            let request: EditMessage = json_body(req)?;
            Reply::ok(&messages::edit(deps, &caller.user_id, &id, seq, &request).await?)
        },
    )
    .await)
}
