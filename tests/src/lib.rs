//! The harness every integration test uses: real Envoy (found by [`envoy::EnvoyBinary`]) with a
//! config rendered from `envoy-config/`, a real echo upstream and other real HTTP servers on
//! 127.0.0.1, a filter configuration discovered from a file ([`ecds`]), the rate-limit service
//! of global mode ([`rls`]), an OTLP trace receiver ([`otlp`]), and helpers to send requests
//! and read stats. Each test's [`Gateway`] owns its processes and stops them when dropped, also
//! when the test panics (then it prints the tail of Envoy's log).

pub mod ecds;
pub mod envoy;
pub mod gateway;
pub mod http;
pub mod otlp;
pub mod render;
pub mod rls;
pub mod server;
pub mod wait;

pub use ecds::EcdsFile;
pub use gateway::{Gateway, GatewayBuilder};
pub use http::{raw_request, Client, Response};
pub use otlp::OtlpReceiver;
pub use server::{Reply, SeenRequest, TestServer};
pub use wait::{eventually, wait_for};

use std::path::PathBuf;

/// The repository root: `WASMGATE_ROOT` (set by the Makefile) or this crate's parent.
pub fn repo_root() -> PathBuf {
    std::env::var_os("WASMGATE_ROOT")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".."))
}
