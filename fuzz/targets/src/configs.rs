//! The three configuration compilers, each through its policy's `configure` on a FakeHost, as
//! Envoy's `on_configure` runs it with whatever bytes the operator or Istio delivered.

use crate::differential::keys;
use crate::{assert_valid_field, Seed};
use serde_json::json;
use wasmgate_authn::Worker;
use wasmgate_ratelimit::Plugin;
use wasmgate_shared::host::FakeHost;
use wasmgate_shared::{Flow, Host, Policy, RequestView};
use wasmgate_tracing::Tracing;

/// A refusal names a field under the policy's own name and gives a reason, the same one every
/// time; an accepted configuration decides plain requests without a panic and writes only
/// valid header fields (a configured name or realm reaches headers).
fn configure<P: Policy>(data: &[u8]) {
    let host = FakeHost::new();
    match P::configure(&host, Some(data)) {
        Err(e) => {
            assert!(
                e.field == P::NAME
                    || e.field.starts_with(&format!("{}.", P::NAME))
                    || e.field.starts_with(&format!("{}[", P::NAME)),
                "field {:?} outside {}",
                e.field,
                P::NAME
            );
            assert!(!e.reason.is_empty(), "no reason for {}", e.field);
            let again = P::configure(&FakeHost::new(), Some(data)).err();
            assert_eq!(again.map(|e| e.to_string()), Some(e.to_string()));
        }
        Ok(policy) => {
            for path in ["/", "/api/v1?x=1", "/public/../admin"] {
                host.reset_stream();
                host.add_request_header(":method", "GET");
                host.add_request_header(":path", path);
                host.add_request_header(":authority", "api.test");
                host.add_request_header("authorization", "Bearer e30.e30.e30");
                host.set_property(&["source", "address"], b"10.0.0.1:1000");
                let mut view = RequestView::unjudged(host.request_headers());
                let mut stream = policy.new_stream(1);
                if let Flow::Reply(reply) = policy.on_request(&host, &mut view, &mut stream) {
                    for (name, value) in reply.all_headers() {
                        assert_valid_field(name, value, "local reply");
                    }
                }
                policy.on_response(&host, &mut stream);
                let written = host
                    .request_headers()
                    .into_iter()
                    .chain(host.response_headers());
                for (name, value) in written {
                    assert_valid_field(&name, &value, "written");
                }
            }
            let _ = policy.on_tick(&host);
        }
    }
}

/// Layout: the configuration bytes.
pub fn authn(data: &[u8]) {
    configure::<Worker>(data);
}

pub fn ratelimit(data: &[u8]) {
    configure::<Plugin>(data);
}

pub fn tracing(data: &[u8]) {
    configure::<Tracing>(data);
}

fn seeds(configs: Vec<serde_json::Value>) -> Vec<Vec<u8>> {
    configs
        .into_iter()
        .map(|c| Seed::new().rest(c.to_string()))
        .collect()
}

pub fn authn_seeds() -> Vec<Vec<u8>> {
    let mut out = seeds(vec![
        json!({"providers": [{"name": "idp", "issuer": "https://issuer.test", "audiences": ["api"],
            "algorithms": ["RS256", "ES256", "EdDSA", "HS256"],
            "jwks": {"keys": [keys::rsa_jwk("rsa-a"), keys::ed25519_jwk("ed"),
                {"kty": "oct", "kid": "hs", "k": "YSBzZWNyZXQgb2YgMzIgYnl0ZXMsIG5vdCBsZXNzLg"}]},
            "claim_headers": [{"claim": "sub", "header": "x-user-id"}],
            "payload_header": "x-jwt-payload",
            "from": [{"header": "authorization", "prefix": "Bearer "}, {"query": "access_token"},
                     {"cookie": "jwt"}]}],
          "api_keys": {"consumers": [{"name": "ci", "key_sha256":
              "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"}]},
          "rules": [{"match": {"prefix": "/public"}, "public": true},
                    {"match": {"prefix": "/admin", "methods": ["GET"]}, "any_of": ["idp"],
                     "roles": ["admin"], "scopes": ["read"]}],
          "paths": {"escaped_slashes": "keep"}}),
        json!({"providers": [{"name": "remote", "issuer": "https://issuer.test",
            "accept_any_audience": true,
            "remote_jwks": {"cluster": "idp", "path": "/jwks", "refresh_seconds": 300}}]}),
        json!({"providers": [{"name": "bad name!"}]}),
        json!({"rules": [{"match": {"prefix": "api"}}]}),
    ]);
    out.push(b"{\"providers\": [{\"name\": \"p\", \"pem\": [{\"pem\": \"-----BEGIN PUBLIC KEY-----\\nAA==\\n-----END PUBLIC KEY-----\"}]}]}".to_vec());
    out
}

pub fn ratelimit_seeds() -> Vec<Vec<u8>> {
    seeds(vec![
        json!({"rules": [{"name": "per-client", "match": {"prefix": "/api"},
            "key": [{"source": "client"}, {"source": "header", "name": "x-user"}],
            "capacity": 10, "refill": 5, "period_ms": 1000, "budget": 1024}],
          "xff_trusted_hops": 1,
          "rate_limit_headers": {"style": "ietf", "on_allowed": true}}),
        json!({"global": {"cluster": "rls", "domain": "api", "timeout_ms": 250,
                          "on_failure": "local"},
          "rules": [{"name": "g", "mode": "both", "capacity": 1, "period_ms": 60000,
                     "key": [{"source": "path"}], "on_missing_key": "skip"}]}),
        json!({"rules": [{"name": "id", "key": [{"source": "identity"}], "capacity": 1}]}),
        json!({"rules": [{"name": "zero", "capacity": 0}]}),
    ])
}

pub fn tracing_seeds() -> Vec<Vec<u8>> {
    seeds(vec![
        json!({}),
        json!({"extract": ["b3", "w3c"], "inject": ["w3c", "b3multi"], "sampling_ratio": 0.25,
               "w3c_level": 1,
               "response": {"traceresponse": true, "trace_id_header": "x-trace-id"}}),
        json!({"trust_incoming": false, "client_trace_id_header": "x-client-trace-id"}),
        json!({"export": {"cluster": "otel", "service_name": "gw"}}),
        json!({"sampling_ratio": 2}),
    ])
}
