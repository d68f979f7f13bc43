"""The strict Content-Security-Policy (web/security.py) does not break a page in a real chromium.

chromium reports every blocked script, style or image on the console ("Refused to ..." /
"Content Security Policy"): each page of every demo role, a case page with its forms and diagram,
the overview charts, the Swagger UI at /api/v1/docs and a standalone state diagram are visited,
and not one violation may be reported.
"""
from __future__ import annotations

import re

from playwright.sync_api import expect

from .test_pages import DEMO_ROLES, demo_login


def _watch(page) -> list[str]:
    seen: list[str] = []
    page.on("console", lambda msg: seen.append(msg.text)
            if "Content Security Policy" in msg.text or "Refused to" in msg.text else None)
    return seen


def test_no_page_of_any_role_violates_the_policy(live, new_context):
    page = new_context().new_page()
    violations = _watch(page)
    for role in DEMO_ROLES:
        page.context.clear_cookies()
        demo_login(page, role)
        response = page.goto("/")
        assert "script-src 'self'" in response.headers["content-security-policy"]
        for link in ("/cases", "/overview", "/admin", "/cases/new", "/account/password"):
            page.goto(link)
        page.goto("/cases")
        first = page.locator("table.cases tbody a").first  # the header links sort the list
        if first.count():
            first.click()
            expect(page.locator("h1")).to_be_visible()
            assert page.locator("svg").count() >= 1  # the state diagram, styled from app.css
    assert violations == []


def test_the_swagger_ui_renders_under_the_policy(live, new_context):
    page = new_context().new_page()
    violations = _watch(page)
    page.goto("/api/v1/docs")
    expect(page.locator(".swagger-ui .info .title")).to_contain_text("Traject API")
    expect(page.locator(".opblock").first).to_be_visible()
    page.locator(".opblock-summary").first.click()  # expanding an operation renders more of the UI
    expect(page.locator(".opblock-body").first).to_be_visible()
    assert violations == [], violations


def test_a_standalone_diagram_applies_its_own_style_and_nothing_else(live, new_context):
    page = new_context().new_page()
    violations = _watch(page)
    response = page.goto("/api/v1/workflows/internal_guidance/diagram.svg")
    # the API needs a token: the diagram answers 401 to a browser without one, in JSON, loading nothing
    assert response.status == 401
    policy = response.headers["content-security-policy"]
    assert policy.startswith("default-src 'none'")
    assert violations == []
    context = new_context()
    token = _token(live)
    context.set_extra_http_headers({"Authorization": f"Bearer {token}"})
    page = context.new_page()
    violations = _watch(page)
    response = page.goto("/api/v1/workflows/internal_guidance/diagram.svg")
    assert response.status == 200
    assert re.search(r"style-src 'sha256-[A-Za-z0-9+/=]+'", response.headers["content-security-policy"])
    fill = page.evaluate("getComputedStyle(document.querySelector('.node rect')).fill")
    assert fill == "rgb(255, 255, 255)"  # the <style> element was applied
    assert violations == []


def _token(live) -> str:
    from engine.models import User
    from web.auth import issue_token
    from web.demo import email
    from web.extensions import db

    with live.app.app_context():
        user = db.session.query(User).filter_by(email=email("admin")).one()
        token, _ = issue_token(user, live.engine().clock.now())
        db.session.commit()
    return token
