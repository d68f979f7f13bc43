"""Traject's benchmarks: every figure against a baseline measured in the same run.

    make bench          # everything, SQLite and a throwaway PostgreSQL; writes bench/RESULTS.md
    make bench-quick    # smaller sizes, about a minute; writes bench/RESULTS-quick.md

    scripts/with-postgres .venv/bin/python -m bench.run [--quick] [--durable-pg] [--parts transition,peer,...]
    .venv/bin/python -m bench.run --only transition --backend sqlite --quick     # one part, one backend

Each part runs in a process of its own (fresh imports, memory and pools) and hands back
rows of figures; this process prints the table and writes the results file with the
machine, the exact command and the optimisation notes (bench/OPTIMISATIONS.md).
PostgreSQL parts need TEST_POSTGRES_URL and DROP its public schema: run them through
scripts/with-postgres, which makes a throwaway cluster. Benchmark-only packages come
from the `bench` extra (pip install -e '.[bench]').
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    __package__ = "bench"

from bench.common import BENCH, ROOT, Row, database_url, log, server_facts  # noqa: E402

PARTS = ["transition", "peer", "timers", "reads", "throughput"]
TITLES = {
    "transition": "1. Durable transition vs its floor",
    "peer": "2. Against SpiffWorkflow",
    "timers": "3. Timers",
    "reads": "4. Read side at scale",
    "throughput": "5. Throughput under gunicorn",
}


def run_part(part: str, backend: str, quick: bool, durable_pg: bool) -> list[Row]:
    if part == "transition":
        from bench import transition

        return transition.run(database_url(backend, part), backend, quick,
                              durable=not quick and (backend == "sqlite" or durable_pg))
    if part == "peer":
        from bench import peer

        return peer.run(database_url(backend, part), backend, quick)
    if part == "timers":
        from bench import timers

        return timers.run(database_url(backend, part), backend, quick)
    if part == "reads":
        from bench import reads

        return reads.run(lambda tag: database_url(backend, tag), backend, quick)
    if part == "throughput":
        from bench import throughput

        return throughput.run(database_url(backend, part), backend, quick)
    raise SystemExit(f"unknown part {part}")


# -- the machine -----------------------------------------------------------------------------


def machine(backends: list[str]) -> dict:
    import sqlite3

    import sqlalchemy

    facts = {
        "cpu": _cpu_model(),
        "cores": os.cpu_count(),
        "memory_gib": round(_mem_total() / 2**30, 1),
        "os": platform.platform(),
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
        "sqlalchemy": sqlalchemy.__version__,
        "load_average_start": " ".join(f"{x:.2f}" for x in os.getloadavg()),
        "git": _git(),
    }
    for name in ("psycopg", "SpiffWorkflow", "gunicorn", "APScheduler", "Flask"):
        try:
            from importlib.metadata import version

            facts[name.lower()] = version(name)
        except Exception:  # noqa: BLE001 - informational only
            facts[name.lower()] = "-"
    if "postgresql" in backends and os.environ.get("TEST_POSTGRES_URL"):
        pg = server_facts(os.environ["TEST_POSTGRES_URL"])
        facts["postgresql"] = pg["version"]
        facts["postgresql_settings"] = f"fsync={pg['fsync']}, synchronous_commit={pg['synchronous_commit']}"
    return facts


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "?"


def _mem_total() -> int:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def _git() -> str:
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True,
                              check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT,
                               capture_output=True, text=True).stdout.strip()
        return head + (" + uncommitted changes" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "?"


def _busy_others() -> float:
    """CPU seconds per second that processes other than ours used over 1 s (another test suite, ...)."""
    try:
        import psutil
    except ImportError:
        return float("nan")

    def sample():
        out = {}
        for p in psutil.process_iter(["pid", "cpu_times"]):
            if p.info["pid"] != os.getpid() and p.info["cpu_times"] is not None:
                out[p.info["pid"]] = p.info["cpu_times"].user + p.info["cpu_times"].system
        return out

    a = sample()
    time.sleep(1.0)
    b = sample()
    return sum(b[pid] - a[pid] for pid in b if pid in a)  # processes alive in both samples


# -- output ----------------------------------------------------------------------------------


def fmt(value, unit: str) -> str:
    if value is None:
        return "-"
    if unit in ("statements",):
        return f"{value:g}"
    if unit == "ms":
        return f"{value:.3f} ms" if value < 1 else f"{value:.2f} ms" if value < 10 else f"{value:.1f} ms"
    if unit == "s":
        return f"{value:.2f} s"
    if unit == "/s":
        return f"{value:.0f}/s"
    if unit == "MiB":
        return f"{value:.1f} MiB"
    return f"{value:g} {unit}"


def verdict(row: dict) -> str:
    return {True: "met", False: "NOT met", None: "-"}[row["met"]]


def table(rows: list[dict]) -> str:
    head = "| # | backend | figure | value | baseline | ratio | target | |\n|---|---|---|---:|---|---:|---|---|\n"
    lines = []
    for r in rows:
        base = f"{r['baseline']}: {fmt(r['baseline_value'], r['unit'])}" if r["baseline"] else "-"
        ratio = f"{r['ratio']:.2f}×" if r["ratio"] is not None else "-"
        lines.append(f"| {r['bench'].split()[0]} | {r['backend']} | {r['figure']} | {fmt(r['value'], r['unit'])} | "
                     f"{base} | {ratio} | {r['target']} | {verdict(r)} |")
    return head + "\n".join(lines)


def console(rows: list[dict]) -> str:
    out = []
    for r in rows:
        ratio = f"{r['ratio']:.2f}x" if r["ratio"] is not None else "-"
        out.append(f"{r['bench'][:14]:14} {r['backend'][:10]:10} {r['figure'][:70]:70} {fmt(r['value'], r['unit']):>12} "
                   f"{ratio:>9}  {r['target'][:22]:22} {verdict(r)}")
    return "\n".join(out)


def write_results(path: Path, rows: list[dict], facts: dict, command: str, seconds: float, quick: bool) -> None:
    notes = (BENCH / "OPTIMISATIONS.md").read_text(encoding="utf-8") if (BENCH / "OPTIMISATIONS.md").exists() else ""
    details = "\n".join(f"- **{r['bench']} · {r['backend']} · {r['figure']}**: {r['detail']}" for r in rows if r["detail"])
    missed = [r for r in rows if r["met"] is False]
    text = f"""# Traject benchmarks{' (quick run)' if quick else ''}

Generated by `bench/run.py` on {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC in {seconds:.0f} s. Every figure
is divided by a baseline measured in the same run ("ratio" = value ÷ baseline unless the detail says
otherwise); timings are medians over repetitions, with the minimum in the details.

## Command

```sh
{command}
```

## Machine

| | |
|---|---|
""" + "\n".join(f"| {k} | {v} |" for k, v in facts.items()) + f"""

The load average and "CPU used by other processes" say how busy the machine was with work that is
not ours (other people's test suites on a shared 2-core box): absolute times grow with it; ratios,
measured interleaved, much less.

## Results

{table(rows)}

{len(rows) - len(missed)} of {len(rows)} figures meet their target.

## Details

{details}

{notes}
"""
    path.write_text(text, encoding="utf-8")


# -- main ------------------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(description="Traject benchmarks (bench/)")
    parser.add_argument("--quick", action="store_true", help="smaller sizes: about a minute")
    parser.add_argument("--parts", default=",".join(PARTS), help="comma-separated: " + ",".join(PARTS))
    parser.add_argument("--backends", default=None, help="sqlite,postgresql (default: postgresql only when "
                        "TEST_POSTGRES_URL is set)")
    parser.add_argument("--durable-pg", action="store_true",
                        help="also measure the transition with fsync=on (ALTER SYSTEM: throwaway clusters only)")
    parser.add_argument("--results", default=None, help="default bench/RESULTS.md (quick: bench/RESULTS-quick.md)")
    parser.add_argument("--render", metavar="RESULTS.json", help="rewrite RESULTS.md from a saved run, measuring nothing")
    parser.add_argument("--only", help=argparse.SUPPRESS)
    parser.add_argument("--backend", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.render:  # the results file again from its .json (e.g. after editing OPTIMISATIONS.md)
        saved = json.loads(Path(args.render).read_text())
        write_results(Path(args.render).with_suffix(".md"), saved["rows"], saved["facts"], saved["command"],
                      saved["seconds"], saved["quick"])
        return 0
    if args.only:  # a child: one part on one backend
        rows = run_part(args.only, args.backend, args.quick, args.durable_pg)
        Path(args.out).write_text(json.dumps([r.to_dict() for r in rows]))
        return 0

    backends = args.backends.split(",") if args.backends else (
        ["sqlite", "postgresql"] if os.environ.get("TEST_POSTGRES_URL") else ["sqlite"])
    parts = [p for p in args.parts.split(",") if p]
    command = os.environ.get("BENCH_COMMAND") or " ".join([Path(sys.executable).name, "-m", "bench.run", *sys.argv[1:]])
    started = time.perf_counter()
    facts = machine(backends)
    facts["cpu_used_by_other_processes_at_start"] = f"{_busy_others():.2f} CPU-s/s"
    log(f"Traject benchmarks ({'quick' if args.quick else 'full'}): {', '.join(parts)} on {', '.join(backends)}")
    log(f"machine: {facts['cores']} cores, {facts['memory_gib']} GiB, load {facts['load_average_start']}, "
        f"Python {facts['python']}, SQLite {facts['sqlite']}, PostgreSQL {facts.get('postgresql', '-')}")
    rows: list[dict] = []
    failures = []
    for part in parts:
        for backend in backends:
            if part == "throughput" and backend != "postgresql":
                continue
            log(f"\n== {TITLES[part]} · {backend}")
            out = Path(tempfile.mkstemp(prefix=f"bench-{part}-{backend}-", suffix=".json")[1])
            child = [sys.executable, "-m", "bench.run", "--only", part, "--backend", backend, "--out", str(out)]
            if args.quick:
                child.append("--quick")
            if args.durable_pg:
                child.append("--durable-pg")
            start = time.perf_counter()
            done = subprocess.run(child, cwd=ROOT)
            if done.returncode != 0:
                failures.append(f"{part}/{backend}")
                log(f"!! {part} on {backend} failed (exit {done.returncode})")
                continue
            new = json.loads(out.read_text())
            out.unlink()
            log(console(new))
            log(f"   ({time.perf_counter() - start:.0f} s)")
            rows.extend(new)
    seconds = time.perf_counter() - started
    facts["load_average_end"] = " ".join(f"{x:.2f}" for x in os.getloadavg())
    results = Path(args.results) if args.results else BENCH / ("RESULTS-quick.md" if args.quick else "RESULTS.md")
    results.with_suffix(".json").write_text(json.dumps(
        {"rows": rows, "facts": facts, "command": command, "seconds": seconds, "quick": args.quick}, indent=1))
    write_results(results, rows, facts, command, seconds, args.quick)
    log(f"\n{console(rows)}\n\n{sum(r['met'] is True for r in rows)} of {len(rows)} figures meet their target; "
        f"{len(failures)} parts failed{': ' + ', '.join(failures) if failures else ''}. "
        f"Written: {results.relative_to(ROOT) if results.is_relative_to(ROOT) else results} ({seconds:.0f} s)")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
