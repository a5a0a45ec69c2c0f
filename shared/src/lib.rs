//! What every wasmgate filter builds on, written once:
//! - [`config`]: strict JSON plugin configuration and errors that name the field;
//! - [`host`]: the thin host abstraction filters call, over proxy-wasm and as an in-memory fake;
//! - [`reply`]: the JSON local reply all filters send on refusal;
//! - [`metrics`]: one naming scheme for counters and gauges;
//! - [`canonical`]: the path and host rules judge, or a refusal where upstreams disagree;
//! - [`request`]: the request view every rule and key reads, built once per request;
//! - [`matching`]: request matchers shared by per-route rules;
//! - [`identity`]: who a request authenticated as, for the stages after authn;
//! - [`span_notes`]: what the stages decided, for the gateway's span;
//! - [`policy`] and [`flow`]: a filter's behaviour without proxy-wasm, step by step;
//! - [`module`]: the one proxy-wasm glue that runs any policy as a module.
//!
//! Nothing here knows about a particular filter.

pub mod canonical;
pub mod config;
pub mod flow;
pub mod host;
pub mod identity;
pub mod json_path;
pub mod matching;
pub mod metrics;
pub mod module;
pub mod policy;
pub mod reply;
pub mod request;
pub mod span_notes;

pub use config::ConfigError;
pub use flow::Flow;
pub use host::{Host, SharedDataError};
pub use identity::Identity;
pub use policy::Policy;
pub use reply::LocalReply;
pub use request::RequestView;
pub use span_notes::SpanNotes;
