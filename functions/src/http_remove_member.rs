//! `DELETE /conversations/{id}/members/{userId}`: leave (`me` or my id), or as the owner remove
//! another member. 204.

use chat_shared::domain::limits::LimitKind;
use chat_shared::edge::http::{Reply, conversation_id, path_param, respond_limited};
use chat_shared::services::conversations::{self, MemberTarget};
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
            let target = MemberTarget::parse(path_param(req, "userId")?, &caller.user_id)?;
            conversations::remove_member(deps, &caller.user_id, &id, &target).await?;
            Ok(Reply::no_content())
        },
    )
    .await)
}
