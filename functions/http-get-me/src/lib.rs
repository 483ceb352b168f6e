//! `GET /me`: my profile, created from my token's claims on the first call.

use chat_shared::deps::HttpDeps;
use chat_shared::http::{Reply, respond_limited};
use chat_shared::limits::LimitKind;
use chat_shared::profiles;
use lambda_http::{Body, Error, Request, Response};

pub async fn handle(deps: &HttpDeps, req: Request) -> Result<Response<Body>, Error> {
    Ok(respond_limited(
        &req,
        &deps.limiter,
        LimitKind::Default,
        |caller| async move { Reply::ok(&profiles::me(&deps.store, &caller).await?) },
    )
    .await)
}
