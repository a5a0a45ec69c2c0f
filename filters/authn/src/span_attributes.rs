//! The names authn's decisions carry on the gateway's span (docs/tracing.md lists them). Only
//! configuration words go there: an outcome, a reason, a provider or consumer name.

/// `allowed`, `public` or `denied`.
pub const OUTCOME: &str = "wasmgate.authn.outcome";
/// Why a request was denied: the `reason` of its JSON reply.
pub const REASON: &str = "wasmgate.authn.reason";
/// The JWT provider whose token verified.
pub const PROVIDER: &str = "wasmgate.authn.provider";
/// The API-key consumer that matched.
pub const CONSUMER: &str = "wasmgate.authn.consumer";
/// Event: the request waited for its provider's keys; `wasmgate.wait_ms` says how long.
pub const KEYS_WAIT: &str = "wasmgate.authn.keys_wait";
pub const WAIT_MS: &str = "wasmgate.wait_ms";
