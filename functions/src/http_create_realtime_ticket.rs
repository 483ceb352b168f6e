//! `POST /realtime/tickets`: a single-use WebSocket ticket, valid 60 s (201). Tickets and
//! WebSocket connects share one limit: 30 per minute per user.

use chat_shared::domain::limits::LimitKind;
use chat_shared::edge::http::{Reply, respond_limited};
use chat_shared::services::deps::RouteDeps;
use chat_shared::services::realtime;
use lambda_http::{Body, Error, Request, Response};

pub async fn handle(deps: &RouteDeps, req: Request) -> Result<Response<Body>, Error> {
    Ok(
        respond_limited(
            &req,
            &deps.limiter,
            LimitKind::Realtime,
            |caller| async move {
                Reply::json(201, &realtime::issue(&deps.store, &caller.user_id).await?)
            },
        )
        .await,
    )
}
