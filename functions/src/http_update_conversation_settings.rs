//! `PATCH /conversations/{id}/settings`: `{"muted"?, "archived"?}` for me.

use chat_shared::domain::limits::LimitKind;
use chat_shared::edge::http::{Reply, conversation_id, json_body, respond_limited};
use chat_shared::services::conversations::{self, SettingsChanges};
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
            let changes: SettingsChanges = json_body(req)?;
            Reply::ok(&conversations::update_settings(deps, &caller.user_id, &id, &changes).await?)
        },
    )
    .await)
}
