//! wasmgate ratelimit: exact token buckets in shared data, per key, bounded memory, with an
//! optional global mode over Envoy's RateLimitService. [`Plugin`] is the policy; `module/`
//! makes it `dist/ratelimit.wasm`, and the gateway module runs it before and after authn.

pub mod bucket;
pub mod config;
pub mod global;
pub mod global_config;
pub mod headers;
pub mod keys;
pub mod limiter;
pub mod metrics;
pub mod plugin;
pub mod rls;
mod siphash;
pub mod table;

pub use plugin::{Plugin, RatelimitStream};
