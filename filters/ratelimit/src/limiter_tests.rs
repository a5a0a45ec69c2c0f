use super::*;
use crate::config::RawRatelimitConfig;
use std::time::Duration;
use wasmgate_shared::config::parse;
use wasmgate_shared::host::{FakeHost, SharedStore};

fn view(host: &FakeHost) -> wasmgate_shared::RequestView {
    wasmgate_shared::RequestView::read(host, &Default::default()).unwrap()
}

fn limiter(host: &FakeHost, json: &str) -> Limiter {
    let config = parse::<RawRatelimitConfig>(Some(json.as_bytes()))
        .and_then(RawRatelimitConfig::compile)
        .unwrap();
    Limiter::configure(host, config)
}

/// A new request on `host` from `client` with extra headers.
fn send(l: &Limiter, host: &FakeHost, client: &str, headers: &[(&str, &str)]) -> Verdict {
    prepare(host, client, headers);
    l.decide(host, &view(host))
}

fn prepare(host: &FakeHost, client: &str, headers: &[(&str, &str)]) {
    host.reset_stream();
    host.add_request_header(":method", "GET");
    host.add_request_header(":path", "/api/items?x=1");
    host.add_request_header(":authority", "gw");
    for (k, v) in headers {
        host.add_request_header(k, v);
    }
    host.set_property(&["source", "address"], format!("{client}:40000").as_bytes());
}

fn allowed(v: &Verdict) -> bool {
    matches!(v, Verdict::Allow(_))
}

fn header<'a>(reply: &'a LocalReply, name: &str) -> Option<&'a str> {
    reply
        .headers
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

fn count_allowed(l: &Limiter, host: &FakeHost, client: &str, n: usize) -> usize {
    (0..n)
        .filter(|_| allowed(&send(l, host, client, &[])))
        .count()
}

const GLOBAL: &str = r#"{"rules":[{"name":"global","capacity":3,"refill":1,"period_ms":1000}]}"#;
const PER_CLIENT: &str = r#"{"rules":[{"name":"per-client","capacity":2,"period_ms":60000,"key":[{"source":"client"}]}]}"#;

#[test]
fn no_rules_allows_everything() {
    let host = FakeHost::new();
    let l = limiter(&host, "{}");
    assert_eq!(send(&l, &host, "10.0.0.1", &[]), Verdict::Allow(Vec::new()));
    assert_eq!(host.shared_store().len(), 1, "only the seed");
}

#[test]
fn burst_then_429_with_retry_after_headers_and_json_body() {
    let host = FakeHost::new();
    let l = limiter(&host, GLOBAL);
    assert_eq!(count_allowed(&l, &host, "10.0.0.1", 3), 3);
    let Verdict::Limit(Refusal { reply, .. }) = send(&l, &host, "10.0.0.1", &[]) else {
        panic!("fourth request allowed");
    };
    assert_eq!(reply.status, 429);
    assert_eq!(reply.error, "rate_limited");
    let body: serde_json::Value = serde_json::from_slice(&reply.body()).unwrap();
    assert_eq!(body["error"], "rate_limited");
    assert_eq!(header(&reply, "retry-after"), Some("1"));
    assert_eq!(
        header(&reply, "ratelimit-policy"),
        Some("\"global\";q=3;w=3")
    );
    // The next token is 1 s away, so `t` says 1 like Retry-After (not 3, for a full bucket).
    assert_eq!(header(&reply, "ratelimit"), Some("\"global\";r=0;t=1"));
    assert_eq!(header(&reply, "x-ratelimit-limit"), Some("3"));
    assert_eq!(header(&reply, "x-ratelimit-remaining"), Some("0"));
    assert_eq!(header(&reply, "x-ratelimit-reset"), Some("1"));
    l.metrics.flush(&host);
    assert_eq!(
        host.metric("wasmgate_ratelimit_rule_global_allowed"),
        Some(3)
    );
    assert_eq!(
        host.metric("wasmgate_ratelimit_rule_global_limited"),
        Some(1)
    );
    // One token per second comes back.
    host.advance(Duration::from_millis(999));
    assert!(!allowed(&send(&l, &host, "10.0.0.1", &[])));
    host.advance(Duration::from_millis(1));
    assert!(allowed(&send(&l, &host, "10.0.0.1", &[])));
    assert!(!allowed(&send(&l, &host, "10.0.0.1", &[])));
}

/// The fields of an admitted request, by name.
fn field<'a>(fields: &'a [(&'static str, String)], name: &str) -> Option<&'a str> {
    fields
        .iter()
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.as_str())
}

fn refused(v: Verdict) -> LocalReply {
    match v {
        Verdict::Limit(Refusal { reply, .. }) => reply,
        Verdict::Allow(_) => panic!("admitted"),
    }
}

const LOUD: &str = r#""rate_limit_headers":{"style":"both","on_allowed":true}"#;

#[test]
fn five_per_minute_answers_t_equal_to_retry_after() {
    let host = FakeHost::new();
    let l = limiter(
        &host,
        &format!(r#"{{{LOUD},"rules":[{{"name":"m","capacity":5,"period_ms":60000}}]}}"#),
    );
    let mut seen = Vec::new();
    for _ in 0..5 {
        let Verdict::Allow(fields) = send(&l, &host, "10.0.0.1", &[]) else {
            panic!("refused within the burst");
        };
        seen.push(field(&fields, "ratelimit").map(str::to_string));
    }
    // Admitted: the next token is 12 s away whatever is left (not 12 s per missing token).
    assert_eq!(seen[2].as_deref(), Some("\"m\";r=2;t=12"));
    assert_eq!(seen[4].as_deref(), Some("\"m\";r=0;t=12"));
    let reply = refused(send(&l, &host, "10.0.0.1", &[]));
    assert_eq!(header(&reply, "retry-after"), Some("12"));
    assert_eq!(header(&reply, "ratelimit-policy"), Some("\"m\";q=5;w=60"));
    assert_eq!(header(&reply, "ratelimit"), Some("\"m\";r=0;t=12"));
    assert_eq!(header(&reply, "x-ratelimit-reset"), Some("12"));
    host.advance(Duration::from_millis(4_500));
    let reply = refused(send(&l, &host, "10.0.0.1", &[]));
    assert_eq!(header(&reply, "retry-after"), Some("8"));
    assert_eq!(header(&reply, "ratelimit"), Some("\"m\";r=0;t=8"));
    host.advance(Duration::from_millis(7_500));
    assert!(allowed(&send(&l, &host, "10.0.0.1", &[])));
}

#[test]
fn a_weighted_refusal_has_t_at_the_next_token_and_retry_after_at_the_cost() {
    let host = FakeHost::new();
    let l = limiter(
        &host,
        r#"{"rules":[{"name":"heavy","capacity":6,"cost":3,"period_ms":60000}]}"#,
    );
    assert_eq!(count_allowed(&l, &host, "10.0.0.1", 2), 2);
    // One token per 10 s: `t` is when one more is back, Retry-After when 3 are.
    let reply = refused(send(&l, &host, "10.0.0.1", &[]));
    assert_eq!(header(&reply, "retry-after"), Some("30"));
    assert_eq!(header(&reply, "ratelimit"), Some("\"heavy\";r=0;t=10"));
    host.advance(Duration::from_secs(10));
    let reply = refused(send(&l, &host, "10.0.0.1", &[]));
    assert_eq!(header(&reply, "retry-after"), Some("20"));
    assert_eq!(header(&reply, "ratelimit"), Some("\"heavy\";r=1;t=10"));
    host.advance(Duration::from_secs(20));
    assert!(allowed(&send(&l, &host, "10.0.0.1", &[])));
}

#[test]
fn a_refusal_lists_only_the_refusing_rules() {
    let host = FakeHost::new();
    let l = limiter(
        &host,
        r#"{"rules":[{"name":"tight","capacity":1,"period_ms":10000},
            {"name":"hourly","capacity":100,"refill":1,"period_ms":3600000}]}"#,
    );
    assert!(allowed(&send(&l, &host, "10.0.0.1", &[])));
    // `hourly` has tokens but its next one is an hour away: listing it would put a `t` after
    // Retry-After.
    let reply = refused(send(&l, &host, "10.0.0.1", &[]));
    assert_eq!(header(&reply, "retry-after"), Some("10"));
    assert_eq!(
        header(&reply, "ratelimit-policy"),
        Some("\"tight\";q=1;w=10")
    );
    assert_eq!(header(&reply, "ratelimit"), Some("\"tight\";r=0;t=10"));
    assert_eq!(header(&reply, "x-ratelimit-limit"), Some("1"));
}

#[test]
fn a_refusal_writes_nothing() {
    let host = FakeHost::new();
    let l = limiter(&host, GLOBAL);
    count_allowed(&l, &host, "10.0.0.1", 3);
    let writes = host.shared_store().writes();
    send(&l, &host, "10.0.0.1", &[]);
    assert_eq!(host.shared_store().writes(), writes);
}

#[test]
fn clients_have_their_own_buckets() {
    let host = FakeHost::new();
    let l = limiter(&host, PER_CLIENT);
    assert_eq!(count_allowed(&l, &host, "10.0.0.1", 5), 2);
    assert_eq!(count_allowed(&l, &host, "10.0.0.2", 5), 2);
    assert_eq!(
        host.metric("wasmgate_ratelimit_rule_per-client_keys_in_use"),
        None,
        "names are sanitised"
    );
    assert_eq!(
        host.metric("wasmgate_ratelimit_rule_per_client_keys_in_use"),
        Some(2)
    );
}

#[test]
fn forwarded_for_is_ignored_unless_hops_are_trusted() {
    let host = FakeHost::new();
    let l = limiter(&host, PER_CLIENT);
    // Rotating x-forwarded-for does not buy new buckets by default.
    let admitted = (0..6)
        .filter(|i| {
            let xff = format!("6.6.6.{i}");
            allowed(&send(&l, &host, "10.0.0.1", &[("x-forwarded-for", &xff)]))
        })
        .count();
    assert_eq!(admitted, 2);
    let trusting = limiter(
        &host,
        r#"{"xff_trusted_hops":1,"rules":[{"name":"per-client","capacity":2,"period_ms":60000,"key":[{"source":"client"}]}]}"#,
    );
    let xff = [("x-forwarded-for", "9.9.9.9, 7.7.7.7")];
    let n = (0..4)
        .filter(|_| allowed(&send(&trusting, &host, "10.0.0.1", &xff)))
        .count();
    assert_eq!(n, 2, "7.7.7.7 is the client");
}

#[test]
fn every_matching_rule_applies_and_a_refusal_takes_no_token_elsewhere() {
    let host = FakeHost::new();
    let l = limiter(
        &host,
        r#"{"rules":[
            {"name":"all","capacity":10,"period_ms":60000},
            {"name":"user","capacity":1,"period_ms":60000,
             "key":[{"source":"header","name":"x-user"}],"match":{"prefix":"/api/"}}]}"#,
    );
    let alice = [("x-user", "alice")];
    assert!(allowed(&send(&l, &host, "10.0.0.1", &alice)));
    for _ in 0..5 {
        assert!(!allowed(&send(&l, &host, "10.0.0.1", &alice)));
    }
    // The five refusals took nothing from "all": 9 tokens remain for everyone else.
    let bob = |i: usize| format!("bob{i}");
    let admitted = (0..20)
        .filter(|i| allowed(&send(&l, &host, "10.0.0.1", &[("x-user", &bob(*i))])))
        .count();
    assert_eq!(admitted, 9);
    l.metrics.flush(&host);
    assert_eq!(host.metric("wasmgate_ratelimit_rule_user_limited"), Some(5));
    assert_eq!(host.metric("wasmgate_ratelimit_rule_all_limited"), Some(11));
}

#[test]
fn missing_key_uses_the_fallback_bucket_or_skips() {
    let rule = |choice: &str| {
        format!(
            r#"{{"rules":[{{"name":"user","capacity":2,"period_ms":60000,
              "key":[{{"source":"header","name":"x-user"}}],"on_missing_key":"{choice}"}}]}}"#
        )
    };
    let host = FakeHost::new();
    let fallback = limiter(&host, &rule("fallback"));
    // Anonymous requests share one bucket, whatever their address.
    assert!(allowed(&send(&fallback, &host, "10.0.0.1", &[])));
    assert!(allowed(&send(&fallback, &host, "10.0.0.2", &[])));
    assert!(!allowed(&send(&fallback, &host, "10.0.0.3", &[])));
    assert!(allowed(&send(
        &fallback,
        &host,
        "10.0.0.3",
        &[("x-user", "a")]
    )));

    let host = FakeHost::new();
    let skip = limiter(&host, &rule("skip"));
    assert_eq!(count_allowed(&skip, &host, "10.0.0.1", 10), 10);
}

#[test]
fn shadow_rules_count_but_never_refuse() {
    let host = FakeHost::new();
    let l = limiter(
        &host,
        r#"{"rules":[{"name":"trial","capacity":2,"period_ms":60000,"shadow":true}]}"#,
    );
    assert_eq!(count_allowed(&l, &host, "10.0.0.1", 5), 5);
    l.metrics.flush(&host);
    assert_eq!(
        host.metric("wasmgate_ratelimit_rule_trial_allowed"),
        Some(2)
    );
    assert_eq!(
        host.metric("wasmgate_ratelimit_rule_trial_shadow_limited"),
        Some(3)
    );
    assert_eq!(
        host.metric("wasmgate_ratelimit_rule_trial_limited"),
        Some(0)
    );
}

#[test]
fn allowed_responses_carry_fields_only_when_asked() {
    let host = FakeHost::new();
    let quiet = limiter(&host, GLOBAL);
    assert_eq!(
        send(&quiet, &host, "10.0.0.1", &[]),
        Verdict::Allow(Vec::new())
    );
    let host = FakeHost::new();
    let loud = limiter(
        &host,
        r#"{"rate_limit_headers":{"style":"x_ratelimit","on_allowed":true},
            "rules":[{"name":"global","capacity":3,"refill":1,"period_ms":1000}]}"#,
    );
    let Verdict::Allow(fields) = send(&loud, &host, "10.0.0.1", &[]) else {
        panic!("refused");
    };
    assert_eq!(
        fields,
        vec![
            ("x-ratelimit-limit", "3".to_string()),
            ("x-ratelimit-remaining", "2".to_string()),
            ("x-ratelimit-reset", "1".to_string()),
        ]
    );
}

#[test]
fn cost_above_one_is_charged() {
    let host = FakeHost::new();
    let l = limiter(
        &host,
        r#"{"rules":[{"name":"heavy","capacity":5,"cost":2,"period_ms":60000}]}"#,
    );
    assert_eq!(count_allowed(&l, &host, "10.0.0.1", 5), 2);
}

/// Takes `cost` tokens from a slot the way another worker's admission would, bypassing us.
fn foreign_take(map: &mut std::collections::HashMap<String, (Vec<u8>, u32)>, key: &str) -> bool {
    let Some((bytes, _)) = map.get_mut(key) else {
        return false;
    };
    let mut s = SlotState::decode(bytes).unwrap();
    if s.tokens == 0 {
        return false;
    }
    s.tokens -= 1;
    *bytes = s.encode().to_vec();
    true
}

#[test]
fn cas_conflicts_between_two_workers_never_over_admit() {
    let store = SharedStore::new();
    let a = FakeHost::new().with_shared_store(store.clone());
    let b = FakeHost::new().with_shared_store(store.clone());
    let la = limiter(
        &a,
        r#"{"rules":[{"name":"g","capacity":50,"period_ms":60000}]}"#,
    );
    let lb = limiter(
        &b,
        r#"{"rules":[{"name":"g","capacity":50,"period_ms":60000}]}"#,
    );
    let key = la.config.rules[0].slot_key(0);
    let foreign = std::rc::Rc::new(std::cell::Cell::new(0));
    let mut admitted = 0;
    for i in 0..200 {
        if i % 3 == 0 {
            // Another worker's admission lands between this read and this write.
            let (key, foreign) = (key.clone(), foreign.clone());
            store.before_next_write(move |map| {
                if foreign_take(map, &key) {
                    foreign.set(foreign.get() + 1);
                }
            });
        }
        let (l, host) = if i % 2 == 0 { (&la, &a) } else { (&lb, &b) };
        if allowed(&send(l, host, "10.0.0.1", &[])) {
            admitted += 1;
        }
    }
    assert_eq!(
        admitted + foreign.get(),
        50,
        "exactly the capacity, no more"
    );
    assert!(store.cas_mismatches() > 0);
    la.metrics.flush(&a);
    lb.metrics.flush(&b);
    let retries = a.metric("wasmgate_ratelimit_cas_retries").unwrap()
        + b.metric("wasmgate_ratelimit_cas_retries").unwrap();
    assert_eq!(retries, store.cas_mismatches() as i64);
}

#[test]
fn endless_conflicts_are_bounded_and_refused() {
    let host = FakeHost::new();
    let l = limiter(&host, GLOBAL);
    let store = host.shared_store();
    // Another worker rewrites the bucket (same value, new CAS token) before every write.
    let busy = store.clone();
    store.before_each_write(move |key| {
        let value = busy.get(key).unwrap();
        busy.write(key, &value);
    });
    prepare(&host, "10.0.0.1", &[]);
    let Verdict::Limit(Refusal { reply, .. }) = l.decide(&host, &view(&host)) else {
        panic!("admitted without a successful write");
    };
    store.clear_write_hook();
    assert_eq!(header(&reply, "retry-after"), Some("1"));
    l.metrics.flush(&host);
    assert_eq!(
        host.metric("wasmgate_ratelimit_cas_retries"),
        Some(i64::from(MAX_ATTEMPTS - 1))
    );
    assert_eq!(host.metric("wasmgate_ratelimit_cas_exhausted"), Some(1));
    // Nothing was taken.
    assert_eq!(count_allowed(&l, &host, "10.0.0.1", 5), 3);
}

#[test]
fn a_conflict_on_the_second_bucket_refunds_the_first() {
    let host = FakeHost::new();
    let l = limiter(
        &host,
        r#"{"rules":[{"name":"a","capacity":5,"period_ms":60000},
                     {"name":"b","capacity":5,"period_ms":60000}]}"#,
    );
    let store = host.shared_store();
    let key_a = l.config.rules[0].slot_key(0);
    let key_b = l.config.rules[1].slot_key(0);
    let mut interfered = false;
    let racing = store.clone();
    let contested = key_b.clone();
    // Bucket a's write succeeds; before bucket b's, another worker takes a token from b.
    store.before_each_write(move |key| {
        if key == contested && !interfered {
            interfered = true;
            let mut s = SlotState::decode(&racing.get(key).unwrap()).unwrap();
            s.tokens -= 1;
            racing.write(key, &s.encode());
        }
    });
    prepare(&host, "10.0.0.1", &[]);
    assert!(allowed(&l.decide(&host, &view(&host))));
    store.clear_write_hook();
    let tokens = |k: &str| SlotState::decode(&store.get(k).unwrap()).unwrap().tokens;
    assert_eq!(
        tokens(&key_a),
        4,
        "charged, refunded, charged again: once in all"
    );
    assert_eq!(tokens(&key_b), 3, "ours and the other worker's");
    l.metrics.flush(&host);
    assert_eq!(host.metric("wasmgate_ratelimit_cas_retries"), Some(1));
}

#[test]
fn memory_stays_within_the_budget_under_a_million_addresses() {
    let host = FakeHost::new();
    let l = limiter(
        &host,
        r#"{"rules":[{"name":"c","capacity":3,"period_ms":60000,"key":[{"source":"client"}],"budget":16}]}"#,
    );
    let store = host.shared_store();
    let before = store.len();
    assert_eq!(
        before,
        1 + 17,
        "seed + budget + fallback slot, all created up front"
    );
    for i in 0..20_000u32 {
        let ip = format!("10.{}.{}.{}", i >> 16, (i >> 8) & 255, i & 255);
        send(&l, &host, &ip, &[]);
    }
    assert_eq!(store.len(), before, "no key was added by any request");
    assert_eq!(
        host.metric("wasmgate_ratelimit_rule_c_keys_in_use"),
        Some(16)
    );
    l.metrics.flush(&host);
    assert!(
        host.metric("wasmgate_ratelimit_rule_c_slot_collisions")
            .unwrap()
            > 0
    );
    // 16 slots of 3 tokens: no more than 48 admissions in total, and no address got more
    // than its own capacity.
    assert_eq!(host.metric("wasmgate_ratelimit_rule_c_allowed"), Some(48));
    assert_eq!(count_allowed(&l, &host, "10.0.0.1", 10), 0);
}

#[test]
fn a_colliding_key_shares_the_slot_state_and_cannot_refresh_it() {
    // With one slot every key collides: alternating keys never reset the bucket.
    let host = FakeHost::new();
    let l = limiter(
        &host,
        r#"{"rules":[{"name":"c","capacity":3,"period_ms":60000,"key":[{"source":"client"}],"budget":1}]}"#,
    );
    let admitted = (0..10)
        .filter(|i| allowed(&send(&l, &host, &format!("10.0.0.{}", i % 2), &[])))
        .count();
    assert_eq!(admitted, 3);
}

#[test]
fn a_second_worker_configuring_later_does_not_reset_buckets() {
    let store = SharedStore::new();
    let a = FakeHost::new().with_shared_store(store.clone());
    let la = limiter(&a, GLOBAL);
    assert_eq!(count_allowed(&la, &a, "10.0.0.1", 3), 3);
    let writes = store.writes();
    let b = FakeHost::new()
        .with_shared_store(store.clone())
        .with_seed(99);
    let lb = limiter(&b, GLOBAL);
    assert_eq!(
        store.writes(),
        writes,
        "worker b found every key and wrote none"
    );
    assert_eq!(lb.seed, la.seed, "both workers hash keys alike");
    assert_eq!(count_allowed(&lb, &b, "10.0.0.1", 3), 0);
}

#[test]
fn a_slot_missing_on_the_request_path_is_created_then_charged() {
    let host = FakeHost::new();
    let l = limiter(&host, GLOBAL);
    // Simulate a host that lost the key (never happens in Envoy, which has no delete).
    let fresh_host = FakeHost::new();
    assert!(allowed(&send(&l, &fresh_host, "10.0.0.1", &[])));
    let key = l.config.rules[0].slot_key(0);
    let state = SlotState::decode(&fresh_host.shared_store().get(&key).unwrap()).unwrap();
    assert_eq!(state.tokens, 2);
}

#[test]
fn a_changed_rule_starts_from_fresh_buckets() {
    let host = FakeHost::new();
    let l = limiter(&host, GLOBAL);
    count_allowed(&l, &host, "10.0.0.1", 3);
    let changed = limiter(
        &host,
        r#"{"rules":[{"name":"global","capacity":4,"refill":1,"period_ms":1000}]}"#,
    );
    assert_eq!(count_allowed(&changed, &host, "10.0.0.1", 10), 4);
    // An unchanged rule keeps its state across a reconfiguration.
    let same = limiter(&host, GLOBAL);
    assert_eq!(count_allowed(&same, &host, "10.0.0.1", 10), 0);
}

#[test]
fn a_flood_of_refusals_reads_no_shared_data_until_refill_could_admit() {
    let host = FakeHost::new();
    let l = limiter(&host, GLOBAL); // 3 tokens, 1 per second
    count_allowed(&l, &host, "10.0.0.1", 3);
    let store = host.shared_store();
    let decide = || {
        prepare(&host, "10.0.0.1", &[]);
        l.decide(&host, &view(&host))
    };
    assert!(
        !allowed(&decide()),
        "the bucket is empty: read once, remembered"
    );
    let reads = store.reads();
    for _ in 0..100 {
        let Verdict::Limit(Refusal { reply, .. }) = decide() else {
            panic!("admitted from an empty bucket");
        };
        assert_eq!(header(&reply, "retry-after"), Some("1"));
    }
    assert_eq!(store.reads(), reads, "refusals from memory");
    l.metrics.flush(&host);
    assert_eq!(
        host.metric("wasmgate_ratelimit_rule_global_limited"),
        Some(101)
    );
    host.advance(Duration::from_secs(1));
    assert!(
        allowed(&decide()),
        "refill makes the bucket worth reading again"
    );
    assert_eq!(store.reads(), reads + 1);
}

#[test]
fn tokens_given_back_by_another_worker_are_seen_once_the_memory_expires() {
    let store = SharedStore::new();
    let a = FakeHost::new().with_shared_store(store.clone());
    let l = limiter(&a, GLOBAL);
    count_allowed(&l, &a, "10.0.0.1", 3);
    assert!(!allowed(&send(&l, &a, "10.0.0.1", &[])));
    // Another worker refunds a token: this worker, remembering the bucket empty, refuses
    // (stricter, never looser) until refill alone would have given it a token.
    let key = l.config.rules[0].slot_key(0);
    let mut s = SlotState::decode(&store.get(&key).unwrap()).unwrap();
    s.tokens = 1;
    store.write(&key, &s.encode());
    assert!(!allowed(&send(&l, &a, "10.0.0.1", &[])));
    a.advance(Duration::from_secs(1));
    assert_eq!(
        count_allowed(&l, &a, "10.0.0.1", 5),
        2,
        "the refund and one refill"
    );
}
