"""The demo fits its one-click roles (CONTRACT.md section 5)."""
from __future__ import annotations

from collections import Counter

from sqlalchemy import select

from engine.inbox import inbox
from engine.models import Case, Institution, RoleAssignment, User
from engine.overview import figures, is_small
from web.extensions import db

LADDERS = ("escalation", "rso_quality", "rso_obligations")


def test_the_demo_gives_every_coc_chair_work_and_spreads_escalations_over_rungs_and_hospitals(app, runner):
    assert runner.invoke(["demo"]).exit_code == 0
    eng = app.extensions["traject"]
    with app.app_context():
        now = eng.clock.now()
        chairs = db.session.scalars(select(User).join(RoleAssignment).where(RoleAssignment.role == "coc_chair"))
        for chair in chairs:
            reasons = {i["reason"] for i in inbox(db.session, eng, eng.actor_for(chair), now)}
            assert reasons & {"escalation", "deadline_overdue"}, (chair.email, reasons)
        ladder = db.session.execute(select(Case.state, Case.institution_id).where(
            Case.workflow_key == "escalation", Case.closed_at.is_(None))).all()
        rungs = {s for s, _ in ladder if s.startswith(("escalated_", "reported_"))}
        assert len(rungs) >= 4, rungs
        assert len({i for s, i in ladder if s in rungs}) >= 3
        region = db.session.scalar(select(Institution.region_id))
        f = figures(db.session, eng, [region], now, 12)
        monthly = [n for pair in f.opened for n in pair[:1]]  # personal trajectories opened per month
        assert sum(1 for n in monthly if n and not is_small(n, 5)) > len(monthly) / 2, monthly
        words = " ".join(db.session.scalars(select(Case.title)))
        assert "dossier" not in words.lower()


def test_the_demo_at_scale_adds_its_synthetic_cases_for_aios_still_in_training(app, runner):
    # make bench loads `traject demo --scale 10000`; it stopped when a synthetic case picked the aios whose
    # training the demo's history terminated (no new trajectory may open for them).
    from engine.models import RecordStatus, TrainingRecord

    result = runner.invoke(["demo", "--scale", "120"])
    assert result.exit_code == 0, result.output
    with app.app_context():
        synthetic = db.session.scalars(select(Case.subject_id).where(Case.title.like("Synthetisch traject %"))).all()
        ended = set(db.session.scalars(select(TrainingRecord.subject_id)
                                       .where(TrainingRecord.status == RecordStatus.TERMINATED)))
    assert len(synthetic) == 120 and ended and not ended & set(synthetic)


def test_the_demo_spreads_the_trajectories_over_the_aios_and_its_assessed_gbt_can_be_extended(app, runner):
    # One demo load for both (it is the slow part).
    assert runner.invoke(["demo"]).exit_code == 0
    _the_assessed_gbt_can_be_extended(app)
    with app.app_context():
        subjects = db.session.execute(select(Case.subject_id, Case.institution_id).where(
            Case.workflow_key.in_(("internal_guidance", "intensified_guidance")))).all()
        per_aios = Counter(uid for uid, _ in subjects)
        aios = set(db.session.scalars(select(RoleAssignment.user_id).where(RoleAssignment.role == "aios")))
        assert max(per_aios.values()) <= 3, per_aios.most_common(3)
        counts = Counter(per_aios.get(uid, 0) for uid in aios)
        assert counts[0] + counts[1] > 3 * (counts[2] + counts[3]), counts  # most none or one, a few two
        assert len({i for _, i in subjects}) == 5  # every hospital has its trajectories


def _the_assessed_gbt_can_be_extended(app):
    # The assessment's new end date lies after the record's expected end: the extend step's guard allows it.
    from engine.models import User as Account

    eng = app.extensions["traject"]
    with app.app_context():
        case = db.session.scalars(select(Case).where(Case.workflow_key == "intensified_guidance",
                                                     Case.state == "assessed")).first()
        assert case is not None
        opleider = eng.actor_for(db.session.get(Account, case.responsible_id))
        done = eng.fire(db.session, opleider, case.id, "extend", case.version, {})
        assert done.state == "extended"
        db.session.rollback()
