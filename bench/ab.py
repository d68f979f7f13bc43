"""Before/after of the product changes made for the benchmarks, in one process, interleaved.

    .venv/bin/python -m bench.ab [--backend sqlite|postgresql] [--reps 6]

"Before" is engine/commands.py's Engine and web/demo.py's _at as they were at --before
(loaded from git beside today's modules and swapped in); "after" is the code as it is. Runs alternate so that a busy machine hurts both alike; both wall time and this
process's CPU time are reported (CPU time is what the changes save, and is far less
disturbed by other processes). bench/OPTIMISATIONS.md quotes its output.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    __package__ = "bench"


from bench.common import create_schema, database_url, make_app, seed  # noqa: E402


BEFORE = "3fd0d7a"  # the commit before the benchmark's product changes


def module_at(rev: str, path: str, name: str, package: str):
    """The module `path` as it was at `rev`, importable beside today's (relative imports resolve)."""
    import subprocess
    import types

    from bench.common import ROOT

    source = subprocess.run(["git", "show", f"{rev}:{path}"], cwd=ROOT, capture_output=True, text=True,
                            check=True).stdout
    module = types.ModuleType(name)
    module.__package__ = package
    module.__file__ = f"{rev}:{path}"
    sys.modules[name] = module
    exec(compile(source, module.__file__, "exec"), module.__dict__)
    return module


class Variants:
    """Swaps the Engine's methods (engine/commands.py) and demo._at (web/demo.py) between `rev` and today."""

    def __init__(self, rev: str = BEFORE):
        from engine.commands import Engine
        from web import demo

        old_engine = module_at(rev, "engine/commands.py", "engine._commands_before", "engine").Engine
        old_demo = module_at(rev, "web/demo.py", "web._demo_before", "web")
        self.Engine, self.demo = Engine, demo
        names = {n for n, v in {**vars(Engine), **vars(old_engine)}.items() if not n.startswith("__")}
        self.after = {n: vars(Engine).get(n) for n in names} | {"_at": demo._at}
        self.before = {n: vars(old_engine).get(n) for n in names} | {"_at": old_demo._at}

    def use(self, which: str) -> None:
        chosen = self.after if which == "after" else self.before
        for name, value in chosen.items():
            if name == "_at":
                self.demo._at = value
            elif value is None:
                if name in vars(self.Engine):
                    delattr(self.Engine, name)
            else:
                setattr(self.Engine, name, value)


def timed(fn) -> tuple[float, float]:
    w, c = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - w, time.process_time() - c


def summary(name: str, res: dict, per: int, unit: str = "ms") -> str:
    scale = 1e3 / per if unit == "ms" else 1.0 / per

    def med(which, i):
        return statistics.median(x[i] for x in res[which]) * scale

    b_w, a_w, b_c, a_c = med("before", 0), med("after", 0), med("before", 1), med("after", 1)
    return (f"{name}: wall {b_w:.2f} → {a_w:.2f} {unit} ({a_w / b_w:.2f}×), CPU {b_c:.2f} → {a_c:.2f} {unit} "
            f"({a_c / b_c:.2f}×), medians of {len(res['before'])} alternating runs")


def main() -> None:
    """Before against after, interleaved, on one backend:

    1. parse the arguments and load the "before" variants;
    2. the transition alone, per transition (_transitions);
    3. the six-step instance, with SpiffWorkflow's in the same loop (_six_step_instances);
    4. `traject demo --scale N`'s synthetic cases, per case (_demo_cases);
    5. leave the "after" variant in place.
    """
    parser = argparse.ArgumentParser()
    parser.add_argument("--backend", default="sqlite")
    parser.add_argument("--reps", type=int, default=6)
    parser.add_argument("--before", default=BEFORE, help="the revision whose engine/commands.py and web/demo.py are 'before'")
    args = parser.parse_args()
    from engine.models import User

    variants = Variants(args.before)
    print(f"before = {args.before}, after = the working tree; backend {args.backend}, load average {os.getloadavg()[0]:.2f}")
    app = make_app(database_url(args.backend, "ab"))
    world = seed(app)
    _transitions(app, world, variants, args.reps)
    _six_step_instances(app, world, variants, args.reps)
    _demo_cases(variants, args.backend, args.reps)
    variants.use("after")
    del User


def _transitions(app, world, variants: Variants, reps: int) -> None:
    """The transition alone (bench_six.step1 = full, bench_plain.step1 = plain), per transition."""
    from . import transition

    per = 100
    for workflow in ("bench_plain", "bench_six"):
        ids = transition._open_cases(app, world, workflow, 2 * reps * per + 20)
        transition._fire_loop(app, world, ids[:20], "step1", {"note": "x"})
        ids = ids[20:]
        res = {"before": [], "after": []}
        for _ in range(reps):
            for which in ("before", "after"):
                variants.use(which)
                chunk, ids = ids[:per], ids[per:]
                res[which].append(timed(lambda: transition._fire_loop(app, world, chunk, "step1", {"note": "x"})))
        print(summary(f"transition {workflow}.step1 (fire + commit)", res, per))


def _six_step_instances(app, world, variants: Variants, reps: int) -> None:
    """The six-step instance of the SpiffWorkflow comparison, with SpiffWorkflow's in the same loop; then the
    benchmark's database is released."""
    from web.extensions import db

    from . import peer

    t = peer.Traject(app, world)
    per = 30
    res = {"before": [], "after": []}
    spiff_times = []
    with app.app_context():
        spiff = peer.Spiff(db.engine)
        for _ in range(3):
            spiff.instance()
        for _ in range(reps):
            for which in ("before", "after"):
                variants.use(which)
                res[which].append(timed(lambda: [t.instance() for _ in range(per)]))
            spiff_times.append(timed(lambda: [spiff.instance() for _ in range(per)]))
    print(summary("six-step instance (open + 6 × fire, each committed)", res, per))
    spiff_wall = statistics.median(x[0] for x in spiff_times)
    print("  Traject ÷ SpiffWorkflow (wall, same loop): before "
          f"{statistics.median(x[0] for x in res['before']) / spiff_wall:.2f}×, after "
          f"{statistics.median(x[0] for x in res['after']) / spiff_wall:.2f}× (SpiffWorkflow "
          f"{spiff_wall / per * 1e3:.2f} ms per instance)")
    with app.app_context():
        db.session.remove()
        db.engine.dispose()


def _demo_cases(variants: Variants, backend: str, reps: int) -> None:
    """`traject demo --scale N`'s synthetic cases (web/demo.py), per case, each run on a fresh schema."""
    from web.app import create_app
    from web.extensions import db

    os.environ["TRAJECT_ENV"] = "development"
    n = 400
    res = {"before": [], "after": []}
    for _ in range(max(2, reps // 3)):
        for which in ("before", "after"):
            variants.use(which)
            url = database_url(backend, "ab-demo")
            create_schema(url)
            demo_app = create_app({"SQLALCHEMY_DATABASE_URI": url, "TRAJECT_INSTANCE": tempfile.mkdtemp()})
            with demo_app.app_context():
                variants.demo.load(demo_app, 0, echo=lambda *a: None)
                res[which].append(timed(lambda: variants.demo.load(demo_app, n, echo=lambda *a: None)))
                db.session.remove()
                db.engine.dispose()
    print(summary(f"traject demo: synthetic case ({n} per run)", res, n))


if __name__ == "__main__":
    main()
