//! `DELETE /conversations/{id}/messages/{seq}/reactions/{emoji}`: remove my reaction
//! (idempotent).

use chat_shared::domain::limits::LimitKind;
use chat_shared::edge::http::{Reply, conversation_id, emoji, message_seq, respond_limited};
use chat_shared::services::deps::RouteDeps;
use chat_shared::services::messages;
use lambda_http::{Body, Error, Request, Response};

pub async fn handle(deps: &RouteDeps, req: Request) -> Result<Response<Body>, Error> {
    let req = &req;
    Ok(respond_limited(
        req,
        &deps.limiter,
        LimitKind::Default,
        |caller| async move {
            let (id, seq, emoji) = (conversation_id(req)?, message_seq(req)?, emoji(req)?);
            Reply::ok(&messages::unreact(deps, &caller.user_id, &id, seq, &emoji).await?)
        },
    )
    .await)
}
