"""dashboards/ against real processes. Envoy runs envoy-config/gateway.yaml's listener with
dist/gateway.wasm configured to move every metric: a remote JWKS served by an identity provider
over TLS, a second one whose server is down, API keys, local rules with a tiny slot budget and a
shadow rule, and ratelimit-global.yaml's global rule against the RLS test server (whose Redis
is stopped half-way: an outage). Prometheus scrapes Envoy's admin /stats/prometheus every
second and evaluates dashboards/alerts.yaml. Then every query of wasmgate.json goes through
Prometheus's HTTP API and must answer with data, and promtool checks and unit-tests the alerts."""

import copy
import hashlib
import json
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

# The Istio tests' process and server helpers (Envoy, the echo upstream, the TLS identity provider).
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "istio"))

from processes import ROOT, Envoy, free_port  # noqa: E402
from servers import EchoUpstream, IdentityProvider, request  # noqa: E402
from services import Prometheus, PrometheusError, RateLimitService  # noqa: E402

DASHBOARDS = ROOT / "dashboards"
DASHBOARD = json.loads((DASHBOARDS / "wasmgate.json").read_text())
ALERTS = DASHBOARDS / "alerts.yaml"
ENVOY_CONFIG = ROOT / "envoy-config"

IDP_HOST = "idp.example.com"
ISSUER = f"https://{IDP_HOST}"
DOWN_ISSUER = "https://down.example.com"
API_KEY = "wasmgate-dashboard-test-key"
CLIENT = [{"source": "client"}]

# What Grafana puts in place of its interval variables. $__rate_interval is at least four scrape
# intervals; with the test's 1 s scrapes, a 10 s window holds enough samples for rate().
GRAFANA_INTERVALS = {"__rate_interval": "10s", "__interval": "2s", "__range": "1m"}


def envoy_yaml(name: str) -> dict:
    return yaml.safe_load((ENVOY_CONFIG / name).read_text())


def wasm_config(bootstrap: dict) -> dict:
    """The `config` of the bootstrap's (first) Wasm filter."""
    listener = bootstrap["static_resources"]["listeners"][0]
    manager = listener["filter_chains"][0]["filters"][0]["typed_config"]
    return next(f["typed_config"]["config"] for f in manager["http_filters"] if "config" in f["typed_config"])


def cluster(bootstrap: dict, name: str, new_name: str, port: int) -> dict:
    """A copy of the bootstrap's cluster `name`, renamed and pointed at 127.0.0.1:`port`."""
    found = copy.deepcopy(next(c for c in bootstrap["static_resources"]["clusters"] if c["name"] == name))
    found["name"] = found["load_assignment"]["cluster_name"] = new_name
    for group in found["load_assignment"]["endpoints"]:
        for endpoint in group["lb_endpoints"]:
            endpoint["endpoint"]["address"]["socket_address"]["port_value"] = port
    return found


def gateway_config(global_example: dict) -> dict:
    """A gateway module configuration under which the traffic of `drive` moves every metric."""
    global_rule = next(r for r in global_example["rules"] if r.get("mode") == "global")
    return {
        # Spans go to the echo upstream, which accepts every export with 200.
        "tracing": {"inject": ["w3c"], "sampling_ratio": 0.5,
                    "export": {"cluster": "otel_collector", "batch_interval_ms": 100}},
        "pre_auth": {"rules": [{"name": "pre-auth-per-client", "key": CLIENT,
                                "capacity": 1000, "refill": 1000, "period_ms": 1000}]},
        "authn": {
            "providers": [
                {"name": "idp", "issuer": ISSUER, "audiences": ["api"],
                 "remote_jwks": {"cluster": "jwks", "authority": IDP_HOST}},
                # Its JWKS server is down: fetches fail, and requests for it wait 100 ms for keys.
                {"name": "idp-down", "issuer": DOWN_ISSUER, "audiences": ["api"],
                 "remote_jwks": {"cluster": "jwks_down", "retry_initial_ms": 200, "retry_max_ms": 400,
                                 "wait_for_keys_ms": 100}},
            ],
            "api_keys": {"consumers": [{"name": "ci", "key_sha256": hashlib.sha256(API_KEY.encode()).hexdigest()}]},
            "rules": [
                {"name": "public", "match": {"prefix": "/public"}, "public": True},
                {"name": "admin", "match": {"prefix": "/admin"}, "any_of": ["idp"], "roles": ["admin"]},
                {"name": "down", "match": {"prefix": "/down"}, "any_of": ["idp-down"]},
            ],
            "default": {"any_of": ["idp", "api_key"]},
        },
        "ratelimit": {
            "global": global_example["global"],
            "rules": [
                {**global_rule, "match": {"prefix": "/global"}},
                {"name": "per-client", "match": {"prefix": "/api"}, "key": CLIENT,
                 "capacity": 5, "refill": 5, "period_ms": 10000},
                # Two slots for a dozen clients: slots are shared (collisions), never empty.
                {"name": "few-slots", "match": {"prefix": "/api"}, "key": CLIENT, "budget": 2,
                 "capacity": 1000, "period_ms": 1000},
                {"name": "shadow", "match": {"prefix": "/global"}, "key": CLIENT, "shadow": True,
                 "capacity": 2, "period_ms": 60000},
            ],
        },
    }


def gateway_bootstrap(workdir: Path, upstream: int, idp: IdentityProvider, rls: int) -> tuple[Path, int, int]:
    """envoy-config/gateway.yaml on free ports with the test's configuration and clusters (the
    JWKS cluster of authn.yaml with TLS to the test IdP, ratelimit-global.yaml's service
    cluster); returns the bootstrap file, the listener port and the admin port."""
    bootstrap = envoy_yaml("gateway.yaml")
    global_bootstrap = envoy_yaml("ratelimit-global.yaml")
    global_example = json.loads(wasm_config(global_bootstrap)["configuration"]["value"])
    port, admin_port = free_port(), free_port()
    bootstrap["admin"]["address"]["socket_address"]["port_value"] = admin_port
    bootstrap["static_resources"]["listeners"][0]["address"]["socket_address"]["port_value"] = port
    config = wasm_config(bootstrap)
    config["vm_config"]["code"]["local"]["filename"] = str(ROOT / "dist" / "gateway.wasm")
    config["configuration"]["value"] = json.dumps(gateway_config(global_example))

    jwks = cluster(envoy_yaml("authn.yaml"), "jwks", "jwks", idp.port)
    jwks["transport_socket"] = {"name": "envoy.transport_sockets.tls", "typed_config": {
        "@type": "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext",
        "sni": IDP_HOST,
        "common_tls_context": {"validation_context": {"trusted_ca": {"filename": str(idp.ca_file)}}},
    }}
    bootstrap["static_resources"]["clusters"] = [
        cluster(bootstrap, "upstream", "upstream", upstream),
        cluster(bootstrap, "otel_collector", "otel_collector", upstream),
        jwks,
        cluster(envoy_yaml("authn.yaml"), "jwks", "jwks_down", free_port()),  # nothing listens there
        cluster(global_bootstrap, global_example["global"]["cluster"], global_example["global"]["cluster"], rls),
    ]
    path = workdir / "envoy.yaml"
    path.write_text(yaml.safe_dump(bootstrap))
    return path, port, admin_port


def drive(port: int, idp: IdentityProvider, rls: RateLimitService) -> None:
    """Traffic that moves every metric the configuration defines, each step checked by its status."""
    claims = {"iss": ISSUER, "aud": "api", "sub": "alice"}
    token = idp.token(claims)
    signed, signature = token.rsplit(".", 1)
    tampered = f"{signed}.{signature[:9]}{'B' if signature[9] == 'A' else 'A'}{signature[10:]}"
    key = {"x-api-key": API_KEY}
    steps = [
        ("public, a new trace", "/public/a", {}, 200),
        ("public, the caller's W3C trace", "/public/a",
         {"traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"}, 200),
        ("public, a malformed traceparent", "/public/a", {"traceparent": "00-xyz"}, 200),
        ("a token, verified with the remote keys (cache miss)", "/items", {"authorization": f"Bearer {token}"}, 200),
        ("the same token again (cache hit)", "/items", {"authorization": f"Bearer {token}"}, 200),
        ("an API key", "/items", key, 200),
        ("a wrong API key", "/items", {"x-api-key": "wrong"}, 401),
        ("no credential", "/items", {}, 401),
        ("a malformed token", "/items", {"authorization": "Bearer not-a-jwt"}, 401),
        ("a bad signature", "/items", {"authorization": f"Bearer {tampered}"}, 401),
        ("an expired token", "/items", {"authorization": f"Bearer {idp.token(claims, lifetime=-3600)}"}, 401),
        ("a wrong audience", "/items", {"authorization": f"Bearer {idp.token({**claims, 'aud': 'other'})}"}, 401),
        ("admin without the role", "/admin", {"authorization": f"Bearer {token}"}, 403),
        ("admin with the role", "/admin",
         {"authorization": f"Bearer {idp.token({**claims, 'roles': ['admin']})}"}, 200),
        ("a provider whose keys never arrived", "/down",
         {"authorization": f"Bearer {idp.token({**claims, 'iss': DOWN_ISSUER})}"}, 503),
        # In the gateway, pre_auth refuses it before authn: ratelimit's path_refused counts it.
        ("a path with no canonical form", "/items;x=1", key, 400),
    ]
    for what, path, headers, status in steps:
        response = request(port, "GET", path, headers)
        assert response.status == status, f"{what}: GET {path} answered {response.status}: {response.body!r}"

    # A dozen clients share few-slots' two slots; then one client runs out of per-client's 5.
    for i in range(12):
        source = f"127.0.0.{20 + i}"
        response = request(port, "GET", "/api/a", key, source=source)
        assert response.status == 200, f"/api/a from {source}: {response.status} {response.body!r}"
    statuses = [request(port, "GET", "/api/a", key, source="127.0.0.50").status for _ in range(8)]
    assert statuses[:5] == [200] * 5 and 429 in statuses, f"per-client's capacity of 5: {statuses}"

    # The rate-limit service's limit (20 per minute per client): answers OK, then OVER_LIMIT;
    # the shadow rule would have refused all but the first two.
    statuses = [request(port, "GET", "/global/a", key, source="127.0.0.60").status for _ in range(22)]
    assert statuses == [200] * 20 + [429] * 2, f"the service's 20 per minute: {statuses}"
    # Redis down: the service fails, on_failure "local" lets this Envoy's bucket decide.
    rls.stop_redis()
    statuses = [request(port, "GET", "/global/a", key, source="127.0.0.61").status for _ in range(3)]
    assert statuses == [200] * 3, f"the local fallback during the outage: {statuses}"


# What the traffic of `drive` must have counted (> 0 in Prometheus). A tuple: any one of them
# (a call to the stopped Redis fails as a timeout or as an error status, depending on timing).
EXERCISED = [
    "wasmgate_tracing_traces_started", "wasmgate_tracing_traces_continued",
    "wasmgate_tracing_traces_sampled", "wasmgate_tracing_incoming_invalid",
    "wasmgate_authn_allowed", "wasmgate_authn_cache_hits", "wasmgate_authn_cache_misses",
    "wasmgate_authn_api_key_allowed", "wasmgate_authn_api_key_denied",
    *(f"wasmgate_authn_denied_{reason}" for reason in (
        "missing_credential", "malformed", "bad_signature", "expired", "wrong_audience", "bad_api_key",
        "forbidden", "keys_unavailable")),
    "wasmgate_authn_provider_idp_allowed", "wasmgate_authn_provider_idp_denied",
    "wasmgate_authn_provider_idp_jwks_fetch_success", "wasmgate_authn_provider_idp_keys_loaded",
    "wasmgate_authn_provider_idp_down_denied", "wasmgate_authn_provider_idp_down_jwks_fetch_failure",
    "wasmgate_authn_rule_public_allowed", "wasmgate_authn_rule_admin_allowed", "wasmgate_authn_rule_admin_denied",
    "wasmgate_authn_rule_down_denied", "wasmgate_authn_rule_default_allowed", "wasmgate_authn_rule_default_denied",
    "wasmgate_ratelimit_path_refused",
    "wasmgate_ratelimit_rule_pre_auth_per_client_allowed", "wasmgate_ratelimit_rule_pre_auth_per_client_keys_in_use",
    "wasmgate_ratelimit_rule_per_client_allowed", "wasmgate_ratelimit_rule_per_client_limited",
    "wasmgate_ratelimit_rule_per_client_keys_in_use",
    "wasmgate_ratelimit_rule_few_slots_allowed", "wasmgate_ratelimit_rule_few_slots_slot_collisions",
    "wasmgate_ratelimit_rule_shadow_shadow_limited",
    "wasmgate_ratelimit_rule_per_client_global_allowed", "wasmgate_ratelimit_rule_per_client_global_limited",
    "wasmgate_ratelimit_global_ok", "wasmgate_ratelimit_global_over_limit",
    ("wasmgate_ratelimit_global_timeout", "wasmgate_ratelimit_global_error"),
    "wasmgate_ratelimit_global_failure_local",
]


@dataclass
class Stack:
    envoy: Envoy
    prometheus: Prometheus
    counted: set[str]  # the wasmgate metrics above 0 in Prometheus after the traffic


def counted_in_prometheus(prometheus: Prometheus) -> set[str]:
    """Names of the wasmgate samples above 0 in Prometheus's latest scrape."""
    return {s["metric"]["__name__"] for s in prometheus.query('{__name__=~"wasmgate_.+"} > 0')}


def missing(counted: set[str]) -> list:
    return [m for m in EXERCISED if not (set(m) if isinstance(m, tuple) else {m}) & counted]


def samples_in_prometheus(prometheus: Prometheus, name: str) -> int:
    found = prometheus.query(f"count_over_time({name}[{GRAFANA_INTERVALS['__rate_interval']}])")
    return int(float(found[0]["value"][1])) if found else 0


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("dashboard")
    limits = (ENVOY_CONFIG / "rls" / "limitador-limits.yaml").read_text()
    with EchoUpstream() as upstream, IdentityProvider(IDP_HOST, workdir) as idp, \
            RateLimitService(limits, workdir) as rls:
        bootstrap, port, admin_port = gateway_bootstrap(workdir, upstream.port, idp, rls.port)
        with Envoy(bootstrap, admin_port, workdir) as envoy, \
                Prometheus([f"127.0.0.1:{admin_port}"], "/stats/prometheus", [ALERTS]) as prometheus:
            # Traffic after Prometheus's first scrape (~5 s after its start), so that rates and
            # alerts see the counters rise from their values before it.
            deadline = time.monotonic() + 20
            while not samples_in_prometheus(prometheus, "wasmgate_authn_allowed"):
                if time.monotonic() > deadline:
                    raise RuntimeError(f"Prometheus has not scraped Envoy in 20 s: "
                                       f"{prometheus.api('targets')['activeTargets']}\n{prometheus.log_text()}")
                time.sleep(0.2)
            drive(port, idp, rls)
            # Counters reach Envoy on the module's 1 s tick, Prometheus on its next scrape; a
            # rate needs two samples in its window. Whatever is still missing then,
            # test_the_traffic_counted_what_it_aims_at names.
            deadline = time.monotonic() + 20
            counted = counted_in_prometheus(prometheus)
            while time.monotonic() < deadline and (
                    missing(counted) or samples_in_prometheus(prometheus, "wasmgate_authn_allowed") < 3):
                time.sleep(0.5)
                counted = counted_in_prometheus(prometheus)
            yield Stack(envoy, prometheus, counted)


# ------------------------------------------------------------------ the dashboard's queries

VARIABLE = re.compile(r"\$\{(\w+)(?::\w+)?\}|\$(\w+)|\[\[(\w+)\]\]")


def variables() -> dict[str, dict]:
    return {v["name"]: v for v in DASHBOARD["templating"]["list"]}


def query_variables() -> dict[str, dict]:
    return {name: v for name, v in variables().items() if v["type"] == "query"}


def panels() -> list[tuple[dict, str | None]]:
    """Every panel with targets, with the variable it is repeated over (its own `repeat`, or its
    row's: a row's panels follow it, or sit in its `panels` when it is collapsed)."""
    out, row_repeat = [], None
    for panel in DASHBOARD["panels"]:
        if panel["type"] == "row":
            row_repeat = panel.get("repeat")
            out += [(p, p.get("repeat") or row_repeat) for p in panel.get("panels", [])]
        else:
            out.append((panel, panel.get("repeat") or row_repeat))
    return [(p, repeat) for p, repeat in out if p.get("targets")]


def variable_name(match: re.Match) -> str:
    return next(g for g in match.groups() if g)


def referenced(expr: str) -> set[str]:
    """The dashboard variables `expr` uses (Grafana's own interval variables aside)."""
    return {variable_name(m) for m in VARIABLE.finditer(expr)} - set(GRAFANA_INTERVALS)


def substitute(expr: str, values: dict[str, str]) -> str:
    return VARIABLE.sub(lambda m: values.get(variable_name(m), m.group(0)), expr)


def variable_values(prometheus: Prometheus, variable: dict) -> list[str]:
    """What Grafana offers for a `metrics(<regex>)` query variable: the metric names matching the
    regex (unanchored, as Grafana's RegExp test), through the variable's capturing `regex`."""
    metric_regex = re.fullmatch(r"metrics\((.+)\)", variable["query"]["query"]).group(1)
    capture = re.compile(variable["regex"].strip("/"))
    names = [n for n in prometheus.api("label/__name__/values") if re.search(metric_regex, n)]
    return sorted({capture.search(n).group(1) for n in names if capture.search(n)})


def expanded(prometheus: Prometheus, expr: str, repeat: str | None) -> list[str]:
    """The PromQL Grafana sends for `expr`: intervals filled in, and once per value of the
    panel's repeat variable."""
    expr = substitute(expr, GRAFANA_INTERVALS)
    if not referenced(expr):
        return [expr]
    assert referenced(expr) == {repeat}, f"{expr} uses {referenced(expr)} outside a repeat over it"
    values = variable_values(prometheus, query_variables()[repeat])
    assert values, f"variable {repeat} has no value: {query_variables()[repeat]['definition']} found no metric"
    return [substitute(expr, {repeat: value}) for value in values]


def panel_id(item) -> str:
    return item[0]["title"]


@pytest.mark.parametrize("item", panels(), ids=panel_id)
def test_every_query_of_the_panel_answers_with_data(stack, item):
    panel, repeat = item
    failures = []
    for target in panel["targets"]:
        for expr in expanded(stack.prometheus, target["expr"], repeat):
            try:
                if not stack.prometheus.query(expr):
                    failures.append(f"empty result: {expr}")
            except PrometheusError as e:
                failures.append(f"{e}: {expr}")
    assert not failures, f"panel {panel['title']!r} (id {panel['id']}):\n" + "\n".join(failures)


def test_the_traffic_counted_what_it_aims_at(stack):
    not_counted = missing(stack.counted)
    envoy = {line.split("{")[0]: line.rsplit(" ", 1)[1]
             for line in stack.envoy.admin("/stats/prometheus").splitlines() if line.startswith("wasmgate_")}
    assert not not_counted, "0 in Prometheus after the traffic (Envoy's /stats/prometheus now says: " + \
        ", ".join(f"{m}={envoy.get(m, 'absent') if isinstance(m, str) else [envoy.get(n) for n in m]}"
                  for m in not_counted) + ")"


def test_every_wasmgate_metric_envoy_exports_is_on_a_panel(stack):
    exported = {n for n in stack.prometheus.api("label/__name__/values") if n.startswith("wasmgate_")}
    assert exported, "Prometheus has no wasmgate_* metric: did it scrape Envoy?"
    shown = set()
    for panel, repeat in panels():
        for target in panel["targets"]:
            for expr in expanded(stack.prometheus, target["expr"], repeat):
                shown |= set(re.findall(r"\bwasmgate_\w+", expr))
    unshown = sorted(exported - shown)
    assert not unshown, f"metrics no panel shows: {unshown}"


def test_the_variables_list_every_configured_rule_and_provider(stack):
    wanted = {
        "authn_rule": ["admin", "default", "down", "public"],
        "provider": ["idp", "idp_down"],
        "rule": ["few_slots", "per_client", "per_client_global", "pre_auth_per_client", "shadow"],
    }
    found = {name: variable_values(stack.prometheus, v) for name, v in query_variables().items()}
    assert found == wanted


def test_panels_query_the_datasource_variable_and_only_their_repeat_variable():
    assert 36 <= DASHBOARD["schemaVersion"] <= 41
    datasource = variables()["datasource"]
    assert (datasource["type"], datasource["query"]) == ("datasource", "prometheus")
    every_id = [p["id"] for p in DASHBOARD["panels"]] + [p["id"] for row in DASHBOARD["panels"] for p in row.get("panels", [])]
    assert len(set(every_id)) == len(every_id), f"panel ids repeat: {sorted(every_id)}"
    for panel, repeat in panels():
        assert panel["datasource"]["uid"] == "${datasource}", panel["title"]
        for target in panel["targets"]:
            assert target["datasource"]["uid"] == "${datasource}", panel["title"]
            uses = referenced(target["expr"])
            # Outside a repeat over it, a multi-value variable becomes an alternation `(a|b)`,
            # which PromQL does not take inside a metric name.
            assert not uses or uses == {repeat}, f"{panel['title']}: {uses} outside a repeat over it"
        if repeat:
            assert f"${repeat}" in panel["title"], f"{panel['title']}: a repeated panel names its {repeat}"
    for variable in query_variables().values():
        # Grafana runs `query`; its variable editor shows `metric` (Metrics type, qryType 2).
        query = variable["query"]
        assert (query["qryType"], query["query"], variable["definition"]) == (
            2, f"metrics({query['metric']})", query["query"]), variable["name"]


# ------------------------------------------------------------------ the alert rules

def promtool(*args: str) -> subprocess.CompletedProcess:
    binary = shutil.which("promtool")
    assert binary, "promtool not found: `make tools` installs Debian's prometheus"
    return subprocess.run([binary, *args], cwd=DASHBOARDS, capture_output=True, text=True, timeout=60)


def test_promtool_accepts_the_alert_rules():
    result = promtool("check", "rules", ALERTS.name)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_alert_rules_pass_their_unit_tests():
    result = promtool("test", "rules", "alerts_test.yaml")
    assert result.returncode == 0, result.stdout + result.stderr


def test_prometheus_evaluates_every_alert_on_the_real_metrics(stack):
    """Every rule evaluates without error on Envoy's real series (promtool's unit tests use
    series written by hand), and the two outages the traffic caused make their alerts pending."""
    deadline = time.monotonic() + 10
    while True:
        rules = [r for g in stack.prometheus.api("rules", type="alert")["groups"] for r in g["rules"]]
        active = {r["name"] for r in rules if r["state"] in ("pending", "firing")}
        errors = {r["name"]: r.get("lastError") for r in rules if r["health"] != "ok"}
        done = {"WasmgateKeysUnavailable", "WasmgateRateLimitServiceFailing"} <= active
        if done or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    names = {r["name"] for r in rules}
    assert names == {a["alert"] for g in yaml.safe_load(ALERTS.read_text())["groups"] for a in g["rules"]}
    assert not errors, f"rules failing in Prometheus: {errors}"
    assert {"WasmgateKeysUnavailable", "WasmgateRateLimitServiceFailing"} <= active, \
        f"active alerts: {active or 'none'}"
    # Names the alerts refer to literally must be real ones (their unit tests would not notice).
    exported = set(stack.prometheus.api("label/__name__/values"))
    literal = {n for n in re.findall(r"\bwasmgate_\w+", ALERTS.read_text()) if not n.endswith("_")}
    assert literal <= exported, f"alerts name metrics Envoy does not export: {sorted(literal - exported)}"
