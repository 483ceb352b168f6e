//! `PATCH /me`: `{"displayName"?, "avatarUrl"?}`; `avatarUrl: null` removes the avatar.

use chat_shared::deps::HttpDeps;
use chat_shared::http::{Reply, json_body, respond_as_caller};
use chat_shared::profiles::{self, ProfileChanges};
use lambda_http::{Body, Error, Request, Response};

pub async fn handle(deps: &HttpDeps, req: Request) -> Result<Response<Body>, Error> {
    let req = &req;
    Ok(respond_as_caller(req, |caller| async move {
        let changes: ProfileChanges = json_body(req)?;
        Reply::ok(&profiles::update_me(&deps.store, &caller, &changes).await?)
    })
    .await)
}
