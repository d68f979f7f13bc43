"""TRAJECT_NOW fixes the clock of every process, in development and testing only (CONTRACT.md §6)."""
from __future__ import annotations

import logging
from datetime import datetime, timezone

import pytest

from engine.models import User
from web.config import ConfigError, fixed_now, from_env

FIXED = datetime(2027, 2, 1, 9, 0, tzinfo=timezone.utc)  # 10:00 in Amsterdam


@pytest.fixture
def clock(monkeypatch):
    """No test clock: the app takes its clock from the environment, as `traject web`, `worker` and `demo` do."""
    monkeypatch.setenv("TRAJECT_NOW", "2027-02-01T10:00:00")
    return None


def test_it_reads_a_local_moment_an_offset_or_a_date():
    assert fixed_now({"TRAJECT_NOW": "2027-02-01T10:00:00"}, "testing") == FIXED
    assert fixed_now({"TRAJECT_NOW": "2027-02-01T09:00:00Z"}, "development") == FIXED
    assert fixed_now({"TRAJECT_NOW": "2027-02-01"}, "testing") == datetime(2027, 1, 31, 23, 0, tzinfo=timezone.utc)
    assert fixed_now({}, "testing") is None
    with pytest.raises(ConfigError, match="ISO-8601"):
        fixed_now({"TRAJECT_NOW": "1 februari"}, "testing")


def test_it_is_ignored_with_a_warning_outside_development_and_testing(caplog):
    env = {"TRAJECT_ENV": "production", "SECRET_KEY": "x" * 40, "TRAJECT_NOW": "2027-02-01T10:00:00"}
    with caplog.at_level(logging.WARNING, logger="web.config"):
        assert from_env(env)["TRAJECT_NOW"] is None
    assert "TRAJECT_NOW is ignored" in caplog.text


def test_the_app_and_the_cli_keep_the_fixed_time(app, runner):
    # The worker (web/jobs/worker.py) and the demo read this same engine clock.
    from web.extensions import db

    assert app.extensions["traject"].clock.now() == FIXED
    assert runner.invoke(["institution", "create", "--code", "meander", "--name", "Meander MC",
                          "--region", "cluster-utrecht"]).exit_code == 0
    result = runner.invoke(["user", "create", "--email", "o@example.nl", "--name", "O", "--role", "opleider",
                            "--institution", "meander", "--password-stdin"], input="een-lang-wachtwoord\n")
    assert result.exit_code == 0, result.output
    with app.app_context():
        user = db.session.get(User, int(result.output.strip().splitlines()[-1]))
        assert user.created_at == FIXED
