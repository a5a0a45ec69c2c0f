"""`make bench-global`: the ratelimit filter's global mode (docs/ratelimit-global.md) against
Envoy's native `envoy.filters.http.ratelimit`, both asking the same rate-limit service
(tests/rls-server over a throwaway Redis), plus Envoy proxying with no filter. Same run,
interleaved rounds, medians; the layout and round structure of bench/bench.py (Envoys pinned
to core 0, wrk to core 1, one Envoy per scenario kept up for the whole run).

Both sides ask the service for every request, with a limit no run can reach, and route to the
fast upstream (native `ratelimit` skips `direct_response` routes). The service and Redis are
not pinned: they share both cores with everything else, and are the same for both sides.
Rewrites the `## Global rate limits` section of docs/benchmarks.md between its markers.

Environment: BENCH_ROUNDS (5), BENCH_SECONDS (5), BENCH_WARMUP (2), BENCH_CONNECTIONS (16),
BENCH_NICE / BENCH_RT (as bench.py), WASMGATE_RLS_SERVER (default target/release/rls-server
when built, else target/debug/rls-server), REDIS_SERVER (redis-server).
"""

import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench  # noqa: E402
import configs  # noqa: E402
import report  # noqa: E402

ROOT = bench.ROOT
WORK = ROOT / ".work" / "bench-global"
DOC = ROOT / "docs" / "benchmarks.md"
HEADING = "## Global rate limits"
BEGIN = "<!-- bench:global:begin — written by `make bench-global`; edit outside the markers -->"
END = "<!-- bench:global:end -->"

ROUNDS = int(os.environ.get("BENCH_ROUNDS", "5"))
SECONDS = int(os.environ.get("BENCH_SECONDS", "5"))
WARMUP = int(os.environ.get("BENCH_WARMUP", "2"))

DOMAIN = "bench"
RULE = "bench-global"
RLS_CLUSTER = "ratelimit_service"
# Limitador's counter for the rule: far more than any run sends, so nothing is ever refused.
LIMIT = 1_000_000_000
TARGET = 0.9  # issue 6: global mode at ≥ 0.9× the native filter


def log(message: str) -> None:
    print(f"bench-global: {message}", file=sys.stderr, flush=True)


# ------------------------------------------------------------------ configs

def rls_cluster(port: int) -> dict:
    cluster = configs.upstream_cluster(port)
    cluster["name"] = RLS_CLUSTER
    cluster["load_assignment"]["cluster_name"] = RLS_CLUSTER
    # gRPC: both filters need an HTTP/2 cluster.
    cluster["typed_extension_protocol_options"] = {
        "envoy.extensions.upstreams.http.v3.HttpProtocolOptions": {
            "@type": "type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions",
            "explicit_http_config": {"http2_protocol_options": {}},
        },
    }
    return cluster


def wasm_global_filter() -> dict:
    # on_failure deny on both sides: a failed check shows as a non-2xx, never as a fast pass.
    config = {
        "global": {"cluster": RLS_CLUSTER, "domain": DOMAIN, "timeout_ms": 1000, "on_failure": "deny"},
        "rules": [{"name": RULE, "mode": "global", "capacity": LIMIT}],
    }
    return configs.wasm_filter("ratelimit", bench.module("ratelimit"), config)


def native_global_filter() -> dict:
    return {
        "name": "envoy.filters.http.ratelimit",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.ratelimit.v3.RateLimit",
            "domain": DOMAIN,
            "timeout": "1s",
            "failure_mode_deny": True,
            "rate_limit_service": {"grpc_service": {"envoy_grpc": {"cluster_name": RLS_CLUSTER}},
                                   "transport_api_version": "V3"},
        },
    }


def native_route() -> dict:
    # The descriptor the Wasm rule sends: one `generic_key` entry holding the rule's name.
    route = configs.proxy_route()
    route["route"]["rate_limits"] = [{"actions": [{"generic_key": {"descriptor_value": RULE}}]}]
    return route


def limits_yaml() -> str:
    # Limitador's limits file (JSON is YAML): namespace = domain, matched on the descriptor.
    return json.dumps([{
        "namespace": DOMAIN, "name": RULE, "max_value": LIMIT, "seconds": 3600,
        "conditions": [f"descriptors[0].generic_key == '{RULE}'"], "variables": [],
    }])


# ------------------------------------------------------------------ the service

class Process:
    """A helper server (Redis, the rate-limit service) in its own session, with CPU accounting."""

    def __init__(self, name: str, command: list[str]):
        self.name = name
        self.log_path = WORK / "logs" / f"{name}.log"
        with open(self.log_path, "w") as out:
            self.process = subprocess.Popen([*bench.priority(), *command], cwd=ROOT, stdout=out,
                                            stderr=subprocess.STDOUT, start_new_session=True)

    def wait_listening(self, port: int, deadline: float) -> None:
        while time.time() < deadline and self.process.poll() is None:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                return
            except OSError:
                time.sleep(0.2)
        raise SystemExit(f"bench-global: {self.name} did not listen on {port}:\n"
                         + self.log_path.read_text(errors="replace")[-2000:])

    def cpu_ns(self) -> int:
        return bench.Envoy.cpu_ns(self)  # same /proc accounting; uses only self.process

    def stop(self) -> None:
        bench.Envoy.stop(self)


def rls_binary() -> Path:
    override = os.environ.get("WASMGATE_RLS_SERVER")
    if override:
        return Path(override)
    release = ROOT / "target" / "release" / "rls-server"
    return release if release.exists() else ROOT / "target" / "debug" / "rls-server"


def start_service() -> tuple[list[Process], int, str]:
    redis_bin = os.environ.get("REDIS_SERVER", "redis-server")
    rls = rls_binary()
    if not shutil.which(redis_bin):
        raise SystemExit("bench-global: redis-server is missing (make tools installs it)")
    if not rls.exists():
        raise SystemExit(f"bench-global: {rls} is missing: make rls-server")
    redis_port, rls_port = bench.free_port(), bench.free_port()
    limits = WORK / "limits.yaml"
    limits.write_text(limits_yaml())
    started = []
    try:
        started.append(Process("redis", [redis_bin, "--port", str(redis_port), "--bind", "127.0.0.1",
                                         "--save", "", "--appendonly", "no"]))
        started[-1].wait_listening(redis_port, time.time() + 20)
        # --concurrent: checks do not take turns (the tests' default, exact at the last unit of a
        # limit, which this benchmark never reaches).
        started.append(Process("rls-server", [str(rls), "--redis", f"redis://127.0.0.1:{redis_port}",
                                              "--listen", f"127.0.0.1:{rls_port}", "--limits", str(limits),
                                              "--concurrent"]))
        started[-1].wait_listening(rls_port, time.time() + 30)
    except BaseException:
        for p in started:
            p.stop()
        raise
    kind = "debug" if "debug" in rls.parts else "optimized"
    return started, rls_port, kind


# ------------------------------------------------------------------ running

def scenarios() -> list[bench.Scenario]:
    S = bench.Scenario
    return [
        S("limit_proxy", "no filter, proxied to the fast upstream", [], route="proxy"),
        S("global_wasm", "ratelimit (Wasm), one `mode: global` rule", [wasm_global_filter()], route="proxy"),
        S("global_native", "envoy.filters.http.ratelimit (native)", [native_global_filter()], route="proxy"),
    ]


def service_counters(chosen: dict) -> dict:
    """What each Envoy heard from the service: proof that every request asked it."""
    wasm, native = {}, {}
    for line in chosen["global_wasm"].envoy.get("/stats/prometheus").splitlines():
        for what in ("ok", "over_limit", "error", "timeout", "failure_denied"):
            if line.startswith(f"wasmgate_ratelimit_global_{what}") and not line.startswith("#"):
                wasm[what] = wasm.get(what, 0) + int(float(line.rsplit(" ", 1)[1]))
    for line in chosen["global_native"].envoy.get("/stats").splitlines():
        name, _, value = line.partition(": ")
        if name.startswith("cluster.upstream.ratelimit."):
            native[name.rsplit(".", 1)[1]] = int(value)
    return {"wasm": wasm, "native": native}


def wait_for_answers(by_name: dict) -> dict:
    # Envoy publishes Wasm counters a moment after the request that moved them.
    deadline = time.time() + 10
    while True:
        counters = service_counters(by_name)
        if (counters["wasm"].get("ok") and counters["native"].get("ok")) or time.time() > deadline:
            return counters
        time.sleep(0.2)


def run_round(order: list, r: int, position: int, helpers: list[Process]) -> int:
    for s in order:
        helper_before = {p.name: p.cpu_ns() for p in helpers}
        result = bench.measure(s, SECONDS)
        for p in helpers:
            cpu = p.cpu_ns() - helper_before[p.name]
            result[f"{p.name}_us_per_request"] = cpu / 1e3 / max(result["requests"], 1)
            result[f"{p.name}_share"] = cpu / 1e9 / (result["duration_us"] / 1e6)
        s.runs.append({**result, "round": r, "position": position})
        position += 1
        log(f"  {s.name:14} {result['rps']:8.0f} req/s  p50 {result['p50_us']:6d} us  p99 {result['p99_us']:6d} us  "
            f"Envoy {result['cpu_share']:.0%}  rls-server {result['rls-server_share']:.0%}")
    return position


def main() -> None:
    started_at = time.time()
    bench.WORK = WORK  # bench.Envoy writes configs and logs there
    bench.check_tools()
    info = bench.machine()
    chosen = scenarios()
    bench.check_modules(chosen)  # before the service starts: nothing to stop if one is missing
    helpers, rls_port, rls_kind = start_service()
    envoys = []
    try:
        upstream_port = bench.free_port()
        envoys.append(bench.Envoy("upstream", configs.upstream(upstream_port, bench.free_port())))
        for s in chosen:
            route = native_route() if s.name == "global_native" else configs.proxy_route()
            clusters = [configs.upstream_cluster(upstream_port), rls_cluster(rls_port)]
            s.envoy = bench.Envoy(s.name, configs.bootstrap(bench.free_port(), bench.free_port(), s.filters,
                                                           route, clusters))
            envoys.append(s.envoy)
        deadline = time.time() + 60
        for e in envoys:
            e.wait_ready(deadline)
        for s in chosen:
            bench.probe(s)
        by_name = {s.name: s for s in chosen}
        reached = wait_for_answers(by_name)
        if not reached["wasm"].get("ok") or not reached["native"].get("ok"):
            raise SystemExit(f"bench-global: a probe did not reach the service: {reached}")
        log(f"rls-server ({rls_kind} build) on {rls_port}; warm-up {WARMUP} s each")
        for s in chosen:
            bench.wrk(s, WARMUP)
        position = 0
        for r in range(ROUNDS):
            log(f"round {r + 1}/{ROUNDS}")
            position = run_round(chosen if r % 2 == 0 else chosen[::-1], r, position, helpers)
        counters = service_counters(by_name)
    finally:
        for e in envoys:
            e.stop()
        for p in helpers:
            p.stop()

    info["load_after"] = os.getloadavg()
    info["minutes"] = (time.time() - started_at) / 60
    results = {
        "machine": info, "rls_server": rls_kind, "counters": counters,
        "settings": {"rounds": ROUNDS, "seconds": SECONDS, "warmup": WARMUP, "connections": bench.CONNECTIONS},
        "scenarios": [{"name": s.name, "label": s.label, "runs": s.runs} for s in chosen],
    }
    (WORK / "results.json").write_text(json.dumps(results, indent=1))
    section = markdown(results)
    print(section)
    write_doc(section)
    log(f"wrote the `{HEADING}` section of docs/benchmarks.md in {info['minutes']:.1f} min")


# ------------------------------------------------------------------ report

def markdown(results: dict) -> str:
    m, st = results["machine"], results["settings"]
    by_name = {s["name"]: s for s in results["scenarios"]}
    ratio = statistics.median(report.ratio_runs(by_name, "global_wasm", "global_native"))
    ratios = report.ratio_runs(by_name, "global_wasm", "global_native")
    cpu_ratio = statistics.median(report.cpu_ratio_runs(by_name, "global_wasm", "global_native"))
    verdict = "met" if ratio >= TARGET else f"**missed by {1 - ratio / TARGET:.0%}**"
    out = [
        BEGIN, "",
        f"**Latest run:** {m['date']} · commit `{m['commit']}` · Envoy {m['envoy']} (`--concurrency 1`, V8) · "
        f"rls-server **{results['rls_server']} build** (`--concurrent`) over Redis · {m['cores']} cores · "
        f"load average {m['load_before'][0]:.2f} before, {m['load_after'][0]:.2f} after · "
        f"{st['rounds']} rounds × {st['seconds']} s per scenario, {st['connections']} connections · "
        f"whole run {m['minutes']:.1f} min.", "",
        "| comparison | ratio | rounds min–max | by Envoy CPU | target | |",
        "|---|---:|---:|---:|---:|---|",
        f"| global mode (Wasm) vs native `ratelimit` filter | **{ratio:.2f}×** | {min(ratios):.2f}–{max(ratios):.2f} "
        f"| {cpu_ratio:.2f}× | ≥ {TARGET:.2f}× | {verdict} |", "",
        "Medians over rounds. *Envoy CPU* is the Envoy under test; *rls-server CPU* is the service's CPU time "
        "per request (all its threads) and *rls-server busy* its share of one core during the run.", "",
        "| scenario | req/s | p50 ms | p99 ms | Envoy CPU µs/req | Envoy core busy | rls-server CPU µs/req "
        "| rls-server busy | Redis busy | non-2xx | to native | to no filter |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for s in results["scenarios"]:
        runs = s["runs"]
        med = lambda key: statistics.median(r[key] for r in runs)  # noqa: E731
        to_native = (f"{statistics.median(report.ratio_runs(by_name, s['name'], 'global_native')):.2f}×"
                     if s["name"] == "global_wasm" else "—")
        to_limit = (f"{statistics.median(report.ratio_runs(by_name, s['name'], 'limit_proxy')):.2f}×"
                    if s["name"] != "limit_proxy" else "—")
        out.append(
            f"| {s['label']} (`{s['name']}`) | {med('rps'):,.0f} | {med('p50_us') / 1e3:.2f} | {med('p99_us') / 1e3:.2f} "
            f"| {med('cpu_us_per_request'):.1f} | {med('cpu_share'):.0%} | {med('rls-server_us_per_request'):.1f} "
            f"| {med('rls-server_share'):.0%} | {med('redis_share'):.0%} | {med('non2xx_share'):.1%} | {to_native} | {to_limit} |")
    c = results["counters"]
    out += ["", f"Service answers counted by the Envoys over the whole run: Wasm `wasmgate_ratelimit_global_*` "
                f"{fmt_counts(c['wasm'])}; native `cluster.upstream.ratelimit.*` {fmt_counts(c['native'])}.", "",
            "<details><summary>Requests/s of every round</summary>", "",
            "| scenario | " + " | ".join(f"round {i + 1}" for i in range(st["rounds"])) + " |",
            "|---|" + "---:|" * st["rounds"]]
    for s in results["scenarios"]:
        out.append(f"| `{s['name']}` | " + " | ".join(f"{r['rps']:,.0f}" for r in s["runs"]) + " |")
    out += ["", "</details>", "", END]
    return "\n".join(out)


def fmt_counts(counts: dict) -> str:
    return ", ".join(f"{k} {v:,}" for k, v in sorted(counts.items())) or "none"


def write_doc(section: str) -> None:
    text = DOC.read_text()
    if BEGIN in text and END in text:
        head, rest = text.split(BEGIN, 1)
        text = head + section + rest.split(END, 1)[1]
    else:
        text = text.rstrip("\n") + f"\n\n{HEADING}\n\n{section}\n"
    DOC.write_text(text)


if __name__ == "__main__":
    main()
