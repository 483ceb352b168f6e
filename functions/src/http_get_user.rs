//! `GET /users/{userId}`: a user's profile; 404 for a user who has never called the API.

use chat_shared::domain::UserId;
use chat_shared::domain::limits::LimitKind;
use chat_shared::edge::http::{Reply, path_param, respond_limited};
use chat_shared::services::deps::RouteDeps;
use chat_shared::services::profiles;
use lambda_http::{Body, Error, Request, Response};

pub async fn handle(deps: &RouteDeps, req: Request) -> Result<Response<Body>, Error> {
    let req = &req;
    Ok(respond_limited(
        req,
        &deps.limiter,
        LimitKind::Default,
        |_caller| async move {
            let user: UserId = path_param(req, "userId")?
                .parse()
                .map_err(|e: chat_shared::domain::ValidationError| e.at("userId"))?;
            Reply::ok(&profiles::get_user(&deps.store, &user).await?)
        },
    )
    .await)
}
