"""Every route × every role × objects in and out of scope, generated from the app's URL map.

RULES below is the one table of what each route answers to whom (CONTRACT.md sections 2 and 3).
`test_every_route_has_exactly_one_rule` fails for a route without a rule (and for a rule without
a route): a new endpoint cannot land without saying who may use it.

The region (built once per module through the engine): at meander and at gelre, a case of every
workflow — internal guidance (in `plan`, the improvement plan signed by the aios), intensified
guidance (`decided`, the adjusted IOP signed by the aios), a dispute about it (in mediation, with
its receipt letter), an escalation, and the three RSO procedures; besides, at meander a second
aios's trajectory and an escalation about the COC chair (who is therefore excluded from it), and
at gelre a signal through the vertrouwenspersoon. Their documents: the plans, the IOPs, the
receipt letters. Users: tests/conftest.py's ROLES, and an anonymous visitor.

Each route is asked by every principal about every object; only the routes that render PDFs
(`renders=True`) are asked about every object out of scope but one in scope per principal
(rotating through the workflows): the same scope query decides, and PDFs take time.

Write routes are probed with bodies that every authorised user gets refused *after* the access
check (a missing required input, a guard that fails, a document already signed): a 422 or 409
means "let through", 403 "visible but not yours to do", 404 "not visible". Nothing is written by
any probe; each test checks that.

IDOR: for every route that takes an id, a user who cannot see the object gets exactly the answer
for an id that does not exist: the same status, code and message, the same page.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import NamedTuple

import pytest
from sqlalchemy import func, select

from conftest import ROLES, START
from engine.clock import FixedClock
from engine.models import AuditEvent, Case, Document, Institution, Notification, RoleAssignment, Signature, User
from engine.models import Region as RegionRow
from flows import PLAN, signed_in

ANON = "anonymous"
PRINCIPALS = [name for name, _, _ in ROLES] + [ANON]
USERS = [name for name, _, _ in ROLES]
ROLE_OF = {name: (role, inst) for name, role, inst in ROLES}
MISSING = 9_000_000_001  # an id that exists nowhere
ESCALATION_TYPE = {"escalation", "rso_consultation", "rso_quality", "rso_obligations"}
REGIONAL_OVERVIEW = {"rso", "rcoc", "regio"}
ADJUSTED_IOP = {"goals": ["Zelfstandig een electieve lijst"], "conditions": "Vaste supervisor",
                "start_date": "2026-03-16", "end_date": "2026-07-16", "assessment_method": "KPB"}


# -- the objects ---------------------------------------------------------------------------------------


@dataclass
class Obj:
    """A case, with what the probes of the write routes need to know about it."""

    key: str
    id: int
    workflow: str
    institution: str
    subject: str | None
    opener: str
    trigger: str                         # the probe trigger: refused after the access check for `movers`
    movers: set[str]                     # who may fire it (CONTRACT section 4)
    doc_kind: str                        # the probe document kind
    authors: set[str] = field(default_factory=set)  # who may write it (empty: only the system)
    kind_exists: bool = True
    excluded: set[str] = field(default_factory=set)
    children: list[str] = field(default_factory=list)  # workflows the page offers to open from here


@dataclass
class Doc:
    key: str
    id: int
    case: Obj
    signers: set[str]
    signed: set[str]


def sees(name: str, case: Obj) -> bool:
    """CONTRACT.md section 3, written out independently of engine/scope.py."""
    if name == ANON or name in case.excluded:
        return False
    role, inst = ROLE_OF[name]
    if role == "admin" or name in (case.subject, case.opener):
        return True
    if role in ("opleider", "coc_chair"):
        return inst == case.institution
    if role == "hr":
        return inst == case.institution and case.workflow == "intensified_guidance"
    if role == "rvb":
        return inst == case.institution and case.workflow in ESCALATION_TYPE
    if role in ("rso_board", "r_coc_chair", "regio_bestuur"):
        return case.workflow in ESCALATION_TYPE  # one region here
    return False  # aios (only their own, above), vertrouwenspersoon


# -- expectations ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Rule:
    expect: object          # principal -> status, or (principal, object) -> status for routes with an id
    body: dict | None = None  # JSON for the API, form fields for the pages
    on: str | None = None   # "case" or "document": the route takes that id
    renders: bool = False   # renders PDFs: each principal is checked on every object out of scope and on one
                            # in scope (rotating through the workflows), not on all: the same scope query decides


def everyone(status):
    return lambda p: status


def api(status_for_user):
    """The API: 401 for the anonymous; otherwise a status, a dict by name (default under None), or a callable."""
    def expect(p, *obj):
        if p == ANON:
            return 401
        return _resolve(status_for_user, p, *obj)
    return expect


def page(status_for_user, anon=302):
    """A page behind the login: the anonymous visitor is sent to /login."""
    def expect(p, *obj):
        if p == ANON:
            return anon
        return _resolve(status_for_user, p, *obj)
    return expect


def _resolve(spec, p, *obj):
    if callable(spec):
        return spec(p, *obj)
    if isinstance(spec, dict):
        return spec.get(p, spec.get(None))
    return spec


def visible(status_if_seen):
    """404 for a case (or a document's case) you cannot see, exactly as for a missing one."""
    def expect(p, obj):
        case = obj.case if isinstance(obj, Doc) else obj
        if not sees(p, case):
            return 404
        return _resolve(status_if_seen, p, obj)
    return expect


def fire_probe(p, case: Obj):
    return 422 if p in case.movers else 403  # 422: the probe's missing input / failing guard


def document_probe(p, case: Obj):
    if not case.kind_exists:
        return 422  # that kind does not exist on this workflow
    return 422 if p in case.authors else 403


def sign_probe(p, doc: Doc):
    if p not in doc.signers:
        return 403
    if p in doc.signed:
        return 409  # signed already
    return 422  # "seen, not agreed" is the subject's only


def open_child_probe(p, case: Obj):
    # the page offers "lodge a dispute" only to the aios the decision is about; the posted form is incomplete
    return 422 if "dispute" in case.children and p == case.subject else 404


def opening(p):
    return 422 if ROLE_OF[p][0] == "opleider" and ROLE_OF[p][1] == "meander" else 403


def opening_page(p):
    # the page offers only workflows you may open somewhere; an opleider elsewhere is refused by the engine
    if ROLE_OF[p][0] != "opleider":
        return 404
    return 422 if ROLE_OF[p][1] == "meander" else 403


def document_page_probe(p, case: Obj):
    return document_probe(p, case) if case.kind_exists else 404  # the page has no form for an unknown kind


def note_probe(p, case: Obj):
    # notes are for the case's participants, HR left out (docs/notes.md); the blank note is refused after that
    return 403 if ROLE_OF[p][0] == "hr" else 422


def subject_or_admin(p, case: Obj):
    return 200 if p == case.subject or p == "admin" else 403


OVERVIEW = {**{name: 200 for name in REGIONAL_OVERVIEW | {"admin"}}, None: 403}
ADMIN_API = {"admin": 200, None: 403}
HOLD_PROBE = {"admin": 422, None: 403}  # a blank reason: refused after the role check (403 before any lookup)
OVERVIEW_PAGE = {**{name: 200 for name in REGIONAL_OVERVIEW | {"admin"}}, None: 404}
ADMIN_ONLY = {"admin": 200, None: 404}

RECORD_EDITORS = ("opleider", "opleider2", "coc", "admin")
RECORD_READ = {**{n: 200 for n in (*RECORD_EDITORS, "aios", "hr")}, None: 404}
RECORD_WRITE = {**{n: 200 for n in RECORD_EDITORS}, "aios": 403, "hr": 403, None: 404}
# User administration (web/views/users.py): the administrator, and the COC chair for the accounts of
# their institution. The probed account ("former", below) is a deactivated aios of meander.
USER_ADMINS = {"admin": 200, "coc": 200, "coc_gelre": 200, None: 404}
OF_MEANDER = {"admin": 200, "coc": 200, None: 404}
CHANGE_OF_MEANDER = {"admin": 303, "coc": 303, None: 404}

SIGN = {"verdict": "seen_not_agreed", "comment": "probe"}
LOGIN = {"email": "{email}", "password": "not the password"}  # one failed attempt per account

RULES: dict[str, Rule] = {
    # -- the JSON API -------------------------------------------------------------------------------------
    "POST /api/v1/auth/tokens": Rule(everyone(401), LOGIN),
    "DELETE /api/v1/auth/tokens": Rule(api(204)),
    "GET /api/v1/me": Rule(api(200)),
    "GET /api/v1/workflows": Rule(api(200)),
    "GET /api/v1/workflows/<key>": Rule(api(200)),
    "GET /api/v1/workflows/<key>/diagram.svg": Rule(api(200)),
    "GET /api/v1/cases": Rule(api(200)),
    "POST /api/v1/cases": Rule(api(opening), {"workflow": "internal_guidance", "institution": "meander",
                                              "subject_id": "{aios}", "data": {}}),
    "GET /api/v1/cases/<case_id>": Rule(api(visible(200)), on="case"),
    "GET /api/v1/cases/<case_id>/events": Rule(api(visible(200)), on="case"),
    "GET /api/v1/cases/<case_id>/notifications": Rule(api(visible(200)), on="case"),
    "GET /api/v1/cases/<case_id>/dossier.zip": Rule(api(visible(200)), on="case", renders=True),
    "GET /api/v1/cases/<case_id>/diagram.svg": Rule(api(visible(200)), on="case"),
    "POST /api/v1/cases/<case_id>/transitions": Rule(api(visible(fire_probe)), {"trigger": "{trigger}",
                                                                             "expected_version": "{version}"},
                                                     on="case"),
    "POST /api/v1/cases/<case_id>/documents": Rule(api(visible(document_probe)), {"kind": "{kind}", "content": {}},
                                                   on="case"),
    "GET /api/v1/documents/<document_id>": Rule(api(visible(200)), on="document"),
    "GET /api/v1/documents/<document_id>/pdf": Rule(api(visible(200)), on="document", renders=True),
    "POST /api/v1/documents/<document_id>/signatures": Rule(api(visible(sign_probe)), SIGN, on="document"),
    "GET /api/v1/inbox": Rule(api(200)),
    # privacy (web/api_privacy.py): who read a case; legal holds
    "GET /api/v1/cases/<case_id>/access-log": Rule(api(visible(subject_or_admin)), on="case"),
    "GET /api/v1/access-log": Rule(api(ADMIN_API)),
    "GET /api/v1/cases/<case_id>/legal-holds": Rule(api(ADMIN_API), on="case"),
    "POST /api/v1/cases/<case_id>/legal-holds": Rule(api(HOLD_PROBE), {"reason": "   "}, on="case"),
    "POST /api/v1/legal-holds/<hold_id>/lift": Rule(api(HOLD_PROBE), {"reason": "   "}),
    "GET /api/v1/overview": Rule(api(OVERVIEW)),
    "GET /api/v1/openapi.json": Rule(everyone(200)),
    "GET /api/v1/docs": Rule(everyone(200)),
    "GET /healthz": Rule(everyone(200)),
    "GET /static/<filename>": Rule(everyone(200)),
    # -- the pages ----------------------------------------------------------------------------------------
    "GET /toegankelijkheid": Rule(everyone(200)),  # the accessibility statement, for everyone
    "GET /login": Rule(page(302, anon=200)),  # signed in: on to the dashboard
    "POST /login": Rule(everyone(200), LOGIN),  # the form again, with "wrong e-mail address or password"
    "POST /login/demo": Rule(everyone(404), {"email": "opleider@test.nl"}),  # not a demo account
    "POST /logout": Rule(everyone(303)),
    "POST /language": Rule(everyone(303), {"lang": "nl"}),
    "GET /": Rule(page(200)),
    "GET /cases": Rule(page(200)),
    "GET /cases/new": Rule(page(200)),  # everyone may report an escalation signal
    "POST /cases/new": Rule(page(opening_page), {"workflow": "internal_guidance", "subject": "{meander}:{aios}"}),
    "GET /overview": Rule(page(OVERVIEW_PAGE)),
    "GET /admin": Rule(page(ADMIN_ONLY)),
    "POST /admin/audit/verify": Rule(page({"admin": 303, None: 404})),
    "GET /account/password": Rule(page(200)),
    "GET /account/mfa": Rule(page(200)),
    "POST /account/mfa": Rule(page(422), {"otp": "not a code"}),
    "GET /account/mail": Rule(page(200)),
    "POST /account/mail": Rule(page(422), {"delivery": "sometimes"}),
    "POST /login/mfa": Rule(everyone(303), {"otp": "123456"}),  # no password step before it: back to /login
    "POST /auth/oidc/login": Rule(everyone(404)),  # no provider configured here (tests/test_oidc.py)
    "GET /auth/oidc/callback": Rule(everyone(404)),
    "GET /invite/<token>": Rule(everyone(404)),
    "POST /invite/<token>": Rule(everyone(404), {"new": "x", "repeat": "x"}),
    "POST /invite/<token>/sso": Rule(everyone(404)),
    "GET /admin/users": Rule(page(USER_ADMINS)),
    "POST /admin/users/invite": Rule(page({**USER_ADMINS, "admin": 303, "coc": 303, "coc_gelre": 303}),
                                     {"email": "", "name": ""}),  # refused: no address
    "GET /admin/users/<user_id>": Rule(page(OF_MEANDER)),
    "POST /admin/users/<user_id>/active": Rule(page(CHANGE_OF_MEANDER), {"active": "0"}),  # stays deactivated
    "POST /admin/users/<user_id>/roles": Rule(page(CHANGE_OF_MEANDER), {"role": ""}),  # refused: no role
    "POST /admin/users/<user_id>/roles/<assignment_id>/withdraw": Rule(page(404)),  # no such assignment
    "POST /admin/users/<user_id>/mfa/reset": Rule(page(CHANGE_OF_MEANDER)),
    "POST /admin/users/<user_id>/deputy": Rule(page(CHANGE_OF_MEANDER), {"deputy": ""}),
    "POST /admin/users/<user_id>/invite": Rule(page(CHANGE_OF_MEANDER)),  # refused: deactivated
    "GET /admin/security-log": Rule(page(ADMIN_ONLY)),
    "GET /admin/security-log.csv": Rule(page(ADMIN_ONLY)),
    "POST /account/password": Rule(page(422), {"current": "wrong", "new": "x", "repeat": "y"}),
    "GET /cases/<case_id>": Rule(page(visible(200)), on="case"),
    # the training record of meander's aios (CONTRACT.md section 7): readers, editors (an empty change)
    "GET /api/v1/training-records/<aios_id>": Rule(api(RECORD_READ)),
    "PUT /api/v1/training-records/<aios_id>": Rule(api(RECORD_WRITE), {}),
    "GET /records/<aios_id>": Rule(page(RECORD_READ)),
    "POST /records/<aios_id>": Rule(page({**RECORD_WRITE, **{n: 303 for n in RECORD_EDITORS}}), {}),
    "POST /cases/<case_id>/fire": Rule(page(visible(fire_probe)), {"trigger": "{trigger}",
                                                                  "expected_version": "{version}"}, on="case"),
    "POST /cases/<case_id>/documents": Rule(page(visible(document_page_probe)), {"kind": "{kind}"}, on="case"),
    "POST /cases/<case_id>/notes": Rule(page(visible(note_probe)), {"text": "  "}, on="case"),
    "GET /cases/<case_id>/dossier.zip": Rule(page(visible(200)), on="case", renders=True),
    "POST /cases/<case_id>/open/<workflow>": Rule(page(visible(open_child_probe)), on="case"),
    # no deadline has passed in this world: a reminder is refused alike to everyone who sees the case
    "POST /cases/<case_id>/remind": Rule(page(visible(409)), on="case"),
    "GET /documents/<document_id>/pdf": Rule(page(visible(200)), on="document", renders=True),
    "POST /documents/<document_id>/sign": Rule(page(visible(sign_probe)), SIGN, on="document"),
}

ARGUMENTS = {"key": "internal_guidance", "workflow": "dispute", "filename": "app.css", "token": "no-such-invitation",
             "assignment_id": MISSING}


def route_key(rule, method: str) -> str:
    return f"{method} " + re.sub(r"<(?:[^:>]+:)?([^>]+)>", r"<\1>", rule.rule)


def app_routes(app) -> dict[str, object]:
    out = {}
    for rule in app.url_map.iter_rules():
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            out[route_key(rule, method)] = rule
    return out


# -- the region, once per module -------------------------------------------------------------------------


@dataclass
class Region:
    app: object
    users: dict[str, int]
    institutions: dict[str, int]
    cases: dict[str, Obj]
    docs: dict[str, Doc]
    tokens: dict[str, str]
    routes: dict[str, object]
    arguments: dict[str, object]
    refusals: dict = field(default_factory=dict)  # (route, principal, object) -> a 403/404 answer, sent once

    def snapshot(self) -> tuple:
        """What no probe may change: every case's version and state, and the row counts."""
        from web.extensions import db

        with self.app.app_context():
            cases = db.session.execute(select(Case.id, Case.version, Case.state).order_by(Case.id)).all()
            counts = [db.session.scalar(select(func.count()).select_from(m))
                      for m in (Document, Signature, AuditEvent, Notification, Case)]
            db.session.rollback()
        return cases, counts


@pytest.fixture(scope="module")
def region(database_url, tmp_path_factory):
    import os

    from flows import empty_tables
    from web.app import create_app
    from web.auth import issue_token
    from web.extensions import db, limiter

    os.environ["TRAJECT_ENV"] = "testing"
    clock = FixedClock(START)
    app = create_app({"SQLALCHEMY_DATABASE_URI": database_url, "TESTING": True, "CLOCK": clock,
                      "TRAJECT_INSTANCE": str(tmp_path_factory.mktemp("rbac")), "RGS_ADDRESS": "rgs@example.org",
                      "WTF_CSRF_ENABLED": False})  # CSRF is tests/test_web.py's; here: who may do what
    limiter.reset()
    with app.app_context():
        empty_tables(db.engine)
        users, insts = _people(app)
        cases, docs = _cases(app, users)
        tokens = {}
        for name in USERS:
            tokens[name], _ = issue_token(db.session.get(User, users[name]), clock.now())
        db.session.commit()
    arguments = dict(ARGUMENTS, user_id=_former(app, insts), aios_id=users["aios"])
    routes = app_routes(app)
    if "POST /api/v1/cases/<case_id>/legal-holds" in routes:  # a legal hold to lift (probes never lift it)
        hold = app.test_client().post(f"/api/v1/cases/{cases['internal@meander'].id}/legal-holds",
                                      json={"reason": "Lopend geschil"},
                                      headers={"Authorization": f"Bearer {tokens['admin']}"})
        assert hold.status_code == 201, hold.get_data(as_text=True)
        arguments["hold_id"] = hold.get_json()["id"]
    yield Region(app, users, insts, cases, docs, tokens, routes, arguments)
    with app.app_context():
        db.session.remove()
        empty_tables(db.engine)
        db.engine.dispose()
    limiter.reset()


def _people(app):
    from web.extensions import db

    now = START
    region = RegionRow(code="cluster-utrecht", name="Cluster Utrecht")
    db.session.add(region)
    db.session.flush()
    insts = {}
    for code in ("meander", "gelre"):
        insts[code] = Institution(code=code, name=code.capitalize(), region_id=region.id)
        db.session.add(insts[code])
    db.session.flush()
    users = {}
    for name, role, code in ROLES:
        user = User(email=f"{name}@test.nl", name=name.capitalize(), active=True, created_at=now)
        user.roles.append(RoleAssignment(role=role, institution_id=insts[code].id if code else None,
                                         region_id=region.id))
        db.session.add(user)
        db.session.flush()
        users[name] = user.id
    db.session.commit()
    return users, {code: inst.id for code, inst in insts.items()}


def _former(app, insts) -> int:
    """A deactivated aios of meander: the account the user administration's probes are about."""
    from web.extensions import db

    with app.app_context():
        user = User(email="former@test.nl", name="Former", active=False, created_at=START)
        region_id = db.session.get(Institution, insts["meander"]).region_id
        user.roles.append(RoleAssignment(role="aios", institution_id=insts["meander"], region_id=region_id))
        db.session.add(user)
        db.session.commit()
        return user.id


def _cases(app, users):
    """The region's cases and documents, opened through the engine, and the objects that describe them:

    1. at each institution: internal guidance with its plan (_internal_guidance), intensified guidance with
       its adjusted IOP (_intensified_guidance), the aios's dispute about it (_dispute), and an escalation
       and the RSO's procedures (_procedures);
    2. the cases out of the ordinary: about the COC chair, a colleague's trajectory, a confidential signal
       (_special_cases);
    3. commit, and check that the objects describe the rows as they are (_check_cases).
    """
    from web.extensions import db

    eng = app.extensions["traject"]
    actor = {name: eng.actor_for(db.session.get(User, uid)) for name, uid in users.items()}
    cases, docs = {}, {}
    for code, sfx in (("meander", ""), ("gelre", "_gelre")):
        staff = _staff(code, sfx)
        _internal_guidance(eng, actor, users, staff, cases, docs)
        gbt = _intensified_guidance(eng, actor, users, staff, cases, docs)
        _dispute(eng, actor, users, staff, gbt, cases, docs)
        _procedures(eng, actor, staff, cases)
    _special_cases(eng, actor, users, cases)
    db.session.commit()
    _check_cases(users, cases)
    return cases, docs


class _Staff(NamedTuple):
    """The people of one institution, by name."""

    code: str
    opl: str
    aios: str
    coc: str
    opleiders: set[str]


def _staff(code: str, sfx: str) -> _Staff:
    return _Staff(code, "opleider" + sfx, "aios" + sfx, "coc" + sfx,
                  {"opleider", "opleider2"} if code == "meander" else {"opleider_gelre"})


def _internal_guidance(eng, actor, users, staff: _Staff, cases, docs):
    """Internal guidance in `plan`, the plan signed by the aios (not yet by the opleider)."""
    from web.extensions import db

    code, opl, aios, opleiders = staff.code, staff.opl, staff.aios, staff.opleiders
    c = eng.open_case(db.session, actor[opl], workflow="internal_guidance", institution=code,
                      subject_id=users[aios], title="Begeleiding", data={"signal": "Signaal"})
    for trigger, data in [("analyse", {}), ("discuss", {"core_problem": "Structuur"}),
                          ("draft_plan", {"discussion_summary": "Besproken"})]:
        c = eng.fire(db.session, actor[opl], c.id, trigger, c.version, data)
    plan = eng.add_document(db.session, actor[opl], c.id, "improvement_plan", PLAN)
    eng.sign(db.session, actor[aios], plan.id, "agreed")
    internal = cases[f"internal@{code}"] = Obj(
        f"internal@{code}", c.id, "internal_guidance", code, aios, opl, "start_guidance", opleiders,
        "improvement_plan", opleiders)
    docs[f"plan@{code}"] = Doc(f"plan@{code}", plan.id, internal, {opl, aios}, {aios})


def _intensified_guidance(eng, actor, users, staff: _Staff, cases, docs) -> Obj:
    """Intensified guidance, decided, the adjusted IOP signed by the aios."""
    from web.extensions import db

    code, opl, aios, opleiders = staff.code, staff.opl, staff.aios, staff.opleiders
    g = eng.open_case(db.session, actor[opl], workflow="intensified_guidance", institution=code,
                      subject_id=users[aios], title="GBT", data={
                          "decision_moment": "suitability_assessment", "decision_date": "2026-03-02",
                          "reasons": "Onvoldoende voortgang", "aios_informed_of_dispute_procedure": True})
    iop = eng.add_document(db.session, actor[opl], g.id, "adjusted_iop", ADJUSTED_IOP)
    eng.sign(db.session, actor[aios], iop.id, "agreed")
    gbt = cases[f"gbt@{code}"] = Obj(f"gbt@{code}", g.id, "intensified_guidance", code, aios, opl, "start",
                                     opleiders, "adjusted_iop", opleiders, children=["dispute"])
    docs[f"iop@{code}"] = Doc(f"iop@{code}", iop.id, gbt, {opl, aios}, {aios})
    return gbt


def _dispute(eng, actor, users, staff: _Staff, gbt: Obj, cases, docs):
    """The aios's dispute about the intensified guidance, acknowledged (in mediation, with the receipt letter)."""
    from web.extensions import db

    code, aios, coc = staff.code, staff.aios, staff.coc
    d = eng.open_case(db.session, actor[aios], workflow="dispute", institution=code, parent_id=gbt.id,
                      title="Geschil", data={"grounds": "Onterecht"})
    d = eng.fire(db.session, actor[coc], d.id, "acknowledge", d.version, {})
    dispute = cases[f"dispute@{code}"] = Obj(f"dispute@{code}", d.id, "dispute", code, aios, aios, "refer",
                                             {coc, aios}, "receipt_confirmation")
    letter = db.session.scalar(select(Document).where(Document.case_id == d.id))
    docs[f"receipt@{code}"] = Doc(f"receipt@{code}", letter.id, dispute, set(letter.required_signer_ids and
                                                                             [_name(users, u) for u in
                                                                              letter.required_signer_ids]),
                                  set())


def _procedures(eng, actor, staff: _Staff, cases):
    """An escalation signal, and the three RSO procedures about the institution."""
    from web.extensions import db

    code, opl, coc = staff.code, staff.opl, staff.coc
    e = eng.open_case(db.session, actor[opl], workflow="escalation", institution=code, title="Signaal",
                      data={"description": "Te weinig supervisie"})
    cases[f"escalation@{code}"] = Obj(f"escalation@{code}", e.id, "escalation", code, None, opl, "resolve",
                                      {"rso"}, "rgs_escalation_letter")
    r = eng.open_case(db.session, actor["rso"], workflow="rso_consultation", institution=code, title="Overleg",
                      data={"shortcoming": "Roosters", "requirement": "quality"})
    cases[f"consultation@{code}"] = Obj(f"consultation@{code}", r.id, "rso_consultation", code, None, "rso",
                                        "record_compliance", {"rso"}, "improvement_plan", kind_exists=False)
    for wf, letter_kind in (("rso_quality", "rgs_report"), ("rso_obligations", "rvb_report")):
        q = eng.open_case(db.session, actor["rso"], workflow=wf, institution=code, title="Melding",
                          data={"shortcoming": "Roosters"})
        cases[f"{wf}@{code}"] = Obj(f"{wf}@{code}", q.id, wf, code, None, "rso", "resolve", {coc, "rso"},
                                    letter_kind)


def _special_cases(eng, actor, users, cases):
    """The cases out of the ordinary: about the COC chair, a colleague's trajectory, a confidential signal."""
    from web.extensions import db

    # an escalation at meander about its COC chair: the chair never sees it
    x = eng.open_case(db.session, actor["opleider2"], workflow="escalation", institution="meander",
                      title="Over de COC-voorzitter", data={"description": "Belangenverstrengeling",
                                                             "concerns_user_id": users["coc"]})
    cases["conflict@meander"] = Obj("conflict@meander", x.id, "escalation", "meander", None, "opleider2", "resolve",
                                    {"rso"}, "rgs_escalation_letter", excluded={"coc"})
    # a colleague's trajectory, just signalled, by the other opleider
    i2 = eng.open_case(db.session, actor["opleider2"], workflow="internal_guidance", institution="meander",
                       subject_id=users["aios2"], title="Begeleiding", data={"signal": "Signaal"})
    cases["internal2@meander"] = Obj("internal2@meander", i2.id, "internal_guidance", "meander", "aios2", "opleider2",
                                     "withdraw", {"opleider", "opleider2"}, "improvement_plan",
                                     {"opleider", "opleider2"})
    # a signal at gelre through the vertrouwenspersoon, who names the signaller
    v = eng.open_case(db.session, actor["vp"], workflow="escalation", institution="gelre", title="Vertrouwelijk",
                      data={"description": "Intimidatie", "signaller": "Een aios"})
    cases["confidential@gelre"] = Obj("confidential@gelre", v.id, "escalation", "gelre", None, "vp", "resolve",
                                      {"rso"}, "rgs_escalation_letter")


def _check_cases(users, cases):
    """The objects describe the rows as they are."""
    from web.extensions import db

    for obj in cases.values():
        row = db.session.get(Case, obj.id)
        assert (_name(users, row.subject_id) if row.subject_id else None, _name(users, row.opened_by_id)) == \
            (obj.subject, obj.opener), obj.key


def _name(users, uid):
    return next(name for name, i in users.items() if i == uid)


# -- sending a probe ---------------------------------------------------------------------------------------


def _fill(value, region: Region, obj, principal):
    if isinstance(value, dict):
        return {k: _fill(v, region, obj, principal) for k, v in value.items()}
    if not isinstance(value, str) or "{" not in value:
        return value
    case = obj.case if isinstance(obj, Doc) else obj
    version = None
    if case is not None:
        from web.extensions import db

        with region.app.app_context():
            version = db.session.get(Case, case.id).version if case.id != MISSING else 1
    names = {"aios": region.users["aios"], "meander": region.institutions["meander"],
             "trigger": case.trigger if case else "", "kind": case.doc_kind if case else "", "version": version,
             "email": f"{principal}@test.nl"}
    if re.fullmatch(r"\{(\w+)\}", value):
        resolved = names[value[1:-1]]
        return resolved
    return value.format(**names)


def _path(region: Region, key: str, obj) -> str:
    rule = region.routes[key]
    args = dict(region.arguments)
    if "case_id" in rule.arguments:
        args["case_id"] = obj.id
    if "document_id" in rule.arguments:
        args["document_id"] = obj.id
    missing = rule.arguments - set(args)
    assert not missing, f"{key}: no value for {missing} in ARGUMENTS"
    return rule.build(args, append_unknown=False)[1]


def send(region: Region, key: str, principal: str, obj=None):
    """The probe of `key` by `principal` on `obj`. A refusal (403/404) changes nothing (each route test checks
    that), so it is kept and reused: the IDOR tests compare the matrix's refusals with a missing id's answer."""
    memo = (key, principal, obj.key if obj else None)
    if memo in region.refusals:
        return region.refusals[memo]
    response = _send(region, key, principal, obj)
    if response.status_code in (403, 404) and obj is not None and obj.key != "missing":
        response.get_data()
        region.refusals[memo] = response
    return response


def _send(region: Region, key: str, principal: str, obj=None):
    method = key.split(" ", 1)[0]
    rule = RULES[key]
    path = _path(region, key, obj)
    body = _fill(rule.body, region, obj, principal) if rule.body is not None else None
    endpoint = region.routes[key].endpoint
    client = region.app.test_client()
    if endpoint.startswith("api.") or endpoint.startswith("api-docs."):
        headers = {}
        if principal != ANON:
            token = region.tokens[principal]
            if method == "DELETE" and key == "DELETE /api/v1/auth/tokens":
                token = _throwaway_token(region, principal)
            headers["Authorization"] = f"Bearer {token}"
        return client.open(path, method=method, headers=headers, json=body)
    if principal != ANON:  # with the current epoch: a probed POST /logout ends earlier sessions
        signed_in(region.app, client, region.users[principal])
    if method == "GET":
        return client.get(path)
    return client.open(path, method=method, data=body or {})


def _throwaway_token(region, principal):
    from web.auth import issue_token
    from web.extensions import db

    with region.app.app_context():
        token, _ = issue_token(db.session.get(User, region.users[principal]),
                               region.app.extensions["traject"].clock.now())
        db.session.commit()
    return token


def objects_for(region: Region, key: str, principal: str | None = None):
    on = RULES[key].on
    if on is None:
        return [None]
    objects = list((region.cases if on == "case" else region.docs).values())
    if not RULES[key].renders or principal is None:
        return objects
    seen = [o for o in objects if sees(principal, o.case if isinstance(o, Doc) else o)]
    hidden = [o for o in objects if o not in seen]
    return hidden + ([seen[PRINCIPALS.index(principal) % len(seen)]] if seen else [])


def expected(key: str, principal: str, obj):
    expect = RULES[key].expect
    return expect(principal, obj) if RULES[key].on else expect(principal)


# -- the tests ---------------------------------------------------------------------------------------------


def test_every_route_has_exactly_one_rule(region):
    routes = set(region.routes)
    assert not routes - set(RULES), f"routes without a rule in RULES: {sorted(routes - set(RULES))}"
    assert not set(RULES) - routes, f"rules for routes that do not exist: {sorted(set(RULES) - routes)}"
    for key, rule in RULES.items():  # a case or document route says which objects it takes, and only those
        arguments = region.routes[key].arguments
        assert (rule.on == "case") == ("case_id" in arguments), key
        assert (rule.on == "document") == ("document_id" in arguments), key


def test_the_region_has_every_workflow_at_both_institutions(region):
    from web.extensions import db

    with region.app.app_context():
        keys = set(region.app.extensions["traject"].latest(db.session))
    for code in ("meander", "gelre"):
        assert {c.workflow for c in region.cases.values() if c.institution == code} == keys
    # and every principal sees something and misses something (the matrix is not trivially one-sided)
    for name in USERS:
        seen = [sees(name, c) for c in region.cases.values()]
        assert any(seen), name
        assert not all(seen) or ROLE_OF[name][0] == "admin", name


@pytest.mark.parametrize("key", sorted(RULES))
def test_route_answers_each_role_as_the_table_says(region, key):
    before = region.snapshot()
    wrong = []
    for principal in PRINCIPALS:
        for obj in objects_for(region, key, principal):
            want = expected(key, principal, obj)
            response = send(region, key, principal, obj)
            if response.status_code != want:
                wrong.append(f"{principal} on {obj.key if obj else '-'}: {response.status_code}, expected {want}"
                             f" — {response.get_data(as_text=True)[:160]!r}")
            elif response.status_code == 302:
                assert "/login" in response.headers["Location"] or key == "GET /login", (key, principal)
    assert not wrong, f"{key}:\n  " + "\n  ".join(wrong)
    assert region.snapshot() == before, f"{key}: a probe wrote something"


ID_ROUTES = sorted(k for k, r in RULES.items() if r.on)


def _normal(response, obj_id) -> tuple:
    """The answer with the id itself taken out (the only thing that may differ) and the page's CSRF token."""
    if response.is_json:
        body = response.get_json()
        details = body.get("error", {}).get("details", {})
        for name in ("case_id", "document_id"):
            if details.get(name) == obj_id:
                details[name] = "ID"
        return response.status_code, response.mimetype, body
    body = response.get_data(as_text=True)
    body = re.sub(r'name="csrf_token" value="[^"]*"', 'name="csrf_token"', body)
    body = re.sub(rf"/(cases|documents)/{obj_id}(?!\d)", r"/\1/ID", body)
    return response.status_code, response.mimetype, body


@pytest.mark.parametrize("key", ID_ROUTES)
def test_an_object_out_of_scope_is_indistinguishable_from_a_missing_one(region, key):
    missing_obj = Obj("missing", MISSING, "", "", None, "", "", set(), "") if RULES[key].on == "case" else \
        Doc("missing", MISSING, None, set(), set())
    compared = 0
    for principal in USERS:
        hidden = [o for o in objects_for(region, key)
                  if not sees(principal, o.case if isinstance(o, Doc) else o)]
        if not hidden:
            continue
        missing = send(region, key, principal, _probe_twin(missing_obj, hidden[0]))
        assert missing.status_code in (403, 404), (key, principal, missing.get_data(as_text=True)[:200])
        want = _normal(missing, MISSING)
        for obj in hidden:
            got = _normal(send(region, key, principal, obj), obj.id)
            assert got == want, f"{key} as {principal} on {obj.key}: differs from a missing id"
            compared += 1
        if missing.is_json:
            err = missing.get_json()["error"]
            assert err["code"] in ("not_found", "forbidden") and set(err) == {"code", "message", "details"}
    assert compared > 0


def _probe_twin(missing, like):
    """The missing object with the probe fields of a real one (same body sent)."""
    if isinstance(missing, Doc):
        return Doc("missing", MISSING, like.case, set(), set())
    return Obj("missing", MISSING, like.workflow, like.institution, None, "", like.trigger, set(), like.doc_kind)


@pytest.mark.parametrize("principal", USERS)
def test_the_lists_show_exactly_the_cases_in_scope(region, principal):
    want = {c.id for c in region.cases.values() if sees(principal, c)}
    client = region.app.test_client()
    headers = {"Authorization": f"Bearer {region.tokens[principal]}"}
    ids, cursor = [], None
    while True:
        page_ = client.get("/api/v1/cases?limit=5" + (f"&cursor={cursor}" if cursor else ""), headers=headers)
        assert page_.status_code == 200
        ids += [c["id"] for c in page_.get_json()["items"]]
        cursor = page_.get_json()["next"]
        if cursor is None:
            break
    assert sorted(ids) == sorted(want)
    signed_in(region.app, client, region.users[principal])
    html = client.get("/cases?status=all").get_data(as_text=True)
    assert {int(i) for i in re.findall(r'href="/cases/(\d+)"', html)} == want


def test_a_browser_session_does_not_open_the_api(region):
    """The API authenticates bearer tokens only: a session cookie (which a forged request would carry) is not enough."""
    client = region.app.test_client()
    signed_in(region.app, client, region.users["admin"])
    assert client.get("/").status_code == 200
    for path in ("/api/v1/me", "/api/v1/cases", f"/api/v1/cases/{region.cases['internal@meander'].id}"):
        response = client.get(path)
        assert response.status_code == 401 and response.get_json()["error"]["code"] == "unauthenticated"
