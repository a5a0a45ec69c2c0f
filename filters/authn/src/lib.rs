//! wasmgate authn: JWT (inline and remote JWKS) and API keys, per-route rules on claims.
//! [`Worker`] is the policy; `module/` makes it `dist/authn.wasm`, and the gateway module runs
//! it between its rate-limit stages.

mod algorithm;
mod apikey;
mod authz;
mod cache;
mod claims;
pub mod config;
mod denial;
#[cfg(feature = "fuzzing")]
pub mod fuzzing;
mod jwks;
mod mac;
mod metrics;
#[cfg(test)]
mod reference;
mod remote;
mod request;
mod signatures;
mod source;
mod span_attributes;
mod spki;
mod state;
#[cfg(test)]
mod testkit;
mod token;
mod verifier;
mod worker;

pub use worker::{AuthnStream, Worker};
