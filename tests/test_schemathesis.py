"""schemathesis against /api/v1/openapi.json, in process (WSGI), on the demo region.

Every operation of the OpenAPI document is called with generated requests — valid ones (positive)
and invalid ones (negative) — as a demo user with real cases, documents and a legal hold, drawn
per request among an opleider, an aios, a COC chair, the regiobestuur and the admin. Path ids and
body fields are steered towards ids and names that exist, so that the operations get past "not
found" and into their real work. Checks on every response:

- not_a_server_error: never a 5xx;
- status_code_conformance, content_type_conformance, response_schema_conformance,
  response_headers_conformance: the status, media type, body and headers are the documented ones
  (errors included: web/openapi.py documents them in the contract's shape);
- negative_data_rejection: invalid input is refused with a 4xx.

Bounded: TRAJECT_FUZZ_EXAMPLES examples per operation and mode (default 10), derandomized (the
same requests on every run, so CI does not flake); TRAJECT_FUZZ_RANDOM=1 explores new ones. The
number of requests sent is printed and written to tests/artifacts/schemathesis.json.
"""
from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest
import schemathesis  # the test extra (pyproject.toml): CI installs it, so a missing one fails loudly
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

EXAMPLES = int(os.environ.get("TRAJECT_FUZZ_EXAMPLES", "10"))
RANDOM = os.environ.get("TRAJECT_FUZZ_RANDOM") == "1"
ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
DEMO_USERS = ["opleider.meander", "aios.meander.1", "coc-chair.meander", "rso-board", "regio-bestuur", "admin"]


def _checks():
    from schemathesis import checks

    return [checks.not_a_server_error, checks.status_code_conformance, checks.content_type_conformance,
            checks.response_schema_conformance, checks.response_headers_conformance,
            checks.negative_data_rejection]


@pytest.fixture
def demo(app):
    """The demo region with a bearer token per demo user, the ids that exist, and a legal hold."""
    from engine.models import Case, Document, User
    from web import demo as demo_region
    from web.auth import issue_token
    from web.extensions import db

    app.config["TRAJECT_DEMO"] = True
    with app.app_context():
        demo_region.load(app, echo=lambda *a: None)
        eng = app.extensions["traject"]
        now = eng.clock.now()
        tokens, users = {}, {}
        for local in DEMO_USERS:
            users[local] = db.session.scalar(select(User).where(User.email == f"{local}@demo.traject.nl"))
            tokens[local], _ = issue_token(users[local], now)
        # the demo has guidance trajectories; add the covenant's procedures, with their confidential fields
        opleider, board = eng.actor_for(users["opleider.meander"]), eng.actor_for(users["rso-board"])
        eng.open_case(db.session, opleider, workflow="escalation", institution="meander", title="Supervisie",
                      data={"description": "Te weinig supervisie in de avonddiensten", "signaller": "Een aios"})
        eng.open_case(db.session, board, workflow="rso_quality", institution="gelre", title="Kwaliteit",
                      data={"shortcoming": "Onvoldoende opleidingsbesprekingen"})
        eng.open_case(db.session, opleider, workflow="rso_obligations", institution="meander", title="Verplichting",
                      data={"shortcoming": "Geen opleidingsplan"})
        eng.open_case(db.session, board, workflow="rso_consultation", institution="umcu", title="Overleg",
                      data={"shortcoming": "Roosters", "requirement": "quality"})
        db.session.commit()
        case_ids = list(db.session.scalars(select(Case.id).order_by(Case.id)))
        document_ids = list(db.session.scalars(select(Document.id).order_by(Document.id)))
        definitions = app.extensions["traject"].latest(db.session)
        triggers = sorted({t.trigger for d in definitions.values() for t in d.transitions})
        kinds = sorted({k for d in definitions.values() for k in d.documents})
        keys = sorted(definitions)
    client = app.test_client()
    hold = client.post(f"/api/v1/cases/{case_ids[0]}/legal-holds", json={"reason": "Fuzzing"},
                       headers={"Authorization": f"Bearer {tokens['admin']}"})
    hold_ids = [hold.get_json()["id"]] if hold.status_code == 201 else []
    mine = {}  # per user: the cases and documents in their scope
    for local, token in tokens.items():
        items = client.get("/api/v1/cases?limit=200", headers={"Authorization": f"Bearer {token}"}).get_json()["items"]
        mine[local] = {"case_id": [c["id"] for c in items],
                       "document_id": [d["id"] for c in items for d in c["documents"]]}
    for local in mine:
        mine[local].update(key=keys, hold_id=hold_ids)
    return {"tokens": tokens, "case_id": case_ids, "document_id": document_ids, "hold_id": hold_ids,
            "trigger": triggers, "kind": kinds, "key": keys, "mine": mine, "workflow": keys,
            "institution": ["meander", "gelre", "umcu"]}


def _steer(app, case, data, demo, who) -> None:
    """Real ids and names most of the time — mostly in the user's scope — so that operations get past
    'not found' and into their real work: transitions with the case's current version, real triggers."""
    from engine.models import Case
    from web.extensions import db

    for name in ("case_id", "document_id", "hold_id", "key"):
        if not case.path_parameters or name not in case.path_parameters:
            continue
        roll = data.draw(st.integers(0, 9), label=f"steer {name}")
        pool = demo["mine"][who].get(name) if roll < 7 else demo[name] if roll < 9 else None
        if pool:
            case.path_parameters[name] = data.draw(st.sampled_from(pool), label=name)
    if isinstance(case.body, dict):
        for name in ("trigger", "kind", "workflow", "institution"):
            if name in case.body and data.draw(st.booleans(), label=f"steer {name}"):
                case.body[name] = data.draw(st.sampled_from(demo[name]), label=name)
        case_id = (case.path_parameters or {}).get("case_id")
        if "expected_version" in case.body and isinstance(case_id, int) and data.draw(st.booleans(), label="version"):
            with app.app_context():
                version = db.session.scalar(select(Case.version).where(Case.id == case_id))
            if version:
                case.body["expected_version"] = version


def _fresh_token(app, tokens) -> str:
    """DELETE /auth/tokens revokes the token it is called with: give it its own."""
    from engine.models import User
    from web.auth import issue_token
    from web.extensions import db

    with app.app_context():
        user = db.session.scalar(select(User).where(User.email == "opleider.meander@demo.traject.nl"))
        token, _ = issue_token(user, app.extensions["traject"].clock.now())
        db.session.commit()
    return token


@pytest.mark.one_database  # what is rendered does not depend on the database; SQLite's run covers it
def test_every_operation_keeps_the_promises_of_the_openapi_document(app, demo):
    from schemathesis import GenerationMode
    from schemathesis.core.parameters import ParameterLocation

    schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", app)
    checks = _checks()
    counts: dict[str, dict[str, int]] = {}
    statuses: dict[str, dict[str, int]] = {}
    failures: list[str] = []
    started = time.monotonic()
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 20, [op.label for op in operations]
    for operation in operations:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            label = f"{operation.label} [{mode.value}]"
            counts[label] = 0
            seen = statuses.setdefault(operation.label, {})

            @settings(max_examples=EXAMPLES, deadline=None, derandomize=not RANDOM, database=None,
                      suppress_health_check=list(HealthCheck), phases=[Phase.explicit, Phase.generate, Phase.shrink],
                      report_multiple_bugs=False)
            @given(case=operation.as_strategy(generation_mode=mode), data=st.data())
            def call(case, data):
                who = data.draw(st.sampled_from(DEMO_USERS), label="user")
                if mode == GenerationMode.POSITIVE:
                    _steer(app, case, data, demo, who)
                token = demo["tokens"][who]
                if operation.method.upper() == "DELETE" and operation.path.endswith("/auth/tokens"):
                    token = _fresh_token(app, demo["tokens"])
                # a negative case may be about the headers (e.g. no Authorization): then it is sent as generated
                negative_headers = case.meta is not None and case.meta.is_negative_at(ParameterLocation.HEADER)
                headers = {} if negative_headers else {"Authorization": f"Bearer {token}"}
                response = case.call(headers=headers)
                counts[label] += 1
                seen[str(response.status_code)] = seen.get(str(response.status_code), 0) + 1
                case.validate_response(response, checks=checks, headers=headers)

            try:
                call()
            except (Exception, BaseExceptionGroup) as exc:  # noqa: BLE001  (all operations run; all failures reported)
                failures.append(f"{label}: {type(exc).__name__}: {str(exc)[:3000]}")
    elapsed = time.monotonic() - started
    total = sum(counts.values())
    summary = {"operations": len(operations), "requests": total, "seconds": round(elapsed, 1),
               "examples_per_operation_and_mode": EXAMPLES, "randomized": RANDOM, "by_operation": counts,
               "statuses": statuses, "failures": len(failures)}
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    (ARTIFACTS / "schemathesis.json").write_text(json.dumps(summary, indent=2))
    print(f"\nschemathesis: {total} requests to {len(operations)} operations in {elapsed:.1f}s")
    assert not failures, "\n\n".join(failures)
    # the steering works: most operations answered successfully at least once
    succeeded = [op for op, seen in statuses.items() if any(s.startswith("2") for s in seen)]
    assert len(succeeded) >= len(operations) * 2 // 3, statuses


def test_the_document_describes_errors_and_files_as_they_are_answered(client):
    spec = client.get("/api/v1/openapi.json").get_json()
    error = spec["components"]["schemas"]["Error"]
    assert error["required"] == ["error"] and error["additionalProperties"] is False
    body = spec["components"]["schemas"]["ErrorBody"]
    assert set(body["required"]) == {"code", "message", "details"}
    responses = spec["components"]["responses"]
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            if method == "parameters":
                continue
            codes = set(operation["responses"])
            assert "400" in codes and "default" in codes, (method, path)
            public = operation.get("security") == []
            assert "401" in codes, (method, path)  # no token, or (the login) a wrong password
            assert public == (path == "/api/v1/auth/tokens" and method == "post"), (method, path)
            if "{" in path:
                assert "404" in codes, (method, path)
            if "requestBody" in operation:
                assert {"413", "422"} <= codes, (method, path)
            for code, response in operation["responses"].items():
                if code == "default" or int(code) >= 400:
                    response = responses[response["$ref"].rsplit("/", 1)[1]] if "$ref" in response else response
                    assert response["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/Error"}
    files = {("/api/v1/cases/{case_id}/dossier.zip", "application/zip"),
             ("/api/v1/documents/{document_id}/pdf", "application/pdf"),
             ("/api/v1/cases/{case_id}/diagram.svg", "image/svg+xml"),
             ("/api/v1/workflows/{key}/diagram.svg", "image/svg+xml"), ("/api/v1/overview", "text/csv")}
    for path, media in files:
        assert media in spec["paths"][path]["get"]["responses"]["200"]["content"], path
    assert spec["components"]["schemas"]["Case"]["properties"]["opened_by"].get("nullable") is True
