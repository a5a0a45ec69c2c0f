"""The manifests under istio/ against Istio's real WasmPlugin CRD (strict field validation), and
the validator itself against Istio's own valid and invalid test cases."""

import copy
import shutil
import subprocess

import pytest
import yaml

import istiod
from conftest import EGRESS, FILTERS, FIXTURES, ISTIO, load_documents, manifest_files, plugin_id, wasm_plugins

UPSTREAM_VALID = load_documents(FIXTURES / "upstream-testdata-wasm-valid.yaml")
UPSTREAM_INVALID = load_documents(FIXTURES / "upstream-testdata-wasm-invalid.yaml")
PLUGINS = wasm_plugins()
# The two ways to run the chain on the ingress gateway, three plugins (istio/) or one module
# (istio/gateway/), and the per-workload example (istio/workload/).
CHAIN = {doc["spec"]["pluginName"]: doc for path, doc in PLUGINS if path.parent == ISTIO}
MODULE = [doc for path, doc in PLUGINS if path.parent == ISTIO / "gateway"]
WORKLOAD = [doc for path, doc in PLUGINS if path.parent == ISTIO / "workload"]
SECTIONS = ("tracing", "pre_auth", "authn", "ratelimit")


def test_each_setup_has_its_plugins_and_no_plugin_lives_elsewhere():
    assert sorted(CHAIN) == ["authn", "ratelimit", "ratelimit-pre-auth", "tracing"]
    assert [doc["spec"]["pluginName"] for doc in MODULE] == ["gateway"]
    assert WORKLOAD, "a WasmPlugin example for a workload sidecar"
    assert len(PLUGINS) == len(CHAIN) + len(MODULE) + len(WORKLOAD)
    # Switching setups is: apply one, then delete the other's plugins. A shared name would make
    # applying one rewrite a plugin of the other.
    assert not {istiod.resource_name(d) for d in MODULE} & {istiod.resource_name(d) for d in CHAIN.values()}


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


def kustomizations() -> list:
    return sorted(ISTIO.rglob("kustomization.yaml"))


def resolved(folder) -> list:
    """The manifest files `kubectl apply -k folder` applies, in order, following folder entries."""
    out = []
    for entry in yaml.safe_load((folder / "kustomization.yaml").read_text())["resources"]:
        path = (folder / entry).resolve()
        out += resolved(path) if path.is_dir() else [path]
    return out


def test_kustomizations_list_exactly_the_manifests_beside_them():
    # Kustomize loads no file from outside a kustomization's folder (its load restrictor): a
    # shared manifest is reached through another kustomization's folder, never by a file path.
    for kustomization in kustomizations():
        folder = kustomization.parent
        listed = yaml.safe_load(kustomization.read_text())["resources"]
        files = [entry for entry in listed if entry.endswith(".yaml")]
        beside = sorted(p.name for p in folder.glob("*.yaml") if p.name != "kustomization.yaml")
        assert sorted(files) == beside, kustomization
        for entry in set(listed) - set(files):
            assert (folder / entry / "kustomization.yaml").is_file(), (kustomization, entry)
    assert {p.parent for p in manifest_files()} <= {k.parent for k in kustomizations()}


def test_both_gateway_setups_bring_the_jwks_egress():
    chain = ["tracing.yaml", "ratelimit-pre-auth.yaml", "authn.yaml", "ratelimit.yaml"]
    assert resolved(ISTIO) == [ISTIO / name for name in chain] + [EGRESS]
    assert resolved(ISTIO / "gateway") == [ISTIO / "gateway" / "gateway.yaml", EGRESS]
    assert resolved(ISTIO / "workload") == [ISTIO / "workload" / "ratelimit-orders.yaml"]


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl not installed; the tests above check the same rules")
@pytest.mark.parametrize("kustomization", kustomizations(), ids=lambda k: str(k.parent.relative_to(ISTIO.parent)))
def test_kubectl_kustomize_builds_what_the_folder_lists(kustomization):
    built = subprocess.run(["kubectl", "kustomize", str(kustomization.parent)], capture_output=True, text=True)
    assert built.returncode == 0, built.stderr
    objects = lambda docs: sorted((d["kind"], d["metadata"]["name"]) for d in docs if d)  # noqa: E731
    expected = [doc for path in resolved(kustomization.parent) for doc in load_documents(path)]
    assert objects(yaml.safe_load_all(built.stdout)) == objects(expected)


def test_request_path_runs_tracing_then_the_pre_auth_limit_then_authn_then_ratelimit():
    order = [doc["spec"]["pluginName"] for doc in istiod.chain_order(list(CHAIN.values()))]
    assert order == ["tracing", "ratelimit-pre-auth", "authn", "ratelimit"]


def test_auth_fails_closed_and_the_others_fail_open():
    strategies = {name: doc["spec"]["failStrategy"] for name, doc in CHAIN.items()}
    assert strategies == {"tracing": "FAIL_OPEN", "ratelimit-pre-auth": "FAIL_OPEN",
                          "authn": "FAIL_CLOSE", "ratelimit": "FAIL_OPEN"}
    # The module holds authn: it fails closed as a whole, tracing and limits with it.
    assert [doc["spec"]["failStrategy"] for doc in MODULE] == ["FAIL_CLOSE"]


def test_gateway_module_runs_first_in_the_authn_phase_of_the_same_proxies():
    spec = MODULE[0]["spec"]
    assert spec["phase"] == "AUTHN"
    assert spec["priority"] >= max(d["spec"]["priority"] for d in CHAIN.values() if d["spec"]["phase"] == "AUTHN")
    assert spec["selector"] == CHAIN["authn"]["spec"]["selector"]


def test_gateway_module_sections_are_the_three_plugins_configurations():
    config = MODULE[0]["spec"]["pluginConfig"]
    assert list(config) == list(SECTIONS), "every section, in the order the stages run"
    assert config["tracing"] == CHAIN["tracing"]["spec"]["pluginConfig"]
    assert config["pre_auth"] == CHAIN["ratelimit-pre-auth"]["spec"]["pluginConfig"]
    assert config["authn"] == CHAIN["authn"]["spec"]["pluginConfig"]
    # istio/ratelimit.yaml's limit, keyed on the verified identity (the token's `sub`) instead of
    # the header authn copies `sub` into; everything else the same.
    assert {"claim": "sub", "header": "x-wasmgate-subject"} in config["authn"]["providers"][0]["claim_headers"]
    assert [rule["key"] for rule in CHAIN["ratelimit"]["spec"]["pluginConfig"]["rules"]] == \
        [[{"source": "header", "name": "x-wasmgate-subject"}]]
    assert [rule["key"] for rule in config["ratelimit"]["rules"]] == [[{"source": "identity"}]]
    unkeyed = lambda c: [{k: v for k, v in r.items() if k not in ("name", "key")} for r in c["rules"]]  # noqa: E731
    assert unkeyed(config["ratelimit"]) == unkeyed(CHAIN["ratelimit"]["spec"]["pluginConfig"])
    assert {k: v for k, v in config["ratelimit"].items() if k != "rules"} == \
        {k: v for k, v in CHAIN["ratelimit"]["spec"]["pluginConfig"].items() if k != "rules"}
    # Metrics of both limit sections share the ratelimit names: rule names tell them apart.
    names = [r["name"] for section in ("pre_auth", "ratelimit") for r in config[section]["rules"]]
    assert len(names) == len(set(names))


def managed_headers(authn: dict) -> set:
    """The headers authn sets and strips (a client's own copy never passes it)."""
    managed = {h["header"] for p in authn.get("providers", []) for h in p.get("claim_headers", [])}
    managed |= {p["payload_header"] for p in authn.get("providers", []) if p.get("payload_header")}
    if authn.get("api_keys"):
        managed.add(authn["api_keys"].get("identity_header", "x-consumer"))
    return managed


def key_sources(rules: list) -> set:
    return {part["source"] for rule in rules for part in rule.get("key", [])}


def test_pre_auth_limits_are_per_client_and_later_limits_key_on_what_authn_verified():
    # Before authn only the client address is trustworthy. After it, a header key must be one
    # authn sets and strips, or (in the module only) the identity authn verified.
    for pre_auth in (CHAIN["ratelimit-pre-auth"]["spec"]["pluginConfig"], MODULE[0]["spec"]["pluginConfig"]["pre_auth"]):
        assert [rule["key"] for rule in pre_auth["rules"]] == [[{"source": "client"}]]
    managed = managed_headers(CHAIN["authn"]["spec"]["pluginConfig"])
    standalone = [doc for _, doc in PLUGINS if doc["spec"]["pluginName"] == "ratelimit"]
    assert standalone
    for doc in standalone:
        rules = doc["spec"]["pluginConfig"]["rules"]
        # Standalone ratelimit.wasm refuses identity keys: it has no verified identity.
        assert key_sources(rules) <= {"client", "header", "path"}, doc["metadata"]
        for rule in rules:
            headers = {part["name"] for part in rule.get("key", []) if part["source"] == "header"}
            assert headers <= managed, (doc["metadata"], rule["name"])
    config = MODULE[0]["spec"]["pluginConfig"]
    assert "authn" in config, "identity keys need the authn section"
    headers = {p["name"] for r in config["ratelimit"]["rules"] for p in r.get("key", []) if p["source"] == "header"}
    assert headers <= managed_headers(config["authn"])


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


def test_jwks_service_entry_yields_the_cluster_authn_calls_in_both_setups():
    docs = load_documents(EGRESS)
    entry = next(d for d in docs if d["kind"] == "ServiceEntry")
    rule = next(d for d in docs if d["kind"] == "DestinationRule")
    clusters = istiod.outbound_cluster_name(entry)
    assert clusters == ["outbound|443||idp.example.com"]
    assert rule["spec"]["host"] == entry["spec"]["hosts"][0]
    for authn in (CHAIN["authn"]["spec"]["pluginConfig"], MODULE[0]["spec"]["pluginConfig"]["authn"]):
        assert [p["remote_jwks"]["cluster"] for p in authn["providers"]] == clusters


def test_collector_snippet_in_the_docs_yields_the_cluster_its_plugin_exports_to(validator):
    # docs/istio.md "Exporting spans to a collector": the ServiceEntry and the WasmPlugin that
    # names its cluster, in one yaml block.
    from conftest import ROOT

    text = (ROOT / "docs" / "istio.md").read_text()
    section = text.split("## Exporting spans to a collector", 1)[1]
    block = section.split("```yaml", 1)[1].split("```", 1)[0]
    docs = [d for d in yaml.safe_load_all(block) if d]
    entry = next(d for d in docs if d["kind"] == "ServiceEntry")
    plugin = next(d for d in docs if d["kind"] == "WasmPlugin")
    assert validator.errors(plugin) == []
    export = plugin["spec"]["pluginConfig"]["tracing"]["export"]
    assert istiod.outbound_cluster_name(entry) == [export["cluster"]]


def module_schema(module: str):
    """The JSON Schema `wasmgate schema MODULE` writes to docs/schemas/ (from the Rust types)."""
    import json

    import jsonschema
    from conftest import ROOT

    schema = json.loads((ROOT / "docs" / "schemas" / f"{module}.schema.json").read_text())
    return jsonschema.Draft202012Validator(schema)


@pytest.mark.parametrize("item", PLUGINS, ids=plugin_id)
def test_plugin_config_follows_its_modules_json_schema(item):
    spec = item[1]["spec"]
    image = spec["url"].rsplit("/", 1)[1].split(":")[0]
    errors = [f"{'/'.join(map(str, e.absolute_path))}: {e.message}"
              for e in module_schema(image).iter_errors(spec.get("pluginConfig", {}))]
    assert errors == []


@pytest.mark.parametrize("module", FILTERS)
def test_the_schema_refuses_what_the_module_refuses(module):
    validator = module_schema(module)
    assert validator.is_valid({"$schema": f"../docs/schemas/{module}.schema.json"})
    for broken in ({"unknown_field": 1}, {"$schema": 7}):
        assert not validator.is_valid(broken), broken
