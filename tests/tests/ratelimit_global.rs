//! Global mode of the ratelimit filter against a real engine: Redis (Debian's `redis-server`)
//! holding the counters, Kuadrant's limitador doing the counting behind Envoy's
//! RateLimitService gRPC API (`target/debug/rls-server`, crate tests/rls-server), and real Envoys
//! running dist/ratelimit.wasm from envoy-config/ratelimit-global.yaml.

use serde_json::json;
use std::thread;
use std::time::{Duration, Instant};
use wasmgate_tests::rls::{free_port, Redis, Rls};
use wasmgate_tests::{repo_root, wait_for, Client, Gateway, Response};

/// A Limitador limit of `max` per minute per `x-api-key` for rule `per-key`.
fn per_key_limit(max: u64) -> String {
    format!(
        "- namespace: test\n  max_value: {max}\n  seconds: 60\n  name: per-key\n  conditions:\n    \
         - \"descriptors[0].generic_key == 'per-key'\"\n  variables:\n    - \"descriptors[0]['x-api-key']\"\n"
    )
}

/// The filter config: rule `per-key` (global; its fallback bucket holds `fallback` tokens per
/// key and refills one an hour, so no test sees a refill).
fn per_key_config(on_failure: &str, timeout_ms: u64, fallback: u64) -> serde_json::Value {
    json!({
        "global": {"cluster": "ratelimit_service", "domain": "test",
                   "timeout_ms": timeout_ms, "on_failure": on_failure},
        "rate_limit_headers": {"style": "both", "on_allowed": true},
        "rules": [{"name": "per-key", "mode": "global",
                   "key": [{"source": "header", "name": "x-api-key"}],
                   "capacity": fallback, "refill": 1, "period_ms": 3_600_000}]
    })
}

fn gateway(rls_port: u16, config: serde_json::Value) -> Gateway {
    Gateway::builder("ratelimit-global.yaml")
        .plugin_config("ratelimit", config)
        .port(8082, rls_port)
        .concurrency(2)
        .start()
}

fn metric(gw: &Gateway, name: &str) -> f64 {
    gw.prometheus_metric(&format!("wasmgate_ratelimit_{name}"))
        .unwrap_or(0.0)
}

fn wait_metric(gw: &Gateway, name: &str, expected: f64) {
    wait_for(name, expected, || metric(gw, name));
}

fn statuses(responses: &[Response]) -> (usize, usize, usize) {
    let ok = responses.iter().filter(|r| r.status == 200).count();
    let limited = responses.iter().filter(|r| r.status == 429).count();
    (ok, limited, responses.len() - ok - limited)
}

fn burst(gw: &Gateway, key: &str, n: usize) -> Vec<Response> {
    (0..n)
        .map(|_| gw.get("/items", &[("x-api-key", key)]))
        .collect()
}

#[test]
fn two_envoys_share_one_global_limit() {
    let redis = Redis::start();
    let rls = Rls::start(&redis, &per_key_limit(30), &[]);
    let a = gateway(rls.port, per_key_config("deny", 5000, 1000));
    let b = gateway(rls.port, per_key_config("deny", 5000, 1000));
    // Four clients, two per Envoy, 20 requests each, all at once: 80 asks for a limit of 30.
    let urls: Vec<String> = [&a, &a, &b, &b].iter().map(|g| g.url("/items")).collect();
    let workers: Vec<_> = urls
        .into_iter()
        .map(|url| {
            thread::spawn(move || {
                let client = Client::new();
                (0..20)
                    .map(|_| client.get(&url, &[("x-api-key", "shared")]))
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let responses: Vec<Response> = workers
        .into_iter()
        .flat_map(|w| w.join().unwrap())
        .collect();
    let (ok, limited, other) = statuses(&responses);
    assert_eq!(
        (ok, limited, other),
        (30, 50, 0),
        "exactly the limit, across both Envoys"
    );
    let both = |name: &str| metric(&a, name) + metric(&b, name);
    wait_for("global_ok on both", 30.0, || both("global_ok"));
    wait_for("global_over_limit on both", 50.0, || {
        both("global_over_limit")
    });
    assert!(metric(&a, "global_ok") > 0.0 && metric(&b, "global_ok") > 0.0);
}

#[test]
fn keys_are_counted_apart_and_refusals_carry_the_services_quota() {
    let redis = Redis::start();
    let rls = Rls::start(&redis, &per_key_limit(3), &[]);
    let gw = gateway(rls.port, per_key_config("deny", 5000, 1000));
    let a = burst(&gw, "alice", 4);
    assert_eq!(statuses(&a), (3, 1, 0));
    let allowed = &a[0];
    assert_eq!(allowed.header("x-ratelimit-limit"), Some("3"));
    assert_eq!(allowed.header("x-ratelimit-remaining"), Some("2"));
    let refused = &a[3];
    assert_eq!(refused.json()["error"], "rate_limited");
    assert_eq!(refused.header("x-ratelimit-remaining"), Some("0"));
    assert_eq!(
        refused.header("ratelimit-policy"),
        Some("\"per-key\";q=3;w=60")
    );
    let retry: u64 = refused.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry), "retry-after {retry}");
    // Another key has its own counter.
    assert_eq!(statuses(&burst(&gw, "bob", 4)), (3, 1, 0));
}

#[test]
fn the_services_headers_reach_the_client_and_the_upstream() {
    let redis = Redis::start();
    let rls = Rls::start(
        &redis,
        &per_key_limit(5),
        &[
            "--rate-limit-headers",
            "draft03",
            "--request-header",
            "x-quota-checked:limitador",
        ],
    );
    let gw = gateway(rls.port, per_key_config("deny", 5000, 1000));
    let r = gw.get("/items", &[("x-api-key", "k")]);
    assert_eq!(r.status, 200);
    assert_eq!(
        r.upstream_header("x-quota-checked").as_deref(),
        Some("limitador")
    );
    // Limitador's draft-03 field replaces ours.
    assert_eq!(
        r.header("x-ratelimit-limit"),
        Some("5, 5;w=60;name=\"per-key\"")
    );
}

#[test]
fn redis_outage_falls_back_to_the_local_bucket_and_recovers() {
    let mut redis = Redis::start();
    let rls = Rls::start(
        &redis,
        &per_key_limit(1000),
        &["--storage-timeout-ms", "300"],
    );
    let gw = gateway(rls.port, per_key_config("local", 2000, 5));
    assert_eq!(statuses(&burst(&gw, "k", 3)), (3, 0, 0));
    wait_metric(&gw, "global_ok", 3.0);

    redis.kill();
    // Every request gets one call that fails; the rule's own bucket (5 per minute) decides.
    let during = burst(&gw, "k", 10);
    assert_eq!(
        statuses(&during),
        (5, 5, 0),
        "no 5xx, no request lost beyond the policy"
    );
    // One failed call per request, no retries.
    wait_for("global_error + global_timeout", 10.0, || {
        metric(&gw, "global_error") + metric(&gw, "global_timeout")
    });
    wait_metric(&gw, "global_failure_local", 10.0);

    redis.restart();
    // The service reconnects by itself; wait for the first admitted request it decided.
    let deadline = Instant::now() + Duration::from_secs(30);
    while metric(&gw, "global_ok") < 4.0 {
        assert!(
            Instant::now() < deadline,
            "no recovery after Redis came back"
        );
        let _ = gw.get("/items", &[("x-api-key", "k")]);
        thread::sleep(Duration::from_millis(100));
    }
    // The service decides again: the local bucket is empty, yet requests are admitted.
    assert_eq!(statuses(&burst(&gw, "k", 3)), (3, 0, 0));
}

#[test]
fn a_stalled_redis_hits_the_filters_timeout_and_the_deny_policy() {
    let redis = Redis::start();
    // The server waits 30 s on Redis; the filter gives up after 2 s.
    let rls = Rls::start(
        &redis,
        &per_key_limit(1000),
        &["--storage-timeout-ms", "30000"],
    );
    let gw = gateway(rls.port, per_key_config("deny", 2000, 5));
    assert_eq!(gw.get("/items", &[("x-api-key", "k")]).status, 200);
    redis.signal(libc::SIGSTOP);
    let r = gw.get("/items", &[("x-api-key", "k")]);
    redis.signal(libc::SIGCONT);
    assert_eq!(r.status, 503);
    assert_eq!(r.json()["error"], "ratelimit_unavailable");
    wait_metric(&gw, "global_timeout", 1.0);
    wait_metric(&gw, "global_failure_denied", 1.0);
}

#[test]
fn allow_policy_admits_when_no_service_listens() {
    let gw = gateway(free_port(), per_key_config("allow", 200, 1));
    let responses = burst(&gw, "k", 3);
    assert_eq!(statuses(&responses), (3, 0, 0));
    wait_metric(&gw, "global_failure_allowed", 3.0);
    wait_for("global_error + global_timeout", 3.0, || {
        metric(&gw, "global_error") + metric(&gw, "global_timeout")
    });
}

#[test]
fn example_config_enforces_the_example_limitador_limits() {
    let redis = Redis::start();
    let limits =
        std::fs::read_to_string(repo_root().join("envoy-config/rls/limitador-limits.yaml"))
            .unwrap();
    let rls = Rls::start(&redis, &limits, &[]);
    let gw = Gateway::builder("ratelimit-global.yaml")
        .port(8082, rls.port)
        .start();
    // The example keys on the client address (use_remote_address): a made-up x-api-key or
    // x-forwarded-for is no way to a fresh quota.
    let api: Vec<Response> = (0..21)
        .map(|i| {
            let fake = format!("key-{i}");
            let xff = format!("192.0.2.{i}");
            gw.get(
                "/api/orders",
                &[("x-api-key", &fake), ("x-forwarded-for", &xff)],
            )
        })
        .collect();
    assert_eq!(
        statuses(&api),
        (20, 1, 0),
        "20 per minute per client, from the service"
    );
    assert_eq!(api[0].header("x-ratelimit-limit"), Some("20"));
    // Outside /api/ only the local per-client rule applies.
    assert_eq!(gw.get("/health", &[]).status, 200);
    wait_metric(&gw, "global_ok", 20.0);
}

#[test]
fn envoyproxy_ratelimit_example_describes_the_same_limit() {
    // No envoyproxy/ratelimit binary installs here; check its config names what the filter sends.
    let text =
        std::fs::read_to_string(repo_root().join("envoy-config/rls/envoyproxy-ratelimit.yaml"))
            .unwrap();
    let cfg: serde_yaml::Value = serde_yaml::from_str(&text).unwrap();
    assert_eq!(cfg["domain"], "wasmgate");
    let rule = &cfg["descriptors"][0];
    assert_eq!(
        (rule["key"].as_str(), rule["value"].as_str()),
        (Some("generic_key"), Some("per-client-global"))
    );
    let per_client = &rule["descriptors"][0];
    assert_eq!(per_client["key"], "remote_address");
    assert_eq!(per_client["rate_limit"]["unit"], "minute");
    assert_eq!(per_client["rate_limit"]["requests_per_unit"], 20);
}
