//! `GET /conversations/{id}`: one conversation with all its members; 404 for a non-member.

use chat_shared::domain::limits::LimitKind;
use chat_shared::edge::http::{Reply, conversation_id, respond_limited};
use chat_shared::services::conversations;
use chat_shared::services::deps::RouteDeps;
use lambda_http::{Body, Error, Request, Response};

pub async fn handle(deps: &RouteDeps, req: Request) -> Result<Response<Body>, Error> {
    let req = &req;
    Ok(respond_limited(
        req,
        &deps.limiter,
        LimitKind::Default,
        |caller| async move {
            let id = conversation_id(req)?;
            Reply::ok(&conversations::get(deps, &caller.user_id, &id).await?)
        },
    )
    .await)
}
