use super::*;
use crate::denial::Denial;
use crate::request::tests::{compile, Harness};
use crate::request::Outcome;
use crate::state::WaitReason;
use crate::testkit::*;
use jwt_simple::prelude::{RS256KeyPair, RSAKeyPairLike};
use serde_json::{json, Value};
use std::time::Duration as StdDuration;
use wasmgate_shared::host::{unix_millis, FakeHost, SharedStore};

fn config(extra: Value) -> Value {
    let mut remote = json!({"cluster": "jwks", "refresh_seconds": 60, "retry_initial_ms": 1000, "retry_max_ms": 4000, "unknown_kid_refetch_seconds": 30});
    if let (Some(r), Value::Object(e)) = (remote.as_object_mut(), extra) {
        r.extend(e);
    }
    json!({"providers": [{"name": "idp", "issuer": ISSUER, "audiences": [AUDIENCE], "remote_jwks": remote,
        "claim_headers": [{"claim": "sub", "header": "x-user-id"}]}]})
}

fn jwks_body(kids: &[&str]) -> Vec<u8> {
    let keys: Vec<Value> = kids
        .iter()
        .map(|k| {
            if *k == "rsa-b" {
                rsa_jwk(&rsa_b(), k)
            } else {
                rsa_jwk(&rsa_a(), k)
            }
        })
        .collect();
    json!({"keys": keys}).to_string().into_bytes()
}

fn now_ms(host: &FakeHost) -> u64 {
    unix_millis(host.now())
}

/// One worker's tick, answering its fetch (if it started one) with `response`.
fn tick(h: &mut Harness, response: Option<(u16, Vec<u8>)>) -> PollResult {
    let cfg = h.config.providers[0].remote.as_ref().unwrap();
    let algs = h.config.providers[0].algorithms.clone();
    let now = now_ms(&h.host);
    let remote = h.state.remote[0].as_mut().unwrap();
    let polled = remote.poll(&h.host, cfg, &algs, now);
    if polled.dispatched.is_some() {
        return remote.on_response(&h.host, cfg, &algs, response, now);
    }
    polled
}

#[test]
fn shared_value_round_trips() {
    let s = SharedJwks {
        version: 3,
        fetched_at_ms: 10,
        lease_until_ms: 20,
        next_attempt_ms: 30,
        failures: 2,
        body: b"{\"keys\":[]}\n".to_vec(),
    };
    assert_eq!(SharedJwks::decode(&s.encode()), Some(s));
    assert_eq!(SharedJwks::decode(b"v2 1 2 3 4 5\n"), None);
    assert_eq!(SharedJwks::decode(b"garbage"), None);
}

#[test]
fn one_fetch_serves_two_workers() {
    let store = SharedStore::new();
    let cfg_json = config(json!({}));
    let config = compile(cfg_json);
    let remote_cfg = config.providers[0].remote.as_ref().unwrap();
    let algs = &config.providers[0].algorithms;
    let a = FakeHost::new().with_shared_store(store.clone());
    let b = FakeHost::new().with_shared_store(store.clone());
    let (mut ra, mut rb) = (RemoteState::default(), RemoteState::default());
    let now = now_ms(&a);
    let pa = ra.poll(&a, remote_cfg, algs, now);
    assert!(pa.dispatched.is_some());
    assert_eq!(a.calls()[0].cluster, "jwks");
    assert!(a.calls()[0]
        .headers
        .contains(&(":path".into(), "/.well-known/jwks.json".into())));
    assert_eq!(
        rb.poll(&b, remote_cfg, algs, now),
        PollResult::default(),
        "lease held by worker a"
    );
    assert!(b.calls().is_empty());
    let done = ra.on_response(
        &a,
        remote_cfg,
        algs,
        Some((200, jwks_body(&["rsa-a"]))),
        now,
    );
    assert!(done.installed);
    let pb = rb.poll(&b, remote_cfg, algs, now + 10);
    assert!(pb.installed && pb.dispatched.is_none());
    // One verifier per accepted algorithm: RS256/384/512 and PS256/384/512.
    assert_eq!(rb.keys.as_ref().map(crate::jwks::KeySet::len), Some(6));
    assert!(b.calls().is_empty());
    // Nothing due until the refresh interval passes; then exactly one worker refreshes.
    assert_eq!(
        ra.poll(&a, remote_cfg, algs, now + 1000),
        PollResult::default()
    );
    let later = now + 61_000;
    assert!(rb.poll(&b, remote_cfg, algs, later).dispatched.is_some());
    assert!(ra.poll(&a, remote_cfg, algs, later).dispatched.is_none());
}

#[test]
fn failed_refresh_keeps_last_good_keys_and_backs_off() {
    let mut h = Harness::new(config(json!({})));
    assert!(tick(&mut h, Some((200, jwks_body(&["rsa-a"])))).installed);
    let t = rsa_a().sign(claims(json!({}))).unwrap();
    assert_eq!(h.bearer("/x", &t), Outcome::Allow);
    h.host.advance(StdDuration::from_secs(61));
    let failed = tick(&mut h, Some((503, b"down".to_vec())));
    assert!(failed.failed);
    assert!(h.state.remote[0].as_ref().unwrap().keys.is_some());
    let fresh = rsa_a()
        .sign(claims(json!({"sub": "bob", "exp": NOW + 7200})))
        .unwrap();
    assert_eq!(
        h.bearer("/x", &fresh),
        Outcome::Allow,
        "last good keys still verify"
    );
    assert_eq!(tick(&mut h, None), PollResult::default(), "backing off");
    h.host.advance(StdDuration::from_millis(1000));
    assert!(
        tick(&mut h, None).failed,
        "retried after 1 s, then fails (no response)"
    );
    h.host.advance(StdDuration::from_millis(1000));
    assert_eq!(
        tick(&mut h, None),
        PollResult::default(),
        "second backoff is 2 s"
    );
    h.host.advance(StdDuration::from_millis(1000));
    assert!(
        tick(&mut h, Some((200, b"not json".to_vec()))).failed,
        "an unusable body is a failure"
    );
    assert!(h.state.remote[0].as_ref().unwrap().keys.is_some());
}

#[test]
fn requests_before_keys_wait_then_succeed_or_get_503() {
    let mut h = Harness::new(config(json!({"wait_for_keys_ms": 500})));
    let t = rsa_a().sign(claims(json!({}))).unwrap();
    let outcome = h.bearer("/x", &t);
    let Outcome::Wait {
        provider: 0,
        reason: WaitReason::FirstKeys,
        deadline_ms,
    } = outcome
    else {
        panic!("{outcome:?}");
    };
    assert_eq!(deadline_ms, now_ms(&h.host) + 500);
    let auth = format!("Bearer {t}");
    assert_eq!(
        h.request("/x", &[("authorization", &auth)], false),
        Outcome::Deny(Denial::KeysUnavailable)
    );
    assert_eq!(Denial::KeysUnavailable.reply("r").status, 503);
    tick(&mut h, Some((200, jwks_body(&["rsa-a"]))));
    assert_eq!(
        h.request("/x", &[("authorization", &auth)], false),
        Outcome::Allow
    );
    assert_eq!(h.metric("denied_keys_unavailable"), 1);
}

#[test]
fn waiters_become_ready_when_keys_arrive_or_time_runs_out() {
    let mut h = Harness::new(config(json!({"wait_for_keys_ms": 500})));
    let now = now_ms(&h.host);
    let waiter = |id| crate::state::Waiter {
        context_id: id,
        provider: 0,
        reason: WaitReason::FirstKeys,
        generation: 0,
        deadline_ms: now + 500,
    };
    h.state.waiters = vec![waiter(1), waiter(2)];
    assert!(h.state.take_ready_waiters(now).is_empty());
    assert_eq!(h.state.take_ready_waiters(now + 500).len(), 2);
    h.state.waiters = vec![waiter(3)];
    tick(&mut h, Some((200, jwks_body(&["rsa-a"]))));
    assert_eq!(h.state.take_ready_waiters(now).len(), 1);
}

#[test]
fn a_new_kid_triggers_a_rate_limited_refetch() {
    let mut h = Harness::new(config(json!({})));
    tick(&mut h, Some((200, jwks_body(&["rsa-a"]))));
    let rotated = rsa_b().sign(claims(json!({}))).unwrap();
    assert_eq!(
        h.bearer("/x", &rotated),
        Outcome::Deny(Denial::UnknownKey),
        "fetched just now"
    );
    h.host.advance(StdDuration::from_secs(31));
    let outcome = h.bearer("/x", &rotated);
    assert!(
        matches!(
            outcome,
            Outcome::Wait {
                reason: WaitReason::Rotation,
                ..
            }
        ),
        "{outcome:?}"
    );
    assert!(tick(&mut h, Some((200, jwks_body(&["rsa-b"])))).installed);
    let auth = format!("Bearer {rotated}");
    assert_eq!(
        h.request("/x", &[("authorization", &auth)], false),
        Outcome::Allow
    );
}

#[test]
fn cached_tokens_die_with_their_key() {
    let mut h = Harness::new(config(json!({"refresh_seconds": 1})));
    tick(&mut h, Some((200, jwks_body(&["rsa-a"]))));
    let t = rsa_a().sign(claims(json!({}))).unwrap();
    assert_eq!(h.bearer("/x", &t), Outcome::Allow);
    assert_eq!(h.bearer("/x", &t), Outcome::Allow);
    assert_eq!(h.metric("cache_hits"), 1);
    h.host.advance(StdDuration::from_secs(2));
    // Same key under a new kid: the cached entry survives the refresh (same material).
    assert!(tick(&mut h, Some((200, jwks_body(&["rsa-a", "rsa-b"])))).installed);
    assert_eq!(h.bearer("/x", &t), Outcome::Allow);
    assert_eq!(h.metric("cache_hits"), 2);
    h.host.advance(StdDuration::from_secs(2));
    assert!(tick(&mut h, Some((200, jwks_body(&["rsa-b"])))).installed);
    assert_eq!(
        h.request("/x", &[("authorization", &format!("Bearer {t}"))], false),
        Outcome::Deny(Denial::UnknownKey)
    );
    assert_eq!(h.metric("cache_hits"), 2);
}

fn kid_less_token(sub: &str) -> String {
    RS256KeyPair::from_pem(include_str!("../testdata/rsa-a.pem"))
        .unwrap()
        .sign(claims(json!({"sub": sub})))
        .unwrap()
}

#[test]
fn require_kid_counts_the_remote_keys_loaded_now() {
    let mut h = Harness::new(config(json!({"refresh_seconds": 1})));
    tick(&mut h, Some((200, jwks_body(&["rsa-a"]))));
    assert_eq!(h.bearer("/x", &kid_less_token("one")), Outcome::Allow);
    h.host.advance(StdDuration::from_secs(2));
    assert!(tick(&mut h, Some((200, jwks_body(&["rsa-a", "rsa-b"])))).installed);
    assert_eq!(
        h.bearer("/x", &kid_less_token("two")),
        Outcome::Deny(Denial::KidRequired)
    );
}

#[test]
fn require_kid_counts_inline_and_remote_keys_together() {
    let mut c = config(json!({}));
    c["providers"][0]["jwks"] = json!({"keys": [rsa_jwk(&rsa_b(), "rsa-b")]});
    let mut h = Harness::new(c);
    tick(&mut h, Some((200, jwks_body(&["rsa-a"]))));
    assert_eq!(
        h.bearer("/x", &kid_less_token("x")),
        Outcome::Deny(Denial::KidRequired)
    );
}

#[test]
fn require_kid_always_refuses_without_waiting_for_keys() {
    let mut c = config(json!({}));
    c["providers"][0]["require_kid"] = json!("always");
    let mut h = Harness::new(c);
    assert_eq!(
        h.bearer("/x", &kid_less_token("x")),
        Outcome::Deny(Denial::KidRequired)
    );
    assert!(h.host.calls().is_empty() && h.state.waiters.is_empty());
}

#[test]
fn a_refresh_shares_the_verifiers_of_unchanged_keys() {
    // ES* verifiers carry per-key tables that take milliseconds to build: a refresh that
    // republishes a key must not rebuild them.
    let es = jwt_simple::prelude::ES256KeyPair::generate();
    let algorithms = [crate::algorithm::Algorithm::Es256];
    let body = |kids: &[&str]| {
        let keys: Vec<Value> = kids.iter().map(|kid| es256_jwk(&es, kid)).collect();
        serde_json::to_vec(&json!({ "keys": keys })).unwrap()
    };
    let (first, _) =
        crate::jwks::KeySet::from_jwks_lenient(&body(&["a"]), &algorithms, None).unwrap();
    let (second, _) =
        crate::jwks::KeySet::from_jwks_lenient(&body(&["a", "b"]), &algorithms, Some(&first))
            .unwrap();
    let old = first.candidates(Some("a"), algorithms[0]).next().unwrap();
    for kid in ["a", "b"] {
        let new = second.candidates(Some(kid), algorithms[0]).next().unwrap();
        assert!(std::rc::Rc::ptr_eq(&old.verifier, &new.verifier), "{kid}");
    }
    let (fresh, _) =
        crate::jwks::KeySet::from_jwks_lenient(&body(&["a"]), &algorithms, None).unwrap();
    let rebuilt = fresh.candidates(Some("a"), algorithms[0]).next().unwrap();
    assert!(!std::rc::Rc::ptr_eq(&old.verifier, &rebuilt.verifier));
}
