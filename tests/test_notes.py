"""Notes on a case: audited in the case's hash chain; read by the case's participants only (docs/notes.md)."""
from __future__ import annotations

import hashlib
import re

from sqlalchemy import select

from engine.models import AuditEvent, CaseNote
from flows import browser, ok, open_internal
from web.extensions import db


def note(client, case_id, text, status=303):
    page = client.get(f"/cases/{case_id}").get_data(as_text=True)
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    response = client.post(f"/cases/{case_id}/notes", data={"csrf_token": token, "text": text})
    assert response.status_code == status, response.status_code
    return response


def test_a_note_is_kept_in_the_audit_chain_and_read_by_the_participants_only(world, runner):
    case = open_internal(world.api("opleider"), world.users["aios"])
    opleider = browser(world, "opleider")
    note(opleider, case["id"], "Gesprek met de aios gepland op 12 maart")
    with world.app.app_context():
        [row] = db.session.scalars(select(CaseNote)).all()
        event = db.session.scalars(select(AuditEvent).where(AuditEvent.case_id == case["id"])
                                   .order_by(AuditEvent.seq.desc())).first()
        assert event.type == "note_added" and event.actor_id == world.users["opleider"]
        assert event.data == {"note_id": row.id, "sha256": hashlib.sha256(row.text.encode()).hexdigest()}
        assert "Gesprek" not in str(event.data)  # the chain holds the hash; the events API never the text
    assert runner.invoke(["audit", "verify"]).exit_code == 0
    for name in ("opleider", "aios", "coc", "admin"):
        assert "Gesprek met de aios gepland" in browser(world, name).get(f"/cases/{case['id']}").get_data(as_text=True)
    hr = browser(world, "hr")
    gbt_like = hr.get(f"/cases/{case['id']}")
    assert "Gesprek met de aios gepland" not in gbt_like.get_data(as_text=True)
    for name in ("regio", "rso", "coc_gelre"):  # the overview roles and another hospital: no such case
        assert browser(world, name).get(f"/cases/{case['id']}").status_code == 404
    events = ok(world.api("hr").get(f"/cases/{case['id']}/events"), 200) if gbt_like.status_code == 200 else []
    assert all("Gesprek" not in str(e) for e in events)


def test_hr_may_not_write_a_note_and_an_empty_note_is_said_on_the_form(world):
    case = open_internal(world.api("opleider"), world.users["aios"])
    opleider = browser(world, "opleider")
    refused = note(opleider, case["id"], "   ", status=422)
    assert "Dit veld is verplicht" in refused.get_data(as_text=True)
    hr = browser(world, "hr")
    token = re.search(r'name="csrf_token" value="([^"]+)"', hr.get("/").get_data(as_text=True)).group(1)
    response = hr.post(f"/cases/{case['id']}/notes", data={"csrf_token": token, "text": "Notitie"})
    assert response.status_code in (403, 404)
    with world.app.app_context():
        assert db.session.scalars(select(CaseNote)).all() == []
