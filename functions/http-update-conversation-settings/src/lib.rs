//! `PATCH /conversations/{id}/settings`: `{"muted"?, "archived"?}` for me.

use chat_shared::conversations::{self, SettingsChanges};
use chat_shared::deps::HttpDeps;
use chat_shared::http::{Reply, conversation_id, json_body, respond_as_caller};
use lambda_http::{Body, Error, Request, Response};

pub async fn handle(deps: &HttpDeps, req: Request) -> Result<Response<Body>, Error> {
    let req = &req;
    Ok(respond_as_caller(req, |caller| async move {
        let id = conversation_id(req)?;
        let changes: SettingsChanges = json_body(req)?;
        Reply::ok(
            &conversations::update_settings(&deps.store, &caller.user_id, &id, &changes).await?,
        )
    })
    .await)
}
