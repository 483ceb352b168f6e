//! `POST /conversations`: 201 with a new conversation, 200 with the existing direct or self one
//! (or the group a retried `clientRequestId` made).

use chat_shared::edge::http::{Reply, json_body, respond_as_caller};
use chat_shared::services::conversations::{self, CreateConversation};
use chat_shared::services::deps::RouteDeps;
use lambda_http::{Body, Error, Request, Response};

pub async fn handle(deps: &RouteDeps, req: Request) -> Result<Response<Body>, Error> {
    let req = &req;
    Ok(respond_as_caller(req, |caller| async move {
        // A body that cannot be read is a refused creation too: the service counts it.
        let request = json_body::<CreateConversation>(req);
        let created = conversations::create(deps, &caller, request).await?;
        Ok(
            Reply::json(if created.new { 201 } else { 200 }, &created.conversation)?
                .with_quota(Some(created.quota)),
        )
    })
    .await)
}
