//! wasmgate gateway: tracing, pre-auth rate limits, authn and rate limits in one module, so a
//! request pays Envoy's Wasm cost once and a worker holds one VM. Each section of the
//! configuration is exactly the standalone filter's and is compiled by the same code
//! ([`sections`]); [`chain`] runs the stages in order over one request view.

pub mod chain;
pub mod sections;

pub use chain::Gateway;

proxy_wasm::main! {{
    wasmgate_shared::module::install::<Gateway>();
}}
