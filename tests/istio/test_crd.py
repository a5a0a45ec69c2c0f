"""The manifests under istio/ against Istio's real WasmPlugin CRD (strict field validation), and
the validator itself against Istio's own valid and invalid test cases."""

import copy

import pytest
import yaml

import istiod
from conftest import FILTERS, FIXTURES, ISTIO, load_documents, manifest_files, plugin_id, wasm_plugins

UPSTREAM_VALID = load_documents(FIXTURES / "upstream-testdata-wasm-valid.yaml")
UPSTREAM_INVALID = load_documents(FIXTURES / "upstream-testdata-wasm-invalid.yaml")
PLUGINS = wasm_plugins()
GATEWAY = {doc["spec"]["pluginName"]: doc for path, doc in PLUGINS if path.parent == ISTIO}


def test_every_filter_has_a_gateway_plugin_and_a_workload_example_exists():
    assert sorted(GATEWAY) == ["authn", "ratelimit", "ratelimit-pre-auth", "tracing"]
    workload = [doc for path, doc in PLUGINS if path.parent != ISTIO]
    assert workload, "a WasmPlugin example for a workload sidecar"


@pytest.mark.parametrize("doc", UPSTREAM_VALID, ids=lambda d: d["metadata"]["name"])
def test_validator_accepts_istios_valid_cases(validator, doc):
    assert validator.errors(doc) == []


@pytest.mark.parametrize("doc", UPSTREAM_INVALID, ids=lambda d: d["metadata"]["name"])
def test_validator_rejects_istios_invalid_cases_with_istios_message(validator, doc):
    doc = copy.deepcopy(doc)
    expected = doc.pop("_err")
    errors = validator.errors(doc)
    assert any(expected in error for error in errors), f"want {expected!r} in {errors}"


@pytest.mark.parametrize("item", PLUGINS, ids=plugin_id)
def test_manifest_validates_against_wasmplugin_crd(validator, item):
    _, doc = item
    assert validator.errors(doc) == []


BROKEN = [
    ("bad phase enum", ["spec", "phase"], "FIRST", 'spec.phase: Unsupported value: "FIRST"'),
    ("bad failStrategy enum", ["spec", "failStrategy"], "FAIL_CLOSED", "spec.failStrategy: Unsupported value"),
    ("bad pull policy enum", ["spec", "imagePullPolicy"], "Never", "spec.imagePullPolicy: Unsupported value"),
    ("unknown spec field", ["spec", "failStratgy"], "FAIL_OPEN", 'unknown field "spec.failStratgy"'),
    ("unknown nested field", ["spec", "selector", "labels"], {"app": "x"}, 'unknown field "spec.selector.labels"'),
    ("unknown metadata field", ["metadata", "label"], {"a": "b"}, 'unknown field "metadata.label"'),
    ("short sha256", ["spec", "sha256"], "abc", "spec.sha256 in body should match"),
    ("unsupported url scheme", ["spec", "url"], "ftp://registry/x:1", "url must have schema one of"),
    ("priority beyond int32", ["spec", "priority"], 2**31, "spec.priority in body should be less than or equal to"),
    ("priority as string", ["spec", "priority"], "high", "spec.priority in body must be of type integer"),
    ("selector and targetRefs", ["spec", "targetRefs"], [{"kind": "Gateway", "name": "gw"}],
     "only one of targetRefs or selector can be set"),
    ("wildcard label", ["spec", "selector", "matchLabels", "app"], "orders*", "wildcard not allowed in label value match"),
    ("port out of range", ["spec", "match"], [{"ports": [{"number": 70000}]}],
     "spec.match[0].ports[0].number in body should be less than or equal to 65535"),
    ("upper-case name", ["metadata", "name"], "Wasmgate-Authn", "metadata.name in body should match"),
]


@pytest.mark.parametrize("case", BROKEN, ids=lambda c: c[0])
@pytest.mark.parametrize("item", PLUGINS, ids=plugin_id)
def test_broken_manifest_is_rejected(validator, item, case):
    _, name_path, value, expected = case
    doc = copy.deepcopy(item[1])
    node = doc
    for key in name_path[:-1]:
        node = node.setdefault(key, {})
    node[name_path[-1]] = value
    errors = validator.errors(doc)
    assert any(expected in error for error in errors), f"want {expected!r} in {errors}"


def test_kustomizations_list_exactly_the_manifests_beside_them():
    for kustomization in ISTIO.rglob("kustomization.yaml"):
        listed = yaml.safe_load(kustomization.read_text())["resources"]
        beside = sorted(p.name for p in kustomization.parent.glob("*.yaml") if p.name != "kustomization.yaml")
        assert sorted(listed) == beside, kustomization
    assert {p.parent for p in manifest_files()} <= {k.parent for k in ISTIO.rglob("kustomization.yaml")}


def test_request_path_runs_tracing_then_the_pre_auth_limit_then_authn_then_ratelimit():
    order = [doc["spec"]["pluginName"] for doc in istiod.chain_order(list(GATEWAY.values()))]
    assert order == ["tracing", "ratelimit-pre-auth", "authn", "ratelimit"]


def test_auth_fails_closed_and_the_others_fail_open():
    strategies = {name: doc["spec"]["failStrategy"] for name, doc in GATEWAY.items()}
    assert strategies == {"tracing": "FAIL_OPEN", "ratelimit-pre-auth": "FAIL_OPEN",
                          "authn": "FAIL_CLOSE", "ratelimit": "FAIL_OPEN"}


def test_pre_auth_limit_is_per_client_and_other_limits_key_on_headers_authn_manages():
    # A header key must be one an earlier filter sets and strips: authn's claim headers and
    # consumer header. Before authn only the client address is trustworthy.
    authn = GATEWAY["authn"]["spec"]["pluginConfig"]
    managed = {h["header"] for p in authn.get("providers", []) for h in p.get("claim_headers", [])}
    managed |= {p["payload_header"] for p in authn.get("providers", []) if p.get("payload_header")}
    if authn.get("api_keys"):
        managed.add(authn["api_keys"].get("identity_header", "x-consumer"))
    pre_auth = GATEWAY["ratelimit-pre-auth"]["spec"]["pluginConfig"]["rules"]
    assert [rule["key"] for rule in pre_auth] == [[{"source": "client"}]]
    limits = [doc for _, doc in PLUGINS if doc["spec"]["pluginName"] == "ratelimit"]
    assert limits
    for doc in limits:
        for rule in doc["spec"]["pluginConfig"]["rules"]:
            headers = {part["name"] for part in rule.get("key", []) if part["source"] == "header"}
            assert headers <= managed, (doc["metadata"], rule["name"])


@pytest.mark.parametrize("item", PLUGINS, ids=plugin_id)
def test_module_is_a_pinned_oci_image(item):
    spec = item[1]["spec"]
    assert spec["url"].startswith("oci://")
    tag = spec["url"].rsplit(":", 1)[1]
    assert tag not in ("", "latest") and "/" not in tag
    assert len(spec["sha256"]) == 64
    assert spec["imagePullPolicy"] == "IfNotPresent"
    image = spec["url"].rsplit("/", 1)[1].split(":")[0]
    assert image in FILTERS
    assert spec["pluginName"] == image or spec["pluginName"].startswith(image + "-")


def test_selectors_cover_the_ingress_gateway_and_a_workload():
    selectors = [doc["spec"]["selector"]["matchLabels"] for _, doc in PLUGINS]
    assert {"istio": "ingressgateway"} in selectors
    assert any("app" in labels for labels in selectors)


def test_jwks_service_entry_yields_the_cluster_authn_calls():
    docs = load_documents(ISTIO / "jwks-egress.yaml")
    entry = next(d for d in docs if d["kind"] == "ServiceEntry")
    rule = next(d for d in docs if d["kind"] == "DestinationRule")
    clusters = istiod.outbound_cluster_name(entry)
    assert clusters == ["outbound|443||idp.example.com"]
    assert rule["spec"]["host"] == entry["spec"]["hosts"][0]
    assert clusters[0] in yaml.safe_dump(GATEWAY["authn"]["spec"]["pluginConfig"])
