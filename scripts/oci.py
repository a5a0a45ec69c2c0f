#!/usr/bin/env python3
"""Package, push and pin the wasmgate filters as OCI Wasm images for Istio's `WasmPlugin`.

  oci.py build [FILTER...]                       dist/<f>.wasm -> OCI image layout dist/oci/<f>/
  oci.py push --registry HOST:PORT/REPO [--plain-http] [FILTER...]
  oci.py pin --registry HOST:PORT/REPO [--manifests DIR] [FILTER...]

Image format: the "OCI artifact" variant of the Wasm image spec that Istio's fetcher reads
(istio pkg/wasm/imagefetcher.go, extractOCIArtifactImage): an OCI image manifest with exactly two
layers, `application/vnd.module.wasm.config.v1+json` (the runtime config: `{"type":
"envoy_proxy", ...}`) and `application/vnd.module.wasm.content.layer.v1+wasm` (the raw module,
byte for byte; its layer digest is the module's sha256). The manifest's config blob is that same
runtime config.

Reproducible: every byte of the image is a function of the .wasm, the filter name and the
version, with no timestamps, and JSON is written with sorted keys and fixed separators, so the
same .wasm always gives the same manifest digest. That digest is what a WasmPlugin's `sha256` pins
for an `oci://` url (istio-agent compares it with the pulled manifest's digest, not with the
module's sha256).

Registry protocol (auth, blob upload sessions, raw manifest PUT): the ORAS Python SDK
(`oras.provider.Registry`, `oras.layout.Layout.push_to_registry`).
"""

import argparse
import hashlib
import json
import re
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FILTERS = ("tracing", "authn", "ratelimit", "gateway")

MANIFEST_MEDIA_TYPE = "application/vnd.oci.image.manifest.v1+json"
WASM_CONFIG_MEDIA_TYPE = "application/vnd.module.wasm.config.v1+json"
WASM_LAYER_MEDIA_TYPE = "application/vnd.module.wasm.content.layer.v1+wasm"
TITLE = "org.opencontainers.image.title"
VERSION = "org.opencontainers.image.version"
REF_NAME = "org.opencontainers.image.ref.name"
# proxy-wasm ABI the Rust SDK (proxy-wasm 0.2.x) exports.
ABI_VERSION = "proxy_abi_version_0_2_1"


def canonical_json(value) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":")).encode()


def sha256_digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def descriptor(media_type: str, data: bytes, annotations: dict | None = None) -> dict:
    out = {"mediaType": media_type, "digest": sha256_digest(data), "size": len(data)}
    if annotations:
        out["annotations"] = annotations
    return out


def workspace_version() -> str:
    cargo = tomllib.loads((ROOT / "Cargo.toml").read_text())
    return cargo["workspace"]["package"]["version"]


def image_blobs(wasm: bytes, name: str, version: str) -> tuple[bytes, list[bytes]]:
    """The manifest bytes and every blob it references, all deterministic."""
    runtime_config = canonical_json(
        {"type": "envoy_proxy", "abiVersions": [ABI_VERSION], "config": {"rootIds": [name]}}
    )
    manifest = {
        "schemaVersion": 2,
        "mediaType": MANIFEST_MEDIA_TYPE,
        "config": descriptor(WASM_CONFIG_MEDIA_TYPE, runtime_config),
        "layers": [
            descriptor(WASM_CONFIG_MEDIA_TYPE, runtime_config, {TITLE: "runtime-config.json"}),
            descriptor(WASM_LAYER_MEDIA_TYPE, wasm, {TITLE: "plugin.wasm"}),
        ],
        "annotations": {TITLE: f"wasmgate-{name}", VERSION: version},
    }
    return canonical_json(manifest), [runtime_config, wasm]


def build_layout(wasm_path: Path, out_dir: Path, name: str, version: str) -> str:
    """Write an OCI image layout for one module; returns the manifest digest."""
    wasm = wasm_path.read_bytes()
    if wasm[:4] != b"\0asm":
        raise SystemExit(f"{wasm_path}: not a Wasm module (no \\0asm header)")
    manifest, blobs = image_blobs(wasm, name, version)
    blob_dir = out_dir / "blobs" / "sha256"
    blob_dir.mkdir(parents=True, exist_ok=True)
    for old in blob_dir.iterdir():
        old.unlink()
    for blob in (manifest, *blobs):
        (blob_dir / hashlib.sha256(blob).hexdigest()).write_bytes(blob)
    (out_dir / "oci-layout").write_bytes(canonical_json({"imageLayoutVersion": "1.0.0"}))
    index = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [descriptor(MANIFEST_MEDIA_TYPE, manifest, {REF_NAME: version})],
    }
    (out_dir / "index.json").write_bytes(canonical_json(index))
    return sha256_digest(manifest)


def layout_digest(layout: Path) -> str:
    index = json.loads((layout / "index.json").read_text())
    return index["manifests"][0]["digest"]


def registry_client(registry: str, plain_http: bool):
    import oras.provider

    host = registry.split("/", 1)[0]
    return oras.provider.Registry(hostname=host, insecure=plain_http)


def is_loopback(registry: str) -> bool:
    host = registry.split("/", 1)[0].rsplit(":", 1)[0]
    return host in ("localhost", "127.0.0.1", "[::1]")


def image_ref(registry: str, name: str, version: str) -> str:
    return f"{registry.rstrip('/')}/{name}:{version}"


def push_layout(layout: Path, ref: str, plain_http: bool) -> str:
    """Push one image layout to `ref` (host:port/repo/name:tag); returns the manifest digest."""
    from oras.layout import Layout

    tag = ref.rsplit(":", 1)[1]
    client = registry_client(ref, plain_http)
    Layout(str(layout)).push_to_registry(client, ref, tag=tag)
    return layout_digest(layout)


def pin_manifests(manifest_dir: Path, registry: str, digests: dict[str, str], version: str) -> list[Path]:
    """Point each WasmPlugin at `registry` and pin its tag and sha256 (text edit: keeps comments)."""
    changed = []
    for path in sorted(manifest_dir.rglob("*.yaml")):
        text = path.read_text()
        new = text
        for name, digest in digests.items():
            url = re.compile(rf"(\burl:\s*)oci://\S+/{re.escape(name)}:[\w.\-]+")
            if not url.search(new):
                continue
            new = url.sub(rf"\g<1>oci://{image_ref(registry, name, version)}", new)
            new = re.sub(r"(\bsha256:\s*)[0-9a-f]{64}", rf"\g<1>{digest.split(':', 1)[1]}", new)
        if new != text:
            path.write_text(new)
            changed.append(path)
    return changed


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", choices=("build", "push", "pin"))
    parser.add_argument("filters", nargs="*", default=list(FILTERS))
    parser.add_argument("--registry", help="HOST[:PORT]/REPO; images become REPO/<filter>:<version>")
    parser.add_argument("--plain-http", action="store_true", help="HTTP instead of HTTPS (default for 127.0.0.1/localhost)")
    parser.add_argument("--dist", type=Path, default=ROOT / "dist")
    parser.add_argument("--manifests", type=Path, default=ROOT / "istio")
    args = parser.parse_intermixed_args(argv)
    version = workspace_version()
    layouts = {f: args.dist / "oci" / f for f in args.filters}

    if args.command == "build":
        for name, layout in layouts.items():
            digest = build_layout(args.dist / f"{name}.wasm", layout, name, version)
            print(f"  {name:<10} {layout.relative_to(ROOT) if layout.is_relative_to(ROOT) else layout}  {digest}")
        return 0
    if not args.registry:
        parser.error(f"{args.command} needs --registry HOST[:PORT]/REPO")
    missing = [str(p) for p in layouts.values() if not (p / "index.json").exists()]
    if missing:
        parser.error(f"no image layout at {', '.join(missing)}: run `make oci` first")
    digests = {name: layout_digest(layout) for name, layout in layouts.items()}
    if args.command == "push":
        plain = args.plain_http or is_loopback(args.registry)
        for name, layout in layouts.items():
            ref = image_ref(args.registry, name, version)
            push_layout(layout, ref, plain)
            print(f"  pushed {ref}\n    url: oci://{ref}\n    sha256: {digests[name].split(':', 1)[1]}")
        return 0
    for path in pin_manifests(args.manifests, args.registry, digests, version):
        print(f"  pinned {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
