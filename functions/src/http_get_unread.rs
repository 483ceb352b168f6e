//! `GET /me/unread`: my total unread over the conversations I have neither archived nor muted.

use chat_shared::domain::limits::LimitKind;
use chat_shared::edge::http::{Reply, respond_limited};
use chat_shared::services::conversations;
use chat_shared::services::deps::RouteDeps;
use lambda_http::{Body, Error, Request, Response};

pub async fn handle(deps: &RouteDeps, req: Request) -> Result<Response<Body>, Error> {
    Ok(
        respond_limited(
            &req,
            &deps.limiter,
            LimitKind::Default,
            |caller| async move {
                Reply::ok(&conversations::total_unread(deps, &caller.user_id).await?)
            },
        )
        .await,
    )
}
