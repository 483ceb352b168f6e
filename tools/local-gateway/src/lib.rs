//! The local API Gateway: plays the HTTP API (JWT authorizer, payload 2.0 events, CORS) and the
//! WebSocket API (REQUEST authorizer at the handshake, route selection, `@connections`) on
//! 127.0.0.1 and invokes the functions' own handlers, so that the whole API runs on a laptop
//! against the local stack. It also hosts a local token issuer (development only) and plays the
//! event source mappings of the table's stream and of the event stream.

pub mod event;
pub mod fan_out;
pub mod filter;
pub mod functions;
pub mod issuer;
pub mod kinesis_poller;
pub mod routes;
pub mod server;
pub mod shard_poller;
pub mod stream_poller;
pub mod web;
pub mod websocket;
