"""Walking real procedures through the HTTP API, shared by several test modules."""
from __future__ import annotations

import re

from sqlalchemy import delete, text

from engine.models import Base, User, WorkflowDefinition


def empty_tables(engine) -> None:
    """Every table but the stored definitions, emptied (TRUNCATE on PostgreSQL: audit rows refuse DELETE)."""
    tables = [t for t in reversed(Base.metadata.sorted_tables) if t.name != WorkflowDefinition.__tablename__]
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(text("TRUNCATE " + ", ".join(f'"{t.name}"' for t in tables) + " RESTART IDENTITY CASCADE"))
        else:
            for table in tables:
                conn.execute(delete(table))

PLAN = {
    "learning_goals": ["Zelfstandig preoperatieve screening afronden (1 juni 2026)"],
    "approach": "Wekelijkse casuïstiek met de supervisor",
    "support": "Vaste supervisor",
    "term_end": "2026-06-01",
}


def with_rso_chair(world):
    """The world plus a voorzitter RSO ("rso_chair", rso_chair@test.nl), who owns escalated_rso_chair."""
    from engine.models import RoleAssignment
    from web.extensions import db

    if "rso_chair" not in world.users:
        with world.app.app_context():
            user = User(email="rso_chair@test.nl", name="Rso_chair", active=True,
                        created_at=world.app.extensions["traject"].clock.now())
            user.roles.append(RoleAssignment(role="rso_chair", institution_id=None, region_id=world.region_id))
            db.session.add(user)
            db.session.commit()
            world.users["rso_chair"] = user.id
    return world


def ok(response, status=200):
    assert response.status_code == status, response.get_json()
    return response.get_json()


def fire(api, case, trigger, data=None, status=200):
    response = api.post(f"/cases/{case['id']}/transitions",
                        json={"trigger": trigger, "expected_version": case["version"], "data": data or {}})
    return ok(response, status)


def open_internal(opleider, aios_id, institution="meander"):
    return ok(opleider.post("/cases", json={
        "workflow": "internal_guidance", "institution": institution, "subject_id": aios_id,
        "title": "Begeleiding", "data": {"signal": "Achterblijvende zelfstandigheid"}}), 201)


def to_plan(opleider, aios, case):
    case = fire(opleider, case, "analyse")
    case = fire(opleider, case, "discuss", {"core_problem": "Structuur"})
    case = fire(opleider, case, "draft_plan", {"discussion_summary": "Besproken"})
    doc = ok(opleider.post(f"/cases/{case['id']}/documents", json={"kind": "improvement_plan", "content": PLAN}), 201)
    return case, doc


def sign(api, doc, verdict="agreed", comment="", status=201):
    return ok(api.post(f"/documents/{doc['id']}/signatures", json={"verdict": verdict, "comment": comment}), status)


def to_guidance(opleider, aios, case):
    case, doc = to_plan(opleider, aios, case)
    sign(opleider, doc)
    sign(aios, doc)
    return fire(opleider, case, "start_guidance", {"iop_updated": True})


def evaluation(sufficient: bool, date="2026-04-01"):
    return {"evaluation": {"date": date, "summary": "Evaluatie", "sufficient": sufficient}}


def browser(world, name: str | None = None, **kw):
    """A test client with its own cookie jar, logged in as `name` (as a login would: web/views/auth.py)."""
    client = world.app.test_client(**kw)
    if name:
        signed_in(world.app, client, world.users[name])
    return client


def signed_in(app, client, user_id: int) -> None:
    """Put a login into the client's session cookie: flask-login's keys, the session epoch, the login's times."""
    from web.auth import start_session_times
    from web.extensions import db

    with app.app_context():
        epoch = db.session.get(User, user_id).session_epoch or 0
        db.session.remove()
    with client.session_transaction() as session:
        session["_user_id"] = str(user_id)
        session["_fresh"] = True
        session["epoch"] = epoch
        start_session_times(session, app.extensions["traject"].clock.now())


def csrf_token(client, path="/") -> str:
    """The CSRF token of the form on `path`."""
    html = client.get(path).get_data(as_text=True)
    return re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)
