"""Shared fixtures: the manifests under istio/, the CRD validator, and a real OCI registry that
`make push` fills once per session (started and stopped here)."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "scripts"))

from crd import CrdValidator  # noqa: E402
from processes import Registry  # noqa: E402

FIXTURES = ROOT / "tests" / "fixtures" / "istio"
ISTIO = ROOT / "istio"
# Every module `make push` pushes; `gateway` runs the other three's policies in one filter.
FILTERS = ("tracing", "authn", "ratelimit", "gateway")
# The JWKS egress both gateway setups include (istio/ and istio/gateway/).
EGRESS = ISTIO / "egress" / "jwks-egress.yaml"


def load_documents(path: Path) -> list[dict]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc is not None]


def manifest_files() -> list[Path]:
    return sorted(p for p in ISTIO.rglob("*.yaml") if p.name != "kustomization.yaml")


def wasm_plugins() -> list[tuple[Path, dict]]:
    return [(path, doc) for path in manifest_files() for doc in load_documents(path)
            if doc.get("kind") == "WasmPlugin"]


def plugin_id(item) -> str:
    path, doc = item
    return f"{path.relative_to(ISTIO)}:{doc['metadata']['name']}"


@pytest.fixture(scope="session")
def validator() -> CrdValidator:
    return CrdValidator.from_file(FIXTURES / "wasmplugin-crd.yaml")


@pytest.fixture(scope="session")
def registry():
    with Registry() as running:
        yield running


@pytest.fixture(scope="session")
def pushed(registry) -> str:
    """`make push` into the test registry; returns the REGISTRY value (host:port/repo).
    `-o build`: `make test-istio` has just built dist/, so do not rebuild it (or compete for
    cargo's lock) from inside the test; `oci` still packages dist/ afresh."""
    target = f"{registry.address}/wasmgate"
    env = {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL")}
    result = subprocess.run(
        ["make", "--no-print-directory", "-o", "build", "push", f"REGISTRY={target}"],
        cwd=ROOT, env=env, capture_output=True, text=True,
    )
    assert result.returncode == 0, f"make push failed:\n{result.stdout}\n{result.stderr}"
    return target
