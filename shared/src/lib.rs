//! What every wasmgate filter builds on, written once:
//! - [`config`]: strict JSON plugin configuration and errors that name the field;
//! - [`host`]: the thin host abstraction filters call, over proxy-wasm and as an in-memory fake;
//! - [`reply`]: the JSON local reply all filters send on refusal;
//! - [`metrics`]: one naming scheme for counters and gauges;
//! - [`canonical`]: the path and host rules judge, or a refusal where upstreams disagree;
//! - [`request`]: the request view every rule and key reads, built once per request;
//! - [`matching`]: request matchers shared by per-route rules.
//!
//! Nothing here knows about a particular filter.

pub mod canonical;
pub mod config;
pub mod host;
pub mod matching;
pub mod metrics;
pub mod reply;
pub mod request;

pub use config::ConfigError;
pub use host::{Host, SharedDataError};
pub use reply::LocalReply;
pub use request::RequestView;
