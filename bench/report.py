"""Turns bench results into medians and ratios, a console table, docs/benchmarks.md (only the
part between its result markers; the analysis around it is written by hand) and an SVG plot."""

import statistics
from html import escape
from pathlib import Path

BEGIN = "<!-- bench:results:begin — written by `make bench`; edit outside the markers -->"
END = "<!-- bench:results:end -->"

# The native reference and the no-filter limit of each scenario (same route kind).
NATIVE = {
    "authn_repeat": "jwt_repeat",
    "authn_fresh": "jwt_fresh",
    "authn_ps256_fresh": "jwt_ps256_fresh",
    "authn_es256_fresh": "jwt_es256_fresh",
    "authn_es384_fresh": "jwt_es384_fresh",
    "authn_es512_fresh": "jwt_es512_fresh",
    "authn_eddsa_fresh": "jwt_eddsa_fresh",
    "flood_rs256": "jwt_flood_rs256",
    "ratelimit_admit": "local_admit",
    "ratelimit_refuse": "local_refuse",
    "chain": "native_chain",
    "gateway": "native_chain",
    "chain_proxy": "native_chain_proxy",
}
# What the gateway module may keep in memory over no-filter Envoy, as a share of what the three
# modules it replaces keep (one VM and one copy of the shared code instead of three).
MEMORY_SHARE_TARGET = 0.60
MEMORY_KINDS = (("allocated", "allocated"), ("heap", "heap"), ("rss", "RSS"))
# Issue #14: Envoy's heap with the authn module loaded (52 MiB when it was set).
AUTHN_HEAP_TARGET_MIB = 30
PROXIED = {"limit_proxy", "tracing_proxy", "chain_proxy", "native_chain_proxy"}


def pairs(by_name: dict, subject: str, reference: str) -> list[tuple[dict, dict]]:
    """Each run of `subject` with the run of `reference` nearest to it in the same round."""
    out = []
    for x in by_name[subject]["runs"]:
        same_round = [y for y in by_name[reference]["runs"] if y["round"] == x["round"]]
        if same_round:
            out.append((x, min(same_round, key=lambda y: abs(y["position"] - x["position"]))))
    return out


def ratio_runs(by_name: dict, subject: str, reference: str) -> list[float]:
    """Per-run ratios of requests/s, each against the nearest reference run of its round."""
    return [x["rps"] / y["rps"] for x, y in pairs(by_name, subject, reference) if y["rps"] > 0]


def cpu_ratio_runs(by_name: dict, subject: str, reference: str) -> list[float]:
    """The same ratio from Envoy's CPU time per request (reference / subject): what the
    requests/s ratio would be with both Envoys saturating their core. Less disturbed by
    other load on the machine than requests/s, since time spent descheduled does not count."""
    return [y["cpu_us_per_request"] / x["cpu_us_per_request"]
            for x, y in pairs(by_name, subject, reference) if x["cpu_us_per_request"] > 0]


def summarize(results: dict) -> dict:
    by_name = {s["name"]: s for s in results["scenarios"]}
    rows = []
    for s in results["scenarios"]:
        runs = s["runs"]
        med = lambda key: statistics.median(r[key] for r in runs)  # noqa: E731
        limit = "limit_proxy" if s["name"] in PROXIED else "limit"
        native = NATIVE.get(s["name"])
        rows.append({
            "name": s["name"],
            "label": s["label"],
            "rps": med("rps"),
            "rps_spread": (min(r["rps"] for r in runs), max(r["rps"] for r in runs)),
            "p50_us": med("p50_us"),
            "p99_us": med("p99_us"),
            "cpu_us": med("cpu_us_per_request"),
            "cpu_share": med("cpu_share"),
            "non2xx": med("non2xx_share"),
            "socket_errors": sum(r["connect_errors"] + r["read_errors"] + r["write_errors"] + r["timeouts"] for r in runs),
            "to_native": statistics.median(ratio_runs(by_name, s["name"], native)) if native in by_name else None,
            "to_limit": statistics.median(ratio_runs(by_name, s["name"], limit))
            if limit in by_name and limit != s["name"] else None,
        })
    comparisons = []
    for c in results["comparisons"]:
        ratios = ratio_runs(by_name, c["subject"], c["reference"])
        median = statistics.median(ratios)
        comparisons.append({**c, "ratio": median, "low": min(ratios), "high": max(ratios),
                            "cpu_ratio": statistics.median(cpu_ratio_runs(by_name, c["subject"], c["reference"])),
                            "met": None if c["target"] is None else median >= c["target"]})
    return {"rows": rows, "comparisons": comparisons, "memory_share": memory_share(results["memory"]),
            "authn_heap": authn_heap(results)}


def authn_heap(results: dict) -> dict | None:
    """The largest heap among the Envoys that load the authn module alone (each key type they
    hold counts), against the issue's target."""
    loaded = [n for n in results.get("authn_loaded", []) if n in results["memory"]]
    if not loaded:
        return None
    name = max(loaded, key=lambda n: results["memory"][n]["heap"])
    heap = results["memory"][name]["heap"]
    return {"scenario": name, "heap": heap, "of": len(loaded), "met": heap <= AUTHN_HEAP_TARGET_MIB * 1024 * 1024}


def memory_share(memory: dict) -> list[dict]:
    """Per memory figure: what the three modules (`chain`) and the gateway module (`gateway`) add
    to no-filter Envoy (`limit`) right after start, and the gateway's share of the chain's."""
    if not all(name in memory for name in ("limit", "chain", "gateway")):
        return []
    out = []
    for key, label in MEMORY_KINDS:
        chain = memory["chain"][key] - memory["limit"][key]
        gateway = memory["gateway"][key] - memory["limit"][key]
        share = gateway / chain if chain > 0 else None
        out.append({"what": label, "chain": chain, "gateway": gateway, "share": share,
                    "met": None if share is None else share <= MEMORY_SHARE_TARGET})
    return out


def console_table(summary: dict) -> str:
    lines = [f"{'scenario':22} {'req/s':>9} {'p50 us':>8} {'p99 us':>8} {'CPU us/req':>10} {'native':>7} {'limit':>7}"]
    for r in summary["rows"]:
        lines.append(f"{r['name']:22} {r['rps']:9.0f} {r['p50_us']:8.0f} {r['p99_us']:8.0f} {r['cpu_us']:10.1f} "
                     f"{fmt_ratio(r['to_native']):>7} {fmt_ratio(r['to_limit']):>7}")
    lines.append("")
    for c in summary["comparisons"]:
        verdict = "" if c["met"] is None else ("  target %.2fx %s" % (c["target"], "met" if c["met"] else "MISSED"))
        lines.append(f"{c['what']:55} {c['ratio']:5.2f}x  (CPU {c['cpu_ratio']:5.2f}x){verdict}")
    if (h := summary.get("authn_heap")) is not None:
        lines.append(f"Envoy heap with authn loaded ({h['scenario']}, largest of {h['of']})  {mib(h['heap']):>6} MiB"
                     f"  target <= {AUTHN_HEAP_TARGET_MIB} MiB {'met' if h['met'] else 'MISSED'}")
    for m in summary.get("memory_share", []):
        lines.append(f"gateway module memory above no filter, {m['what']:9} {mib(m['gateway']):>6} of {mib(m['chain']):>6} MiB"
                     f" = {fmt_share(m['share'])} of the three modules'  target <= {MEMORY_SHARE_TARGET:.0%} "
                     + ("" if m["met"] is None else ("met" if m["met"] else "MISSED")))
    return "\n".join(lines)


def fmt_share(value) -> str:
    return "—" if value is None else f"{value:.0%}"


def fmt_ratio(value) -> str:
    return "—" if value is None else f"{value:.2f}×"


def mib(n: int) -> str:
    return f"{n / 1024 / 1024:.1f}"


def results_markdown(results: dict, summary: dict, plot_name: str) -> str:
    m, st = results["machine"], results["settings"]
    niceness = ""
    if m.get("nice") == "SCHED_FIFO":
        niceness = " (Envoy and wrk at real-time priority, SCHED_FIFO)"
    elif m.get("nice"):
        niceness = f" (Envoy and wrk at nice {m['nice']})"
    out = [
        BEGIN,
        "",
        f"**Latest run:** {m['date']} · commit `{m['commit']}` · Envoy {m['envoy']} (`--concurrency 1`, V8) · "
        f"{m['wrk']} · {m['cpu']}, {m['cores']} cores, {m['memory_gib']} GiB, Linux {m['kernel']} · "
        f"load average {m['load_before'][0]:.2f} before, {m['load_after'][0]:.2f} after{niceness} · "
        f"{st['rounds']} rounds × {st['seconds']:g} s per scenario, {st['connections']} connections · "
        f"whole run {m['minutes']:.1f} min.",
        "",
        f"![Ratios, same run]({plot_name})",
        "",
        "### Ratios against the targets",
        "",
        "Median of per-round ratios of requests/s: each run against the reference's nearest run of the same round "
        "(the limit runs again before the ratelimit and chain groups); min–max over rounds. "
        "*By CPU* is the same ratio computed from the Envoy's CPU time per request (reference ÷ subject), "
        "which other load on the machine disturbs less; the two agree when both Envoys keep their core busy.",
        "",
        "| comparison | ratio | rounds min–max | by CPU | target | |",
        "|---|---:|---:|---:|---:|---|",
    ]
    for c in summary["comparisons"]:
        target = "" if c["target"] is None else f"≥ {c['target']:.2f}×"
        verdict = "" if c["met"] is None else ("met" if c["met"] else f"**missed by {(c['target'] - c['ratio']) / c['target']:.0%}**")
        out.append(f"| {c['what']} | **{c['ratio']:.2f}×** | {c['low']:.2f}–{c['high']:.2f} | {c['cpu_ratio']:.2f}× "
                   f"| {target} | {verdict} |")
    out += [
        "",
        "### Every scenario",
        "",
        "Medians over rounds. *Envoy CPU* is the CPU time of the Envoy under test (all its threads) per "
        "request; *core busy* is that Envoy's share of its core — near 100 % means Envoy, not wrk, set the pace. "
        "*non-2xx* counts refusals (429 in the mostly-refuse rows; in the forged-token flood rows every "
        "request is refused: 401 by authn, or 429 by the limit in front of it).",
        "",
        "| scenario | req/s | p50 ms | p99 ms | Envoy CPU µs/req | core busy | non-2xx | to native | to limit |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in summary["rows"]:
        out.append(
            f"| {r['label']} (`{r['name']}`) | {r['rps']:,.0f} | {r['p50_us'] / 1000:.2f} | {r['p99_us'] / 1000:.2f} | "
            f"{r['cpu_us']:.1f} | {r['cpu_share']:.0%} | {r['non2xx']:.1%} | {fmt_ratio(r['to_native'])} | {fmt_ratio(r['to_limit'])} |")
    errors = [r for r in summary["rows"] if r["socket_errors"]]
    if errors:
        out += ["", "Socket errors or timeouts (over all rounds): "
                + ", ".join(f"`{r['name']}` {r['socket_errors']}" for r in errors) + "."]
    out += [
        "",
        "### Memory and module sizes",
        "",
        "Envoy memory right after start, before any request (admin `/memory`: bytes allocated by tcmalloc "
        "and its heap; RSS from `/proc`), every scenario's Envoy. The Wasm rows hold their modules loaded and configured.",
        "",
        "| Envoy | allocated MiB | heap MiB | RSS MiB |",
        "|---|---:|---:|---:|",
    ]
    for s in results["scenarios"]:
        if (mem := results["memory"].get(s["name"])) is not None:
            out.append(f"| {s['label']} (`{s['name']}`) | {mib(mem['allocated'])} | {mib(mem['heap'])} | {mib(mem['rss'])} |")
    if (h := summary.get("authn_heap")) is not None:
        verdict = "met" if h["met"] else f"**missed by {mib(h['heap'] - AUTHN_HEAP_TARGET_MIB * 1024 * 1024)} MiB**"
        out += ["", "| Envoy heap with authn loaded | heap MiB | target | |", "|---|---:|---:|---|",
                f"| the largest of the {h['of']} Envoys running the authn module alone (`{h['scenario']}`) "
                f"| **{mib(h['heap'])}** | ≤ {AUTHN_HEAP_TARGET_MIB} MiB | {verdict} |"]
    if summary.get("memory_share"):
        out += ["", "What the gateway module (`gateway`) adds to no-filter Envoy (`limit`) against what the three "
                "modules it replaces add (`chain`), same policies, one Envoy each right after start; target: "
                f"≤ {MEMORY_SHARE_TARGET:.0%} of the three modules' figure.",
                "", "| above no filter | three modules MiB | gateway module MiB | gateway's share | |",
                "|---|---:|---:|---:|---|"]
        for m in summary["memory_share"]:
            verdict = "" if m["met"] is None else ("met" if m["met"] else "**missed**")
            out.append(f"| {m['what']} | {mib(m['chain'])} | {mib(m['gateway'])} | **{fmt_share(m['share'])}** | {verdict} |")
    out += ["", "| module | bytes |", "|---|---:|"]
    for name, size in results["module_sizes"].items():
        out.append(f"| {name} | {size:,} |")
    if results.get("cache"):
        out += ["", "authn verified-token cache counters at the end of the run (the fresh-token pool is larger "
                "than the cache and taken in turn, so fresh-token runs must show no hits; forged tokens never "
                "verify, so they are never cached and every one that reaches authn is a miss): "
                + "; ".join(f"`{n}` {c.get('hits', 0):,} hits / {c.get('misses', 0):,} misses"
                            for n, c in results["cache"].items()) + "."]
    if results.get("flood"):
        out += ["", "Where the forged-token floods ended, counted by the Envoys over the whole run (warm-up and "
                "probes included): " + "; ".join(flood_summary(n, c) for n, c in results["flood"].items()) + "."]
    if results.get("export"):
        out += ["", "Span export over the whole run (warm-up and probes included), counted by the Envoys: "
                + "; ".join(f"`{n}` {c.get('traces_sampled', 0):,} sampled, {c.get('spans_exported', 0):,} "
                            f"exported, {c.get('spans_dropped', 0):,} dropped"
                            for n, c in results["export"].items()) + "."]
    out += ["", "<details><summary>Requests/s of every round</summary>", "",
            "| scenario | " + " | ".join(f"round {i + 1}" for i in range(st["rounds"])) + " |",
            "|---|" + "---:|" * st["rounds"]]
    for s in results["scenarios"]:
        per_round = [" / ".join(f"{r['rps']:,.0f}" for r in s["runs"] if r["round"] == i) for i in range(st["rounds"])]
        out.append(f"| `{s['name']}` | " + " | ".join(per_round) + " |")
    out += ["", "</details>", "", END]
    return "\n".join(out)


def flood_summary(name: str, c: dict) -> str:
    if "jwt_authn_denied" in c and not c.get("bad_signature"):
        return f"`{name}` {c['jwt_authn_denied']:,} refused by jwt_authn"
    parts = []
    if "limited" in c or "allowed" in c:
        total = c.get("limited", 0) + c.get("allowed", 0)
        share = c.get("limited", 0) / total if total else 0
        parts.append(f"{c.get('limited', 0):,} refused by the pre-auth limit ({share:.1%}), "
                     f"{c.get('allowed', 0):,} let through to authn")
    parts.append(f"{c.get('bad_signature', 0):,} signature checks failed in authn")
    return f"`{name}` " + ", ".join(parts)


SKELETON = """# Benchmarks

{results}

## Where the time goes

(Written by hand after a run.)

## Next steps
"""


def write_docs(results: dict, summary: dict, doc: Path, plot: Path) -> None:
    block = results_markdown(results, summary, plot.name)
    text = doc.read_text() if doc.exists() else ""
    if BEGIN in text and END in text:
        head, rest = text.split(BEGIN, 1)
        tail = rest.split(END, 1)[1]
        text = head + block + tail
    else:
        text = SKELETON.format(results=block)
    doc.write_text(text)
    plot.write_text(svg(summary["comparisons"], results["machine"]))


def svg(comparisons: list, machine: dict) -> str:
    """A horizontal bar per comparison; the target, where there is one, as a tick. The scale
    stops at 3×: a larger ratio (the pre-auth limit against a forged-token flood) is drawn to
    the edge, with its value as the label."""
    row, left, width, top = 26, 370, 420, 48
    scale_max = min(3.0, max(2.0, max(c["high"] for c in comparisons) * 1.05))
    height = top + row * len(comparisons) + 40
    x = lambda v: left + width * min(v, scale_max) / scale_max  # noqa: E731
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{left + width + 90}" height="{height}" '
        f'font-family="sans-serif" font-size="12">',
        '<rect width="100%" height="100%" fill="white"/>',
        f'<text x="10" y="20" font-size="14" font-weight="bold">wasmgate: requests/s ratios, same run '
        f'(Envoy {escape(machine["envoy"])}, one worker)</text>',
        f'<text x="10" y="36" fill="#555">bar: median of per-round ratios, whisker: min–max; '
        f'black tick: target. {escape(machine["date"])}</text>',
    ]
    for v in [i * 0.5 for i in range(int(scale_max / 0.5) + 1)]:
        parts.append(f'<line x1="{x(v):.1f}" y1="{top - 4}" x2="{x(v):.1f}" y2="{height - 30}" '
                     f'stroke="{"#999" if v == 1 else "#e4e4e4"}"/>')
        parts.append(f'<text x="{x(v):.1f}" y="{height - 16}" text-anchor="middle" fill="#555">{v:g}×</text>')
    for i, c in enumerate(comparisons):
        y = top + i * row
        color = "#8a8a8a" if c["met"] is None else ("#2e8b57" if c["met"] else "#c0392b")
        parts.append(f'<text x="{left - 8}" y="{y + 15}" text-anchor="end">{escape(c["what"])}</text>')
        parts.append(f'<rect x="{left}" y="{y + 4}" width="{x(c["ratio"]) - left:.1f}" height="14" fill="{color}"/>')
        parts.append(f'<line x1="{x(c["low"]):.1f}" y1="{y + 11}" x2="{x(c["high"]):.1f}" y2="{y + 11}" stroke="#222"/>')
        parts.append(f'<text x="{x(max(c["ratio"], c["high"])) + 6:.1f}" y="{y + 15}">{c["ratio"]:.2f}×</text>')
        if c["target"] is not None:
            parts.append(f'<line x1="{x(c["target"]):.1f}" y1="{y + 1}" x2="{x(c["target"]):.1f}" y2="{y + 21}" '
                         f'stroke="black" stroke-width="2.5"/>')
    parts.append("</svg>")
    return "\n".join(parts) + "\n"
