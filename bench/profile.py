"""Where an Envoy under test spends its CPU: the benchmark's scenarios under the same load, each
sampled with `perf record -e cpu-clock` (software clock: works in VMs without PMU counters),
split by where the sampled code lives:

- `wasm`: code V8 compiled from the module (perf's `[JIT]` mapping): the filter's own Rust;
- `envoy`: the Envoy binary, which includes V8's runtime and the proxy-wasm host (every host
  call, the VM entries per callback, copying headers in and out) as well as Envoy's own HTTP work;
- `kernel`: sockets and scheduling; `libc`: memcpy, malloc's neighbours, clock_gettime (vdso).

With call graphs, samples that have module code anywhere on their stack are time inside a Wasm
callback; minus the module's own code, that is the host calls the module made (attributed to
`envoy` above, and kernel/libc if a host call reaches them — counted as host calls here).

Usage: .venv/bin/python bench/profile.py [SCENARIO ...]   (default: the ones that miss targets
and their references). Prints CPU µs per request by part, as a Markdown table.
"""

import re
import subprocess
import sys
import threading
import time
from pathlib import Path

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench  # noqa: E402

DEFAULT = ["limit", "floor", "tracing", "ratelimit_admit", "local_admit", "ratelimit_refuse",
           "local_refuse", "authn_repeat", "jwt_repeat", "jwt_cache_repeat", "authn_fresh", "jwt_fresh",
           "authn_ps256_fresh", "jwt_ps256_fresh", "authn_es256_fresh", "jwt_es256_fresh", "authn_es384_fresh",
           "jwt_es384_fresh", "authn_es512_fresh", "jwt_es512_fresh"]
SECONDS = 4


def part(dso: str) -> str:
    if dso.startswith("[JIT]"):
        return "wasm"
    if dso == "[kernel.kallsyms]":
        return "kernel"
    if dso == "envoy":
        return "envoy"
    return "libc"  # libc, libm, vdso, ld.so


def profile(scenario: bench.Scenario) -> dict:
    data = bench.WORK / f"perf-{scenario.name}.data"
    result = {}
    load = threading.Thread(target=lambda: result.update(bench.measure(scenario, SECONDS + 2)))
    load.start()
    time.sleep(1)
    cpu_before, t0 = scenario.envoy.cpu_ns(), time.time()
    subprocess.run(["perf", "record", "-q", "-g", "-e", "cpu-clock", "-F", "2000", "-p", str(scenario.envoy.process.pid),
                    "-o", str(data), "--", "sleep", str(SECONDS)], check=True, capture_output=True)
    cpu, wall = scenario.envoy.cpu_ns() - cpu_before, time.time() - t0
    load.join()
    report = subprocess.run(["perf", "report", "-i", str(data), "--children", "--sort", "dso", "-g", "none",
                             "--stdio"], capture_output=True, text=True, check=True).stdout
    shares: dict[str, float] = {}
    for line in report.splitlines():
        m = re.match(r"\s+([\d.]+)%\s+([\d.]+)%\s+(.+?)\s*$", line)
        if m:
            key = part(m.group(3))
            shares[key] = shares.get(key, 0.0) + float(m.group(2)) / 100
            if key == "wasm":
                # Samples with module code anywhere on the stack: inside a callback, host calls included.
                shares["in_callbacks"] = shares.get("in_callbacks", 0.0) + float(m.group(1)) / 100
    rps = result["rps"]
    us_per_request = cpu / 1e3 / (rps * wall)
    return {"rps": rps, "cpu_us": us_per_request, **{k: v * us_per_request for k, v in shares.items()}}


def main() -> None:
    names = sys.argv[1:] or DEFAULT
    bench.check_tools()
    only = "^(" + "|".join(re.escape(n) for n in names) + ")$"
    chosen, _, envoys = bench.start(8192, only)
    rows = []
    try:
        for s in chosen:
            bench.wrk(s, 1)
            rows.append((s, profile(s)))
            bench.log(f"profiled {s.name}")
    finally:
        for e in envoys:
            e.stop()
    print("| scenario | req/s | Envoy CPU µs/req | wasm (module code) | host calls (in callbacks) "
          "| envoy (rest: HTTP, VM entry, contexts) | kernel | libc |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for s, r in rows:
        wasm, inside = r.get("wasm", 0), r.get("in_callbacks", 0)
        envoy_rest = r.get("envoy", 0) - (inside - wasm)
        print(f"| `{s.name}` | {r['rps']:,.0f} | {r['cpu_us']:.1f} | {wasm:.1f} | {inside - wasm:.1f} | "
              f"{envoy_rest:.1f} | {r.get('kernel', 0):.1f} | {r.get('libc', 0):.1f} |")


if __name__ == "__main__":
    main()
