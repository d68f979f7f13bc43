"""A final decision in a real browser: the letter shown first, back to the form, then confirmed."""
from __future__ import annotations

from playwright.sync_api import expect

from .browsing import shoot
from .test_accessibility import audit
from .test_pages import demo_login, escalation, state_of


def _escalation_in_discussion(live) -> int:
    return escalation(live, "Roosters zonder supervisie", "Aios staan in het weekend zonder supervisor ingeroosterd.",
                      [("rso_board", "discuss", {})])


def test_the_action_list_is_shown_as_a_letter_before_it_is_confirmed(live, new_context, axe_source):
    case_id = _escalation_in_discussion(live)
    page = new_context().new_page()
    demo_login(page, "rso_board")
    page.goto(f"/cases/{case_id}")
    form = page.locator("#t-agree_actions")
    form.locator("[name='data.actions.0.description']").fill("Weekendrooster herzien")
    form.locator("[name='data.actions.0.owner_role']").select_option(value="coc_chair")
    form.locator("[name='data.actions.0.due_date']").fill("2026-04-01")
    form.get_by_role("button", name="Acties schriftelijk vastleggen: eerst controleren").click()
    preview = page.locator("#t-agree_actions .preview")
    expect(preview).to_contain_text("Er is nog niets opgeslagen of verstuurd.")
    expect(preview.locator(".letter")).to_contain_text("1. Weekendrooster herzien")
    expect(preview.locator(".letter")).to_contain_text("Uiterlijk: 1 april 2026.")
    expect(preview).to_contain_text("Concept, niet verzonden")
    expect(preview).to_contain_text("Brief “Afgesproken acties en tijdlijn (convenant art. 4, stap 3)” aan ")
    expect(preview.locator(".letter")).not_to_contain_text("Afschrift aan")  # a block the letter leaves out
    expect(state_of(page)).to_have_text("Bespreking RSO-bestuur")
    bad = [v for v in audit(page, axe_source) if v["impact"] in ("serious", "critical")]
    assert not bad, bad
    shoot(page, "case-preview-action-list")

    preview.get_by_role("button", name="Terug").click()
    expect(page.locator("#t-agree_actions .preview")).to_have_count(0)
    expect(page.locator("[name='data.actions.0.description']")).to_have_value("Weekendrooster herzien")

    page.locator("#t-agree_actions").get_by_role("button", name="Acties schriftelijk vastleggen: eerst controleren").click()
    page.locator("#t-agree_actions .preview").get_by_role("button", name="Bevestigen").click()
    expect(state_of(page)).to_have_text("Acties afgesproken")
    expect(page.locator("body")).to_contain_text("Brief verstuurd: ")
