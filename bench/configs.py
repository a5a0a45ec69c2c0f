"""Envoy configurations for every benchmark scenario, built as JSON (Envoy reads it as YAML).

Every Envoy under test has the same listener, HCM and route; only the HTTP filters differ, plus
`generate_request_id`, which is on only where it stands in for the tracing filter's request id
(the native chain). Routes are either a direct response (the cheapest possible request: what
a filter costs shows most) or a proxy to the fast upstream (an Envoy returning a direct
response, see `upstream()`)."""

import json

WASM = "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm"
JWT_AUTHN = "type.googleapis.com/envoy.extensions.filters.http.jwt_authn.v3.JwtAuthentication"
LOCAL_RATELIMIT = "type.googleapis.com/envoy.extensions.filters.http.local_ratelimit.v3.LocalRateLimit"
ROUTER = "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"
HCM = "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager"

# The token bucket both rate limiters get (per second). Admit: never runs dry at any rate this
# machine reaches. Refuse: 100 requests a second pass, every other request gets a 429.
ADMIT_TOKENS = 1_000_000_000
REFUSE_TOKENS = 100


def address(port: int) -> dict:
    return {"socket_address": {"address": "127.0.0.1", "port_value": port}}


def bootstrap(listen: int, admin: int, http_filters: list, route: dict, clusters: list,
              request_id: bool = False) -> dict:
    hcm = {
        "@type": HCM,
        "stat_prefix": "bench",
        "generate_request_id": request_id,
        "route_config": {
            "virtual_hosts": [{"name": "all", "domains": ["*"], "routes": [route]}],
        },
        "http_filters": http_filters + [{"name": "envoy.filters.http.router", "typed_config": {"@type": ROUTER}}],
    }
    return {
        "admin": {"address": address(admin)},
        "static_resources": {
            "listeners": [{
                "name": "bench",
                "address": address(listen),
                "filter_chains": [{"filters": [{"name": "envoy.filters.network.http_connection_manager",
                                                 "typed_config": hcm}]}],
            }],
            "clusters": clusters,
        },
    }


def direct_route() -> dict:
    return {"match": {"prefix": "/"}, "direct_response": {"status": 200, "body": {"inline_string": "ok\n"}}}


def proxy_route() -> dict:
    return {"match": {"prefix": "/"}, "route": {"cluster": "upstream"}}


def upstream_cluster(port: int) -> dict:
    return {
        "name": "upstream",
        "type": "STATIC",
        "connect_timeout": "1s",
        "load_assignment": {"cluster_name": "upstream",
                            "endpoints": [{"lb_endpoints": [{"endpoint": {"address": address(port)}}]}]},
    }


def upstream(listen: int, admin: int) -> dict:
    """The fast upstream of the proxy scenarios: a bare Envoy answering 200 itself."""
    return bootstrap(listen, admin, [], direct_route(), [])


# ------------------------------------------------------------------ Wasm filters

def wasm_filter(name: str, module: str, config: dict) -> dict:
    return {
        "name": f"wasmgate.{name}",
        "typed_config": {
            "@type": WASM,
            "config": {
                "name": name,
                "root_id": name,
                "vm_config": {
                    "vm_id": f"wasmgate-{name}",
                    "runtime": "envoy.wasm.runtime.v8",
                    "code": {"local": {"filename": module}},
                },
                "configuration": {"@type": "type.googleapis.com/google.protobuf.StringValue",
                                  "value": json.dumps(config)},
            },
        },
    }


def tracing_config() -> dict:
    # The documented defaults: extract W3C/B3, inject W3C, sample everything, x-request-id.
    return {}


def tracing_export_config(ratio: float) -> dict:
    """Span export to the `collector` cluster (the fast upstream, which answers 200). The queue
    and batches are larger than the defaults so that one worker at bench load exports every
    span rather than dropping (the report shows both counts)."""
    return {"sampling_ratio": ratio,
            "export": {"cluster": "collector", "batch_max_spans": 2048, "queue_max_spans": 16384}}


def collector_cluster(port: int) -> dict:
    return {**upstream_cluster(port), "name": "collector",
            "load_assignment": {"cluster_name": "collector",
                                "endpoints": [{"lb_endpoints": [{"endpoint": {"address": address(port)}}]}]}}


def authn_config(signer, jwks: str) -> dict:
    return {
        "providers": [{
            "name": "bench",
            "issuer": signer.issuer,
            "audiences": [signer.audience],
            "algorithms": [signer.alg],
            "jwks": jwks,
            "claim_headers": [{"claim": "sub", "header": "x-user-id"}],
            "payload_header": "x-jwt-payload",
        }],
    }


def ratelimit_config(tokens: int) -> dict:
    # One constant-key bucket for all requests, as native local_ratelimit has.
    return {"rules": [{"name": "all", "capacity": tokens, "refill": tokens, "period_ms": 1000}]}


# The per-client limit in front of authn in the forged-token flood rows: the rule of
# envoy-config/chain.yaml's `ratelimit-pre-auth` filter (100 per second per client address).
PRE_AUTH_PER_CLIENT = 100


def pre_auth_ratelimit_config() -> dict:
    n = PRE_AUTH_PER_CLIENT
    return {
        "rate_limit_headers": {"style": "both", "on_allowed": False},
        "rules": [{"name": "pre-auth-per-client", "key": [{"source": "client"}],
                   "capacity": n, "refill": n, "period_ms": 1000}],
    }


def gateway_config(tracing: dict, authn: dict, ratelimit: dict) -> dict:
    """The gateway module's configuration: each section is the standalone filter's configuration,
    so the module runs exactly the policies of the filters it replaces."""
    return {"tracing": tracing, "authn": authn, "ratelimit": ratelimit}


# ------------------------------------------------------------------ native filters

def jwt_authn_filter(signer, jwks: str, cache: bool) -> dict:
    provider = {
        "issuer": signer.issuer,
        "audiences": [signer.audience],
        "local_jwks": {"inline_string": jwks},
        "claim_to_headers": [{"header_name": "x-user-id", "claim_name": "sub"}],
        "forward_payload_header": "x-jwt-payload",
    }
    if cache:
        provider["jwt_cache_config"] = {"jwt_cache_size": 100}
    return {
        "name": "envoy.filters.http.jwt_authn",
        "typed_config": {
            "@type": JWT_AUTHN,
            "providers": {"bench": provider},
            "rules": [{"match": {"prefix": "/"}, "requires": {"provider_name": "bench"}}],
        },
    }


def local_ratelimit_filter(tokens: int) -> dict:
    percent = {"default_value": {"numerator": 100, "denominator": "HUNDRED"}, "runtime_key": "unused"}
    return {
        "name": "envoy.filters.http.local_ratelimit",
        "typed_config": {
            "@type": LOCAL_RATELIMIT,
            "stat_prefix": "bench_ratelimit",
            "token_bucket": {"max_tokens": tokens, "tokens_per_fill": tokens, "fill_interval": "1s"},
            "filter_enabled": percent,
            "filter_enforced": percent,
        },
    }
