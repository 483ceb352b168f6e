//! IAM as AWS enforces it, on the local stack.
//!
//! - [`policies`]: each function's role from `template.yaml` after SAM's own transform (policy
//!   templates, managed policies and the event sources' policies included), resolved against the
//!   local stack's names ([`policy::StackFacts`]).
//! - [`policy`]: the statements and their evaluation (the subset of IAM the template uses; what
//!   falls outside it is refused when loading, never guessed).
//! - [`requests`]: the authorizations each DynamoDB, DynamoDB Streams and Kinesis call needs, as
//!   AWS computes them (`dynamodb:LeadingKeys` included).
//! - [`sigv4`]: signatures checked as AWS checks them.
//! - [`service`]: [`LocalIam`], the proxy in front of the emulators that the bootstraps' calls go
//!   through, and the check the local gateway applies to `@connections`;
//!   [`connector`]: the same check inside the process, for the gateway's own functions;
//!   [`redis_front`]: ElastiCache's IAM authentication in front of the local Redis.
//! - [`usage`]: what each function asked for in a run, for the report of used against granted.

pub mod connector;
pub mod policies;
pub mod policy;
pub mod redis_front;
pub mod report;
pub mod requests;
pub mod service;
pub mod sigv4;
pub mod tls;
pub mod usage;

pub use policies::Policies;
pub use policy::StackFacts;
pub use service::{LocalIam, Refusal, Upstreams};
