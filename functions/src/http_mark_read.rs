//! `POST /conversations/{id}/read`: `{"seq"}`; my read position moves forward only.

use chat_shared::domain::limits::LimitKind;
use chat_shared::edge::http::{Reply, conversation_id, json_body, respond_limited};
use chat_shared::services::deps::RouteDeps;
use chat_shared::services::messages::{self, MarkRead};
use lambda_http::{Body, Error, Request, Response};

pub async fn handle(deps: &RouteDeps, req: Request) -> Result<Response<Body>, Error> {
    let req = &req;
    Ok(respond_limited(
        req,
        &deps.limiter,
        LimitKind::Default,
        |caller| async move {
            let id = conversation_id(req)?;
            let request: MarkRead = json_body(req)?;
            Reply::ok(&messages::mark_read(deps, &caller.user_id, &id, &request).await?)
        },
    )
    .await)
}
