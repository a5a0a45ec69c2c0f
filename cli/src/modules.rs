//! Compiling a configuration exactly as a module's `on_configure` does: the module's own
//! [`Policy::configure`] on an in-memory host, and the line the module would log.

use gateway::Gateway;
use wasmgate_authn::Worker;
use wasmgate_ratelimit::Plugin;
use wasmgate_shared::host::FakeHost;
use wasmgate_shared::Policy;
use wasmgate_tracing::Tracing;

/// The modules `make build` ships, by the name of their `.wasm` file.
pub const MODULES: [&str; 4] = ["gateway", "tracing", "authn", "ratelimit"];

/// `Ok` if module `name` accepts `config`; otherwise the line it would log and refuse with.
pub fn check(name: &str, config: &[u8]) -> Result<(), String> {
    match name {
        "gateway" => configure::<Gateway>(config),
        "tracing" => configure::<Tracing>(config),
        "authn" => configure::<Worker>(config),
        "ratelimit" => configure::<Plugin>(config),
        other => Err(format!(
            "not a wasmgate module: {other:?} (one of {})",
            MODULES.join(", ")
        )),
    }
}

fn configure<P: Policy>(config: &[u8]) -> Result<(), String> {
    P::configure(&FakeHost::new(), Some(config))
        .map(drop)
        .map_err(|err| format!("wasmgate {}: invalid plugin configuration: {err}", P::NAME))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_line_is_the_modules_own() {
        let err = check("gateway", br#"{"authn":{"providers":[{"name":"idp","issuer":"","audiences":["a"],"jwks":{"keys":[]}}]}}"#);
        assert_eq!(
            err,
            Err("wasmgate gateway: invalid plugin configuration: authn.providers[0].issuer: must not be empty".into())
        );
        assert_eq!(check("tracing", b"{}"), Ok(()));
        assert!(
            check("ratelimit", br#"{"rules":[{"name":"R","capacity":1}]}"#)
                .is_err_and(|e| e.starts_with(
                    "wasmgate ratelimit: invalid plugin configuration: ratelimit.rules[0].name"
                ))
        );
        assert!(check("nginx", b"{}").is_err());
    }
}
