//! What reaches the ratelimit filter: `x-forwarded-for` chains, rate-limit service answers,
//! and whole request sequences through the policy on FakeHosts sharing one store.

use crate::{assert_valid_field, request_path, Input, Seed};
use prost::Message;
use std::time::Duration;
use wasmgate_ratelimit::keys::client_address;
use wasmgate_ratelimit::rls::{
    DescriptorStatus, HeaderValue, ProtoDuration, RateLimit, RateLimitResponse,
};
use wasmgate_ratelimit::{Plugin, RatelimitStream};
use wasmgate_shared::canonical::PathPolicy;
use wasmgate_shared::host::{FakeHost, SharedStore};
use wasmgate_shared::matching::RequestMatch;
use wasmgate_shared::{Flow, Host, LocalReply, Policy, RequestView};

/// Layout: trusted hops, `source.address`, then the `x-forwarded-for` value.
///
/// The client address is never empty, has no comma and no surrounding blanks; with no trusted
/// hop it is Envoy's downstream address without port; with N hops and at least N entries it is
/// the N-th entry from the right.
pub fn xff_hops(data: &[u8]) {
    let mut input = Input::new(data);
    let hops = u32::from(input.byte() % 8);
    let source = input.text();
    let xff = input.rest_text();
    let host = FakeHost::new()
        .with_request("GET", "/", "h")
        .with_property(&["source", "address"], source.as_bytes());
    if !xff.is_empty() {
        host.add_request_header("x-forwarded-for", &xff);
    }
    let Some(view) = RequestView::read(&host, &PathPolicy::default()).ok() else {
        return;
    };
    let headers = view.headers().to_vec();
    let xff = headers
        .iter()
        .find(|(k, _)| k == "x-forwarded-for")
        .map(|(_, v)| v.clone());
    let Some(client) = client_address(&host, &view, hops) else {
        return;
    };
    let entry = xff.as_deref().and_then(|x| {
        let n = usize::try_from(hops).ok()?.checked_sub(1)?;
        let e = x.rsplit(',').nth(n)?.trim();
        (!e.is_empty()).then_some(e)
    });
    match entry {
        Some(e) => {
            assert_eq!(client, e);
            assert!(!client.contains(','), "{client:?}");
        }
        None => assert_eq!(client, without_port(&source)),
    }
}

/// `1.2.3.4:5678` is `1.2.3.4`, `[::1]:80` is `::1`; anything else stays.
fn without_port(address: &str) -> &str {
    if let Some(rest) = address.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    match address.rsplit_once(':') {
        Some((ip, port)) if !ip.contains(':') && port.bytes().all(|b| b.is_ascii_digit()) => ip,
        _ => address,
    }
}

pub fn xff_hops_seeds() -> Vec<Vec<u8>> {
    [
        (1, "10.0.0.1:5000", "203.0.113.7, 10.0.0.2"),
        (2, "10.0.0.1:5000", "198.51.100.1,203.0.113.7, 10.0.0.2"),
        (3, "[::1]:80", "a"),
        (0, "[2001:db8::1]:443", "1.2.3.4"),
        (1, "1.2.3.4", " , ,"),
    ]
    .into_iter()
    .map(|(hops, source, xff)| Seed::new().byte(hops).field(source).rest(xff))
    .collect()
}

/// The global-mode configuration of the service targets, with the failure policy picked. The
/// keyed rule's budget is small: configuring creates every slot in shared data, and the
/// default 4,096 made each input cost milliseconds.
fn global_config(on_failure: u8) -> String {
    let policy = ["allow", "deny", "local"][usize::from(on_failure) % 3];
    format!(
        r#"{{"global":{{"cluster":"rls","domain":"api","timeout_ms":250,"on_failure":"{policy}"}},
        "rate_limit_headers":{{"style":"both","on_allowed":true}},
        "rules":[
          {{"name":"per-user","mode":"global","capacity":9,"budget":16,"key":[{{"source":"header","name":"x-user"}}]}},
          {{"name":"shadowed","mode":"global","capacity":3,"shadow":true}},
          {{"name":"local-too","mode":"both","capacity":5,"period_ms":60000}}]}}"#
    )
}

fn check_reply(reply: &LocalReply, allowed: &[u16]) {
    assert!(allowed.contains(&reply.status), "status {}", reply.status);
    for (name, value) in reply.all_headers() {
        assert_valid_field(name, value, "local reply");
    }
}

/// Layout: failure policy, gRPC status, wait (u16 ms), then the response message.
///
/// Whatever the rate-limit service answers (any bytes, any status, any time), the request
/// goes on or gets a 429 or 503, its method, path and authority stay what was judged, and
/// every header written upstream, on the local reply or on the response is a valid HTTP field.
pub fn rls_response(data: &[u8]) {
    let mut input = Input::new(data);
    let on_failure = input.byte();
    let status = u32::from(input.byte() % 18);
    let wait = u64::from(input.u16() % 400);
    let message = input.rest();
    let host = FakeHost::new();
    let config = global_config(on_failure);
    let plugin =
        <Plugin as Policy>::configure(&host, Some(config.as_bytes())).expect("configuration");
    host.add_request_header(":method", "GET");
    host.add_request_header(":path", "/api");
    host.add_request_header(":authority", "h");
    host.add_request_header("x-user", "alice");
    host.set_property(&["source", "address"], b"10.0.0.1:1000");
    let mut view = RequestView::unjudged(host.request_headers());
    let mut stream = RatelimitStream::default();
    let flow = plugin.on_request(&host, &mut view, &mut stream);
    assert_eq!(flow, Flow::Pause, "no call made");
    let token = plugin.awaited_call(&stream).expect("awaited call");
    host.advance(Duration::from_millis(wait));
    host.set_call_response(&[], Some(message));
    let flow =
        plugin.on_grpc_call_response(&host, &mut view, &mut stream, token, status, message.len());
    match flow {
        Flow::Continue => {}
        Flow::Reply(reply) => check_reply(&reply, &[429, 503]),
        Flow::Pause => panic!("still paused after the answer"),
    }
    plugin.on_response(&host, &mut stream);
    for (name, value) in host.request_headers() {
        assert_valid_field(&name, &value, "upstream");
    }
    // The upstream serves what the rules judged: the service adds headers, never moves the
    // request elsewhere.
    for (name, value) in [(":method", "GET"), (":path", "/api"), (":authority", "h")] {
        assert_eq!(
            host.request_header_values(name),
            [value],
            "the service rewrote {name}"
        );
    }
    for (name, value) in host.response_headers() {
        assert_valid_field(&name, &value, "response");
    }
}

pub fn rls_response_seeds() -> Vec<Vec<u8>> {
    let status = |code: i32, remaining: u32, unit: i32| DescriptorStatus {
        code,
        current_limit: Some(RateLimit {
            requests_per_unit: 9,
            unit,
            name: "per-user".into(),
        }),
        limit_remaining: remaining,
        duration_until_reset: Some(ProtoDuration {
            seconds: 30,
            nanos: 5,
        }),
    };
    let header = |key: &str, value: &str| HeaderValue {
        key: key.into(),
        value: value.into(),
        raw_value: Vec::new(),
    };
    let ok = RateLimitResponse {
        overall_code: 1,
        statuses: vec![status(1, 4, 2), status(1, 2, 1)],
        response_headers_to_add: vec![header("X-Quota", "4")],
        request_headers_to_add: vec![HeaderValue {
            key: "x-tier".into(),
            value: String::new(),
            raw_value: b"gold".to_vec(),
        }],
    };
    let over = RateLimitResponse {
        overall_code: 2,
        statuses: vec![status(2, 0, 3)],
        response_headers_to_add: vec![header("retry-after", "9")],
        request_headers_to_add: Vec::new(),
    };
    let hostile = RateLimitResponse {
        overall_code: 1,
        statuses: Vec::new(),
        response_headers_to_add: vec![header("x-engine", "rls\r\nset-cookie: a=1")],
        request_headers_to_add: vec![header(":path", "/admin"), header("x tier", "gold")],
    };
    let mut seeds = Vec::new();
    for policy in 0..3u8 {
        for (status, message) in [
            (0u8, hostile.encode_to_vec()),
            (0, ok.encode_to_vec()),
            (0, over.encode_to_vec()),
            (0, vec![0xff, 0x01]),
            (14, Vec::new()),
            (4, Vec::new()),
        ] {
            seeds.push(Seed::new().byte(policy).byte(status).u16(20).rest(message));
        }
    }
    seeds
}

/// Layout: capacity, refill, period (u16 ms), cost, rule match (JSON), then steps: worker and
/// clock byte, a clock step (u16 ms), the `:path`.
///
/// Two workers share one store. Over the whole run the rule's one bucket admits at most
/// `capacity + refill · elapsed / period` tokens (elapsed up to the latest clock reading;
/// steps back are shorter than the re-base threshold, so they credit nothing); a request the
/// rule does not match on its canonical path is never limited; refusals are 400 or 429; every
/// header written is a valid field.
pub fn ratelimit_request(data: &[u8]) {
    let mut input = Input::new(data);
    let capacity = 1 + u64::from(input.byte() % 8);
    let refill = 1 + u64::from(input.byte() % 4);
    let period_ms = 1 + u64::from(input.u16() % 5000);
    let cost = 1 + u64::from(input.byte() % 3);
    let raw_match = input.field();
    let Ok(matcher) = serde_json::from_slice::<RequestMatch>(raw_match) else {
        return;
    };
    let Ok(compiled) = matcher.compile() else {
        return;
    };
    let config = format!(
        r#"{{"rate_limit_headers":{{"style":"both","on_allowed":true}},
        "rules":[{{"name":"r","match":{},"capacity":{capacity},"refill":{refill},
        "period_ms":{period_ms},"cost":{cost}}}]}}"#,
        String::from_utf8_lossy(raw_match)
    );
    let store = SharedStore::new();
    let workers = [
        FakeHost::new().with_shared_store(store.clone()),
        FakeHost::new().with_shared_store(store),
    ];
    let Ok(plugins) = workers
        .iter()
        .map(|h| <Plugin as Policy>::configure(h, Some(config.as_bytes())))
        .collect::<Result<Vec<_>, _>>()
    else {
        return;
    };
    let start_ms: u64 = 0;
    let (mut now_ms, mut latest_ms) = (start_ms, start_ms);
    let mut admitted: u64 = 0;
    for _ in 0..64 {
        let choice = input.byte();
        let step = input.u16();
        let path = request_path(&input.text());
        if path.is_empty() && choice == 0 && step == 0 {
            break;
        }
        // Steps back stay within the bucket's re-base threshold (60 s) of the latest reading:
        // larger ones re-base the refill stamp by design.
        if choice & 2 == 0 {
            now_ms += u64::from(step);
        } else {
            now_ms = now_ms
                .saturating_sub(u64::from(step))
                .max(latest_ms.saturating_sub(50_000));
        }
        latest_ms = latest_ms.max(now_ms);
        let w = usize::from(choice & 1);
        let (host, plugin) = (&workers[w], &plugins[w]);
        host.set_time(
            std::time::UNIX_EPOCH
                + Duration::from_secs(1_767_225_600)
                + Duration::from_millis(now_ms),
        );
        host.reset_stream();
        host.add_request_header(":method", "GET");
        host.add_request_header(":path", &path);
        host.add_request_header(":authority", "h");
        host.set_property(&["source", "address"], b"10.0.0.1:1000");
        let mut view = RequestView::unjudged(host.request_headers());
        let judged = RequestView::read(host, &PathPolicy::default()).ok();
        let mut stream = RatelimitStream::default();
        match plugin.on_request(host, &mut view, &mut stream) {
            Flow::Continue => {
                if judged.as_ref().is_some_and(|v| compiled.matches(v)) {
                    admitted += cost;
                }
            }
            Flow::Reply(reply) => {
                check_reply(&reply, &[400, 429]);
                if reply.status == 429 {
                    let v = judged.expect("a limited request has a canonical path");
                    assert!(
                        compiled.matches(&v),
                        "limited by a rule that does not match"
                    );
                }
            }
            Flow::Pause => panic!("a local rule paused"),
        }
        plugin.on_response(host, &mut stream);
        for (name, value) in host.response_headers() {
            assert_valid_field(&name, &value, "response");
        }
        let elapsed_ms = latest_ms - start_ms;
        let refilled = u128::from(refill) * u128::from(elapsed_ms) / u128::from(period_ms);
        assert!(
            u128::from(admitted) <= u128::from(capacity) + refilled,
            "{admitted} tokens admitted, bound {capacity} + {refilled}"
        );
    }
}

pub fn ratelimit_request_seeds() -> Vec<Vec<u8>> {
    let mut burst = Seed::new()
        .byte(2)
        .byte(0)
        .u16(999)
        .byte(0)
        .field(r#"{"prefix":"/api"}"#);
    for i in 0..8u8 {
        burst = burst
            .byte(i & 1)
            .u16(u16::from(i) * 100)
            .field(["/api/x", "/api/../api/y", "/%61pi", "/other"][usize::from(i % 4)]);
    }
    let mut back = Seed::new().byte(0).byte(1).u16(59).byte(1).field("{}");
    for i in 0..6u8 {
        back = back
            .byte(if i % 2 == 0 { 2 } else { 1 })
            .u16(500)
            .field("/");
    }
    vec![burst.build(), back.build()]
}
