//! The `wasmgate` command's library: [`modules`] compiles a configuration with a module's own
//! code, [`sources`] finds the configurations in Envoy, Istio and plain JSON files, [`warnings`]
//! names the valid but risky settings, [`report`] prints the verdicts,
//! [`token`] reads a JWT and asks the authn configurations about it, [`schemas`] are the
//! configurations' JSON Schemas.

pub mod modules;
pub mod report;
pub mod schemas;
pub mod sources;
pub mod token;
pub mod warnings;
