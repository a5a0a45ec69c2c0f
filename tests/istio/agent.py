"""What istio-agent does with a Wasm extension config that istiod sends with a remote module
(istio pkg/wasm/convert.go, cache.go, imagefetcher.go), reproduced against a real registry:

1. read the `oci://` url and the expected `sha256` from the remote data source;
2. fetch the image manifest; its digest (sha256 of the manifest bytes) must equal `sha256`
   when one is set, else the module is refused ("module downloaded from ... has checksum ...");
3. find the Wasm in the image: the OCI artifact variant has exactly two layers, one of media
   type `application/vnd.module.wasm.content.layer.v1+wasm` holding the raw module;
4. check the Wasm magic, write `<manifest digest>.wasm` into the module cache directory;
5. rewrite the config's `vm_config.code` from `remote` to `local.filename`, and strip the
   agent's own `ISTIO_META_*` environment variables (pull secret, policy, resource version);
6. when the module cannot be had: a fail-open plugin becomes an allow-all RBAC filter (the
   request path goes on without it); any other plugin's config is refused (NACK), so Envoy never
   gets it and, with istiod's initial fetch timeout of 0, never serves without it.

Registry access goes through the ORAS SDK's client (auth, redirects), as the push does.
"""

import copy
import hashlib
import json
from pathlib import Path
from urllib.parse import urlparse

import oras.provider

WASM_LAYER = "application/vnd.module.wasm.content.layer.v1+wasm"
MANIFEST_ACCEPT = ", ".join([
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
])
AGENT_ENV_PREFIX = "ISTIO_META_"
ALLOW_ALL = {"@type": "type.googleapis.com/envoy.extensions.filters.http.rbac.v3.RBAC"}


class FetchError(RuntimeError):
    pass


def split_reference(url: str) -> tuple[str, str, str]:
    """`oci://host:port/repo/name:tag` -> (host:port, repo/name, tag)."""
    parsed = urlparse(url if "://" in url else f"oci://{url}")
    if parsed.scheme != "oci":
        raise FetchError(f"unsupported Wasm module downloading URL scheme: {parsed.scheme}")
    path = parsed.path.lstrip("/")
    if "@" in path:
        repository, reference = path.split("@", 1)
    else:
        repository, _, reference = path.rpartition(":")
        if not repository:
            repository, reference = path, "latest"
    return parsed.netloc, repository, reference


def fetch_image(url: str, expected_sha256: str, plain_http: bool = True) -> tuple[str, bytes]:
    """The manifest digest (hex) and the module bytes, checked as istio-agent checks them."""
    host, repository, reference = split_reference(url)
    client = oras.provider.Registry(hostname=host, insecure=plain_http)
    prefix = "http" if plain_http else "https"
    response = client.do_request(
        f"{prefix}://{host}/v2/{repository}/manifests/{reference}", "GET",
        headers={"Accept": MANIFEST_ACCEPT},
    )
    if response.status_code != 200:
        raise FetchError(f"could not fetch manifest: {response.status_code} {response.text[:200]}")
    digest = hashlib.sha256(response.content).hexdigest()
    if expected_sha256 and digest != expected_sha256:
        raise FetchError(
            f"module downloaded from {url} has checksum {digest}, which does not match: {expected_sha256}"
        )
    manifest = json.loads(response.content)
    layers = manifest.get("layers", [])
    if len(layers) != 2:
        raise FetchError(f"number of layers must be 2 but got {len(layers)}")
    wasm_layers = [layer for layer in layers if layer.get("mediaType") == WASM_LAYER]
    if not wasm_layers:
        raise FetchError(f"could not find the layer of type {WASM_LAYER}")
    blob = client.do_request(
        f"{prefix}://{host}/v2/{repository}/blobs/{wasm_layers[0]['digest']}", "GET"
    )
    if blob.status_code != 200:
        raise FetchError(f"could not fetch Wasm layer: {blob.status_code}")
    module = blob.content
    if "sha256:" + hashlib.sha256(module).hexdigest() != wasm_layers[0]["digest"]:
        raise FetchError("Wasm layer content does not match its digest")
    if len(module) < 8 or module[:4] != b"\0asm":
        raise FetchError(f"fetched Wasm binary from {url} is invalid")
    return digest, module


def convert(wasm_filter: dict, cache_dir: Path, plain_http: bool = True) -> dict:
    """The typed config Envoy gets for a Wasm HTTP filter whose module is remote: the same
    filter with a local cached module, or allow-all RBAC for a fail-open plugin whose module
    cannot be fetched. Raises FetchError (the agent's NACK) otherwise."""
    converted = copy.deepcopy(wasm_filter)
    config = converted["config"]
    vm = config["vm_config"]
    remote = vm["code"].get("remote")
    if remote is None:
        return converted
    env = vm.get("environment_variables", {})
    values = env.get("key_values", {})
    for key in [k for k in values if k.startswith(AGENT_ENV_PREFIX)]:
        del values[key]
    if not values:
        env.pop("key_values", None)
    if not env:
        vm.pop("environment_variables", None)
    expected = "" if remote.get("sha256") == "nil" else remote.get("sha256", "")
    try:
        digest, module = fetch_image(remote["http_uri"]["uri"], expected, plain_http)
    except FetchError:
        if config.get("fail_open") or config.get("failure_policy") == "FAIL_OPEN":
            return dict(ALLOW_ALL)
        raise
    cache_dir.mkdir(parents=True, exist_ok=True)
    path = cache_dir / f"{digest}.wasm"
    path.write_bytes(module)
    vm["code"] = {"local": {"filename": str(path)}}
    return converted
