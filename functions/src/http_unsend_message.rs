//! `DELETE /conversations/{id}/messages/{seq}`: unsend, the sender only; 200 with the tombstone.

use chat_shared::domain::limits::LimitKind;
use chat_shared::edge::http::{Reply, conversation_id, message_seq, respond_limited};
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
            let (id, seq) = (conversation_id(req)?, message_seq(req)?);
            Reply::ok(&messages::unsend(deps, &caller.user_id, &id, seq).await?)
        },
    )
    .await)
}
