//! Where Lambda events meet the services: HTTP requests and answers (the one error map to the
//! contract's statuses), WebSocket frames and replies, JWT verification.

pub mod http;
#[cfg(feature = "jwt")]
pub mod jwt;
pub mod ws;
