"""2. Against a peer engine: SpiffWorkflow running the same six-step process, every step persisted.

The process: six user tasks in a row (bench/six_steps.bpmn for SpiffWorkflow,
bench/definitions/bench_plain.yaml for Traject). Each instance is started and then walked
step by step the way a web application drives an engine, one request per step: load the
instance from the database, complete the step, write it back, commit.

- SpiffWorkflow: SELECT its serialized JSON (BpmnWorkflowSerializer), deserialize, run the
  ready user task and the engine steps after it, serialize, UPDATE, COMMIT; the start is
  an INSERT. Its state is one JSON document per instance, in a table of the same database,
  through the same SQLAlchemy engine.
- Traject: Engine.open_case + commit, then Engine.fire + commit per step (SELECT the case,
  compare-and-set UPDATE, INSERT of a hash-chained audit event): more durable facts per
  step than SpiffWorkflow writes, so the comparison does not flatter Traject.

Instances are run in chunks, alternating engines, so that load drift hits both alike.
"""
from __future__ import annotations

import time

from sqlalchemy import text

from .common import BENCH, Row, counted, log, make_app, seed, stats

SPIFF_DDL = {
    "sqlite": "CREATE TABLE IF NOT EXISTS spiff_instance (id INTEGER PRIMARY KEY, state TEXT NOT NULL)",
    "postgresql": "CREATE TABLE IF NOT EXISTS spiff_instance (id BIGSERIAL PRIMARY KEY, state TEXT NOT NULL)",
}


class Spiff:
    def __init__(self, engine):
        from SpiffWorkflow.bpmn.parser import BpmnParser
        from SpiffWorkflow.bpmn.serializer import BpmnWorkflowSerializer

        parser = BpmnParser()
        parser.add_bpmn_file(str(BENCH / "six_steps.bpmn"))
        self.spec = parser.get_spec("six_steps")
        self.serializer = BpmnWorkflowSerializer()
        self.engine = engine
        with engine.begin() as conn:
            conn.exec_driver_sql(SPIFF_DDL[engine.dialect.name])

    def start(self) -> int:
        from SpiffWorkflow.bpmn import BpmnWorkflow

        workflow = BpmnWorkflow(self.spec)
        workflow.do_engine_steps()
        with self.engine.begin() as conn:
            return conn.execute(text("INSERT INTO spiff_instance (state) VALUES (:s) RETURNING id"),
                                {"s": self.serializer.serialize_json(workflow)}).scalar_one()

    def step(self, instance_id: int, data: dict) -> bool:
        """Complete the ready user task; False when none is left."""
        from SpiffWorkflow.util.task import TaskState

        with self.engine.begin() as conn:
            state = conn.execute(text("SELECT state FROM spiff_instance WHERE id = :i"), {"i": instance_id}).scalar_one()
            workflow = self.serializer.deserialize_json(state)
            ready = workflow.get_tasks(state=TaskState.READY, manual=True)
            if not ready:
                return False
            ready[0].data.update(data)
            ready[0].run()
            workflow.do_engine_steps()
            conn.execute(text("UPDATE spiff_instance SET state = :s WHERE id = :i"),
                         {"s": self.serializer.serialize_json(workflow), "i": instance_id})
        return True

    def instance(self) -> None:
        instance_id = self.start()
        steps = 0
        while self.step(instance_id, {"note": "Bench"}):
            steps += 1
        assert steps == 6, steps


class Traject:
    def __init__(self, app, world):
        from engine.models import User
        from web.extensions import db

        self.app, self.world, self.db = app, world, db
        with app.app_context():
            self.eng = app.extensions["traject"]
            self.actor = self.eng.actor_for(db.session.get(User, world.opleider_id))
            db.session.remove()

    def instance(self) -> None:
        db, eng, actor = self.db, self.eng, self.actor
        session = db.session
        case = eng.open_case(session, actor, workflow="bench_plain", institution="bench",
                             subject_id=self.world.aios_id, title="Bench")
        session.commit()
        case_id, version = case.id, case.version
        session.expunge_all()
        for n in range(1, 7):
            case = eng.fire(session, actor, case_id, f"step{n}", version, {"note": "Bench"})
            session.commit()
            version = case.version
            session.expunge_all()
        assert case.state == "s6", case.state


def run(url: str, backend: str, quick: bool) -> list[Row]:
    instances, chunk = (60, 20) if quick else (1000, 100)
    app = make_app(url)
    world = seed(app)
    from web.extensions import db

    rows = []
    with app.app_context():
        spiff = Spiff(db.engine)
        traject = Traject(app, world)
        for _ in range(5):  # warm both: parsers, caches, compiled statements
            spiff.instance()
            traject.instance()
        statements = {}
        for name, runner in (("traject", traject), ("spiff", spiff)):
            with counted(db.engine) as seen:
                runner.instance()
            statements[name] = len(seen)
        times = {"spiff": [], "traject": []}
        cpu = {"spiff": 0.0, "traject": 0.0}
        done = 0
        while done < instances:
            for name, runner in (("traject", traject), ("spiff", spiff)):
                start, start_cpu = time.perf_counter(), time.process_time()
                for _ in range(chunk):
                    runner.instance()
                times[name].append(time.perf_counter() - start)
                cpu[name] += time.process_time() - start_cpu
            done += chunk
        db.session.remove()
        db.engine.dispose()
    total = {k: sum(v) for k, v in times.items()}
    per = {k: stats([t / chunk for t in v]) for k, v in times.items()}
    ratio = total["traject"] / total["spiff"]
    log(f"  [{backend}] {instances} instances: traject {total['traject']:.1f} s, spiff {total['spiff']:.1f} s")
    rows.append(Row(
        "2 vs SpiffWorkflow", backend, f"{instances:,} instances × 6 persisted steps, Traject (total)",
        total["traject"], "s", baseline="SpiffWorkflow 3 (serializer → same database), total",
        baseline_value=total["spiff"], ratio=ratio, target="≤ 0.67× (1.5× its speed)", met=ratio <= 1 / 1.5,
        detail=(f"Traject takes {ratio:.2f}× SpiffWorkflow's time ({1 / ratio:.2f}× its speed); per instance Traject median {per['traject']['median'] * 1e3:.1f} "
                f"ms (min {per['traject']['min'] * 1e3:.1f}), SpiffWorkflow median "
                f"{per['spiff']['median'] * 1e3:.1f} ms (min {per['spiff']['min'] * 1e3:.1f}); "
                f"{len(times['traject'])} alternating chunks of {chunk}; CPU time of this process: Traject "
                f"{cpu['traject']:.1f} s, SpiffWorkflow {cpu['spiff']:.1f} s; SQL statements per instance (without BEGIN/"
                f"COMMIT): Traject {statements['traject']}, SpiffWorkflow {statements['spiff']}"),
        extra={"cpu": cpu}))
    return rows
