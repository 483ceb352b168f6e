//! Every Lambda of `template.yaml`, one module each, named after its function (`http-send-message`
//! is [`http_send_message`]): `handle`, a thin adapter from the event to a service in `chat_shared`
//! and back. The one binary, `chat-lambda` (`src/main.rs`), runs the function its `Handler` names
//! (docs/decisions/0003-one-binary.md).

pub mod http_add_members;
pub mod http_create_conversation;
pub mod http_create_realtime_ticket;
pub mod http_delete_reaction;
pub mod http_edit_message;
pub mod http_get_conversation;
pub mod http_get_me;
pub mod http_get_unread;
pub mod http_get_user;
pub mod http_list_changes;
pub mod http_list_conversations;
pub mod http_list_messages;
pub mod http_mark_read;
pub mod http_put_reaction;
pub mod http_remove_member;
pub mod http_send_message;
pub mod http_unsend_message;
pub mod http_update_conversation;
pub mod http_update_conversation_settings;
pub mod http_update_me;
pub mod rotate_cursor_keys;
pub mod stream_analytics;
pub mod stream_fan_out;
pub mod stream_publisher;
pub mod ws_authorizer;
pub mod ws_connect;
pub mod ws_default;
pub mod ws_disconnect;
pub mod ws_mark_read;
pub mod ws_ping;
pub mod ws_send_message;
pub mod ws_typing;
