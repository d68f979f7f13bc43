"""User administration in the pages, the password policy and the security log (issue 18)."""
from __future__ import annotations

import csv
import io
import re

import pytest
from sqlalchemy import select

from engine.models import AuthToken, Invitation, Notification, RoleAssignment, SecurityEvent, User
from flows import signed_in
from web import passwords
from web.extensions import db

API = "/api/v1"


def csrf(client, path="/admin/users") -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', client.get(path).get_data(as_text=True)).group(1)


def as_user(world, name):
    client = world.app.test_client()
    signed_in(world.app, client, world.users[name])
    return client


def events(world, kind=None) -> list[SecurityEvent]:
    with world.app.app_context():
        query = select(SecurityEvent).order_by(SecurityEvent.id)
        if kind:
            query = query.where(SecurityEvent.kind == kind)
        return list(db.session.scalars(query))


def invite(client, world, email="nieuw@test.nl", role="opleider", institution="meander", **extra):
    return client.post("/admin/users/invite", data={
        "csrf_token": csrf(client), "name": "Nieuwe Opleider", "email": email, "role": role,
        "institution": str(world.institutions[institution]) if institution else "", **extra})


def invitation_token(world, email) -> str:
    with world.app.app_context():
        body = db.session.scalar(select(Notification.body_text).join(User, User.id == Notification.recipient_user_id)
                                 .where(User.email == email, Notification.kind == "invitation")
                                 .order_by(Notification.id.desc()))
    return re.search(r"/invite/(\S+)", body).group(1)


# -- the password policy --------------------------------------------------------------------------------


@pytest.mark.parametrize("password,ok", [
    ("kort-maar-ok", True),                      # 12 characters
    ("elf-tekens!", False),                      # 11
    ("Password1234", False),                     # on the list, whatever the case
    ("correct horse battery staple", False),
    ("Welkom2026!!", True),
    ("x" * 129, False),
    ("nieuw@test.nl", False),                    # the account's own address
])
def test_the_policy_asks_length_and_refuses_common_passwords(password, ok):
    assert (passwords.problem(password, "nieuw@test.nl") is None) == ok


def test_the_common_password_list_is_shipped_compact_and_in_lower_case():
    words = passwords.common_passwords()
    assert 500 < len(words) < 20000
    assert all(w == w.lower() and len(w) >= passwords.MIN_LENGTH for w in words)


def test_the_cli_applies_the_policy(runner, world):
    refused = runner.invoke(["user", "create", "--email", "x@test.nl", "--name", "X", "--role", "admin",
                             "--password-stdin"], input="passwordpassword\n")
    assert refused.exit_code != 0 and "too common" in refused.output
    made = runner.invoke(["user", "create", "--email", "x@test.nl", "--name", "X", "--role", "admin",
                          "--password-stdin"], input="een lange zin over de opleiding\n")
    assert made.exit_code == 0, made.output
    assert [e.kind for e in events(world, "user.created")] == ["user.created"]


def test_the_password_page_applies_the_policy(world):
    from web.auth import hash_password

    with world.app.app_context():
        db.session.get(User, world.users["aios"]).password_hash = hash_password("het oude wachtwoord hier")
        db.session.commit()
    client = as_user(world, "aios")
    token = csrf(client, "/account/password")
    response = client.post("/account/password", data={"csrf_token": token, "current": "het oude wachtwoord hier",
                                                       "new": "qwertyuiop123", "repeat": "qwertyuiop123"})
    assert response.status_code == 422 and "te vaak gebruikt" in response.get_data(as_text=True)


# -- invitations --------------------------------------------------------------------------------------------


def test_an_admin_invites_a_user_who_sets_a_password_through_the_one_time_link(world):
    admin = as_user(world, "admin")
    assert invite(admin, world).status_code == 303
    with world.app.app_context():
        user = db.session.scalar(select(User).where(User.email == "nieuw@test.nl"))
        assert [(a.role, a.institution_id) for a in user.roles] == [("opleider", world.institutions["meander"])]
        assert user.password_hash is None
        stored = db.session.scalar(select(Invitation.token_hash))
    link = invitation_token(world, "nieuw@test.nl")
    assert link not in stored  # only the hash is kept
    visitor = world.app.test_client()
    page = visitor.get(f"/invite/{link}").get_data(as_text=True)
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    weak = visitor.post(f"/invite/{link}", data={"csrf_token": token, "new": "welkom123456", "repeat": "welkom123456"})
    assert weak.status_code == 422
    done = visitor.post(f"/invite/{link}", data={"csrf_token": token, "new": "een zin die ik onthoud",
                                                  "repeat": "een zin die ik onthoud"})
    assert done.status_code == 303
    assert visitor.get(f"/invite/{link}").status_code == 404  # once
    login = visitor.post("/login", data={"email": "nieuw@test.nl", "password": "een zin die ik onthoud",
                                         "csrf_token": token})
    assert login.status_code == 303
    kinds = [(e.kind, e.outcome, e.actor_id) for e in events(world)]
    assert kinds[0] == ("user.invited", "ok", world.users["admin"])
    assert [k[:2] for k in kinds[1:]] == [("password.set", "ok"), ("login", "ok")]


def test_an_invitation_expires(world, clock):
    admin = as_user(world, "admin")
    invite(admin, world)
    link = invitation_token(world, "nieuw@test.nl")
    clock.advance(days=8)
    assert world.app.test_client().get(f"/invite/{link}").status_code == 404


def test_a_new_invitation_ends_the_earlier_one(world):
    admin = as_user(world, "admin")
    invite(admin, world)
    first = invitation_token(world, "nieuw@test.nl")
    with world.app.app_context():
        uid = db.session.scalar(select(User.id).where(User.email == "nieuw@test.nl"))
    admin.post(f"/admin/users/{uid}/invite", data={"csrf_token": csrf(admin)})
    assert world.app.test_client().get(f"/invite/{first}").status_code == 404
    assert world.app.test_client().get(f"/invite/{invitation_token(world, 'nieuw@test.nl')}").status_code == 200


# -- roles, deactivation, MFA reset, deputy ------------------------------------------------------------------


def test_roles_are_given_and_withdrawn_with_their_institution_and_region(world):
    admin = as_user(world, "admin")
    uid = world.users["aios2"]
    token = csrf(admin)
    given = admin.post(f"/admin/users/{uid}/roles", data={"csrf_token": token, "role": "hr",
                                                           "institution": str(world.institutions["gelre"])})
    assert given.status_code == 303
    regional = admin.post(f"/admin/users/{uid}/roles", data={"csrf_token": token, "role": "rso_board",
                                                              "region": str(world.region_id)})
    assert regional.status_code == 303
    with world.app.app_context():
        held = {(a.role, a.institution_id, a.region_id): a.id for a in db.session.get(User, uid).roles}
    assert ("hr", world.institutions["gelre"], world.region_id) in held
    assert ("rso_board", None, world.region_id) in held
    no_institution = admin.post(f"/admin/users/{uid}/roles", data={"csrf_token": token, "role": "opleider"})
    assert no_institution.status_code == 303 and len(_roles(world, uid)) == 3
    hr = held[("hr", world.institutions["gelre"], world.region_id)]
    assert admin.post(f"/admin/users/{uid}/roles/{hr}/withdraw", data={"csrf_token": token}).status_code == 303
    assert ("hr", world.institutions["gelre"]) not in {(a[0], a[1]) for a in _roles(world, uid)}
    assert [e.kind for e in events(world) if e.user_id == uid] == ["role.assigned", "role.assigned", "role.withdrawn"]
    page = admin.get(f"/admin/users/{uid}").get_data(as_text=True)
    assert "role.withdrawn" in page  # visible to the admin on the account's page


def _roles(world, uid):
    with world.app.app_context():
        return [(a.role, a.institution_id, a.region_id) for a in db.session.scalars(
            select(RoleAssignment).where(RoleAssignment.user_id == uid))]


def test_deactivation_ends_every_session_and_token(world):
    aios_api = world.api("aios")
    aios_page = as_user(world, "aios")
    assert aios_page.get("/").status_code == 200
    admin = as_user(world, "admin")
    response = admin.post(f"/admin/users/{world.users['aios']}/active", data={"csrf_token": csrf(admin), "active": "0"})
    assert response.status_code == 303
    assert aios_api.get("/me").status_code == 401
    assert aios_page.get("/").status_code == 302
    with world.app.app_context():
        assert db.session.scalar(select(AuthToken.revoked_at).where(AuthToken.user_id == world.users["aios"]))
    assert events(world, "user.deactivated")[0].actor_id == world.users["admin"]


def test_an_admin_resets_mfa_and_sets_a_deputy(world, runner):
    runner.invoke(["user", "mfa", "enable", "--email", "opleider@test.nl"])
    admin = as_user(world, "admin")
    uid = world.users["opleider"]
    token = csrf(admin)
    assert admin.post(f"/admin/users/{uid}/mfa/reset", data={"csrf_token": token}).status_code == 303
    assert admin.post(f"/admin/users/{uid}/deputy", data={"csrf_token": token,
                                                           "deputy": str(world.users["opleider2"])}).status_code == 303
    with world.app.app_context():
        user = db.session.get(User, uid)
        assert user.totp_secret is None and user.deputy_id == world.users["opleider2"]
    assert [e.kind for e in events(world) if e.user_id == uid][-2:] == ["mfa.reset", "deputy.set"]


def test_every_form_needs_its_csrf_token(world):
    admin = as_user(world, "admin")
    for path in ("/admin/users/invite", f"/admin/users/{world.users['aios']}/active",
                 f"/admin/users/{world.users['aios']}/roles", f"/admin/users/{world.users['aios']}/mfa/reset"):
        assert admin.post(path, data={"active": "0", "role": "hr"}).status_code == 400, path
    assert db_user_active(world, "aios")


def db_user_active(world, name) -> bool:
    with world.app.app_context():
        return db.session.get(User, world.users[name]).active


# -- the COC chair: their own institution only -------------------------------------------------------------


def test_a_coc_chair_manages_the_accounts_of_their_institution_only(world):
    coc = as_user(world, "coc")
    listed = coc.get("/admin/users").get_data(as_text=True)
    assert "aios@test.nl" in listed and "aios_gelre@test.nl" not in listed and "admin@test.nl" not in listed
    assert coc.get(f"/admin/users/{world.users['aios_gelre']}").status_code == 404
    assert coc.get(f"/admin/users/{world.users['admin']}").status_code == 404
    assert invite(coc, world, email="a@test.nl", institution="gelre").status_code == 404  # not a choice of theirs
    assert invite(coc, world, email="b@test.nl", role="admin", institution=None).status_code == 303
    assert _user(world, "b@test.nl") is None  # a regional role is the administrator's
    assert invite(coc, world, email="c@test.nl", role="aios").status_code == 303
    assert _user(world, "c@test.nl") is not None
    assert coc.get("/admin/security-log").status_code == 404
    for name in ("opleider", "aios", "hr", "regio"):
        assert as_user(world, name).get("/admin/users").status_code == 404, name


def _user(world, email):
    with world.app.app_context():
        return db.session.scalar(select(User).where(User.email == email))


# -- the security log ----------------------------------------------------------------------------------------


def test_every_login_and_failure_is_in_the_security_log_which_the_admin_exports(world):
    from web.auth import hash_password

    with world.app.app_context():
        db.session.get(User, world.users["aios"]).password_hash = hash_password("een zin die ik onthoud")
        db.session.commit()
    client = world.client
    client.post(API + "/auth/tokens", json={"email": "aios@test.nl", "password": "fout fout fout"},
                headers={"User-Agent": "probe/1"})
    client.post(API + "/auth/tokens", json={"email": "nobody@test.nl", "password": "fout fout fout"})
    client.post(API + "/auth/tokens", json={"email": "aios@test.nl", "password": "een zin die ik onthoud"})
    page_token = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/login").get_data(as_text=True)).group(1)
    client.post("/login", data={"email": "aios@test.nl", "password": "nee", "csrf_token": page_token})
    rows = [(e.kind, e.outcome, e.email, e.method) for e in events(world)]
    assert rows == [("login", "failed", "aios@test.nl", "password"), ("login", "failed", "nobody@test.nl", "password"),
                    ("login", "ok", "aios@test.nl", "password"), ("login", "failed", "aios@test.nl", "password")]
    first = events(world)[0]
    assert (first.ip, first.user_agent) == ("127.0.0.1", "probe/1")
    admin = as_user(world, "admin")
    assert "nobody@test.nl" in admin.get("/admin/security-log").get_data(as_text=True)
    export = admin.get("/admin/security-log.csv")
    assert export.status_code == 200 and export.mimetype == "text/csv"
    table = list(csv.DictReader(io.StringIO(export.get_data(as_text=True))))
    assert list(table[0]) == ["id", "at", "kind", "outcome", "method", "user_id", "email", "actor_id", "ip",
                              "user_agent", "detail"]
    assert {r["email"] for r in table} >= {"aios@test.nl", "nobody@test.nl"}
    assert "een zin" not in export.get_data(as_text=True) and "fout fout" not in export.get_data(as_text=True)


def test_the_export_quotes_cells_a_spreadsheet_would_run(world):
    world.client.post(API + "/auth/tokens", json={"email": "=cmd|calc@x.nl", "password": "x"})
    admin = as_user(world, "admin")
    assert "'=cmd|calc@x.nl" in admin.get("/admin/security-log.csv").get_data(as_text=True)


def test_an_opleider_role_is_given_with_its_programme_and_only_programme_roles_keep_one(world):
    from engine.models import Programme

    with world.app.app_context():
        programme = Programme(region_id=world.region_id, code="kindergeneeskunde", name="Kindergeneeskunde")
        db.session.add(programme)
        db.session.commit()
        programme_id = programme.id
    admin, uid = as_user(world, "admin"), world.users["aios2"]
    token = csrf(admin)
    for role in ("opleider", "hr"):
        given = admin.post(f"/admin/users/{uid}/roles", data={
            "csrf_token": token, "role": role, "institution": str(world.institutions["gelre"]),
            "programme": str(programme_id)})
        assert given.status_code == 303
    with world.app.app_context():
        held = {a.role: a.programme for a in db.session.get(User, uid).roles}
    assert held["opleider"] == "kindergeneeskunde" and held["hr"] is None  # HR covers every programme
