//! The use cases: each reads what it needs, decides (a plan over what was read: the writes and
//! the outcome), applies the writes and pushes. `deps` is what a route function builds once.

pub mod analytics;
pub mod connections;
pub mod conversations;
pub mod delivery;
pub mod deps;
pub mod events;
pub mod fan_out;
pub mod indexing;
pub mod messages;
pub mod model;
pub mod profiles;
pub mod realtime;
pub mod search;
