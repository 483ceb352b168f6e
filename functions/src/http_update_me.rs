//! `PATCH /me`: `{"displayName"?, "avatarUrl"?}`; `avatarUrl: null` removes the avatar.

use chat_shared::adapters::cache::profile_key;
use chat_shared::domain::limits::LimitKind;
use chat_shared::edge::http::{Reply, json_body, respond_limited};
use chat_shared::services::deps::RouteDeps;
use chat_shared::services::profiles::{self, ProfileChanges};
use lambda_http::{Body, Error, Request, Response};

pub async fn handle(deps: &RouteDeps, req: Request) -> Result<Response<Body>, Error> {
    let req = &req;
    Ok(respond_limited(
        req,
        &deps.limiter,
        LimitKind::Default,
        |caller| async move {
            let changes: ProfileChanges = json_body(req)?;
            let user = profiles::update_me(&deps.store, &caller, &changes).await?;
            // Conversations show this name: drop the cached profile.
            deps.cache.forget(&[profile_key(&caller.user_id)]).await;
            Reply::ok(&user)
        },
    )
    .await)
}
