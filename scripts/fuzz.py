#!/usr/bin/env python3
"""Runs the cargo-fuzz targets of fuzz/ one after the other (one libFuzzer process at a time)
and prints a table: target, executions, executions/s, coverage (cov/ft), crashes.

Each target starts from the committed corpus (fuzz/corpus/<t>) and the seeds
(fuzz/seeds/<t>, written by the fuzz-seeds binary); what it finds goes to fuzz/work/<t>
(ignored by git; `make fuzz-merge` minimizes it into the committed corpus), crashing inputs to
fuzz/artifacts/<t>/. The libFuzzer log of each target is fuzz/logs/<t>.log, and the table is
also written to fuzz/logs/last-run.tsv.

Usage: scripts/fuzz.py --binaries DIR[:DIR] [--seconds 60] [--runs N] [--jobs N] [--targets a,b] [--merge]
(--merge: minimize corpus + work + seeds of each target into fuzz/corpus/<t>, at most --budget
bytes each, smallest inputs first, instead of fuzzing)
"""

import argparse
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FUZZ = ROOT / "fuzz"

# The dictionary files each target reads (fuzz/dict/), concatenated for libFuzzer.
DICTS = {
    "jws_token": ["jws_token", "json"],
    "jwt_claims": ["jwt_claims", "json"],
    "jwks": ["jwks", "json"],
    "pem_spki": ["pem_spki"],
    "credential_source": ["http"],
    "authn_request": ["http", "jws_token", "jwt_claims", "json"],
    "trace_headers": ["trace"],
    "tracing_plan": ["trace"],
    "canonical_path": ["http"],
    "request_matcher": ["http", "json"],
    "xff_hops": ["http"],
    "ratelimit_request": ["http", "json"],
    "config_authn": ["config", "jwks", "json"],
    "config_ratelimit": ["config", "json"],
    "config_tracing": ["config", "json"],
}


def targets():
    """The [[bin]] names of fuzz/libfuzzer/Cargo.toml, in order (the priority order)."""
    text = (FUZZ / "libfuzzer" / "Cargo.toml").read_text()
    return re.findall(r'\[\[bin\]\]\s*\nname = "([^"]+)"', text)


def dictionary(target, logs):
    names = DICTS.get(target, [])
    if not names:
        return []
    path = logs / f"{target}.dict"
    path.write_text("".join((FUZZ / "dict" / f"{n}.dict").read_text() for n in names))
    return [f"-dict={path}"]


def parse(log):
    """(executions, exec/s, cov, ft) from libFuzzer's final stats and status lines."""
    execs = re.findall(r"stat::number_of_executed_units:\s*(\d+)", log)
    rate = re.findall(r"stat::average_exec_per_sec:\s*(\d+)", log)
    status = re.findall(r"^#(\d+)\s+\w+\s+cov: (\d+) ft: (\d+)", log, re.M)
    cov, ft = (status[-1][1], status[-1][2]) if status else ("-", "-")
    if not execs and status:
        execs = [status[-1][0]]
    return (
        int(execs[-1]) if execs else 0,
        int(rate[-1]) if rate else 0,
        cov,
        ft,
    )


def binary_of(target, binaries):
    """The target's binary in the first of the `:`-separated directories that has it."""
    dirs = [Path(d) for d in str(binaries).split(":") if d]
    return next((d / target for d in dirs if (d / target).is_file()), dirs[-1] / target)


def run(target, seconds, runs, jobs, binaries, logs):
    """Runs `jobs` libFuzzer processes of one target on one corpus directory (each picks up
    what the others find), the runs shared out; executions and exec/s are their sums."""
    binary = binary_of(target, binaries)
    work = FUZZ / "work" / target
    artifacts = FUZZ / "artifacts" / target
    for d in (work, artifacts):
        d.mkdir(parents=True, exist_ok=True)
    before = set(artifacts.iterdir())
    dirs = [work, FUZZ / "corpus" / target, FUZZ / "seeds" / target]
    share = -(-runs // jobs) if runs else 0
    cmd = [
        str(binary),
        *[str(d) for d in dirs if d.is_dir()],
        f"-max_total_time={seconds}",
        *([f"-runs={share}"] if share else []),
        "-print_final_stats=1",
        "-timeout=10",
        "-rss_limit_mb=2048",
        "-max_len=16384",
        f"-artifact_prefix={artifacts}/",
        *dictionary(target, logs),
    ]
    started = time.time()
    paths = [logs / (f"{target}.log" if jobs == 1 else f"{target}.{i}.log") for i in range(jobs)]
    outs = [open(path, "w") for path in paths]
    procs = [subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT) for out in outs]
    codes = [p.wait() for p in procs]
    for out in outs:
        out.close()
    stats = [parse(path.read_text(errors="replace")) for path in paths]
    execs = sum(s[0] for s in stats)
    rate = sum(s[1] for s in stats)
    cov, ft = stats[0][2], stats[0][3]
    if not rate and execs:
        rate = int(execs / max(time.time() - started, 1))
    crashes = len(set(artifacts.iterdir()) - before)
    if any(codes) and crashes == 0:
        crashes = 1  # a failure libFuzzer did not write out (the log says what)
    return execs, rate, cov, ft, crashes


def merge(target, binaries, logs, budget):
    """Replaces fuzz/corpus/<t> by the inputs of corpus, work and seeds that keep coverage,
    the smallest first up to `budget` bytes, so the committed corpora stay small; the crash
    regressions (regression-*) are always kept."""
    corpus = FUZZ / "corpus" / target
    fresh = FUZZ / "work" / f"{target}.merged"
    shutil.rmtree(fresh, ignore_errors=True)
    fresh.mkdir(parents=True)
    dirs = [corpus, FUZZ / "work" / target, FUZZ / "seeds" / target]
    cmd = [str(binary_of(target, binaries)), "-merge=1", str(fresh), *[str(d) for d in dirs if d.is_dir()]]
    with open(logs / f"{target}.merge.log", "w") as out:
        subprocess.run(cmd, stdout=out, stderr=subprocess.STDOUT, check=True)
    kept = sorted(corpus.glob("regression-*")) if corpus.is_dir() else []
    for f in kept:
        shutil.copy(f, fresh / f.name)
    total = sum(f.stat().st_size for f in kept)
    for f in sorted(fresh.iterdir(), key=lambda f: (f.stat().st_size, f.name)):
        if f.name.startswith("regression-"):
            continue
        if total + f.stat().st_size > budget:
            f.unlink()
        else:
            total += f.stat().st_size
    shutil.rmtree(corpus, ignore_errors=True)
    shutil.move(str(fresh), str(corpus))
    files = list(corpus.iterdir())
    print(f"{target:<20} {len(files):>6} inputs {total:>9} bytes")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=int, default=60)
    parser.add_argument("--runs", type=int, default=0, help="stop a target after this many executions (0: no limit)")
    parser.add_argument("--jobs", type=int, default=1, help="processes per target (the runs shared out)")
    parser.add_argument("--targets", default="")
    parser.add_argument("--table", default="last-run.tsv", help="file under fuzz/logs for the table")
    parser.add_argument("--binaries", required=True, help="directories of the built fuzz binaries, `:`-separated, the first that has a target wins")
    parser.add_argument("--merge", action="store_true")
    parser.add_argument("--budget", type=int, default=8192, help="bytes kept per target by --merge")
    args = parser.parse_args()
    chosen = [t for t in args.targets.split(",") if t] or targets()
    logs = FUZZ / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    if args.merge:
        for target in chosen:
            merge(target, args.binaries, logs, args.budget)
        return
    rows = []
    header = f"{'target':<20} {'executions':>12} {'exec/s':>8} {'cov':>6} {'ft':>7} {'crashes':>7}"
    print(header)
    for target in chosen:
        execs, rate, cov, ft, crashes = run(target, args.seconds, args.runs, max(args.jobs, 1), args.binaries, logs)
        rows.append((target, execs, rate, cov, ft, crashes))
        print(f"{target:<20} {execs:>12} {rate:>8} {cov:>6} {ft:>7} {crashes:>7}", flush=True)
    with open(logs / args.table, "w") as out:
        out.write("target\texecutions\texec_per_s\tcov\tft\tcrashes\n")
        for row in rows:
            out.write("\t".join(str(v) for v in row) + "\n")
    failed = [r[0] for r in rows if r[5]]
    if failed:
        print(f"crashes in: {', '.join(failed)} (fuzz/artifacts/<target>/, fuzz/logs/<target>.log)")
        sys.exit(1)


if __name__ == "__main__":
    main()
