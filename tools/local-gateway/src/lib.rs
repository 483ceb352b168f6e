//! The local API Gateway: plays the HTTP API (JWT authorizer, payload 2.0 events, CORS) on
//! 127.0.0.1 and invokes the route functions' own handlers, so that the whole API runs on a laptop
//! against the local stack. It also hosts a local token issuer (development only). The WebSocket
//! side (a later issue) joins the same server.

pub mod event;
pub mod issuer;
pub mod routes;
pub mod server;
pub mod stream_poller;
pub mod websocket;
