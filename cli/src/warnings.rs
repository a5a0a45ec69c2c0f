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
pub const NAMES: [&str; 8] = [
    "path-normalization",
    "client-address",
    "header-key",
    "short-secret",
    "jwks-refresh",
    "any-issuer",
    "any-audience",
    "unknown-cluster",
];

/// The warnings of each configuration of one file, in order: a filter's chain is the wasmgate
/// filters before it under the same connection manager.
pub fn for_file(found: &[Found]) -> Vec<Vec<Warning>> {
    found
        .iter()
        .enumerate()
        .map(|(i, f)| {
            let earlier: Vec<&Found> = found
                .iter()
                .take(i)
                .filter(|e| e.listener.is_some() && e.listener == f.listener)
                .collect();
            warnings(f, &earlier)
        })
        .collect()
}

/// The warnings for one configuration. Those about the listener need the connection manager
/// around the filter, which a bare configuration or an Istio plugin (whose listener Istio
/// writes) does not show.
pub fn warnings(found: &Found, earlier: &[&Found]) -> Vec<Warning> {
    let config: Value = serde_json::from_slice(&found.config).unwrap_or(Value::Null);
    let mut out = authn_warnings(&found.module, &config);
    if let Some(clusters) = &found.clusters {
        for (what, cluster) in callouts(&found.module, &config) {
            if !clusters.contains(&cluster) {
                out.push(Warning {
                    name: "unknown-cluster",
                    message: format!(
                        "{what} calls cluster {cluster}, which this Envoy configuration does not \
                         define: every such call fails (a missing JWKS refuses tokens, a missing \
                         rate-limit service applies on_failure, spans are dropped)"
                    ),
                });
            }
        }
    }
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
    for (section, limits) in rate_limits(&found.module, &config) {
        let managed = managed_headers(section, &found.module, &config, earlier);
        for (rule, header) in header_keyed(limits) {
            if !managed.contains(&header) {
                out.push(Warning {
                    name: "header-key",
                    message: format!(
                        "{section}rule {rule} keys on header {header}, which no wasmgate authn \
                         before it sets and strips: each client picks its own bucket \
                         (docs/ratelimit.md, Keys a client cannot choose)"
                    ),
                });
            }
        }
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

/// The clusters a module's configuration calls out to, each with what calls it.
fn callouts(module: &str, config: &Value) -> Vec<(String, String)> {
    let section = |key: &str| match module {
        "gateway" => config.get(key),
        m if m == key => Some(config),
        _ => None,
    };
    let prefix = |key: &str| {
        if module == "gateway" {
            format!("{key}: ")
        } else {
            String::new()
        }
    };
    let mut out = Vec::new();
    if let Some(cluster) = section("tracing")
        .and_then(|t| t.pointer("/export/cluster"))
        .and_then(Value::as_str)
    {
        out.push((
            format!("{}span export", prefix("tracing")),
            cluster.to_string(),
        ));
    }
    for provider in section("authn")
        .and_then(|a| a.get("providers"))
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        if let Some(cluster) = provider
            .pointer("/remote_jwks/cluster")
            .and_then(Value::as_str)
        {
            let name = provider.get("name").and_then(Value::as_str).unwrap_or("?");
            out.push((
                format!("{}provider {name}'s remote JWKS", prefix("authn")),
                cluster.to_string(),
            ));
        }
    }
    for (label, limits) in rate_limits(module, config) {
        if let Some(global) = limits.get("global") {
            let cluster = global
                .get("cluster")
                .and_then(Value::as_str)
                .unwrap_or(wasmgate_ratelimit::global_config::DEFAULT_CLUSTER);
            out.push((
                format!("{label}the rate-limit service"),
                cluster.to_string(),
            ));
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

/// Secrets shorter than their HMAC's output (RFC 7518 §3.2 requires at least that much),
/// remote key sets refreshed faster than a fetch may take, and providers that skip the issuer
/// or audience check.
fn authn_warnings(module: &str, config: &Value) -> Vec<Warning> {
    let authn = match module {
        "authn" => Some(config),
        "gateway" => config.get("authn"),
        _ => None,
    };
    let providers = authn
        .and_then(|a| a.get("providers"))
        .and_then(Value::as_array);
    let mut out = Vec::new();
    for provider in providers.into_iter().flatten() {
        let name = provider.get("name").and_then(Value::as_str).unwrap_or("?");
        let algorithms = provider.get("algorithms").and_then(Value::as_array);
        let needed = algorithms
            .into_iter()
            .flatten()
            .filter_map(|a| match a.as_str()? {
                "HS256" => Some(32),
                "HS384" => Some(48),
                "HS512" => Some(64),
                _ => None,
            })
            .max();
        let keys = provider.pointer("/jwks/keys").and_then(Value::as_array);
        for key in keys.into_iter().flatten() {
            let secret = key.get("k").and_then(Value::as_str);
            let (Some(needed), Some(secret)) = (needed, secret) else {
                continue;
            };
            let bytes = secret.trim_end_matches('=').len() * 3 / 4;
            if bytes < needed {
                let kid = key.get("kid").and_then(Value::as_str).unwrap_or("(no kid)");
                out.push(Warning {
                    name: "short-secret",
                    message: format!(
                        "provider {name}, key {kid}: a {bytes}-byte secret for an HMAC that \
                         needs {needed} (RFC 7518 §3.2): short secrets can be guessed offline"
                    ),
                });
            }
        }
        let opted_out = |field: &str| provider.get(field).and_then(Value::as_bool) == Some(true);
        if opted_out("accept_any_issuer") {
            out.push(Warning {
                name: "any-issuer",
                message: format!(
                    "provider {name}: accept_any_issuer: a token of any issuer its keys verify \
                     is accepted, e.g. another tenant's of a shared identity provider \
                     (docs/authn.md, Skipping the issuer or audience check)"
                ),
            });
        }
        if opted_out("accept_any_audience") {
            out.push(Warning {
                name: "any-audience",
                message: format!(
                    "provider {name}: accept_any_audience: a token minted for another API of \
                     the same identity provider is accepted here (docs/authn.md, Skipping the \
                     issuer or audience check)"
                ),
            });
        }
        if let Some(remote) = provider.get("remote_jwks") {
            let refresh = remote.get("refresh_seconds").and_then(Value::as_u64);
            let timeout = remote.get("timeout_ms").and_then(Value::as_u64);
            if let (Some(refresh), Some(timeout)) = (refresh, timeout) {
                if refresh.saturating_mul(1000) <= timeout {
                    out.push(Warning {
                        name: "jwks-refresh",
                        message: format!(
                            "provider {name}: remote_jwks refresh_seconds ({refresh}) is not \
                             longer than timeout_ms ({timeout}): a slow fetch is still running \
                             when the next one is due"
                        ),
                    });
                }
            }
        }
    }
    out
}

/// The identity headers an authn configuration sets and strips on every request.
fn identity_headers(authn: &Value) -> Vec<&str> {
    let mut out = Vec::new();
    let providers = authn.get("providers").and_then(Value::as_array);
    for provider in providers.into_iter().flatten() {
        let claims = provider.get("claim_headers").and_then(Value::as_array);
        out.extend(
            claims
                .into_iter()
                .flatten()
                .filter_map(|c| c.get("header").and_then(Value::as_str)),
        );
        out.extend(provider.get("payload_header").and_then(Value::as_str));
    }
    if let Some(keys) = authn.get("api_keys") {
        let header = keys.get("identity_header").and_then(Value::as_str);
        out.push(header.unwrap_or("x-consumer"));
    }
    out
}

/// What authn set before this rate-limit configuration runs: the earlier authn filters of the
/// chain, or, in the gateway's `ratelimit` section, its own `authn` section.
fn managed_headers<'a>(
    section: &str,
    module: &str,
    config: &'a Value,
    earlier: &[&'a Found],
) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    if module == "gateway" && section == "ratelimit: " {
        if let Some(authn) = config.get("authn") {
            out.extend(identity_headers(authn).into_iter().map(str::to_string));
        }
    }
    for filter in earlier {
        let Ok(earlier_config) = serde_json::from_slice::<Value>(&filter.config) else {
            continue;
        };
        let authn = match filter.module.as_str() {
            "authn" => Some(&earlier_config),
            "gateway" => earlier_config.get("authn"),
            _ => None,
        };
        if let Some(authn) = authn {
            out.extend(identity_headers(authn).into_iter().map(str::to_string));
        }
    }
    out
}

/// (rule, header) for every header key part.
fn header_keyed(limits: &Value) -> Vec<(&str, String)> {
    let rules = limits.get("rules").and_then(Value::as_array);
    let mut out = Vec::new();
    for rule in rules.into_iter().flatten() {
        let name = rule.get("name").and_then(Value::as_str).unwrap_or("?");
        let parts = rule.get("key").and_then(Value::as_array);
        for part in parts.into_iter().flatten() {
            if part.get("source").and_then(Value::as_str) == Some("header") {
                if let Some(header) = part.get("name").and_then(Value::as_str) {
                    out.push((name, header.to_string()));
                }
            }
        }
    }
    out
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
            clusters: None,
        }
    }

    fn names(found: &Found) -> Vec<&'static str> {
        warnings(found, &[]).into_iter().map(|w| w.name).collect()
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
        let w = warnings(&found("ratelimit", limits.clone(), listener(false)), &[]);
        assert_eq!(w.len(), 1);
        assert!(w[0]
            .message
            .starts_with("rule per-client keys on the client address"));
        assert!(names(&found("ratelimit", limits.clone(), listener(true))).is_empty());
        let gateway = json!({"pre_auth": limits});
        let w = warnings(&found("gateway", gateway, listener(false)), &[]);
        assert!(
            w[0].message.starts_with("pre_auth: rule per-client"),
            "{w:?}"
        );
        let mut trusted = limits.clone();
        trusted["xff_trusted_hops"] = json!(1);
        assert!(names(&found("ratelimit", trusted, listener(false))).is_empty());
    }

    #[test]
    fn a_header_key_needs_an_authn_before_it_that_manages_the_header() {
        let listener = Some(json!({"http_filters": [], "normalize_path": true,
            "merge_slashes": true, "use_remote_address": true}));
        let by = |header: &str| {
            json!({"rules": [{"name": "per-user", "capacity": 1,
                "key": [{"source": "header", "name": header}]}]})
        };
        let authn = json!({"providers": [{"name": "idp",
            "claim_headers": [{"claim": "sub", "header": "x-user-id"}]}],
            "api_keys": {"consumers": []}});
        let alone = found("ratelimit", by("x-user-id"), listener.clone());
        assert_eq!(names(&alone), ["header-key"]);
        let before = found("authn", authn.clone(), listener.clone());
        let file = [before, alone];
        assert!(for_file(&file)[1].is_empty(), "authn sets x-user-id");
        let consumer = found("ratelimit", by("x-consumer"), listener.clone());
        assert!(
            warnings(&consumer, &[&file[0]]).is_empty(),
            "api_keys' default header"
        );
        let forged = found("ratelimit", by("x-api-key"), listener.clone());
        assert_eq!(warnings(&forged, &[&file[0]]).len(), 1);
        let gateway =
            json!({"authn": authn, "ratelimit": by("x-user-id"), "pre_auth": by("x-user-id")});
        let w = warnings(&found("gateway", gateway, listener), &[]);
        assert_eq!(w.len(), 1, "{w:?}");
        assert!(w[0]
            .message
            .starts_with("pre_auth: rule per-user keys on header x-user-id"));
    }

    #[test]
    fn short_secrets_and_refreshes_faster_than_a_fetch() {
        let provider = |algorithms: Value, k: &str| {
            json!({"providers": [{"name": "idp", "algorithms": algorithms,
                "jwks": {"keys": [{"kty": "oct", "kid": "hs", "k": k}]},
                "remote_jwks": {"refresh_seconds": 5, "timeout_ms": 5000}}]})
        };
        // 16 bytes of secret; HS256 needs 32.
        let short = provider(json!(["HS256"]), "MDEyMzQ1Njc4OWFiY2RlZg");
        let w = warnings(&found("authn", short, None), &[]);
        let named: Vec<_> = w.iter().map(|w| w.name).collect();
        assert_eq!(named, ["short-secret", "jwks-refresh"]);
        assert!(
            w[0].message
                .contains("a 16-byte secret for an HMAC that needs 32"),
            "{w:?}"
        );
        let rsa_only = provider(json!(["RS256"]), "MDEyMzQ1Njc4OWFiY2RlZg");
        assert_eq!(names(&found("authn", rsa_only, None)), ["jwks-refresh"]);
        let gateway = json!({"authn": provider(json!(["HS512"]), &"QUFB".repeat(16))});
        assert_eq!(
            names(&found("gateway", gateway, None)),
            ["short-secret", "jwks-refresh"]
        );
    }

    #[test]
    fn each_skipped_claim_check() {
        let provider = |extra: Value| {
            let mut p = json!({"name": "idp", "issuer": "https://idp", "audiences": ["api"]});
            if let (Some(p), Value::Object(extra)) = (p.as_object_mut(), extra) {
                p.extend(extra);
            }
            json!({"providers": [p]})
        };
        assert!(names(&found("authn", provider(json!({})), None)).is_empty());
        let off = json!({"accept_any_issuer": false, "accept_any_audience": false});
        assert!(names(&found("authn", provider(off), None)).is_empty());
        let w = warnings(
            &found("authn", provider(json!({"accept_any_issuer": true})), None),
            &[],
        );
        assert_eq!(w.len(), 1);
        assert_eq!(w[0].name, "any-issuer");
        assert!(w[0]
            .message
            .starts_with("provider idp: accept_any_issuer: a token of any issuer"));
        let w = warnings(
            &found(
                "authn",
                provider(json!({"accept_any_audience": true})),
                None,
            ),
            &[],
        );
        assert_eq!(w.len(), 1);
        assert_eq!(w[0].name, "any-audience");
        assert!(w[0].message.contains("minted for another API"), "{w:?}");
        let both = json!({"authn": provider(json!({"accept_any_issuer": true,
            "accept_any_audience": true}))});
        assert_eq!(
            names(&found("gateway", both, None)),
            ["any-issuer", "any-audience"]
        );
    }

    #[test]
    fn a_callout_to_a_cluster_the_envoy_configuration_lacks() {
        let with = |clusters: &[&str], module: &str, config: Value| {
            let mut f = found(module, config, None);
            f.clusters = Some(clusters.iter().map(|c| c.to_string()).collect());
            warnings(&f, &[])
        };
        let gateway = json!({
            "tracing": {"export": {"cluster": "otel"}},
            "authn": {"providers": [{"name": "idp", "remote_jwks": {"cluster": "jwks"}}]},
            "ratelimit": {"global": {}}
        });
        let all = ["otel", "jwks", "ratelimit_service"];
        assert!(with(&all, "gateway", gateway.clone()).is_empty());
        let messages: Vec<String> = with(&["jwks"], "gateway", gateway.clone())
            .into_iter()
            .map(|w| w.message)
            .collect();
        assert_eq!(messages.len(), 2);
        assert!(messages[0].starts_with("tracing: span export calls cluster otel,"));
        assert!(messages[1]
            .starts_with("ratelimit: the rate-limit service calls cluster ratelimit_service,"));
        let authn = json!({"providers": [{"name": "idp", "remote_jwks": {"cluster": "jwks"}}]});
        let w = with(&[], "authn", authn);
        assert_eq!(w[0].name, "unknown-cluster");
        assert!(w[0]
            .message
            .starts_with("provider idp's remote JWKS calls cluster jwks,"));
        // Clusters that may come from CDS (or an Istio plugin) are not judged.
        assert!(warnings(&found("gateway", gateway, None), &[]).is_empty());
    }
}
