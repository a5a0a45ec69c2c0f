"""Istio's delivery of WasmPlugins into a proxy, end to end on one machine:
istiod's rendering (istiod.py) -> istio-agent's pull from the OCI registry and rewrite to a local
file (agent.py) -> an Envoy whose HTTP filters are loaded by ECDS, in Istio's chain order, in front
of an echo upstream; a ServiceEntry's `outbound|<port>||<host>` cluster (TLS per its
DestinationRule) points at the local identity provider."""

import json
from pathlib import Path

import agent
import istiod
from processes import Envoy, free_port


def _cluster(name: str, port: int, tls: dict | None = None) -> dict:
    cluster = {
        "name": name,
        "type": "STATIC",
        "connect_timeout": "2s",
        "load_assignment": {
            "cluster_name": name,
            "endpoints": [{"lb_endpoints": [{"endpoint": {"address": {
                "socket_address": {"address": "127.0.0.1", "port_value": port}}}}]}],
        },
    }
    if tls is not None:
        cluster["transport_socket"] = {
            "name": "envoy.transport_sockets.tls",
            "typed_config": {
                "@type": "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext",
                **tls,
            },
        }
    return cluster


def egress_clusters(service_entry: dict, destination_rule: dict, port: int, ca_file: Path) -> list[dict]:
    """The clusters Istio generates for a MESH_EXTERNAL ServiceEntry, with the DestinationRule's
    TLS origination (SIMPLE: SNI and server certificate verification); endpoints point at `port`
    on 127.0.0.1 instead of DNS."""
    settings = {s["port"]["number"]: s["tls"]
                for s in destination_rule["spec"]["trafficPolicy"].get("portLevelSettings", [])}
    clusters = []
    for host in service_entry["spec"]["hosts"]:
        for svc_port in service_entry["spec"]["ports"]:
            tls = settings.get(svc_port["number"])
            context = None
            if tls and tls["mode"] == "SIMPLE":
                context = {
                    "sni": tls.get("sni", host),
                    "common_tls_context": {"validation_context": {
                        "trusted_ca": {"filename": str(ca_file)},
                        "match_typed_subject_alt_names": [
                            {"san_type": "DNS", "matcher": {"exact": tls.get("sni", host)}}],
                    }},
                }
            clusters.append(_cluster(f"outbound|{svc_port['number']}||{host}", port, context))
    return clusters


class Gateway:
    """An Envoy configured the way Istio configures a gateway for `plugins`."""

    def __init__(self, plugins: list[dict], workdir: Path, upstream_port: int,
                 extra_clusters: list[dict] = ()):
        self.workdir = workdir
        self.port, self.admin_port = free_port(), free_port()
        self.order = istiod.chain_order(plugins)
        self.refused: list[str] = []
        filters = []
        for plugin in self.order:
            rendered = istiod.wasm_filter(plugin)
            name = istiod.resource_name(plugin)
            try:
                resources = [istiod.extension_config(plugin, agent.convert(rendered, workdir / "wasm-cache"))]
            except agent.FetchError:
                resources = []  # the agent NACKs: Envoy never receives this filter's config
                self.refused.append(name)
            ecds = workdir / f"ecds-{name}.json"
            ecds.write_text(json.dumps({"version_info": "1", "resources": resources}, indent=1))
            filters.append(istiod.http_filter(plugin, str(ecds)))
        filters.append({"name": "envoy.filters.http.router", "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"}})
        bootstrap = {
            # The node identity an Istio ingress gateway pod has (ECDS needs one).
            "node": {"id": "router~127.0.0.1~istio-ingressgateway-0.istio-system~istio-system.svc.cluster.local",
                     "cluster": "istio-ingressgateway.istio-system"},
            # Istio's default stats inclusion list (its bootstrap template): prefix "wasm"
            # covers the plugins' own metrics, which Envoy keeps as "wasmcustom.<name>".
            "stats_config": {"stats_matcher": {"inclusion_list": {"patterns": [
                {"prefix": p} for p in ("reporter=", "cluster_manager", "listener_manager", "server",
                                        "cluster.xds-grpc", "wasm", "component")
            ] + [{"suffix": s} for s in ("rbac.allowed", "rbac.denied", "shadow_allowed", "shadow_denied")]}}},
            "admin": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": self.admin_port}}},
            "static_resources": {
                "listeners": [{
                    "name": "gateway",
                    "address": {"socket_address": {"address": "127.0.0.1", "port_value": self.port}},
                    "filter_chains": [{"filters": [{
                        "name": "envoy.filters.network.http_connection_manager",
                        "typed_config": {
                            "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
                            "stat_prefix": "gateway",
                            # As istiod sets it on a gateway's listeners: the downstream address
                            # is the TCP peer (numTrustedProxies 0), which ratelimit's `client` uses.
                            "use_remote_address": True,
                            "route_config": {"virtual_hosts": [{
                                "name": "all", "domains": ["*"],
                                "routes": [{"match": {"prefix": "/"}, "route": {"cluster": "upstream"}}],
                            }]},
                            "http_filters": filters,
                        },
                    }]}],
                }],
                "clusters": [_cluster("upstream", upstream_port), *extra_clusters],
            },
        }
        self.bootstrap = workdir / "envoy.json"
        self.bootstrap.write_text(json.dumps(bootstrap, indent=1))
        self.envoy = Envoy(self.bootstrap, self.admin_port, workdir, expect_ready=not self.refused)

    def __enter__(self) -> "Gateway":
        self.envoy.__enter__()
        return self

    def __exit__(self, *exc):
        self.envoy.__exit__(*exc)

    def extension_configs(self) -> dict[str, dict]:
        """The Wasm configs Envoy runs, from its config dump (ECDS section), by name."""
        dump = json.loads(self.envoy.admin("/config_dump"))
        out = {}
        for section in dump["configs"]:
            for entry in section.get("ecds_filters", []):
                config = entry["ecds_filter"]
                out[config["name"]] = config["typed_config"]["config"]
        return out

    def prometheus(self) -> dict[str, float]:
        """Every sample of `/stats/prometheus` (what Istio's merged metrics endpoint serves)."""
        samples = {}
        for line in self.envoy.admin("/stats/prometheus").splitlines():
            if line and not line.startswith("#"):
                name, _, value = line.rpartition(" ")
                samples[name] = float(value)
        return samples
