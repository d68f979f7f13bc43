"""Confidential fields: the API, the case page and the dossier show every reader exactly the same.

Two cases with something confidential: an escalation whose signaller only the vertrouwenspersoon
may know (covenant art. 4), and an RSO quality report whose opener is not named (agreement
art. 2.6). Every role of the test region that can see a case reads it through all three outputs.
"""
from __future__ import annotations

import io
import json
import subprocess
import sys
import zipfile

import pytest

from conftest import ROLES
from flows import browser, fire, ok

SIGNALLER = "Mw. Vertrouwelijk-Melder"


@pytest.fixture
def confidential(world):
    signal = ok(world.api("vp").post("/cases", json={
        "workflow": "escalation", "institution": "meander", "title": "Supervisie in de avonddienst",
        "data": {"description": "Aiossen staan 's avonds zonder supervisor", "signaller": SIGNALLER}}), 201)
    fire(world.api("rso"), signal, "discuss", {"with_coc_board": True})
    consultation = ok(world.api("rso").post("/cases", json={
        "workflow": "rso_consultation", "institution": "meander", "title": "Onvoldoende supervisie",
        "data": {"shortcoming": "Supervisie voldoet niet", "requirement": "quality"}}), 201)
    consultation = fire(world.api("rso"), consultation, "escalate_quality", {"reason": "Niet nagekomen",
                                                                        "justification": "Weigert overleg"})
    [report_id] = consultation["child_ids"]
    return {"signal": signal["id"], "report": report_id}


def _dossier(client, path, headers=None) -> dict[str, bytes]:
    response = client.get(path, headers=headers or {})
    assert response.status_code == 200, response.data[:200]
    with zipfile.ZipFile(io.BytesIO(response.data)) as archive:
        return {name.split("/", 1)[1]: archive.read(name) for name in archive.namelist()}


def _readers(world, case_id) -> list[str]:
    return [name for name, _, _ in ROLES if world.api(name).get(f"/cases/{case_id}").status_code == 200]


def test_the_signaller_is_shown_only_to_the_vertrouwenspersoon_in_every_output(world, confidential):
    case_id = confidential["signal"]
    readers = _readers(world, case_id)
    assert {"vp", "rso", "coc", "regio"} <= set(readers)
    for name in readers:
        api = world.api(name)
        may = name == "vp"
        case = ok(api.get(f"/cases/{case_id}"))
        events = ok(api.get(f"/cases/{case_id}/events"))
        page = browser(world, name).get(f"/cases/{case_id}").get_data(as_text=True)
        files = _dossier(world.client, f"/api/v1/cases/{case_id}/dossier.zip", api._headers())
        texts = {path: body.decode() for path, body in files.items() if path.endswith((".json", ".txt"))}
        in_api = SIGNALLER in json.dumps(case) or SIGNALLER in json.dumps(events)
        in_page = SIGNALLER in page
        in_dossier = any(SIGNALLER in text for text in texts.values())
        assert (in_api, in_page, in_dossier) == (may, may, may), name
        if not may:
            assert json.loads(texts[f"cases/{case_id}/case.json"])["data"]["signaller"] == "[vertrouwelijk]"


def test_the_opener_of_an_rso_quality_report_is_named_nowhere_but_to_the_admin(world, confidential):
    case_id = confidential["report"]
    opener = world.users["rso"]
    readers = _readers(world, case_id)
    assert {"coc", "rvb", "rcoc", "regio", "admin"} <= set(readers)
    for name in readers:
        api = world.api(name)
        may = name in ("admin", "rso")  # the superuser, and the opener who knows it themselves
        case = ok(api.get(f"/cases/{case_id}"))
        first = ok(api.get(f"/cases/{case_id}/events"))[0]
        files = _dossier(world.client, f"/api/v1/cases/{case_id}/dossier.zip", api._headers())
        summary = json.loads(files[f"cases/{case_id}/case.json"])
        trail = json.loads(files[f"cases/{case_id}/audit.json"])
        page = browser(world, name).get(f"/cases/{case_id}").get_data(as_text=True)
        assert case["opened_by"] == (opener if may else None), name
        assert first["actor_id"] == (opener if may else None), name
        assert summary["opened_by"] == (opener if may else None), name
        assert trail[0]["actor_id"] == (opener if may else None), name
        assert trail[0].get("withheld", False) is (not may), name
        # the page's details and timeline: the opener's name ("Rso") never appears for the others
        assert ("<dd>Rso</dd>" in page) is may, name


def test_a_dossier_with_withheld_events_still_verifies_and_still_catches_an_edit(world, confidential, tmp_path):
    api = world.api("coc")
    files = _dossier(world.client, f"/api/v1/cases/{confidential['report']}/dossier.zip", api._headers())
    root = tmp_path / "pack"
    for path, body in files.items():
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).write_bytes(body)
    result = subprocess.run([sys.executable, str(root / "verify.py"), str(root)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout
    assert "OK: dossier intact" in result.stdout and "vertrouwelijke gegevens" in result.stdout
    # a withheld event is linked, not trusted: moving it out of the chain is still found
    audit = root / f"cases/{confidential['report']}/audit.json"
    trail = json.loads(audit.read_text())
    trail[0]["prev_hash"] = "f" * 64
    audit.write_text(json.dumps(trail))
    broken = subprocess.run([sys.executable, str(root / "verify.py"), str(root)], capture_output=True, text=True)
    assert broken.returncode == 1 and "breaks the chain" in broken.stdout
