"""`make soak`: the whole chain in real Envoy (`dist/gateway.wasm`, `--concurrency 2`) under
mixed hostile traffic for SOAK_SECONDS (default 600), with its dependencies failing on a
schedule, while Envoy's memory and the filters' metrics are sampled every few seconds.

Traffic, from SOAK_CLIENTS threads (default 8), each request one of:
  fresh      a new RS256 token (random sub and tenant: far more tenants than the tenant rule's
             slot budget) → 200, or 429 from a limit, or 503 keys_unavailable (see jwks below)
  repeated   one token sent again and again (authn's cache) → 200 or 429
  junk       a token that is not a JWS → 401
  forged     a real token with one signature byte changed → 401
  tricks     paths that walk from /public into a protected path (`/public/../api/x`,
             `/public/%2e%2e/api/x`, `/public/%2F..%2Fapi/x`, …) without a token → 400 or 401,
             never 200; an encoded public path (`/%70ublic/x`) → 200
  public     `/public/x` → 200 or 429
  global     `/global/x` with the API key: the rate-limit service decides → 200 or 429
Dependencies failing: the identity provider answers 503 for 20 s of every minute (cached keys
keep verifying), and the rate-limit service is killed for 15 s of every 90 (global.on_failure:
local decides those requests).

It fails when a verdict is wrong (any status outside the kind's set: above all a 5xx the policy
did not ask for, or a 200 for a path trick), or when memory keeps growing after the warm-up
(the first SOAK_WARMUP seconds, default 120): the allocated bytes of the last third of the
samples against the first third, more than 10 % and 4 MiB up. It prints a table and writes every
sample to .work/soak/samples.csv (SOAK_DIR). docs/reliability.md records the last long run.
"""

import csv
import json
import os
import random
import re
import sys
import threading
import time
from collections import Counter
from pathlib import Path

sys.dont_write_bytecode = True
TESTS = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(TESTS / "istio"))
sys.path.insert(0, str(TESTS / "dashboard"))

import yaml  # noqa: E402
from processes import ROOT, Envoy, free_port  # noqa: E402
from servers import EchoUpstream, IdentityProvider, request  # noqa: E402
from services import RateLimitService  # noqa: E402
from test_dashboard import cluster, envoy_yaml, wasm_config  # noqa: E402

SECONDS = int(os.environ.get("SOAK_SECONDS", "600"))
WARMUP = int(os.environ.get("SOAK_WARMUP", "120"))
CLIENTS = int(os.environ.get("SOAK_CLIENTS", "8"))
SAMPLE_EVERY = 5
OUT = Path(os.environ.get("SOAK_DIR", ROOT / ".work" / "soak"))

IDP_HOST = "idp.example.com"
ISSUER = f"https://{IDP_HOST}"
API_KEY = "wasmgate-soak-key"
TENANT_BUDGET = 64

# What each kind of request may get. 503 is a verdict only where the policy asks for it.
ALLOWED = {
    "fresh": {200, 429, 503},
    "repeated": {200, 429},
    "junk": {401},
    "forged": {401},
    "tricks": {400, 401},
    "encoded_public": {200, 429},
    "public": {200, 429},
    "global": {200, 429},
}
# The only 503s a policy sends here: a token of a provider whose keys never arrived.
ASKED_503 = {"keys_unavailable"}
WEIGHTS = {"fresh": 3, "repeated": 4, "junk": 2, "forged": 2, "tricks": 2, "encoded_public": 1,
           "public": 2, "global": 2}
TRICKS = ["/public/../api/x", "/public/%2e%2e/api/x", "/public/%2E%2E/api/x", "/public/.%2e/api/x",
          "/public/%2Fapi/x", "/public/..%2Fapi/x", "/public/..%5Capi/x", "/public/..;/api/x",
          "/public/./../api/x", "//public/../api/x"]


def gateway_config() -> dict:
    import hashlib
    return {
        "tracing": {"sampling_ratio": 0.1, "export": {"cluster": "otel_collector"}},
        "pre_auth": {"rules": [{"name": "pre-auth", "key": [{"source": "client"}],
                                "capacity": 100000, "refill": 100000, "period_ms": 1000}]},
        "authn": {
            "providers": [{"name": "idp", "issuer": ISSUER, "audiences": ["api"],
                           "remote_jwks": {"cluster": "jwks", "authority": IDP_HOST, "refresh_seconds": 10,
                                           "retry_initial_ms": 200, "retry_max_ms": 2000},
                           "claim_headers": [{"claim": "sub", "header": "x-user-id"}]}],
            "api_keys": {"consumers": [{"name": "soak", "key_sha256": hashlib.sha256(API_KEY.encode()).hexdigest()}]},
            "rules": [{"name": "public", "match": {"prefix": "/public"}, "public": True}],
            "default": {"any_of": ["idp", "api_key"]},
        },
        "ratelimit": {
            "global": {"cluster": "ratelimit_service", "domain": "wasmgate", "timeout_ms": 250,
                       "on_failure": "local"},
            "rules": [
                {"name": "per-client-global", "mode": "global", "match": {"prefix": "/global"},
                 "key": [{"source": "client"}], "capacity": 1000000, "period_ms": 60000},
                # Thousands of tenants into 64 slots: collisions, never unbounded memory.
                {"name": "per-tenant", "key": [{"source": "claim", "claim": "tenant"}], "on_missing_key": "skip",
                 "budget": TENANT_BUDGET, "capacity": 20, "refill": 20, "period_ms": 1000},
                {"name": "per-user", "key": [{"source": "identity"}], "on_missing_key": "skip",
                 "capacity": 50, "refill": 50, "period_ms": 1000},
            ],
        },
    }


def bootstrap(workdir: Path, upstream: int, idp: IdentityProvider, rls: int) -> tuple[Path, int, int]:
    """envoy-config/gateway.yaml on free ports with the soak's configuration and clusters."""
    config = envoy_yaml("gateway.yaml")
    port, admin_port = free_port(), free_port()
    config["admin"]["address"]["socket_address"]["port_value"] = admin_port
    config["static_resources"]["listeners"][0]["address"]["socket_address"]["port_value"] = port
    wasm = wasm_config(config)
    wasm["vm_config"]["code"]["local"]["filename"] = str(ROOT / "dist" / "gateway.wasm")
    wasm["configuration"]["value"] = json.dumps(gateway_config())
    jwks = cluster(envoy_yaml("authn.yaml"), "jwks", "jwks", idp.port)
    jwks["transport_socket"] = {"name": "envoy.transport_sockets.tls", "typed_config": {
        "@type": "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext",
        "sni": IDP_HOST,
        "common_tls_context": {"validation_context": {"trusted_ca": {"filename": str(idp.ca_file)}}},
    }}
    global_config = envoy_yaml("ratelimit-global.yaml")
    config["static_resources"]["clusters"] = [
        cluster(config, "upstream", "upstream", upstream),
        cluster(config, "otel_collector", "otel_collector", upstream),
        jwks,
        cluster(global_config, "ratelimit_service", "ratelimit_service", rls),
    ]
    path = workdir / "envoy.yaml"
    path.write_text(yaml.safe_dump(config))
    return path, port, admin_port


class Traffic:
    """The client threads and what they saw."""

    def __init__(self, port: int, idp: IdentityProvider):
        self.port, self.idp = port, idp
        self.repeated = idp.token({"iss": ISSUER, "aud": "api", "sub": "steady", "tenant": "t-steady"}, 3600)
        self.counts: Counter = Counter()
        self.wrong: list[str] = []
        self.lock = threading.Lock()
        self.stop = threading.Event()

    def one(self, rng: random.Random) -> tuple[str, int, str]:
        kind = rng.choices(list(WEIGHTS), weights=list(WEIGHTS.values()))[0]
        headers, path = {}, "/api/items"
        if kind == "fresh":
            token = self.idp.token({"iss": ISSUER, "aud": "api", "sub": f"u{rng.randrange(10**6)}",
                                    "tenant": f"t{rng.randrange(5000)}"})
            headers["authorization"] = f"Bearer {token}"
        elif kind == "repeated":
            headers["authorization"] = f"Bearer {self.repeated}"
        elif kind == "junk":
            headers["authorization"] = "Bearer " + rng.choice(["x", "a.b.c", "e30.e30.", "....", "\u00e9" * 3])
        elif kind == "forged":
            head, body, sig = self.repeated.split(".")
            flipped = sig[:10] + ("A" if sig[10] != "A" else "B") + sig[11:]
            headers["authorization"] = f"Bearer {head}.{body}.{flipped}"
        elif kind == "tricks":
            path = rng.choice(TRICKS)
        elif kind == "encoded_public":
            path = "/%70ublic/x"
        elif kind == "public":
            path = "/public/x"
        elif kind == "global":
            path, headers["x-api-key"] = "/global/x", API_KEY
        try:
            response = request(self.port, "GET", path, headers, timeout=10)
            status = response.status
            error = ""
            if status >= 400:
                try:
                    error = response.json().get("error", "")
                except (ValueError, AttributeError):
                    error = "(no JSON body)"
        except OSError as e:
            status, error = 0, f"connection: {e}"
        return kind, status, error

    def run(self, seed: int) -> None:
        rng = random.Random(seed)
        while not self.stop.is_set():
            kind, status, error = self.one(rng)
            ok = status in ALLOWED[kind] and (status != 503 or error in ASKED_503)
            with self.lock:
                self.counts[(kind, status)] += 1
                if not ok and len(self.wrong) < 50:
                    self.wrong.append(f"{kind}: {status} {error}")
                elif not ok:
                    self.counts[("wrong", 0)] += 1


def memory(admin_port: int, pid: int) -> dict:
    stats = json.loads(request(admin_port, "GET", "/memory").body)
    rss = 0
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            rss = int(line.split()[1]) * 1024
    return {"allocated": int(stats["allocated"]), "heap": int(stats["heap_size"]), "rss": rss}


def metrics(admin_port: int) -> dict:
    text = request(admin_port, "GET", "/stats/prometheus").body.decode()
    wanted = {}
    for line in text.splitlines():
        m = re.match(r"^(wasmgate_\w+?)(\{[^}]*\})? (\d+(?:\.\d+)?)$", line)
        if m:
            wanted[m.group(1)] = wanted.get(m.group(1), 0) + float(m.group(3))
    keys = ["wasmgate_authn_allowed", "wasmgate_authn_denied_bad_signature", "wasmgate_authn_denied_malformed",
            "wasmgate_authn_denied_keys_unavailable", "wasmgate_ratelimit_rule_per_tenant_slot_collisions",
            "wasmgate_ratelimit_global_failure_local", "wasmgate_tracing_spans_exported",
            "wasmgate_tracing_spans_dropped"]
    return {k: int(wanted.get(k, 0)) for k in keys}


def growth(samples: list[dict]) -> tuple[float, float]:
    """Mean allocated bytes of the first and last third of the post-warm-up samples."""
    after = [s["allocated"] for s in samples if s["t"] >= WARMUP]
    if len(after) < 6:
        return 0.0, 0.0
    third = len(after) // 3
    return sum(after[:third]) / third, sum(after[-third:]) / third


def main() -> int:
    OUT.mkdir(parents=True, exist_ok=True)
    workdir = OUT / "run"
    workdir.mkdir(exist_ok=True)
    limits = (ROOT / "envoy-config" / "rls" / "limitador-limits.yaml").read_text()
    samples: list[dict] = []
    events: list[str] = []
    with EchoUpstream() as upstream, IdentityProvider(IDP_HOST, workdir) as idp, \
            RateLimitService(limits, workdir) as rls:
        config, port, admin_port = bootstrap(workdir, upstream.port, idp, rls.port)
        with Envoy(config, admin_port, workdir) as envoy:
            traffic = Traffic(port, idp)
            threads = [threading.Thread(target=traffic.run, args=(i,), daemon=True) for i in range(CLIENTS)]
            for t in threads:
                t.start()
            started = time.monotonic()
            print(f"soak: {SECONDS} s, {CLIENTS} clients, warm-up {WARMUP} s; samples every {SAMPLE_EVERY} s",
                  flush=True)
            rls_down_until = 0.0
            while (now := time.monotonic() - started) < SECONDS:
                idp_down = (now % 60) >= 40
                if idp.down != idp_down:
                    idp.down = idp_down
                    events.append(f"{now:5.0f} s identity provider {'down' if idp_down else 'up'}")
                if int(now) % 90 >= 75 and rls_down_until == 0.0:
                    rls.kill_service()
                    rls_down_until = now + 15
                    events.append(f"{now:5.0f} s rate-limit service killed")
                elif rls_down_until and now >= rls_down_until:
                    rls.start_service()
                    rls_down_until = 0.0
                    events.append(f"{now:5.0f} s rate-limit service restarted")
                with traffic.lock:
                    total = sum(c for (k, _), c in traffic.counts.items() if k != "wrong")
                sample = {"t": round(now, 1), "requests": total, **memory(admin_port, envoy.process.pid),
                          **metrics(admin_port)}
                samples.append(sample)
                if len(samples) % 12 == 1:
                    print(f"soak: {now:5.0f} s  {total:8d} requests  allocated {sample['allocated'] / 2**20:6.1f} MiB"
                          f"  RSS {sample['rss'] / 2**20:6.1f} MiB  wrong {len(traffic.wrong)}", flush=True)
                time.sleep(SAMPLE_EVERY)
            traffic.stop.set()
            for t in threads:
                t.join(timeout=15)
            if rls_down_until:
                rls.start_service()
    with open(OUT / "samples.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(samples[0]))
        writer.writeheader()
        writer.writerows(samples)
    first, last = growth(samples)
    grew = last - first
    memory_ok = not (grew > 0.10 * first and grew > 4 * 2**20)
    total = samples[-1]["requests"]
    print(f"\n| | |\n|---|---|\n| duration | {SECONDS} s ({CLIENTS} clients) |\n| requests | {total:,} "
          f"({total / SECONDS:,.0f}/s) |")
    print(f"| allocated after warm-up | {first / 2**20:.1f} MiB → {last / 2**20:.1f} MiB "
          f"({'flat' if memory_ok else 'GROWING'}) |")
    print(f"| RSS first → last sample | {samples[0]['rss'] / 2**20:.1f} → {samples[-1]['rss'] / 2**20:.1f} MiB |")
    print(f"| wrong verdicts | {len(traffic.wrong) + traffic.counts[('wrong', 0)]} |")
    for k, v in samples[-1].items():
        if k.startswith("wasmgate_"):
            print(f"| `{k}` | {v:,} |")
    print("\n| kind | status | requests |\n|---|---|---:|")
    for (kind, status), count in sorted(traffic.counts.items()):
        if kind != "wrong":
            print(f"| {kind} | {status} | {count:,} |")
    print("\nevents: " + "; ".join(events))
    print(f"samples: {OUT / 'samples.csv'}")
    if traffic.wrong:
        print("wrong verdicts (first ones):\n  " + "\n  ".join(traffic.wrong[:20]))
    ok = memory_ok and not traffic.wrong
    print(f"\nsoak: {'PASS' if ok else 'FAIL'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
