//! The outside world behind types of ours: the DynamoDB store (its keys and items), Redis (the
//! link, the cache, the rate limiter), `@connections`, Kinesis, the pagination cursors.

pub mod cache;
pub mod cursor;
pub mod cursor_keys;
pub mod kinesis;
pub mod push;
pub mod rate_limiter;
pub mod redis_link;
pub mod store;
