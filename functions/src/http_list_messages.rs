//! `GET /conversations/{id}/messages?limit&beforeSeq&afterSeq`: a page in ascending `seq`, the
//! newest by default.

use chat_shared::domain::limits::LimitKind;
use chat_shared::edge::http::{Reply, conversation_id, query_param, respond_limited};
use chat_shared::services::deps::RouteDeps;
use chat_shared::services::messages::{self, HistoryParams};
use lambda_http::{Body, Error, Request, Response};

pub async fn handle(deps: &RouteDeps, req: Request) -> Result<Response<Body>, Error> {
    let req = &req;
    Ok(respond_limited(
        req,
        &deps.limiter,
        LimitKind::Default,
        |caller| async move {
            let id = conversation_id(req)?;
            let params = HistoryParams::parse(|name| query_param(req, name).map(str::to_owned))?;
            Reply::ok(&messages::history(deps, &caller.user_id, &id, params).await?)
        },
    )
    .await)
}
