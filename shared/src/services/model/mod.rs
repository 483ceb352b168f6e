//! The conversation and message items as the table holds them, and the views the contract answers
//! with; shared by the services (and the event stream) without their depending on each other.

pub mod conversation;
pub mod message;
