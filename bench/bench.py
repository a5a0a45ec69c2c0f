"""`make bench`: every wasmgate filter against Envoy's native equivalent and against Envoy with
no filter, in one run, interleaved, on 127.0.0.1.

Every Envoy under test (one per scenario, `--concurrency 1`) starts once, pinned to core 0, and
stays up; wrk, pinned to core 1, then drives each of them in turn for every round (the order
reverses every other round, so slow drift does not favour either side of a pair; the no-filter
limit runs again before later groups). Results are medians over rounds; a ratio is the median
of per-round ratios, each run against the reference's nearest run of the same round.
Writes docs/benchmarks.md (between its result markers) and docs/benchmarks.svg.

Environment: BENCH_ROUNDS (5), BENCH_SECONDS (3), BENCH_WARMUP (2, once before the first
round; the Envoys stay up, so later runs start warm), BENCH_CONNECTIONS (16), BENCH_POOL (8192
tokens per algorithm), BENCH_ONLY (a regex of scenario names, for a quick look; then no docs
are written), BENCH_NICE (-20 as root, else 0: the priority of Envoy and wrk), BENCH_RT=1
(real-time priority instead).
"""

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, str(Path(__file__).resolve().parent))
import configs  # noqa: E402
import report  # noqa: E402
import tokens  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
WORK = ROOT / ".work" / "bench"
DIST = ROOT / "dist"
FLOOR_MODULE = ROOT / "target" / "wasm32-wasip1" / "release" / "wasmgate_bench_floor.wasm"
ENVOY_CORE, LOAD_CORE = "0", "1"
# Envoy and wrk run at a higher priority where we may raise it (root): on a machine shared
# with builds, the scheduler then takes less of their time away. BENCH_NICE=0 turns it off.
NICE = int(os.environ.get("BENCH_NICE", "-20" if os.geteuid() == 0 else "0"))
# BENCH_RT=1: SCHED_FIFO instead (root only). Wakeups then preempt other programs at once, which
# is what keeps Envoy's core busy on a loaded machine; other programs get only what the kernel's
# real-time throttle leaves (5 %) on both cores while it runs, so it is opt-in.
RT = os.environ.get("BENCH_RT", "") == "1"

ROUNDS = int(os.environ.get("BENCH_ROUNDS", "5"))
SECONDS = int(os.environ.get("BENCH_SECONDS", "3"))  # wrk takes whole seconds
WARMUP = int(os.environ.get("BENCH_WARMUP", "2"))
CONNECTIONS = int(os.environ.get("BENCH_CONNECTIONS", "16"))
POOL = int(os.environ.get("BENCH_POOL", "8192"))
ONLY = os.environ.get("BENCH_ONLY", "")


def log(message: str) -> None:
    print(f"bench: {message}", file=sys.stderr, flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def priority() -> list[str]:
    if RT:
        return ["chrt", "--fifo", "1"]
    return ["nice", "-n", str(NICE)] if NICE else []


def envoy_command() -> list[str]:
    override = os.environ.get("ENVOY_BIN", "").split()
    return override or [str(ROOT / ".venv" / "bin" / "envoy")]


# ------------------------------------------------------------------ scenarios

@dataclass
class Scenario:
    name: str
    label: str
    filters: list
    route: str = "direct"          # direct | proxy
    request_id: bool = False
    token: str | None = None      # a token sent on every request (static request)
    pool: Path | None = None      # a token file: the next token on every request (Lua)
    offset: int = 0               # where in the pool the next run starts
    expect: int = 200             # what a probe request must get (429 is fine for refuse)
    authn: bool = False           # a request without a token must get 401
    collector: bool = False       # has the `collector` cluster (span export)
    genuine: str | None = None    # forged-token rows: a real token of the same key must get 200
    runs: list = field(default_factory=list)
    envoy: "Envoy | None" = None


@dataclass
class Comparison:
    """`subject` over `reference`: a row of the ratio table, with a target when the issue sets one."""
    subject: str
    reference: str
    what: str
    target: float | None = None


class Envoy:
    def __init__(self, name: str, config: dict):
        self.name = name
        self.port = config["static_resources"]["listeners"][0]["address"]["socket_address"]["port_value"]
        self.admin = config["admin"]["address"]["socket_address"]["port_value"]
        self.config_path = WORK / "configs" / f"{name}.json"
        self.log_path = WORK / "logs" / f"{name}.log"
        self.config_path.write_text(json.dumps(config, indent=1))
        command = [*priority(), "taskset", "-c", ENVOY_CORE, *envoy_command(), "-c", str(self.config_path),
                   "--concurrency", "1", "--disable-hot-restart", "--log-level", "warn",
                   "--log-path", str(self.log_path)]
        self.process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL,
                                        stderr=subprocess.STDOUT, start_new_session=True)

    def wait_ready(self, deadline: float) -> None:
        while time.time() < deadline:
            if self.process.poll() is not None:
                break
            try:
                if self.get("/ready").strip() == "LIVE":
                    return
            except OSError:
                pass
            time.sleep(0.2)
        tail = self.log_path.read_text(errors="replace")[-3000:] if self.log_path.exists() else ""
        raise SystemExit(f"bench: Envoy `{self.name}` did not become ready:\n{tail}")

    def get(self, path: str) -> str:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.admin}{path}", timeout=5) as r:
            return r.read().decode()

    def cpu_ns(self) -> int:
        """CPU time of every thread of the process so far (scheduler accounting, ns)."""
        total = 0
        for task in Path(f"/proc/{self.process.pid}/task").iterdir():
            try:
                total += int((task / "schedstat").read_text().split()[0])
            except (OSError, ValueError, IndexError):
                pass
        return total

    def memory(self) -> dict:
        stats = json.loads(self.get("/memory"))
        rss_kb = 0
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                rss_kb = int(line.split()[1])
        return {"allocated": int(stats["allocated"]), "heap": int(stats["heap_size"]), "rss": rss_kb * 1024}

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)


def module(name: str) -> str:
    """The module's path; whether it exists is checked for the chosen scenarios only (see
    `check_modules`), so a BENCH_ONLY run needs just the modules it loads."""
    return str(FLOOR_MODULE if name == "floor" else DIST / f"{name}.wasm")


def check_modules(chosen: list[Scenario]) -> None:
    for s in chosen:
        for f in s.filters:
            path = f["typed_config"].get("config", {}).get("vm_config", {}).get("code", {}).get("local", {}).get("filename")
            if path and not Path(path).exists():
                raise SystemExit(f"bench: {path} is missing: run `make bench` (it builds the modules)")


def scenarios(signers: dict, pools: dict, only: str) -> tuple[list[Scenario], list[Comparison]]:
    rs = signers["RS256"]
    jwks = {alg: s.jwks() for alg, s in signers.items()}
    repeat = rs.token("user-repeat", int(time.time()))

    def wasm_authn(alg):
        return configs.wasm_filter("authn", module("authn"), configs.authn_config(signers[alg], jwks[alg]))

    def native_authn(alg, cache=False):
        return configs.jwt_authn_filter(signers[alg], jwks[alg], cache)

    # Forged-token flood: the same authn filter, and in front of it the per-client limit of
    # envoy-config/chain.yaml. wrk sends no x-forwarded-for, so the `client` key is the TCP
    # peer (127.0.0.1) with the bench's HCM as is: all 16 connections share one bucket.
    pre_auth = configs.wasm_filter("ratelimit", module("ratelimit"), configs.pre_auth_ratelimit_config())
    genuine = {alg: signers[alg].token("user-genuine", int(time.time())) for alg in ("RS256", "ES256")}

    tracing = configs.wasm_filter("tracing", module("tracing"), configs.tracing_config())

    def tracing_export(ratio):
        return configs.wasm_filter("tracing", module("tracing"), configs.tracing_export_config(ratio))
    floor = configs.wasm_filter("floor", module("floor"), {})

    def wasm_ratelimit(n):
        return configs.wasm_filter("ratelimit", module("ratelimit"), configs.ratelimit_config(n))

    admit, refuse = configs.ADMIT_TOKENS, configs.REFUSE_TOKENS
    wasm_chain = [tracing, wasm_authn("RS256"), wasm_ratelimit(admit)]
    # The same three policies, settings for settings (the chain has no pre-auth limit), as the
    # sections of one gateway module: one filter, one VM.
    gateway = [configs.wasm_filter("gateway", module("gateway"), configs.gateway_config(
        configs.tracing_config(), configs.authn_config(rs, jwks["RS256"]), configs.ratelimit_config(admit)))]
    # Envoy's own x-request-id stands in for the tracing filter's request id; Envoy has no
    # W3C propagation without a span exporter, so the native chain does strictly less work.
    native_chain = [native_authn("RS256"), configs.local_ratelimit_filter(admit)]
    native_chain_cache = [native_authn("RS256", cache=True), configs.local_ratelimit_filter(admit)]

    S = Scenario
    out = [
        S("limit", "no filter, direct response", []),
        S("floor", "empty Rust Wasm filter (the Wasm floor)", [floor]),
        S("tracing", "tracing (Wasm)", [tracing]),
        S("tracing_export", "tracing (Wasm), every span exported over OTLP/HTTP", [tracing_export(1.0)], collector=True),
        S("tracing_export_1pct", "tracing (Wasm), 1 % of spans exported", [tracing_export(0.01)], collector=True),
        S("limit_proxy", "no filter, proxied to the fast upstream", [], route="proxy"),
        S("tracing_proxy", "tracing (Wasm), proxied", [tracing], route="proxy"),
        S("authn_repeat", "authn RS256 (Wasm), one token repeated", [wasm_authn("RS256")], token=repeat, authn=True),
        S("jwt_repeat", "jwt_authn RS256 (native), one token repeated", [native_authn("RS256")], token=repeat, authn=True),
        S("jwt_cache_repeat", "jwt_authn RS256 + jwt_cache_config (native), one token repeated",
          [native_authn("RS256", cache=True)], token=repeat, authn=True),
        S("authn_fresh", "authn RS256 (Wasm), fresh token per request", [wasm_authn("RS256")], pool=pools["RS256"], authn=True),
        S("jwt_fresh", "jwt_authn RS256 (native), fresh token per request", [native_authn("RS256")], pool=pools["RS256"], authn=True),
        S("authn_ps256_fresh", "authn PS256 (Wasm), fresh token per request", [wasm_authn("PS256")], pool=pools["PS256"], authn=True),
        S("jwt_ps256_fresh", "jwt_authn PS256 (native), fresh token per request", [native_authn("PS256")], pool=pools["PS256"], authn=True),
        S("authn_es256_fresh", "authn ES256 (Wasm), fresh token per request", [wasm_authn("ES256")], pool=pools["ES256"], authn=True),
        S("jwt_es256_fresh", "jwt_authn ES256 (native), fresh token per request", [native_authn("ES256")], pool=pools["ES256"], authn=True),
        S("authn_es384_fresh", "authn ES384 (Wasm), fresh token per request", [wasm_authn("ES384")], pool=pools["ES384"], authn=True),
        S("jwt_es384_fresh", "jwt_authn ES384 (native), fresh token per request", [native_authn("ES384")], pool=pools["ES384"], authn=True),
        S("authn_es512_fresh", "authn ES512 (Wasm), fresh token per request", [wasm_authn("ES512")], pool=pools["ES512"], authn=True),
        S("jwt_es512_fresh", "jwt_authn ES512 (native), fresh token per request", [native_authn("ES512")], pool=pools["ES512"], authn=True),
        S("authn_eddsa_fresh", "authn EdDSA (Wasm), fresh token per request", [wasm_authn("EdDSA")], pool=pools["EdDSA"], authn=True),
        S("jwt_eddsa_fresh", "jwt_authn EdDSA (native), fresh token per request", [native_authn("EdDSA")], pool=pools["EdDSA"], authn=True),
        S("flood_rs256", "authn RS256 (Wasm), forged-token flood, no limit", [wasm_authn("RS256")],
          pool=pools["forged-RS256"], expect=401, authn=True, genuine=genuine["RS256"]),
        S("flood_rs256_limited", "authn RS256 (Wasm), forged-token flood, per-client limit (100/s) before authn",
          [pre_auth, wasm_authn("RS256")], pool=pools["forged-RS256"], expect=401, authn=True, genuine=genuine["RS256"]),
        S("jwt_flood_rs256", "jwt_authn RS256 (native), forged-token flood", [native_authn("RS256")],
          pool=pools["forged-RS256"], expect=401, authn=True, genuine=genuine["RS256"]),
        S("flood_es256", "authn ES256 (Wasm), forged-token flood, no limit", [wasm_authn("ES256")],
          pool=pools["forged-ES256"], expect=401, authn=True, genuine=genuine["ES256"]),
        S("flood_es256_limited", "authn ES256 (Wasm), forged-token flood, per-client limit (100/s) before authn",
          [pre_auth, wasm_authn("ES256")], pool=pools["forged-ES256"], expect=401, authn=True, genuine=genuine["ES256"]),
        S("ratelimit_admit", "ratelimit (Wasm), always admit", [wasm_ratelimit(admit)]),
        S("local_admit", "local_ratelimit (native), always admit", [configs.local_ratelimit_filter(admit)]),
        S("ratelimit_refuse", "ratelimit (Wasm), mostly refuse (100/s)", [wasm_ratelimit(refuse)], expect=429),
        S("local_refuse", "local_ratelimit (native), mostly refuse (100/s)", [configs.local_ratelimit_filter(refuse)], expect=429),
        S("chain", "chain tracing+authn+ratelimit (Wasm), repeated token", wasm_chain, token=repeat, authn=True),
        S("gateway", "gateway module: the chain's tracing+authn+ratelimit in one filter (Wasm), repeated token",
          gateway, token=repeat, authn=True),
        S("native_chain", "chain request-id+jwt_authn+local_ratelimit (native)", native_chain, request_id=True, token=repeat, authn=True),
        S("native_chain_cache", "native chain with jwt_cache_config", native_chain_cache, request_id=True, token=repeat, authn=True),
        S("chain_proxy", "chain (Wasm), proxied", wasm_chain, route="proxy", token=repeat, authn=True),
        S("native_chain_proxy", "native chain, proxied", native_chain, route="proxy", request_id=True, token=repeat, authn=True),
    ]
    C = Comparison
    comparisons = [
        C("floor", "limit", "empty Wasm filter vs no filter"),
        C("tracing", "limit", "tracing vs no filter", 0.9),
        C("tracing", "floor", "tracing vs empty Wasm filter"),
        # Issue #15: export must cost the request path nothing beyond the queue append.
        C("tracing_export", "tracing", "tracing, export on (sampling 1.0) vs off"),
        C("tracing_export_1pct", "tracing", "tracing, export on (sampling 0.01) vs off"),
        C("tracing_proxy", "limit_proxy", "tracing vs no filter, proxied"),
        C("limit_proxy", "limit", "proxying vs direct response"),
        C("authn_repeat", "jwt_repeat", "authn RS256 repeated token vs jwt_authn", 1.5),
        C("authn_repeat", "jwt_cache_repeat", "authn RS256 repeated token vs jwt_authn with cache"),
        C("authn_repeat", "limit", "authn RS256 repeated token vs no filter"),
        # Fresh-token targets from issue #14 (the cold path: one signature check per request).
        C("authn_fresh", "jwt_fresh", "authn RS256 fresh token vs jwt_authn", 0.6),
        C("authn_ps256_fresh", "jwt_ps256_fresh", "authn PS256 fresh token vs jwt_authn", 0.4),
        C("authn_es256_fresh", "jwt_es256_fresh", "authn ES256 fresh token vs jwt_authn", 0.5),
        C("authn_es384_fresh", "jwt_es384_fresh", "authn ES384 fresh token vs jwt_authn"),
        C("authn_es512_fresh", "jwt_es512_fresh", "authn ES512 fresh token vs jwt_authn"),
        C("authn_eddsa_fresh", "jwt_eddsa_fresh", "authn EdDSA fresh token vs jwt_authn", 0.8),
        C("flood_rs256", "authn_fresh", "forged RS256 flood vs valid fresh tokens"),
        C("flood_rs256", "jwt_flood_rs256", "forged RS256 flood: authn vs jwt_authn"),
        C("flood_rs256_limited", "flood_rs256", "forged RS256 flood with pre-auth limit vs without"),
        C("flood_es256", "authn_es256_fresh", "forged ES256 flood vs valid fresh tokens"),
        C("flood_es256_limited", "flood_es256", "forged ES256 flood with pre-auth limit vs without"),
        C("flood_es256_limited", "limit", "forged ES256 flood with pre-auth limit vs no filter"),
        C("ratelimit_admit", "local_admit", "ratelimit always-admit vs local_ratelimit", 0.9),
        C("ratelimit_refuse", "local_refuse", "ratelimit mostly-refuse vs local_ratelimit", 0.9),
        C("ratelimit_admit", "limit", "ratelimit always-admit vs no filter"),
        C("chain", "native_chain", "Wasm chain vs native chain", 1.0),
        C("chain", "native_chain_cache", "Wasm chain vs native chain with jwt cache"),
        C("chain", "limit", "Wasm chain vs no filter"),
        C("chain_proxy", "native_chain_proxy", "Wasm chain vs native chain, proxied", 1.0),
        C("gateway", "chain", "gateway module vs three modules", 1.25),
        C("gateway", "native_chain", "gateway module vs native chain", 1.6),
        C("gateway", "native_chain_cache", "gateway module vs native chain with jwt cache", 0.75),
        C("gateway", "limit", "gateway module vs no filter"),
    ]
    if only:
        out = [s for s in out if re.search(only, s.name)]
        names = {s.name for s in out}
        comparisons = [c for c in comparisons if c.subject in names and c.reference in names]
    return out, comparisons


# ------------------------------------------------------------------ running

def wrk(scenario: Scenario, seconds: int) -> dict:
    command = [*priority(), "taskset", "-c", LOAD_CORE, "wrk", "-t1", f"-c{CONNECTIONS}", f"-d{seconds}s",
               "-s", str(ROOT / "bench" / "wrk.lua")]
    if scenario.token:
        command += ["-H", f"Authorization: Bearer {scenario.token}"]
    command.append(f"http://127.0.0.1:{scenario.envoy.port}/")
    env = dict(os.environ, BENCH_TOKENS=str(scenario.pool) if scenario.pool else "",
               BENCH_OFFSET=str(scenario.offset))
    out = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
    for line in out.stdout.splitlines():
        if line.startswith("BENCH "):
            result = json.loads(line[len("BENCH "):])
            # Requests still in flight at the end used tokens too: skip past them.
            scenario.offset += result["requests"] + 2 * CONNECTIONS
            return result
    raise SystemExit(f"bench: wrk failed on {scenario.name}:\n{out.stdout}\n{out.stderr}")


def measure(scenario: Scenario, seconds: int = SECONDS) -> dict:
    cpu_before = scenario.envoy.cpu_ns()
    result = wrk(scenario, seconds)
    cpu = scenario.envoy.cpu_ns() - cpu_before
    seconds = result["duration_us"] / 1e6
    result["rps"] = result["requests"] / seconds
    result["cpu_us_per_request"] = cpu / 1e3 / max(result["requests"], 1)
    result["cpu_share"] = cpu / 1e9 / seconds
    result["non2xx_share"] = result["status_errors"] / max(result["requests"], 1)
    return result


def probe(scenario: Scenario) -> None:
    """One request as the benchmark sends it, and one without a token where that must fail.
    Forged-token rows: the forged token is refused for its signature (the Wasm filter says so
    in `WWW-Authenticate`; native jwt_authn in its body), and a genuine token of the same key
    and claims passes, so the forged ones differ from valid ones in their signature only."""
    token = scenario.token
    if scenario.pool:
        token = scenario.pool.read_text().split("\n", 1)[0]
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    status, reply = http_status(scenario.envoy.port, headers)
    if status != scenario.expect and not (scenario.expect == 429 and status == 200):
        raise SystemExit(f"bench: probe of {scenario.name} got {status}, expected {scenario.expect}\n"
                         + scenario.envoy.log_path.read_text(errors="replace")[-2000:])
    if scenario.genuine:
        if "signature" not in reply.lower() and "Jwt verification fails" not in reply:
            raise SystemExit(f"bench: {scenario.name} refused the forged token for another reason: {reply}")
        if (status := http_status(scenario.envoy.port, {"Authorization": f"Bearer {scenario.genuine}"})[0]) != 200:
            raise SystemExit(f"bench: {scenario.name} refused a genuine token ({status})")
    if scenario.authn and (status := http_status(scenario.envoy.port, {})[0]) != 401:
        raise SystemExit(f"bench: {scenario.name} let a request without a token through ({status})")


def http_status(port: int, headers: dict) -> tuple[int, str]:
    """The status, and on a refusal its WWW-Authenticate header and body."""
    request = urllib.request.Request(f"http://127.0.0.1:{port}/", headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=5) as r:
            return r.status, ""
    except urllib.error.HTTPError as e:
        return e.code, (e.headers.get("www-authenticate") or "") + " " + e.read().decode(errors="replace")


def wasm_cache_stats(scenario: Scenario) -> dict:
    """The authn module's verified-token cache counters (a fresh-token run must not hit)."""
    out = {}
    for line in scenario.envoy.get("/stats/prometheus").splitlines():
        m = re.match(r"^(\S*wasmgate_authn_cache_(hits|misses))\S* (\d+)", line)
        if m:
            out[m.group(2)] = out.get(m.group(2), 0) + int(m.group(3))
    return out


def flood_stats(scenario: Scenario) -> dict:
    """Where a forged-token flood ended, over the whole run (warm-up and probes included):
    refused by the pre-auth limit (`limited`), let through to authn (`allowed`), refused by
    authn for the signature (`bad_signature`; native: `jwt_authn` denied)."""
    out = {}
    patterns = {
        "limited": r"wasmgate_ratelimit_rule_\S*(?<!_shadow)_limited",
        "allowed": r"wasmgate_ratelimit_rule_\S*_allowed",
        "bad_signature": r"wasmgate_authn_denied_bad_signature",
        "jwt_authn_denied": r"\S*jwt_authn_denied",
    }
    for line in scenario.envoy.get("/stats/prometheus").splitlines():
        for key, pattern in patterns.items():
            m = re.match(rf"^\S*{pattern}(\{{\S*\}})? (\d+)", line)
            if m:
                out[key] = out.get(key, 0) + int(m.group(2))
    return out


def export_stats(scenario: Scenario) -> dict:
    """What span export did over the whole run: spans accepted by the collector, dropped."""
    out = {}
    for line in scenario.envoy.get("/stats/prometheus").splitlines():
        m = re.match(r"^\S*wasmgate_tracing_(spans_exported|spans_dropped|traces_sampled)(\{\S*\})? (\d+)", line)
        if m:
            out[m.group(1)] = out.get(m.group(1), 0) + int(m.group(3))
    return out


def machine() -> dict:
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), "unknown")
    mem = next((line.split()[1] for line in Path("/proc/meminfo").read_text().splitlines()
                if line.startswith("MemTotal")), "0")
    version = subprocess.run(envoy_command() + ["--version"], capture_output=True, text=True).stdout
    envoy_version = re.search(r"version: \S+/(\d+\.\d+\.\d+)/", version)
    wrk_version = re.sub(r"\s*Copyright.*", "", subprocess.run(["wrk", "-v"], capture_output=True, text=True).stdout.split("\n", 1)[0])
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    dirty = subprocess.run(["git", "status", "--porcelain", "--", "filters", "shared"], cwd=ROOT,
                           capture_output=True, text=True).stdout.strip()
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gib": round(int(mem) / 1024 / 1024),
        "kernel": os.uname().release,
        "envoy": envoy_version.group(1) if envoy_version else version.strip(),
        "wrk": wrk_version.strip(),
        "commit": commit + (" (with uncommitted filter changes)" if dirty else ""),
        "load_before": os.getloadavg(),
        "nice": "SCHED_FIFO" if RT else NICE,
        "date": time.strftime("%Y-%m-%d %H:%M %Z"),
    }


def check_tools() -> None:
    for tool in ("wrk", "taskset"):
        if not shutil.which(tool):
            raise SystemExit(f"bench: `{tool}` is missing (make tools installs wrk)")
    if (os.cpu_count() or 1) < 2:
        raise SystemExit("bench: needs two cores (Envoy on one, wrk on the other)")
    for sub in ("configs", "logs", "tokens"):
        (WORK / sub).mkdir(parents=True, exist_ok=True)


def round_sequence(chosen: list[Scenario]) -> list[Scenario]:
    """One round's order: the scenarios as listed, with the no-filter limit run again before
    each later group, so that every "to limit" ratio pairs runs seconds apart, not minutes."""
    by_name = {s.name: s for s in chosen}
    again = {"ratelimit_admit": "limit", "chain": "limit", "chain_proxy": "limit_proxy"}
    sequence = []
    for s in chosen:
        limit = by_name.get(again.get(s.name, ""))
        if limit is not None:
            sequence.append(limit)
        sequence.append(s)
    return sequence


def start(pool_size: int, only: str = ONLY) -> tuple[list[Scenario], list[Comparison], list[Envoy]]:
    """Mint keys and the token pools in use, start the upstream and one Envoy per scenario, probe each.
    The caller stops the returned Envoys (also when this raises: they are in the list)."""
    signers = {alg: tokens.Signer(alg) for alg in ("RS256", "PS256", "ES256", "ES384", "ES512", "EdDSA")}
    pools = {name: WORK / "tokens" / f"{name}.txt" for name in [*signers, "forged-RS256", "forged-ES256"]}
    chosen, comparisons = scenarios(signers, pools, only)
    # Only the pools the chosen scenarios send: RSA and P-521 tokens take seconds per thousand.
    used = [name for name, path in pools.items() if any(s.pool == path for s in chosen)]
    log(f"minting {pool_size} tokens for each of {', '.join(used) or 'no pool'}")
    for name in used:
        alg = name.removeprefix("forged-")
        pool = signers[alg].forged_pool(pool_size) if name != alg else signers[alg].pool(pool_size)
        pools[name].write_text("\n".join(pool) + "\n")
    check_modules(chosen)
    upstream_port = free_port()
    envoys = [Envoy("upstream", configs.upstream(upstream_port, free_port()))]
    log(f"starting {len(chosen)} Envoys on core {ENVOY_CORE}")
    try:
        for s in chosen:
            route = configs.proxy_route() if s.route == "proxy" else configs.direct_route()
            clusters = [configs.upstream_cluster(upstream_port)] if s.route == "proxy" else []
            if s.collector:
                clusters.append(configs.collector_cluster(upstream_port))
            s.envoy = Envoy(s.name, configs.bootstrap(free_port(), free_port(), s.filters, route, clusters, s.request_id))
            envoys.append(s.envoy)
        deadline = time.time() + 120
        for e in envoys:
            e.wait_ready(deadline)
        for s in chosen:
            probe(s)
    except BaseException:
        for e in envoys:
            e.stop()
        raise
    return chosen, comparisons, envoys


def main() -> None:
    started = time.time()
    check_tools()
    info = machine()
    all_scenarios, comparisons, envoys = start(POOL)
    try:
        memory = {s.name: s.envoy.memory() for s in all_scenarios}
        log(f"warm-up {WARMUP:g} s each")
        for s in all_scenarios:
            wrk(s, WARMUP)
        sequence, position = round_sequence(all_scenarios), 0
        for r in range(ROUNDS):
            order = sequence if r % 2 == 0 else list(reversed(sequence))
            log(f"round {r + 1}/{ROUNDS}")
            for s in order:
                s.runs.append({**measure(s), "round": r, "position": position})
                position += 1
                last = s.runs[-1]
                log(f"  {s.name:20} {last['rps']:9.0f} req/s  p50 {last['p50_us']:6d} us  "
                    f"p99 {last['p99_us']:6d} us  Envoy CPU {last['cpu_share']:.0%}")
        cache = {s.name: wasm_cache_stats(s) for s in all_scenarios
                 if s.name.startswith(("authn", "chain", "flood", "gateway"))}
        flood = {s.name: flood_stats(s) for s in all_scenarios if "flood" in s.name}
        # The tick's last batch may still be on its way: one more tick, then read.
        time.sleep(1.2)
        export = {s.name: export_stats(s) for s in all_scenarios if s.collector}
    finally:
        for e in envoys:
            e.stop()

    info["load_after"] = os.getloadavg()
    info["minutes"] = (time.time() - started) / 60
    sizes = {name: (DIST / f"{name}.wasm").stat().st_size for name in ("tracing", "authn", "ratelimit", "gateway")
             if (DIST / f"{name}.wasm").exists()}
    if FLOOR_MODULE.exists():
        sizes["floor (empty filter)"] = FLOOR_MODULE.stat().st_size
    results = {
        "machine": info,
        "settings": {"rounds": ROUNDS, "seconds": SECONDS, "warmup": WARMUP, "connections": CONNECTIONS, "pool": POOL},
        "scenarios": [{"name": s.name, "label": s.label, "runs": s.runs} for s in all_scenarios],
        "comparisons": [c.__dict__ for c in comparisons],
        "memory": memory,
        "module_sizes": sizes,
        # Envoys whose one filter is the authn module: the report's "heap with authn loaded".
        "authn_loaded": [s.name for s in all_scenarios if [f["name"] for f in s.filters] == ["wasmgate.authn"]],
        "cache": cache,
        "flood": flood,
        "export": export,
    }
    (WORK / "results.json").write_text(json.dumps(results, indent=1))
    summary = report.summarize(results)
    print(report.console_table(summary))
    if ONLY:
        log("BENCH_ONLY set: docs/ left as they are")
        return
    report.write_docs(results, summary, ROOT / "docs" / "benchmarks.md", ROOT / "docs" / "benchmarks.svg")
    log(f"wrote docs/benchmarks.md and docs/benchmarks.svg in {info['minutes']:.1f} min")


if __name__ == "__main__":
    main()
