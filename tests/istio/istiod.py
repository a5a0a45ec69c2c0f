"""What istiod sends Envoy for a `WasmPlugin`, reproduced from Istio's source (pilot/pkg/model
extensions.go `convertToWasmPluginWrapper`/`buildDataSource`/`buildVMConfig`, networking/core/
extension/wasmplugin.go `toEnvoyHTTPFilter`, Istio >= 1.25 for `failure_policy`):

- The HCM gets one HTTP filter per plugin, named `<namespace>.<name>`, whose config comes by
  ECDS (`config_discovery`, type urls Wasm and RBAC, initial fetch timeout 0 so the proxy does not
  serve before the plugin is loaded). Here the ECDS source is a file instead of istiod's ADS
  stream; the resource is the same `TypedExtensionConfig`.
- `config.name` is `<namespace>.<name>`, `root_id` is `pluginName`, `configuration` is a
  `google.protobuf.StringValue` holding `pluginConfig` as JSON (protojson of a Struct: numbers
  are doubles, keys sorted), absent when `pluginConfig` is empty.
- `vm_config`: runtime `envoy.wasm.runtime.v8`, no `vm_id` (one VM per plugin config), code
  `remote` for `oci://`/`http(s)://` (uri, 30s timeout, cluster "_" — istio-agent fetches it, not
  Envoy — and `sha256`), `local.filename` for `file://`; environment: the pull policy and the
  resource version for the agent, `vmConfig.env` INLINE values and HOST keys.
- `failStrategy` FAIL_OPEN/FAIL_CLOSE/FAIL_RELOAD -> `failure_policy` FAIL_OPEN/FAIL_CLOSED/
  FAIL_RELOAD.
- Order: AUTHN-phase plugins, (Istio authn), AUTHZ-phase, (Istio authz), STATS-phase, (Istio
  stats), unspecified phase, router; inside a phase higher `priority` first, then namespace/name.
"""

import json
import math
from urllib.parse import urlparse

WASM_TYPE = "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm"
RBAC_TYPE = "type.googleapis.com/envoy.extensions.filters.http.rbac.v3.RBAC"
PHASES = ["AUTHN", "AUTHZ", "STATS", "UNSPECIFIED_PHASE"]
FAILURE_POLICY = {"FAIL_OPEN": "FAIL_OPEN", "FAIL_CLOSE": "FAIL_CLOSED", "FAIL_RELOAD": "FAIL_RELOAD"}


def resource_name(plugin: dict) -> str:
    meta = plugin["metadata"]
    return f"{meta.get('namespace', 'default')}.{meta['name']}"


def _as_struct_value(value):
    """A JSON value as it comes out of a protobuf Struct: every number is a double."""
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, list):
        return [_as_struct_value(v) for v in value]
    return {k: _as_struct_value(v) for k, v in value.items()}


def _protojson(value) -> str:
    """protojson's text for a Struct value: doubles print like Go's encoding/json ("10", not "10.0")."""
    if isinstance(value, float):
        if math.isfinite(value) and value == int(value) and abs(value) < 1e21:
            return str(int(value))
        return repr(value)
    if isinstance(value, list):
        return "[" + ",".join(_protojson(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ",".join(f"{json.dumps(k)}:{_protojson(value[k])}" for k in sorted(value)) + "}"
    return json.dumps(value)


def plugin_config_json(plugin: dict) -> str | None:
    config = plugin["spec"].get("pluginConfig")
    if not config:
        return None
    return _protojson(_as_struct_value(config))


def _data_source(spec: dict) -> dict:
    url = spec["url"]
    scheme = urlparse(url).scheme if "://" in url else ""
    if scheme == "file":
        return {"local": {"filename": url.removeprefix("file://")}}
    uri = url if scheme else f"oci://{url}"
    return {
        "remote": {
            "http_uri": {"uri": uri, "timeout": "30s", "cluster": "_"},
            "sha256": spec.get("sha256", ""),
        }
    }


def wasm_filter(plugin: dict, resource_version: str = "1") -> dict:
    """The `envoy.extensions.filters.http.wasm.v3.Wasm` istiod builds for one WasmPlugin."""
    spec = plugin["spec"]
    key_values = {}
    policy = spec.get("imagePullPolicy", "UNSPECIFIED_POLICY")
    if policy != "UNSPECIFIED_POLICY":
        key_values["ISTIO_META_WASM_IMAGE_PULL_POLICY"] = policy
    key_values["ISTIO_META_WASM_PLUGIN_RESOURCE_VERSION"] = resource_version
    host_keys = []
    for env in spec.get("vmConfig", {}).get("env", []):
        if env.get("valueFrom", "INLINE") == "INLINE":
            key_values[env["name"]] = env.get("value", "")
        else:
            host_keys.append(env["name"])
    environment = {"key_values": key_values}
    if host_keys:
        environment["host_env_keys"] = host_keys
    config = {
        "name": resource_name(plugin),
        "root_id": spec.get("pluginName", ""),
        "vm_config": {
            "runtime": "envoy.wasm.runtime.v8",
            "code": _data_source(spec),
            "environment_variables": environment,
        },
    }
    configuration = plugin_config_json(plugin)
    if configuration is not None:
        config["configuration"] = {
            "@type": "type.googleapis.com/google.protobuf.StringValue",
            "value": configuration,
        }
    strategy = spec.get("failStrategy")
    if strategy in FAILURE_POLICY:
        config["failure_policy"] = FAILURE_POLICY[strategy]
    return {"@type": WASM_TYPE, "config": config}


def extension_config(plugin: dict, typed_config: dict) -> dict:
    """The ECDS resource (`envoy.config.core.v3.TypedExtensionConfig`)."""
    return {
        "@type": "type.googleapis.com/envoy.config.core.v3.TypedExtensionConfig",
        "name": resource_name(plugin),
        "typed_config": typed_config,
    }


def chain_order(plugins: list[dict]) -> list[dict]:
    def key(plugin):
        spec, meta = plugin["spec"], plugin["metadata"]
        phase = spec.get("phase", "UNSPECIFIED_PHASE")
        return (PHASES.index(phase), -int(spec.get("priority") or 0),
                meta.get("namespace", "default"), meta["name"])

    return sorted(plugins, key=key)


def http_filter(plugin: dict, ecds_path: str) -> dict:
    """The HCM filter entry: ECDS from a file here, from istiod's ADS stream in a mesh."""
    return {
        "name": resource_name(plugin),
        "config_discovery": {
            "config_source": {
                "path_config_source": {"path": ecds_path},
                "resource_api_version": "V3",
                "initial_fetch_timeout": "0s",
            },
            "type_urls": [WASM_TYPE, RBAC_TYPE],
        },
    }


def outbound_cluster_name(service_entry: dict) -> list[str]:
    """Istio's cluster names for a ServiceEntry: `outbound|<port>||<host>` per host and port."""
    spec = service_entry["spec"]
    return [f"outbound|{port['number']}||{host}" for host in spec["hosts"] for port in spec["ports"]]
