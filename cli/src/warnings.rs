//! Valid but risky settings: what `wasmgate check` warns about, each with the reason in one
//! line and the name that silences it (`--allow NAME`).

use crate::sources::Found;
use serde_json::Value;

#[derive(Debug, PartialEq, Eq)]
pub struct Warning {
    pub name: &'static str,
    pub message: String,
}

/// Every name `--allow` takes.
pub const NAMES: [&str; 2] = ["path-normalization", "client-address"];

/// The warnings for one configuration. Both need the connection manager around the filter, so
/// a bare configuration or an Istio plugin (whose listener Istio writes) gets none.
pub fn warnings(found: &Found) -> Vec<Warning> {
    let mut out = Vec::new();
    let Some(listener) = &found.listener else {
        return out;
    };
    let on = |field: &str| listener.get(field).and_then(Value::as_bool) == Some(true);
    if !on("normalize_path") || !on("merge_slashes") {
        out.push(Warning {
            name: "path-normalization",
            message: "the connection manager leaves normalize_path or merge_slashes off: \
                      wasmgate judges the canonical path, but Envoy's routes and other \
                      filters see the raw one (docs/security.md)"
                .into(),
        });
    }
    let remote_address = on("use_remote_address");
    let config: Value = serde_json::from_slice(&found.config).unwrap_or(Value::Null);
    for (section, limits) in rate_limits(&found.module, &config) {
        let hops = limits.get("xff_trusted_hops").and_then(Value::as_u64);
        if remote_address || hops.unwrap_or(0) > 0 {
            continue;
        }
        for rule in client_keyed(limits) {
            out.push(Warning {
                name: "client-address",
                message: format!(
                    "{section}rule {rule} keys on the client address, but without \
                     use_remote_address: true Envoy takes that address from x-forwarded-for, \
                     which the client writes (docs/ratelimit.md, Client address)"
                ),
            });
        }
    }
    out
}

/// The rate-limit configurations a module's configuration holds, with a label for messages.
fn rate_limits<'a>(module: &str, config: &'a Value) -> Vec<(&'static str, &'a Value)> {
    match module {
        "ratelimit" => vec![("", config)],
        "gateway" => [("pre_auth: ", "pre_auth"), ("ratelimit: ", "ratelimit")]
            .into_iter()
            .filter_map(|(label, key)| Some((label, config.get(key)?)))
            .collect(),
        _ => Vec::new(),
    }
}

fn client_keyed(limits: &Value) -> Vec<&str> {
    let rules = limits.get("rules").and_then(Value::as_array);
    rules
        .into_iter()
        .flatten()
        .filter(|rule| {
            let parts = rule.get("key").and_then(Value::as_array);
            parts
                .into_iter()
                .flatten()
                .any(|p| p.get("source").and_then(Value::as_str) == Some("client"))
        })
        .filter_map(|rule| rule.get("name").and_then(Value::as_str))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::path::PathBuf;

    fn found(module: &str, config: Value, listener: Option<Value>) -> Found {
        Found {
            file: PathBuf::from("x.yaml"),
            line: 1,
            place: "root_id x".into(),
            module: module.into(),
            config: config.to_string().into_bytes(),
            listener,
        }
    }

    fn names(found: &Found) -> Vec<&'static str> {
        warnings(found).into_iter().map(|w| w.name).collect()
    }

    #[test]
    fn a_listener_without_path_normalization() {
        let hardened = json!({"http_filters": [], "normalize_path": true, "merge_slashes": true});
        assert!(names(&found("tracing", json!({}), Some(hardened))).is_empty());
        let plain = json!({"http_filters": [], "normalize_path": true});
        assert_eq!(
            names(&found("tracing", json!({}), Some(plain))),
            ["path-normalization"]
        );
        assert!(
            names(&found("tracing", json!({}), None)).is_empty(),
            "no listener known"
        );
    }

    #[test]
    fn a_client_key_where_the_client_writes_its_address() {
        let limits = json!({"rules": [{"name": "per-client", "capacity": 1, "key": [{"source": "client"}]}]});
        let listener = |remote: bool| {
            Some(
                json!({"http_filters": [], "normalize_path": true, "merge_slashes": true,
                "use_remote_address": remote}),
            )
        };
        let w = warnings(&found("ratelimit", limits.clone(), listener(false)));
        assert_eq!(w.len(), 1);
        assert!(w[0]
            .message
            .starts_with("rule per-client keys on the client address"));
        assert!(names(&found("ratelimit", limits.clone(), listener(true))).is_empty());
        let gateway = json!({"pre_auth": limits});
        let w = warnings(&found("gateway", gateway, listener(false)));
        assert!(
            w[0].message.starts_with("pre_auth: rule per-client"),
            "{w:?}"
        );
        let mut trusted = limits.clone();
        trusted["xff_trusted_hops"] = json!(1);
        assert!(names(&found("ratelimit", trusted, listener(false))).is_empty());
    }
}
