//! `GET /me`: my profile, created from my token's claims on the first call.

use chat_shared::domain::limits::LimitKind;
use chat_shared::edge::http::{Reply, respond_limited};
use chat_shared::services::deps::RouteDeps;
use chat_shared::services::profiles;
use lambda_http::{Body, Error, Request, Response};

pub async fn handle(deps: &RouteDeps, req: Request) -> Result<Response<Body>, Error> {
    Ok(respond_limited(
        &req,
        &deps.limiter,
        LimitKind::Default,
        |caller| async move { Reply::ok(&profiles::me(&deps.store, &caller).await?) },
    )
    .await)
}
