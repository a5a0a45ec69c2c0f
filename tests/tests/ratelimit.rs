//! The ratelimit filter in real Envoy (`envoy-config/ratelimit.yaml`, two workers) in front of
//! the echo upstream: exact admission counts under concurrent clients, per-key isolation, the
//! 429 and its fields, shadow mode, metrics and configuration errors.

use serde_json::json;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use wasmgate_tests::{Client, Gateway, Response};

fn gateway(config: serde_json::Value) -> Gateway {
    Gateway::builder("ratelimit.yaml")
        .plugin_config("ratelimit", config)
        .concurrency(2)
        .start()
}

/// The example with its route answered by Envoy itself, so only the filter limits throughput.
fn direct_gateway(config: serde_json::Value) -> Gateway {
    Gateway::builder("ratelimit.yaml")
        .plugin_config("ratelimit", config)
        .edit(|c| {
            let route = &mut c.value_mut()["static_resources"]["listeners"][0]["filter_chains"][0]
                ["filters"][0]["typed_config"]["route_config"]["virtual_hosts"][0]["routes"][0];
            *route = serde_yaml::from_str(
                "{match: {prefix: /}, direct_response: {status: 200, body: {inline_string: ok}}}",
            )
            .unwrap();
        })
        .concurrency(2)
        .start()
}

fn unix_nanos() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos()
}

/// `capacity + floor(refill × elapsed / period)`: the most a token bucket may admit.
fn bound(capacity: u64, refill: u64, period_ms: u64, elapsed_ns: u128) -> u64 {
    capacity + (u128::from(refill) * elapsed_ns / (u128::from(period_ms) * 1_000_000)) as u64
}

fn metric(gw: &Gateway, name: &str) -> f64 {
    gw.prometheus_metric(name)
        .unwrap_or_else(|| panic!("no metric {name} in /stats/prometheus"))
}

/// Waits until `name` in `/stats/prometheus` satisfies `ok`, and returns it: the filter hands its
/// counters to Envoy on a 1 s tick. The 5 s bound only stops a broken test; it is not a timing claim.
fn wait_metric_until(gw: &Gateway, name: &str, ok: impl Fn(f64) -> bool) -> f64 {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let value = gw.prometheus_metric(name);
        match value {
            Some(v) if ok(v) => return v,
            _ if Instant::now() > deadline => {
                panic!("{name} is {value:?} in /stats/prometheus after 5 s")
            }
            _ => std::thread::sleep(Duration::from_millis(50)),
        }
    }
}

fn wait_metric(gw: &Gateway, name: &str, expected: f64) {
    wait_metric_until(gw, name, |v| v == expected);
}

#[test]
fn ratelimit_example_config_limits_a_burst_per_client_with_fields() {
    // The example as shipped: per-client 10 tokens, 5 per second, fields on every response.
    let gw = Gateway::builder("ratelimit.yaml").start();
    let start = unix_nanos();
    let responses: Vec<Response> = (0..30).map(|_| gw.get("/x", &[])).collect();
    let elapsed = unix_nanos() - start;
    let admitted = responses.iter().filter(|r| r.status == 200).count() as u64;
    let limit = bound(10, 5, 1000, elapsed);
    assert!(admitted <= limit, "{admitted} admitted > {limit}");
    assert!(admitted >= 10, "the burst of 10 passes: {admitted}");
    if limit < 30 {
        assert!(responses.iter().any(|r| r.status == 429));
    }
    let ok = &responses[0];
    assert_eq!(
        ok.header("ratelimit-policy"),
        Some("\"per-client\";q=10;w=2")
    );
    assert_eq!(ok.header("x-ratelimit-limit"), Some("10"));
    assert!(ok
        .header("ratelimit")
        .unwrap()
        .starts_with("\"per-client\";r=9;t="));
}

#[test]
fn ratelimit_admits_exactly_the_bucket_under_concurrent_clients_on_two_workers() {
    let (capacity, refill, period_ms) = (20u64, 10u64, 1000u64);
    let gw = direct_gateway(json!({"rules": [{"name": "global", "capacity": capacity,
        "refill": refill, "period_ms": period_ms}]}));
    let url = gw.url("/load");
    let start = unix_nanos();
    let run_for = Instant::now();
    let threads: Vec<_> = (0..6)
        .map(|_| {
            let url = url.clone();
            std::thread::spawn(move || {
                let client = Client::new(); // its own connections
                let (mut ok, mut limited) = (0u64, 0u64);
                while run_for.elapsed() < Duration::from_secs(3) {
                    match client.get(&url, &[]).status {
                        200 => ok += 1,
                        429 => limited += 1,
                        other => panic!("unexpected status {other}"),
                    }
                }
                (ok, limited)
            })
        })
        .collect();
    let (admitted, limited) = threads
        .into_iter()
        .map(|t| t.join().unwrap())
        .fold((0, 0), |a, b| (a.0 + b.0, a.1 + b.1));
    let elapsed = unix_nanos() - start;
    let limit = bound(capacity, refill, period_ms, elapsed);
    println!("admitted {admitted}, limited {limited}, bound {limit}, elapsed {elapsed} ns");
    assert!(limited > 0, "the clients must outrun the bucket");
    assert!(admitted <= limit, "over-admitted: {admitted} > {limit}");
    // Only the slivers of time before the first and after the last decision are not spent.
    assert!(
        admitted + 2 >= limit,
        "under-admitted: {admitted} vs {limit}"
    );
    // Both workers took part: Envoy's own 2xx/429 split agrees with ours.
    assert_eq!(gw.stat("http.gateway.downstream_rq_2xx"), Some(admitted));
    wait_metric(
        &gw,
        "wasmgate_ratelimit_rule_global_allowed",
        admitted as f64,
    );
    wait_metric(
        &gw,
        "wasmgate_ratelimit_rule_global_limited",
        limited as f64,
    );
}

#[test]
fn ratelimit_keeps_clients_apart() {
    // Two clients behind one trusted proxy: x-forwarded-for tells them apart. Envoy
    // (use_remote_address) appends the proxy's address, so the client is 2nd from the right.
    let gw = gateway(
        json!({"xff_trusted_hops": 2, "rules": [{"name": "per-client",
        "key": [{"source": "client"}], "capacity": 3, "period_ms": 3_600_000}]}),
    );
    let a = [("x-forwarded-for", "203.0.113.7")];
    let b = [("x-forwarded-for", "198.51.100.9")];
    let statuses =
        |h: &[(&str, &str)], n| (0..n).map(|_| gw.get("/", h).status).collect::<Vec<_>>();
    assert_eq!(statuses(&a, 5), [200, 200, 200, 429, 429]);
    assert_eq!(statuses(&b, 3), [200, 200, 200], "b is not limited by a");
    assert_eq!(
        metric(&gw, "wasmgate_ratelimit_rule_per_client_keys_in_use"),
        2.0
    );
}

#[test]
fn ratelimit_ignores_forwarded_for_by_default() {
    let gw = gateway(
        json!({"rules": [{"name": "per-client", "key": [{"source": "client"}],
        "capacity": 2, "period_ms": 3_600_000}]}),
    );
    let statuses: Vec<u16> = (0..4)
        .map(|i| {
            gw.get("/", &[("x-forwarded-for", &format!("10.9.9.{i}"))])
                .status
        })
        .collect();
    assert_eq!(statuses, [200, 200, 429, 429]);
}

#[test]
fn ratelimit_keys_consumers_by_header_and_every_rule_applies() {
    let gw = gateway(json!({"rules": [
        {"name": "per-consumer", "key": [{"source": "header", "name": "x-consumer"}],
         "on_missing_key": "fallback", "capacity": 2, "period_ms": 3_600_000},
        {"name": "api", "match": {"prefix": "/api/"}, "capacity": 3, "period_ms": 3_600_000}
    ]}));
    let alice = [("x-consumer", "alice")];
    let bob = [("x-consumer", "bob")];
    assert_eq!(gw.get("/api/a", &alice).status, 200);
    assert_eq!(gw.get("/api/a", &alice).status, 200);
    assert_eq!(
        gw.get("/api/a", &alice).status,
        429,
        "alice's bucket is empty"
    );
    // Alice's refusal took nothing from "api": bob gets its last token.
    assert_eq!(gw.get("/api/b", &bob).status, 200);
    let r = gw.get("/api/b", &bob);
    assert_eq!(r.status, 429, "api's bucket is empty");
    assert!(r.header("ratelimit").unwrap().contains("\"api\";r=0"));
    // Requests without the header share the fallback bucket.
    assert_eq!(gw.get("/other", &[]).status, 200);
    assert_eq!(gw.get("/other", &[]).status, 200);
    assert_eq!(gw.get("/other", &[]).status, 429);
}

#[test]
fn ratelimit_refusal_is_429_with_retry_after_fields_and_json_body() {
    let gw = gateway(
        json!({"rules": [{"name": "tight", "capacity": 1, "refill": 1,
        "period_ms": 10_000}]}),
    );
    assert_eq!(gw.get("/", &[]).status, 200);
    let r = gw.get("/", &[]);
    assert_eq!(r.status, 429);
    let retry: u64 = r.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=10).contains(&retry), "retry-after {retry}");
    assert_eq!(r.header("ratelimit-policy"), Some("\"tight\";q=1;w=10"));
    assert_eq!(
        r.header("ratelimit"),
        Some(format!("\"tight\";r=0;t={retry}").as_str())
    );
    assert_eq!(r.header("x-ratelimit-limit"), Some("1"));
    assert_eq!(r.header("x-ratelimit-remaining"), Some("0"));
    assert_eq!(r.header("content-type"), Some("application/json"));
    let body = r.json();
    assert_eq!(body["error"], "rate_limited");
    assert!(body["message"].as_str().unwrap().contains("Retry-After"));
    assert_eq!(
        gw.upstream().hits(),
        1,
        "the refused request never reached the upstream"
    );
}

#[test]
fn ratelimit_shadow_rule_counts_without_limiting() {
    let gw = gateway(json!({"rules": [{"name": "trial", "capacity": 2,
        "period_ms": 3_600_000, "shadow": true}]}));
    for _ in 0..5 {
        let r = gw.get("/", &[]);
        assert_eq!(r.status, 200);
        assert_eq!(
            r.header("ratelimit"),
            None,
            "a shadow rule changes no response"
        );
    }
    wait_metric(&gw, "wasmgate_ratelimit_rule_trial_allowed", 2.0);
    wait_metric(&gw, "wasmgate_ratelimit_rule_trial_shadow_limited", 3.0);
    wait_metric(&gw, "wasmgate_ratelimit_rule_trial_limited", 0.0);
}

#[test]
fn ratelimit_metrics_are_exposed_from_the_start() {
    let gw = gateway(json!({"rules": [{"name": "g", "capacity": 1, "period_ms": 3_600_000}]}));
    for name in [
        "wasmgate_ratelimit_cas_retries",
        "wasmgate_ratelimit_cas_exhausted",
        "wasmgate_ratelimit_rule_g_allowed",
        "wasmgate_ratelimit_rule_g_limited",
        "wasmgate_ratelimit_rule_g_shadow_limited",
        "wasmgate_ratelimit_rule_g_keys_in_use",
        "wasmgate_ratelimit_rule_g_slot_collisions",
    ] {
        assert_eq!(metric(&gw, name), 0.0, "{name}");
    }
    gw.get("/", &[]);
    gw.get("/", &[]);
    wait_metric(&gw, "wasmgate_ratelimit_rule_g_allowed", 1.0);
    wait_metric(&gw, "wasmgate_ratelimit_rule_g_limited", 1.0);
    wait_metric(&gw, "wasmgate_ratelimit_rule_g_keys_in_use", 1.0);
}

#[test]
fn ratelimit_rejects_an_invalid_configuration_naming_the_field() {
    let log = Gateway::builder("ratelimit.yaml")
        .plugin_config(
            "ratelimit",
            json!({"rules": [{"name": "r", "capacity": 0}]}),
        )
        .start_expecting_failure();
    assert!(
        log.contains(
            "wasmgate ratelimit: invalid plugin configuration: ratelimit.rules[0].capacity: must be between 1 and 1000000000000"
        ),
        "{log}"
    );
}

#[test]
fn ratelimit_in_the_gateway_chain_refuses_the_sixth_request_of_a_burst() {
    // envoy-config/chain.yaml's ratelimit (5 per client per 10 s) behind tracing; authn is
    // taken out so that anonymous requests reach the limit (its own tests cover it).
    let gw = Gateway::builder("chain.yaml")
        .edit(|c| {
            let filters = &mut c.value_mut()["static_resources"]["listeners"][0]["filter_chains"]
                [0]["filters"][0]["typed_config"]["http_filters"];
            let list = filters.as_sequence_mut().unwrap();
            list.retain(|f| f["name"].as_str() != Some("wasmgate.authn"));
        })
        .start();
    let start = unix_nanos();
    let statuses: Vec<u16> = (0..8).map(|_| gw.get("/", &[]).status).collect();
    let admitted = statuses.iter().filter(|s| **s != 429).count() as u64;
    assert!(
        admitted <= bound(5, 5, 10_000, unix_nanos() - start),
        "{statuses:?}"
    );
    assert_eq!(&statuses[5..], [429, 429, 429], "{statuses:?}");
}

#[test]
fn ratelimit_memory_stays_within_the_budget_for_many_clients() {
    // 50 client addresses, a table of 4 slots of 3 tokens: addresses share slots, so no more
    // than 12 requests pass and no more than 4 slots are ever in use.
    let gw = gateway(
        json!({"xff_trusted_hops": 2, "rules": [{"name": "per-client",
        "key": [{"source": "client"}], "capacity": 3, "period_ms": 3_600_000, "budget": 4}]}),
    );
    let admitted = (0..50)
        .filter(|i| {
            let xff = format!("192.0.2.{i}");
            gw.get("/", &[("x-forwarded-for", &xff)]).status == 200
        })
        .count();
    assert!((3..=12).contains(&admitted), "{admitted}");
    assert!(metric(&gw, "wasmgate_ratelimit_rule_per_client_keys_in_use") <= 4.0);
    // Of any five addresses two share a slot; the second of them takes a token there.
    wait_metric_until(
        &gw,
        "wasmgate_ratelimit_rule_per_client_slot_collisions",
        |v| v >= 1.0,
    );
}
