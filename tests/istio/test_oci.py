"""OCI images of the modules: reproducible, in the layout Istio's fetcher reads, pushed by
`make push` into a real registry on 127.0.0.1 and pulled back byte-identical."""

import hashlib
import json
import shutil

import pytest

import agent
import istiod
import oci
from conftest import FILTERS, ISTIO, ROOT
from crd import CrdValidator

VERSION = oci.workspace_version()


def dist_wasm(name: str) -> bytes:
    return (ROOT / "dist" / f"{name}.wasm").read_bytes()


def read_layout(layout):
    digest = oci.layout_digest(layout)
    blob = lambda d: (layout / "blobs" / "sha256" / d.split(":", 1)[1]).read_bytes()  # noqa: E731
    return digest, json.loads(blob(digest)), blob


@pytest.mark.parametrize("name", FILTERS)
def test_same_wasm_builds_the_same_digest(tmp_path, name):
    wasm = tmp_path / "in.wasm"
    wasm.write_bytes(dist_wasm(name))
    first = oci.build_layout(wasm, tmp_path / "a", name, VERSION)
    second = oci.build_layout(wasm, tmp_path / "elsewhere" / "b", name, VERSION)
    assert first == second
    for path in (tmp_path / "a").rglob("*"):
        if path.is_file():
            twin = tmp_path / "elsewhere" / "b" / path.relative_to(tmp_path / "a")
            assert path.read_bytes() == twin.read_bytes(), path


def test_different_wasm_or_version_builds_a_different_digest(tmp_path):
    wasm = tmp_path / "in.wasm"
    wasm.write_bytes(dist_wasm("tracing"))
    base = oci.build_layout(wasm, tmp_path / "a", "tracing", VERSION)
    wasm.write_bytes(dist_wasm("tracing") + b"\0")
    assert oci.build_layout(wasm, tmp_path / "b", "tracing", VERSION) != base
    wasm.write_bytes(dist_wasm("tracing"))
    assert oci.build_layout(wasm, tmp_path / "c", "tracing", VERSION + "-1") != base


def test_build_refuses_a_file_that_is_not_wasm(tmp_path):
    bogus = tmp_path / "x.wasm"
    bogus.write_bytes(b"#!/bin/sh\n")
    with pytest.raises(SystemExit, match="not a Wasm module"):
        oci.build_layout(bogus, tmp_path / "out", "x", VERSION)


@pytest.mark.parametrize("name", FILTERS)
def test_image_is_the_wasm_artifact_layout_istio_reads(tmp_path, name):
    wasm = tmp_path / "in.wasm"
    wasm.write_bytes(dist_wasm(name))
    digest = oci.build_layout(wasm, tmp_path / "img", name, VERSION)
    found, manifest, blob = read_layout(tmp_path / "img")
    assert found == digest
    assert manifest["mediaType"] == "application/vnd.oci.image.manifest.v1+json"
    assert manifest["config"]["mediaType"] == "application/vnd.module.wasm.config.v1+json"
    media = [layer["mediaType"] for layer in manifest["layers"]]
    assert media == ["application/vnd.module.wasm.config.v1+json",
                     "application/vnd.module.wasm.content.layer.v1+wasm"]
    wasm_layer = manifest["layers"][1]
    assert wasm_layer["digest"] == "sha256:" + hashlib.sha256(dist_wasm(name)).hexdigest()
    assert blob(wasm_layer["digest"]) == dist_wasm(name)
    runtime = json.loads(blob(manifest["layers"][0]["digest"]))
    assert runtime["type"] == "envoy_proxy" and runtime["config"]["rootIds"] == [name]
    assert "created" not in json.dumps(manifest), "no timestamps: they would break reproducibility"


@pytest.mark.parametrize("name", FILTERS)
def test_make_push_then_pull_yields_the_identical_wasm(pushed, name):
    built = oci.layout_digest(ROOT / "dist" / "oci" / name)
    url = f"oci://{pushed}/{name}:{VERSION}"
    digest, module = agent.fetch_image(url, built.split(":", 1)[1])
    assert "sha256:" + digest == built
    assert module == dist_wasm(name)
    assert hashlib.sha256(module).hexdigest() == hashlib.sha256(dist_wasm(name)).hexdigest()


def test_pull_with_a_wrong_sha256_is_refused_like_istio_agent(pushed):
    with pytest.raises(agent.FetchError, match="which does not match"):
        agent.fetch_image(f"oci://{pushed}/tracing:{VERSION}", "0" * 64)


def test_pull_of_a_missing_tag_fails(pushed):
    with pytest.raises(agent.FetchError, match="could not fetch manifest"):
        agent.fetch_image(f"oci://{pushed}/tracing:0.0.0-missing", "")


def test_pin_points_every_manifest_at_the_registry_and_stays_valid(tmp_path, pushed, validator: CrdValidator):
    copy = tmp_path / "istio"
    shutil.copytree(ISTIO, copy)
    digests = {name: oci.layout_digest(ROOT / "dist" / "oci" / name) for name in FILTERS}
    changed = oci.pin_manifests(copy, pushed, digests, VERSION)
    assert changed
    import conftest

    # The image each manifest names before pinning (two plugins may run one module).
    images = {}
    for path in sorted(ISTIO.rglob("*.yaml")):
        for doc in conftest.load_documents(path):
            if doc.get("kind") == "WasmPlugin":
                images[istiod.resource_name(doc)] = doc["spec"]["url"].rsplit("/", 1)[1].split(":")[0]
    for path in sorted(copy.rglob("*.yaml")):
        for doc in conftest.load_documents(path):
            if doc.get("kind") != "WasmPlugin":
                continue
            name = images[istiod.resource_name(doc)]
            assert doc["spec"]["url"] == f"oci://{pushed}/{name}:{VERSION}"
            assert "sha256:" + doc["spec"]["sha256"] == digests[name]
            assert validator.errors(doc) == []
            agent.fetch_image(doc["spec"]["url"], doc["spec"]["sha256"])
