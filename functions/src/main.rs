//! The bootstrap of every function: Lambda passes the function's `Handler` (template.yaml) as
//! `_HANDLER`, and `main` wires that function and only it (tracing, configuration, clients built
//! once, the runtime loop). One binary instead of one per function: one fat-LTO link instead of 30
//! (docs/decisions/0003-one-binary.md).
// The send future is deep; the compiler needs a higher limit to lay it out.
#![recursion_limit = "256"]

use chat_shared::edge::ws::WsDeps;
use chat_shared::platform::config::process_env;
use chat_shared::services::deps::RouteDeps;
use chat_shared::services::events::KinesisSink;
use lambda_runtime::{Error, service_fn};

/// An HTTP API route: `lambda_http`'s loop (API Gateway's payload 2.0 to `Request` and back).
macro_rules! http {
    ($deps:ty, $function:ident) => {{
        let deps = <$deps>::from_env(&process_env()).await?;
        lambda_http::run(service_fn(|req| {
            chat_functions::$function::handle(&deps, req)
        }))
        .await
    }};
}

/// Any other event (WebSocket, authorizer, stream, schedule): `lambda_runtime`'s loop.
macro_rules! event {
    ($deps:ty, $function:ident) => {{
        let deps = <$deps>::from_env(&process_env()).await?;
        lambda_runtime::run(service_fn(|event| {
            chat_functions::$function::handle(&deps, event)
        }))
        .await
    }};
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    chat_shared::platform::telemetry::init();
    let handler = std::env::var("_HANDLER").unwrap_or_default();
    match handler.as_str() {
        "http-add-members" => http!(RouteDeps, http_add_members),
        "http-create-conversation" => http!(RouteDeps, http_create_conversation),
        "http-create-realtime-ticket" => http!(RouteDeps, http_create_realtime_ticket),
        "http-delete-reaction" => http!(RouteDeps, http_delete_reaction),
        "http-edit-message" => http!(RouteDeps, http_edit_message),
        "http-get-conversation" => http!(RouteDeps, http_get_conversation),
        "http-get-me" => http!(RouteDeps, http_get_me),
        "http-get-unread" => http!(RouteDeps, http_get_unread),
        "http-get-user" => http!(RouteDeps, http_get_user),
        "http-list-changes" => http!(RouteDeps, http_list_changes),
        "http-list-conversations" => http!(RouteDeps, http_list_conversations),
        "http-list-messages" => http!(RouteDeps, http_list_messages),
        "http-mark-read" => http!(RouteDeps, http_mark_read),
        "http-put-reaction" => http!(RouteDeps, http_put_reaction),
        "http-remove-member" => http!(RouteDeps, http_remove_member),
        "http-send-message" => http!(RouteDeps, http_send_message),
        "http-unsend-message" => http!(RouteDeps, http_unsend_message),
        "http-update-conversation-settings" => http!(RouteDeps, http_update_conversation_settings),
        "http-update-conversation" => http!(RouteDeps, http_update_conversation),
        "http-update-me" => http!(RouteDeps, http_update_me),
        "rotate-cursor-keys" => {
            event!(chat_functions::rotate_cursor_keys::Deps, rotate_cursor_keys)
        }
        "stream-analytics" => event!(chat_functions::stream_analytics::Deps, stream_analytics),
        "stream-fan-out" => event!(RouteDeps, stream_fan_out),
        "stream-publisher" => event!(
            chat_functions::stream_publisher::Deps<KinesisSink>,
            stream_publisher
        ),
        "ws-authorizer" => event!(chat_functions::ws_authorizer::Deps, ws_authorizer),
        "ws-connect" => event!(RouteDeps, ws_connect),
        "ws-default" => event!(WsDeps, ws_default),
        "ws-disconnect" => event!(RouteDeps, ws_disconnect),
        "ws-mark-read" => event!(RouteDeps, ws_mark_read),
        "ws-ping" => event!(RouteDeps, ws_ping),
        "ws-send-message" => event!(RouteDeps, ws_send_message),
        "ws-typing" => event!(RouteDeps, ws_typing),
        other => {
            tracing::error!(handler = other, "_HANDLER names no function of this binary");
            Err(format!("_HANDLER names no function of this binary: {other}").into())
        }
    }
}
