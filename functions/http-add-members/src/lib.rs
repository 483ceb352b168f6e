//! `POST /conversations/{id}/members`: `{"userIds": [...]}`, groups only, any member.

use chat_shared::conversations::{self, AddMembers};
use chat_shared::deps::HttpDeps;
use chat_shared::http::{Reply, conversation_id, json_body, respond_as_caller};
use lambda_http::{Body, Error, Request, Response};

pub async fn handle(deps: &HttpDeps, req: Request) -> Result<Response<Body>, Error> {
    let req = &req;
    Ok(respond_as_caller(req, |caller| async move {
        let id = conversation_id(req)?;
        let request: AddMembers = json_body(req)?;
        Reply::ok(&conversations::add_members(&deps.store, &caller.user_id, &id, &request).await?)
    })
    .await)
}
