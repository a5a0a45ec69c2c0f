//! Hot reload under load. The gateway module's configuration changes through ECDS from a file
//! (`envoy-config/gateway-ecds.yaml`; Istio delivers a `WasmPlugin` change the same way, from
//! istiod) while client threads keep a few hundred requests per second going through real
//! Envoy (two workers) to a real upstream, with a real JWKS server. Across the change no
//! request fails, the new configuration answers, an unchanged rate-limit rule keeps its bucket,
//! authn keeps the remote keys it fetched, and the replaced configuration's counters are not
//! lost. A bad configuration is refused (NACKed, the field named in Envoy's log) while the last
//! good one keeps serving.

use jwt_simple::prelude::*;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration as StdDuration, Instant};
use wasmgate_tests::render::EnvoyConfig;
use wasmgate_tests::{
    eventually, repo_root, Client, EcdsFile, Gateway, Reply, Response, TestServer,
};

const ISSUER: &str = "https://idp.test";
const AUDIENCE: &str = "api";
/// The ECDS resource (and filter) name of gateway-ecds.yaml; Envoy's stats are named after it.
const FILTER: &str = "wasmgate.gateway";
const LOAD_THREADS: usize = 4;
/// Each load thread waits this long between requests: a few hundred requests/s in all, which
/// leaves the two shared cores to Envoy.
const LOAD_PAUSE: StdDuration = StdDuration::from_millis(10);
/// Requests the load must complete in each phase, so every change happens under load.
const PHASE_REQUESTS: u64 = 300;

// ---------------------------------------------------------------- tokens and configuration

fn signing_key() -> RS256KeyPair {
    let pem = std::fs::read_to_string(repo_root().join("filters/authn/testdata/rsa-a.pem"))
        .expect("filters/authn/testdata/rsa-a.pem");
    RS256KeyPair::from_pem(&pem).unwrap().with_key_id("k1")
}

fn jwks_body() -> String {
    let c = signing_key().public_key().to_components();
    let b64 = |b: &[u8]| Base64UrlSafeNoPadding::encode_to_string(b).unwrap();
    json!({"keys": [{"kty": "RSA", "kid": "k1", "n": b64(&c.n), "e": b64(&c.e)}]}).to_string()
}

fn bearer(sub: &str) -> String {
    let claims = json!({"iss": ISSUER, "aud": AUDIENCE, "sub": sub});
    let claims: serde_json::Map<String, Value> = claims.as_object().cloned().unwrap();
    let token = signing_key()
        .sign(Claims::with_custom_claims(claims, Duration::from_mins(30)))
        .unwrap();
    format!("Bearer {token}")
}

/// A rule on header `header` (skipped without it) whose tokens do not come back in a test.
fn probe_rule(name: &str, header: &str, capacity: u64) -> Value {
    json!({"name": name, "key": [{"source": "header", "name": header}], "on_missing_key": "skip",
           "capacity": capacity, "refill": 1, "period_ms": 3_600_000})
}

/// The plugin configuration. Across the change `kept` and `per-user` stay identical, `resized`
/// gets another capacity (a changed rule is a new rule: a fresh bucket), and authn gains a rule
/// that /admin needs role admin, which no load token has. The provider, and so the shared
/// key of its remote JWKS, stays the same.
fn plugin_config(resized_capacity: u64, admin_rule: bool) -> String {
    let mut rules = vec![json!({"name": "public", "match": {"prefix": "/public"}, "public": true})];
    if admin_rule {
        rules.push(json!({"name": "admin", "match": {"prefix": "/admin"},
                          "any_of": ["idp"], "roles": ["admin"]}));
    }
    json!({
        "authn": {
            "realm": "reload-test",
            "providers": [{"name": "idp", "issuer": ISSUER, "audiences": [AUDIENCE],
                           "remote_jwks": {"cluster": "jwks", "path": "/jwks",
                                           "refresh_seconds": 3600},
                           "claim_headers": [{"claim": "sub", "header": "x-user-id"}]}],
            "rules": rules
        },
        "ratelimit": {
            "rate_limit_headers": {"style": "both", "on_allowed": true},
            "rules": [
                probe_rule("kept", "x-probe-kept", 5),
                probe_rule("resized", "x-probe-resized", resized_capacity),
                {"name": "per-user", "key": [{"source": "identity"}],
                 "capacity": 1_000_000, "refill": 1, "period_ms": 3_600_000}
            ]
        }
    })
    .to_string()
}

/// Adds a STATIC cluster `name` at 127.0.0.1:`port`.
fn add_cluster(config: &mut EnvoyConfig, name: &str, port: u16) {
    let cluster: serde_yaml::Value = serde_yaml::from_str(&format!(
        "{{name: {name}, type: STATIC, connect_timeout: 1s, load_assignment: {{cluster_name: {name}, \
         endpoints: [{{lb_endpoints: [{{endpoint: {{address: {{socket_address: \
         {{address: 127.0.0.1, port_value: {port}}}}}}}}}]}}]}}}}"
    ))
    .unwrap();
    config.value_mut()["static_resources"]["clusters"]
        .as_sequence_mut()
        .unwrap()
        .push(cluster);
}

// ---------------------------------------------------------------- Envoy's view

fn ecds_stat(gw: &Gateway, stat: &str) -> u64 {
    gw.stat(&format!(
        "extension_config_discovery.http_filter.{FILTER}.{stat}"
    ))
    .unwrap_or(0)
}

fn ecds_version(gw: &Gateway) -> String {
    gw.stat_text(&format!(
        "extension_config_discovery.http_filter.{FILTER}.version_text"
    ))
    .unwrap_or_default()
}

/// The tokens left in `rule`'s bucket, from the `ratelimit` header (`"rule";r=N;t=…`).
fn remaining(r: &Response, rule: &str) -> Option<u64> {
    let header = r.header("ratelimit")?;
    let (_, rest) = header.split_once(&format!("\"{rule}\";r="))?;
    rest.split(|c: char| !c.is_ascii_digit())
        .next()?
        .parse()
        .ok()
}

fn assert_refused_by(r: &Response, rule: &str, what: &str) {
    assert_eq!(
        r.status, 429,
        "{what}: expected 429 from rule {rule}: {}",
        r.body
    );
    let policy = r.header("ratelimit-policy").unwrap_or_default();
    assert!(
        policy.contains(&format!("\"{rule}\"")),
        "{what}: refused by another rule than {rule}: {policy}"
    );
}

// ---------------------------------------------------------------- load

/// What one load thread saw.
#[derive(Default)]
struct Seen {
    statuses: BTreeMap<u16, u64>,
    /// Transport errors and unexpected answers, first few of each.
    failures: Vec<String>,
    /// Its `per-user` bucket going up instead of down: state lost.
    refilled: Vec<String>,
}

/// Client threads, each its own user on its own keep-alive connection, until stopped.
struct Load {
    stop: Arc<AtomicBool>,
    done: Arc<AtomicU64>,
    threads: Vec<JoinHandle<Seen>>,
}

impl Load {
    fn start(gw: &Gateway, sent: &Arc<AtomicU64>) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let done = Arc::new(AtomicU64::new(0));
        let threads = (0..LOAD_THREADS)
            .map(|i| {
                let (stop, done, sent) = (stop.clone(), done.clone(), sent.clone());
                let url = gw.url(&format!("/load/{i}"));
                let auth = bearer(&format!("load-{i}"));
                std::thread::spawn(move || {
                    let client = Client::new();
                    let mut seen = Seen::default();
                    let mut last = None;
                    while !stop.load(Ordering::SeqCst) {
                        sent.fetch_add(1, Ordering::SeqCst);
                        let answer =
                            client.try_request("GET", &url, &[("authorization", &auth)], b"");
                        done.fetch_add(1, Ordering::SeqCst);
                        match answer {
                            Ok(r) => {
                                *seen.statuses.entry(r.status).or_default() += 1;
                                if r.status != 200 && seen.failures.len() < 5 {
                                    seen.failures.push(format!("{}: {}", r.status, r.body));
                                }
                                let left = remaining(&r, "per-user");
                                if let (Some(before), Some(now)) = (last, left) {
                                    if now >= before && seen.refilled.len() < 5 {
                                        seen.refilled.push(format!("{before} then {now}"));
                                    }
                                }
                                last = left.or(last);
                            }
                            Err(e) if seen.failures.len() < 5 => seen.failures.push(e),
                            Err(_) => {}
                        }
                        std::thread::sleep(LOAD_PAUSE);
                    }
                    seen
                })
            })
            .collect();
        Self {
            stop,
            done,
            threads,
        }
    }

    fn completed(&self) -> u64 {
        self.done.load(Ordering::SeqCst)
    }

    /// Waits until the load has completed `n` more requests.
    fn run_on(&self, n: u64, phase: &str) {
        let target = self.completed() + n;
        eventually(&format!("{n} load requests {phase}"), || {
            self.completed() >= target
        });
    }

    fn finish(self) -> Seen {
        self.stop.store(true, Ordering::SeqCst);
        let mut all = Seen::default();
        for t in self.threads {
            let seen = t.join().expect("a load thread panicked");
            for (status, n) in seen.statuses {
                *all.statuses.entry(status).or_default() += n;
            }
            all.failures.extend(seen.failures);
            all.refilled.extend(seen.refilled);
        }
        all
    }
}

// ---------------------------------------------------------------- tests

#[test]
fn a_configuration_change_under_load_fails_no_request_and_keeps_buckets_and_keys() {
    let jwks_body = jwks_body();
    let jwks = TestServer::start(move |_| Reply::json(200, jwks_body.clone()));
    let mut ecds = EcdsFile::from_example("ecds/gateway.yaml");
    ecds.publish("gateway", &plugin_config(2, false));
    let gw = Gateway::builder("gateway-ecds.yaml")
        .edit(|c| {
            assert!(c.set_discovery_path(ecds.path()), "no path_config_source");
            add_cluster(c, "jwks", jwks.port());
        })
        .concurrency(2)
        .start();
    let started = Instant::now();
    // Every request the gateway gets, for the counters at the end.
    let sent = Arc::new(AtomicU64::new(0));
    let probe = Client::new();
    let get = |path: &str, headers: &[(&str, &str)]| {
        sent.fetch_add(1, Ordering::SeqCst);
        probe.get(&gw.url(path), headers)
    };
    let user = bearer("probe");
    let as_user = |header: &'static str| [("authorization", user.as_str()), (header, "1")];

    // The first request waits for the remote keys (fetched once, for both workers).
    let r = get("/first", &[("authorization", &user)]);
    assert_eq!(r.status, 200, "with the first keys: {}", r.body);
    assert_eq!(jwks.hits(), 1, "one JWKS fetch serves both workers");
    assert_eq!(ecds_version(&gw), format!("\"{}\"", ecds.version()));
    let vms = gw.stat("wasm.envoy.wasm.runtime.v8.active");

    let load = Load::start(&gw, &sent);
    load.run_on(PHASE_REQUESTS, "before the change");

    // Before: `kept` spends 3 of 5, `resized` (capacity 2) is used up, /admin is open.
    for n in [4, 3, 2] {
        let r = get("/probe", &as_user("x-probe-kept"));
        assert_eq!(r.status, 200, "kept, before: {}", r.body);
        assert_eq!(remaining(&r, "kept"), Some(n), "kept, before");
    }
    for _ in 0..2 {
        assert_eq!(get("/probe", &as_user("x-probe-resized")).status, 200);
    }
    assert_refused_by(
        &get("/probe", &as_user("x-probe-resized")),
        "resized",
        "resized, before",
    );
    let r = get("/admin", &[("authorization", &user)]);
    assert_eq!(r.status, 200, "/admin before the change: {}", r.body);

    // The change.
    let reloads = ecds_stat(&gw, "config_reload");
    ecds.publish("gateway", &plugin_config(4, true));
    eventually(
        "Envoy applies the new configuration (config_reload)",
        || ecds_stat(&gw, "config_reload") > reloads,
    );
    assert_eq!(ecds_version(&gw), format!("\"{}\"", ecds.version()));
    load.run_on(PHASE_REQUESTS, "after the change");

    // It takes effect: /admin needs a role now, and `resized` is a new rule with a fresh bucket
    // of 4 (its definition changed).
    let r = get("/admin", &[("authorization", &user)]);
    assert_eq!(r.status, 403, "/admin after the change: {}", r.body);
    for n in [3, 2, 1, 0] {
        let r = get("/probe", &as_user("x-probe-resized"));
        assert_eq!(r.status, 200, "resized, after: {}", r.body);
        assert_eq!(remaining(&r, "resized"), Some(n), "resized, after");
    }
    assert_refused_by(
        &get("/probe", &as_user("x-probe-resized")),
        "resized",
        "resized, after",
    );
    // `kept` did not change: the 3 tokens spent before are still spent.
    for n in [1, 0] {
        let r = get("/probe", &as_user("x-probe-kept"));
        assert_eq!(r.status, 200, "kept, after: {}", r.body);
        assert_eq!(
            remaining(&r, "kept"),
            Some(n),
            "kept, after: the bucket was reset"
        );
    }
    assert_refused_by(
        &get("/probe", &as_user("x-probe-kept")),
        "kept",
        "kept, after",
    );
    // Authn verified tokens under the new configuration with the keys fetched before it.
    assert_eq!(jwks.hits(), 1, "the change made authn fetch the JWKS again");
    // Envoy ended the replaced configuration's root contexts (they flush their counters).
    eventually("the replaced configuration is retired", || {
        gw.log().contains("wasmgate gateway: configuration retired")
    });

    // A bad configuration: refused, with the field named, and the last good one serves on.
    let fails = ecds_stat(&gw, "config_fail");
    let good_version = ecds_version(&gw);
    ecds.publish("gateway", &plugin_config(0, true));
    eventually("Envoy refuses the bad configuration (config_fail)", || {
        ecds_stat(&gw, "config_fail") > fails
    });
    let log = gw.log();
    assert!(
        log.contains("wasmgate gateway: invalid plugin configuration: ratelimit.rules[1].capacity"),
        "the log names the refused field"
    );
    assert!(
        log.contains("config update rejected"),
        "Envoy says it rejected the update"
    );
    assert_eq!(ecds_stat(&gw, "update_rejected"), 1);
    assert_eq!(
        ecds_version(&gw),
        good_version,
        "the version served moved on"
    );
    load.run_on(PHASE_REQUESTS, "after the bad configuration");
    assert_eq!(get("/admin", &[("authorization", &user)]).status, 403);
    assert_refused_by(
        &get("/probe", &as_user("x-probe-resized")),
        "resized",
        "resized, after the bad configuration",
    );

    let load_requests = load.completed();
    let elapsed = started.elapsed();
    let seen = load.finish();
    eprintln!(
        "hot reload: {load_requests} load requests in {:.1} s ({:.0}/s) from {LOAD_THREADS} \
         threads, statuses {:?}",
        elapsed.as_secs_f64(),
        load_requests as f64 / elapsed.as_secs_f64(),
        seen.statuses
    );
    assert!(
        seen.failures.is_empty(),
        "load requests failed across the changes: {:#?}",
        seen.failures
    );
    assert_eq!(seen.statuses.keys().collect::<Vec<_>>(), [&200]);
    assert!(
        seen.refilled.is_empty(),
        "a per-user bucket went back up across the change: {:?}",
        seen.refilled
    );
    assert_eq!(jwks.hits(), 1, "JWKS fetches");
    // The workers kept their VMs (the candidate VM Envoy configures a change in first is
    // gone again), which is why shared data, and the buckets in it, carried over.
    eventually("as many Wasm VMs as before the changes", || {
        gw.stat("wasm.envoy.wasm.runtime.v8.active") == vms
    });
    // Every request counted once: the replaced configurations' batched counters were flushed
    // when Envoy retired them, not dropped.
    let sent = sent.load(Ordering::SeqCst);
    eventually(&format!("authn decisions = {sent} requests sent"), || {
        gw.authn_decisions() == sent
    });
}

#[test]
fn the_ecds_example_serves_the_configuration_in_its_file() {
    let gw = Gateway::builder("gateway-ecds.yaml").start();
    assert_eq!(
        ecds_version(&gw),
        "\"1\"",
        "the version of envoy-config/ecds/gateway.yaml"
    );
    assert_eq!(ecds_stat(&gw, "config_fail"), 0);

    let r = gw.get("/public/hello", &[]);
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.upstream().path, "/public/hello");
    let r = gw.get("/private", &[]);
    assert_eq!(r.status, 401, "{}", r.body);
    let r = gw.get("/private", &[("x-api-key", "demo-api-key")]);
    assert_eq!(r.status, 200, "the demo API key: {}", r.body);
    assert_eq!(r.upstream_header("x-consumer").as_deref(), Some("demo-ci"));
    let policy = r.header("ratelimit-policy").unwrap_or_default();
    assert!(
        policy.contains("\"per-client\";q=5") && policy.contains("\"per-consumer\""),
        "{policy}"
    );
}
