"""axe-core on every page of every demo role: no serious or critical violation (WCAG 2.1 AA rules).

axe is evaluated in the page through the DevTools protocol (the strict CSP admits no injected script
tag), after the page has loaded. Per role: the start page and every page its links lead to on this
site — each kind of page, and up to CASE_PAGES case pages of different procedures — then the login
page, the accessibility statement and an error page as a visitor. The figures of the last run are
printed (pages, violations by impact) and written to tests/artifacts/axe.json.
"""
from __future__ import annotations

import json
import re
from collections import Counter

from .browsing import ARTIFACTS
from .test_pages import DEMO_ROLES, demo_login

CASE_PAGES = 4
SKIP = re.compile(r"/(logout|language|static/|api/)|[./](pdf|zip|svg|csv)(\?|$)")  # files: not pages
TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]


def audit(page, axe_source: str) -> list[dict]:
    page.evaluate(axe_source)
    result = page.evaluate("tags => axe.run(document, {runOnly: {type: 'tag', values: tags}})", TAGS)
    return [{"id": v["id"], "impact": v["impact"], "help": v["help"],
             "targets": [n["target"] for n in v["nodes"]][:5]} for v in result["violations"]]


def links(page, base: str) -> list[str]:
    hrefs = page.eval_on_selector_all("a[href]", "els => els.map(e => e.getAttribute('href'))")
    return [h.split("#")[0] for h in hrefs if h and h.startswith("/") and not SKIP.search(h)]


def walk(page, axe_source: str, start: str, base: str) -> dict[str, list]:
    seen, queue, found, cases = set(), [start], {}, 0
    while queue:
        path = queue.pop(0)
        kind = re.sub(r"\d+", "N", path.split("?")[0])
        if path in seen or (kind == "/cases/N" and cases >= CASE_PAGES) or (kind != "/cases/N" and kind in
                                                                            {re.sub(r"\d+", "N", p.split("?")[0]) for p in seen}):
            continue
        seen.add(path)
        cases += kind == "/cases/N"
        page.goto(path)
        found[path] = audit(page, axe_source)
        queue += [h for h in links(page, base) if h not in seen]
    return found


def test_no_page_of_any_role_has_a_serious_or_critical_violation(live, new_context, axe_source):
    results: dict[str, dict] = {}
    for role in DEMO_ROLES:
        page = new_context().new_page()
        demo_login(page, role)
        results[role] = walk(page, axe_source, "/", live.url)
    visitor = new_context().new_page()
    results["visitor"] = {}
    for path in ("/login", "/toegankelijkheid", "/no/such/page"):
        visitor.goto(path)
        results["visitor"][path] = audit(visitor, axe_source)
    pages = sum(len(r) for r in results.values())
    impacts = Counter(v["impact"] for r in results.values() for vs in r.values() for v in vs)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    (ARTIFACTS / "axe.json").write_text(json.dumps({"pages": pages, "impacts": impacts, "results": results},
                                                   indent=1, ensure_ascii=False))
    print(f"axe: {pages} pages, violations by impact: {dict(impacts)}")
    bad = [f"{role} {path}: {v['id']} ({v['impact']}) {v['help']} at {v['targets']}"
           for role, r in results.items() for path, vs in r.items() for v in vs
           if v["impact"] in ("serious", "critical")]
    assert pages >= 40
    assert not bad, "\n".join(bad[:40])
