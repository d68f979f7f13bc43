"""The `traject` command: users, institutions, the demo region, audit verification."""
from __future__ import annotations

from sqlalchemy import func, select

from engine.models import AuditEvent, Case, Institution, User
from web.extensions import db


def test_institution_and_user_create_print_the_new_id_last(app, runner):
    result = runner.invoke(["institution", "create", "--code", "meander", "--name", "Meander MC",
                            "--region", "cluster-utrecht"])
    assert result.exit_code == 0, result.output
    result = runner.invoke(["user", "create", "--email", "New.Opleider@Example.nl", "--name", "Nieuwe Opleider",
                            "--role", "opleider", "--institution", "meander", "--password-stdin"],
                           input="een-lang-wachtwoord\n")
    assert result.exit_code == 0, result.output
    user_id = int(result.output.strip().splitlines()[-1])
    with app.app_context():
        user = db.session.get(User, user_id)
        assert user.email == "new.opleider@example.nl"
        assert [(r.role, r.institution.code) for r in user.roles] == [("opleider", "meander")]
        assert user.password_hash and "een-lang-wachtwoord" not in user.password_hash


def test_user_create_refuses_bad_input_clearly(app, runner):
    runner.invoke(["institution", "create", "--code", "gelre", "--name", "Gelre"])
    for args, message in [
        (["--role", "opleider"], "needs --institution"),
        (["--role", "opleider", "--institution", "nowhere"], "unknown institution"),
        (["--role", "wizard"], "Invalid value"),
    ]:
        result = runner.invoke(["user", "create", "--email", "x@example.nl", "--name", "X", *args])
        assert result.exit_code != 0 and message in result.output
    result = runner.invoke(["user", "create", "--email", "x@example.nl", "--name", "X", "--role", "aios",
                            "--institution", "gelre", "--password-stdin"], input="short\n")
    assert result.exit_code != 0 and "at least 12" in result.output


def test_the_demo_is_idempotent_and_its_chains_verify(app, runner):
    first = runner.invoke(["demo"])
    assert first.exit_code == 0, first.output
    assert "Demo password" in first.output
    with app.app_context():
        counts = [db.session.scalar(select(func.count()).select_from(t)) for t in (Institution, User, Case, AuditEvent)]
        states = set(db.session.scalars(select(Case.state)))
    assert counts[0] == 5 and counts[1] >= 30 and counts[2] >= 9
    assert {"signalled", "analysis", "plan", "guidance", "closed", "intensified", "withdrawn", "decided"} <= states
    assert runner.invoke(["demo"]).exit_code == 0
    with app.app_context():
        again = [db.session.scalar(select(func.count()).select_from(t)) for t in (Institution, User, Case, AuditEvent)]
    assert again == counts
    assert runner.invoke(["audit", "verify"]).exit_code == 0


def test_demo_passwords_work_only_in_a_demo_instance(app, runner, client):
    runner.invoke(["demo"])
    password = (app.instance_path + "/demo_password.txt")
    secret = open(password).read().strip()
    body = {"email": "opleider.meander@demo.traject.nl", "password": secret}
    assert client.post("/api/v1/auth/tokens", json=body).status_code == 201
    app.config["TRAJECT_DEMO"] = False
    assert client.post("/api/v1/auth/tokens", json=body).status_code == 401
