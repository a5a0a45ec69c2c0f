"""Istio's delivery reproduced: each WasmPlugin under istio/, pinned to the images `make push`
put in the local registry, rendered as istiod renders it, pulled and rewritten as istio-agent
does, loaded by ECDS into real Envoy, and shown working with its exact pluginConfig: the three
plugins of istio/ and the gateway module of istio/gateway/."""

import base64
import json
import os
import re
import shutil
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

import istiod
import oci
from conftest import EGRESS, FILTERS, ISTIO, ROOT, load_documents
from delivery import Gateway, egress_clusters
from servers import EchoUpstream, IdentityProvider, request

TRACEPARENT = re.compile(r"^00-([0-9a-f]{32})-([0-9a-f]{16})-0[0-3]$")  # sampled, random (W3C Level 2)
IDP_HOST = "idp.example.com"


@pytest.fixture(scope="session")
def plugins(pushed, tmp_path_factory) -> dict[str, dict]:
    """Every WasmPlugin, re-pinned (url and sha256) to the images `make push` just pushed:
    what a user does with `scripts/oci.py pin` before `kubectl apply -k istio/`."""
    copy = tmp_path_factory.mktemp("pinned") / "istio"
    shutil.copytree(ISTIO, copy)
    digests = {name: oci.layout_digest(ROOT / "dist" / "oci" / name) for name in FILTERS}
    oci.pin_manifests(copy, pushed, digests, oci.workspace_version())
    found = {}
    for path in sorted(copy.rglob("*.yaml")):
        for doc in load_documents(path):
            if doc.get("kind") == "WasmPlugin":
                found[istiod.resource_name(doc)] = doc
    return found


@pytest.fixture
def upstream():
    with EchoUpstream() as server:
        yield server


@pytest.fixture
def idp(tmp_path):
    with IdentityProvider(IDP_HOST, tmp_path) as server:
        yield server


def jwks_clusters(idp) -> list[dict]:
    docs = load_documents(EGRESS)
    entry = next(d for d in docs if d["kind"] == "ServiceEntry")
    rule = next(d for d in docs if d["kind"] == "DestinationRule")
    return egress_clusters(entry, rule, idp.port, idp.ca_file)


def burst(port: int, method: str, path: str, headers: dict, count: int) -> list[int]:
    """`count` requests from 8 connections at once: far faster than any refill in our configs."""
    with ThreadPoolExecutor(8) as pool:
        return list(pool.map(lambda _: request(port, method, path, headers).status, range(count)))


def next_refusal(port: int, method: str, path: str, headers: dict, tries: int = 50, source: str = "127.0.0.1"):
    """The first 429 of up to `tries` sequential requests right after a burst: the bucket may
    have refilled a token or two since (refill is real time), but not faster than we ask."""
    for _ in range(tries):
        response = request(port, method, path, headers, source=source)
        if response.status == 429:
            return response
    raise AssertionError(f"no 429 in {tries} requests after the burst")


def gateway_plugins(plugins, *names):
    return [plugins[f"istio-system.wasmgate-{name}"] for name in names]


def wait_for_metrics(gw: Gateway, filters: tuple) -> dict:
    """Prometheus samples once every `wasmgate_<filter>_*` family counted something: request-path
    counters reach Envoy on the plugins' 1 s tick."""
    def counted(samples: dict, name: str) -> dict:
        return {k: v for k, v in samples.items() if k.startswith(f"wasmgate_{name}_") and v > 0}

    deadline = time.monotonic() + 5
    samples = gw.prometheus()
    while time.monotonic() < deadline and not all(counted(samples, name) for name in filters):
        time.sleep(0.2)
        samples = gw.prometheus()
    for name in filters:
        assert counted(samples, name), f"no wasmgate_{name}_* metric counted anything"
    return samples


# Each gateway setup's plugins, by name, and the module each one runs.
SETUPS = {
    "three-plugins": {"tracing": "tracing", "ratelimit-pre-auth": "ratelimit", "authn": "authn", "ratelimit": "ratelimit"},
    "gateway-module": {"gateway": "gateway"},
}


@pytest.mark.parametrize("setup", SETUPS)
def test_envoy_runs_exactly_what_istiod_rendered_from_each_manifest(plugins, upstream, idp, tmp_path, setup):
    modules = SETUPS[setup]
    with Gateway(gateway_plugins(plugins, *modules),
                 tmp_path, upstream.port, jwks_clusters(idp)) as gw:
        running = gw.extension_configs()
        for name, module_name in modules.items():
            plugin = plugins[f"istio-system.wasmgate-{name}"]
            config = running[istiod.resource_name(plugin)]
            assert config["name"] == "istio-system.wasmgate-" + name
            assert config["root_id"] == plugin["spec"]["pluginName"]
            assert json.loads(config["configuration"]["value"]) == plugin["spec"]["pluginConfig"]
            policy = {"FAIL_OPEN": "FAIL_OPEN", "FAIL_CLOSE": "FAIL_CLOSED"}[plugin["spec"]["failStrategy"]]
            assert config["failure_policy"] == policy
            module = config["vm_config"]["code"]["local"]["filename"]
            assert module.endswith(plugin["spec"]["sha256"] + ".wasm")
            assert open(module, "rb").read() == (ROOT / "dist" / f"{module_name}.wasm").read_bytes()
            assert "vm_id" not in config["vm_config"]


def test_tracing_plugin_propagates_w3c_and_b3_upstream(plugins, upstream, tmp_path):
    with Gateway(gateway_plugins(plugins, "tracing"), tmp_path, upstream.port) as gw:
        fresh = request(gw.port, "GET", "/items")
        assert fresh.status == 200
        trace = TRACEPARENT.match(fresh.upstream_header("traceparent"))
        assert trace, fresh.json()
        assert fresh.upstream_header("b3").startswith(trace.group(1) + "-")
        assert fresh.upstream_header("x-request-id")
        assert fresh.header("traceresponse")
        assert fresh.header("x-request-id") == fresh.upstream_header("x-request-id")

        # trust_incoming: false at the edge: the caller's trace is not continued, only reported.
        caller = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
        continued = request(gw.port, "GET", "/items", {"traceparent": caller})
        assert not continued.upstream_header("traceparent").startswith("00-0af7651916cd43dd8448eb211c80319c")
        assert continued.upstream_header("x-client-trace-id") == "0af7651916cd43dd8448eb211c80319c"


def test_ratelimit_plugin_limits_each_client_on_its_own(plugins, upstream, tmp_path):
    spec = plugins["istio-system.wasmgate-ratelimit"]["spec"]["pluginConfig"]["rules"][0]
    with Gateway(gateway_plugins(plugins, "ratelimit"), tmp_path, upstream.port) as gw:
        alice = {"x-wasmgate-subject": "alice"}
        statuses = burst(gw.port, "GET", "/items", alice, 4 * spec["capacity"])
        assert set(statuses) == {200, 429}
        assert statuses.count(200) >= spec["capacity"]
        limited = next_refusal(gw.port, "GET", "/items", alice)
        assert limited.header("x-ratelimit-limit")
        assert request(gw.port, "GET", "/items", {"x-wasmgate-subject": "bob"}).status == 200


def test_workload_ratelimit_limits_writes_per_client_and_not_reads(plugins, upstream, tmp_path):
    plugin = plugins["orders.wasmgate-ratelimit"]
    rule = plugin["spec"]["pluginConfig"]["rules"][0]
    with Gateway([plugin], tmp_path, upstream.port) as gw:
        # Per calling pod (the peer address): a header would be whatever another workload sends.
        carol, dave = "127.0.0.2", "127.0.0.3"
        statuses = [request(gw.port, "POST", "/orders", source=carol).status for _ in range(rule["capacity"] + 5)]
        assert statuses[: rule["capacity"]] == [200] * rule["capacity"]
        assert 429 in statuses[rule["capacity"]:]
        assert request(gw.port, "POST", "/orders", {"x-wasmgate-subject": "someone-else"}, source=carol).status == 429
        assert request(gw.port, "GET", "/orders", source=carol).status == 200
        assert request(gw.port, "POST", "/orders", source=dave).status == 200


def test_authn_plugin_verifies_tokens_with_the_remote_jwks_through_the_service_entry_cluster(
        plugins, upstream, idp, tmp_path):
    provider = plugins["istio-system.wasmgate-authn"]["spec"]["pluginConfig"]["providers"][0]
    claims = {"iss": provider["issuer"], "aud": provider["audiences"][0], "sub": "alice"}
    with Gateway(gateway_plugins(plugins, "authn"), tmp_path, upstream.port, jwks_clusters(idp)) as gw:
        missing = request(gw.port, "GET", "/items")
        assert missing.status == 401
        assert missing.header("www-authenticate").startswith("Bearer")

        ok = request(gw.port, "GET", "/items", {"authorization": f"Bearer {idp.token(claims)}"})
        assert ok.status == 200, ok.body
        assert ok.upstream_header("x-wasmgate-subject") == "alice"
        assert idp.hits >= 1, "the JWKS came from the identity provider over the egress cluster"

        spoofed = request(gw.port, "GET", "/items", {
            "authorization": f"Bearer {idp.token(claims)}", "x-wasmgate-subject": "mallory"})
        assert spoofed.upstream_header("x-wasmgate-subject") == "alice"

        wrong_audience = idp.token({**claims, "aud": "other.example.com"})
        assert request(gw.port, "GET", "/items", {"authorization": f"Bearer {wrong_audience}"}).status == 401
        assert request(gw.port, "GET", "/healthz").status == 200


def test_gateway_chain_traces_then_authenticates_then_limits_per_identity(plugins, upstream, idp, tmp_path):
    provider = plugins["istio-system.wasmgate-authn"]["spec"]["pluginConfig"]["providers"][0]
    capacity = plugins["istio-system.wasmgate-ratelimit"]["spec"]["pluginConfig"]["rules"][0]["capacity"]
    base = {"iss": provider["issuer"], "aud": provider["audiences"][0]}
    chain = gateway_plugins(plugins, "ratelimit", "authn", "tracing")  # order comes from phase/priority
    with Gateway(chain, tmp_path, upstream.port, jwks_clusters(idp)) as gw:
        assert [p["spec"]["pluginName"] for p in gw.order] == ["tracing", "authn", "ratelimit"]

        # authn's 401 passes back through tracing, which ran first: it carries the trace.
        rejected = request(gw.port, "GET", "/items")
        assert rejected.status == 401
        assert rejected.header("traceresponse")

        alice = {"authorization": f"Bearer {idp.token({**base, 'sub': 'alice'})}"}
        first = request(gw.port, "GET", "/items", alice)
        assert first.status == 200
        assert TRACEPARENT.match(first.upstream_header("traceparent"))
        assert first.upstream_header("x-wasmgate-subject") == "alice"

        # ratelimit, after authn, counts the verified subject: alice runs out, bob does not.
        statuses = burst(gw.port, "GET", "/items", alice, 4 * capacity)
        assert set(statuses) == {200, 429}
        limited = next_refusal(gw.port, "GET", "/items", alice)
        assert limited.header("traceresponse")
        bob = {"authorization": f"Bearer {idp.token({**base, 'sub': 'bob'})}"}
        assert request(gw.port, "GET", "/items", bob).status == 200

        # Each plugin's metrics pass Istio's default stats filter, for Prometheus to scrape.
        samples = wait_for_metrics(gw, ("tracing", "authn", "ratelimit"))
        assert not any(k.startswith("envoy_http_downstream_rq_total") for k in samples), \
            "Istio's stats inclusion list is in force"


def forged_flood_is_cut_before_authn(gw: Gateway, idp, upstream, pre_auth: dict, provider: dict) -> None:
    """A flood of forged tokens from one client: the pre-auth limit lets its burst through to
    authn (401 each, one failed signature check each) and refuses the rest before authn."""
    claims = {"iss": provider["issuer"], "aud": provider["audiences"][0], "sub": "mallory"}

    def forged(_):
        # Right issuer, audience and kid, a random signature: a full check for authn each.
        signed = idp.token(claims).rsplit(".", 1)[0]
        signature = base64.urlsafe_b64encode(os.urandom(256)).rstrip(b"=").decode()
        return request(gw.port, "GET", "/items", {"authorization": f"Bearer {signed}.{signature}"})

    with ThreadPoolExecutor(8) as pool:
        responses = list(pool.map(forged, range(5 * pre_auth["capacity"])))
    statuses = [r.status for r in responses]
    assert set(statuses) == {401, 429}, statuses
    verified = statuses.count(401)
    assert verified >= pre_auth["capacity"], "the burst the limit allows reaches authn"
    limited = next(r for r in responses if r.status == 429)
    assert limited.json()["error"] == "rate_limited"
    assert pre_auth["name"] in limited.header("ratelimit-policy")
    assert limited.header("traceresponse")
    assert upstream.hits == 0

    # authn checked only what the limit let through: its denials are exactly the 401s.
    def denied() -> float:
        return sum(v for k, v in gw.prometheus().items() if k.startswith("wasmgate_authn_denied_"))

    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and denied() != verified:
        time.sleep(0.2)
    assert denied() == verified


def test_pre_auth_limit_refuses_a_forged_token_flood_before_authn_verifies_it(plugins, upstream, idp, tmp_path):
    pre_auth = plugins["istio-system.wasmgate-ratelimit-pre-auth"]["spec"]["pluginConfig"]["rules"][0]
    provider = plugins["istio-system.wasmgate-authn"]["spec"]["pluginConfig"]["providers"][0]
    chain = gateway_plugins(plugins, "authn", "ratelimit-pre-auth", "tracing")  # order from phase/priority
    with Gateway(chain, tmp_path, upstream.port, jwks_clusters(idp)) as gw:
        assert [p["spec"]["pluginName"] for p in gw.order] == ["tracing", "ratelimit-pre-auth", "authn"]
        forged_flood_is_cut_before_authn(gw, idp, upstream, pre_auth, provider)


def unfetchable(plugin: dict) -> dict:
    """The plugin pinned to a digest the registry does not have: istio-agent cannot get it."""
    broken = json.loads(json.dumps(plugin))
    broken["spec"]["sha256"] = "0" * 64
    return broken


def test_fail_open_plugin_whose_module_cannot_be_fetched_is_left_out(plugins, upstream, tmp_path):
    tracing = unfetchable(plugins["istio-system.wasmgate-tracing"])
    with Gateway([tracing], tmp_path, upstream.port) as gw:
        assert gw.refused == []
        running = json.loads(gw.envoy.admin("/config_dump"))
        assert "envoy.extensions.filters.http.rbac.v3.RBAC" in json.dumps(running)
        response = request(gw.port, "GET", "/items")
        assert response.status == 200
        assert response.upstream_header("traceparent") is None


def test_fail_closed_plugin_whose_module_cannot_be_fetched_keeps_the_gateway_shut(
        plugins, upstream, idp, tmp_path):
    chain = [plugins["istio-system.wasmgate-tracing"], unfetchable(plugins["istio-system.wasmgate-authn"])]
    with Gateway(chain, tmp_path, upstream.port, jwks_clusters(idp)) as gw:
        assert gw.refused == ["istio-system.wasmgate-authn"]
        # In a mesh the NACK means Envoy never gets this config: a new gateway does not serve
        # and a running one keeps the previous plugin version. Here the file source hands Envoy
        # "no config" for the filter, which Envoy answers with 500. Either way nothing passes.
        response = request(gw.port, "GET", "/items")
        assert response.status == 500
        assert response.header("traceresponse"), "tracing, before authn, still ran"
        assert upstream.hits == 0


# ------------------------------------------------------------------ the gateway module (istio/gateway/)

def test_gateway_module_traces_authenticates_and_limits_each_identity(plugins, upstream, idp, tmp_path):
    module = plugins["istio-system.wasmgate-gateway"]
    config = module["spec"]["pluginConfig"]
    provider = config["authn"]["providers"][0]
    limit = config["ratelimit"]["rules"][0]
    base = {"iss": provider["issuer"], "aud": provider["audiences"][0]}
    with Gateway([module], tmp_path, upstream.port, jwks_clusters(idp)) as gw:
        # Local replies are built inside the module, which adds the tracing stage's response
        # headers to them as to upstream responses.
        rejected = request(gw.port, "GET", "/items")
        assert rejected.status == 401
        assert rejected.header("www-authenticate").startswith("Bearer")
        assert rejected.header("traceresponse") and rejected.header("x-request-id")

        alice = {"authorization": f"Bearer {idp.token({**base, 'sub': 'alice'})}"}
        first = request(gw.port, "GET", "/items", {**alice, "x-wasmgate-subject": "mallory"})
        assert first.status == 200, first.body
        assert idp.hits >= 1, "the JWKS came from the identity provider over the egress cluster"
        trace = TRACEPARENT.match(first.upstream_header("traceparent"))
        assert trace, first.json()
        assert first.upstream_header("b3").startswith(trace.group(1) + "-")
        assert first.header("traceresponse")
        assert first.header("x-request-id") == first.upstream_header("x-request-id")
        assert first.upstream_header("x-wasmgate-subject") == "alice"
        wrong_audience = idp.token({**base, "sub": "alice", "aud": "other.example.com"})
        assert request(gw.port, "GET", "/items", {"authorization": f"Bearer {wrong_audience}"}).status == 401
        assert request(gw.port, "GET", "/healthz").status == 200

        # The limit counts alice's verified identity wherever she connects from: a burst from
        # eight addresses, each far below the per-client pre-auth limit, empties one bucket.
        sources = [f"127.0.0.{10 + i}" for i in range(8)]
        with ThreadPoolExecutor(8) as pool:
            responses = list(pool.map(
                lambda i: request(gw.port, "GET", "/items", alice, source=sources[i % 8]),
                range(4 * limit["capacity"])))
        statuses = [r.status for r in responses]
        assert set(statuses) == {200, 429}
        assert statuses.count(200) >= limit["capacity"]
        refused = [r for r in responses if r.status == 429]
        for response in refused:
            policy = response.header("ratelimit-policy")
            assert limit["name"] in policy and "pre-auth" not in policy, policy
            assert response.header("traceresponse") and response.header("x-request-id")
        assert next_refusal(gw.port, "GET", "/items", alice, source="127.0.0.40").status == 429
        bob = {"authorization": f"Bearer {idp.token({**base, 'sub': 'bob'})}"}
        assert request(gw.port, "GET", "/items", bob, source=sources[0]).status == 200

        # One module, the standalone filters' metric names, through Istio's stats filter.
        samples = wait_for_metrics(gw, ("tracing", "authn", "ratelimit"))
        assert any("per_user" in k.replace("-", "_") and "limited" in k and v > 0 for k, v in samples.items())


def test_gateway_module_pre_auth_stage_refuses_a_forged_token_flood_before_authn(plugins, upstream, idp, tmp_path):
    config = plugins["istio-system.wasmgate-gateway"]["spec"]["pluginConfig"]
    with Gateway([plugins["istio-system.wasmgate-gateway"]], tmp_path, upstream.port, jwks_clusters(idp)) as gw:
        forged_flood_is_cut_before_authn(gw, idp, upstream, config["pre_auth"]["rules"][0],
                                         config["authn"]["providers"][0])


def test_gateway_module_whose_image_cannot_be_fetched_lets_nothing_through(plugins, upstream, idp, tmp_path):
    # FAIL_CLOSE for the whole module: tracing and the limits are not skipped on their own.
    module = unfetchable(plugins["istio-system.wasmgate-gateway"])
    with Gateway([module], tmp_path, upstream.port, jwks_clusters(idp)) as gw:
        assert gw.refused == ["istio-system.wasmgate-gateway"]
        assert request(gw.port, "GET", "/items").status == 500
        assert request(gw.port, "GET", "/healthz").status == 500
        assert upstream.hits == 0


def test_gateway_module_refuses_an_identity_key_before_authn_and_nothing_passes(plugins, upstream, idp, tmp_path):
    # Before authn there is no verified identity: the module refuses such a pre_auth rule, Envoy
    # logs the field's path from the section on and rejects the ECDS update (in a mesh: a NACK,
    # and a running gateway keeps its previous config). With no previous config nothing passes.
    module = json.loads(json.dumps(plugins["istio-system.wasmgate-gateway"]))
    module["spec"]["pluginConfig"]["pre_auth"]["rules"][0]["key"] = [{"source": "identity"}]
    with Gateway([module], tmp_path, upstream.port, jwks_clusters(idp)) as gw:
        assert request(gw.port, "GET", "/healthz").status == 500
        assert upstream.hits == 0
        expected = "wasmgate gateway: invalid plugin configuration: pre_auth.rules[0].key[0]"
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and expected not in gw.envoy.log_text():
            time.sleep(0.2)
        assert expected in gw.envoy.log_text()
        assert "update rejected" in gw.envoy.log_text()
