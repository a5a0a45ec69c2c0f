//! What every wasmgate filter builds on, written once:
//! - [`config`]: strict JSON plugin configuration and errors that name the field;
//! - [`host`]: the thin host abstraction filters call, over proxy-wasm and as an in-memory fake;
//! - [`reply`]: the JSON local reply all filters send on refusal;
//! - [`metrics`]: one naming scheme for counters and gauges;
//! - [`matching`]: request matchers shared by per-route rules.
//!
//! Nothing here knows about a particular filter.

pub mod config;
pub mod host;
pub mod matching;
pub mod metrics;
pub mod reply;

pub use config::ConfigError;
pub use host::{Host, SharedDataError};
pub use reply::LocalReply;
