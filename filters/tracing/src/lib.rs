//! wasmgate tracing: every request leaves with one consistent trace context (W3C and/or B3)
//! and a request id; the gateway's own span can be exported over OTLP/HTTP. [`Tracing`] is
//! the policy; `module/` makes it `dist/tracing.wasm`, and the gateway module runs it as its
//! first stage.

pub mod b3;
pub mod config;
pub mod context;
pub mod export;
pub mod export_config;
pub mod hex;
pub mod metrics;
pub mod otlp;
pub mod policy;
pub mod propagation;
pub mod request_id;
pub mod sampling;
pub mod span;
pub mod traceparent;
pub mod tracestate;

pub use policy::{TraceStream, Tracing};
