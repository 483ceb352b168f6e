//! `GET /conversations/{id}/changes?sinceRev&limit`: every message changed after `sinceRev`
//! (default 0), ascending `rev`, paged.

use chat_shared::domain::Limit;
use chat_shared::domain::error::ApiError;
use chat_shared::domain::limits::LimitKind;
use chat_shared::edge::http::{Reply, conversation_id, query_param, respond_limited};
use chat_shared::services::deps::RouteDeps;
use chat_shared::services::messages;
use lambda_http::{Body, Error, Request, Response};

pub async fn handle(deps: &RouteDeps, req: Request) -> Result<Response<Body>, Error> {
    let req = &req;
    Ok(respond_limited(
        req,
        &deps.limiter,
        LimitKind::Default,
        |caller| async move {
            let id = conversation_id(req)?;
            let since = match query_param(req, "sinceRev") {
                None => 0,
                Some(raw) => raw
                    .parse::<u64>()
                    .map_err(|_| ApiError::validation("sinceRev", "a whole number of 0 or more"))?,
            };
            let limit = Limit::parse_optional(query_param(req, "limit"))?;
            Reply::ok(&messages::changes(deps, &caller.user_id, &id, since, limit).await?)
        },
    )
    .await)
}
