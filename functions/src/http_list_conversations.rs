//! `GET /conversations?limit&cursor&q&archived`: my conversations, most recent activity first.

use chat_shared::domain::limits::LimitKind;
use chat_shared::edge::http::{Reply, query_param, respond_limited};
use chat_shared::services::conversations::{self, ListParams};
use chat_shared::services::deps::RouteDeps;
use lambda_http::{Body, Error, Request, Response};

pub async fn handle(deps: &RouteDeps, req: Request) -> Result<Response<Body>, Error> {
    let req = &req;
    Ok(respond_limited(
        req,
        &deps.limiter,
        LimitKind::Default,
        |caller| async move {
            let params = ListParams::parse(|name| query_param(req, name).map(str::to_owned))?;
            let page = conversations::list(deps, &caller.user_id, &params).await?;
            Reply::ok(&page)
        },
    )
    .await)
}
