"""Browser tests: Playwright driving Debian's chromium against the app served on a loopback port.

The app runs in a background thread (werkzeug's make_server) on the test database with the
demo region loaded once per module and a fixed clock. Without chromium the tests skip,
except in CI (CI=true), where a missing browser is a failure: .ci/run installs it.
"""
from __future__ import annotations

import os
import shutil
import threading
from dataclasses import dataclass
from datetime import datetime, timezone

import pytest

from .browsing import LAPTOP

START = datetime(2026, 3, 2, 9, 0, tzinfo=timezone.utc)  # as tests/conftest.py: a Monday morning

CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]


def _unavailable(reason: str):
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(f"{reason}: CI must run the browser tests (.ci/run installs chromium)")
    pytest.skip(f"{reason}; browser tests skipped outside CI")


@pytest.fixture(scope="session")
def chromium_path() -> str:
    path = "/usr/bin/chromium" if os.path.exists("/usr/bin/chromium") else shutil.which("chromium")
    if not path:
        _unavailable("chromium not found (apt-get install chromium)")
    try:
        import playwright  # noqa: F401
    except ImportError:
        _unavailable("playwright is not installed (pip install -e '.[test]')")
    return path


@pytest.fixture(scope="session")
def browser(chromium_path):
    from playwright.sync_api import sync_playwright

    pw = sync_playwright().start()
    chromium = pw.chromium.launch(executable_path=chromium_path, headless=True, args=CHROMIUM_ARGS)
    yield chromium
    chromium.close()
    pw.stop()


@dataclass
class Live:
    app: object
    url: str
    password: str

    def engine(self):
        return self.app.extensions["traject"]


@pytest.fixture(scope="module")
def live(database_url, tmp_path_factory):
    from werkzeug.serving import make_server

    from engine.clock import FixedClock
    from web import demo
    from web.app import create_app
    from web.extensions import db, limiter

    os.environ["TRAJECT_ENV"] = "testing"
    instance = tmp_path_factory.mktemp("browser-instance")
    app = create_app({"SQLALCHEMY_DATABASE_URI": database_url, "TESTING": True, "CLOCK": FixedClock(START),
                      "TRAJECT_INSTANCE": str(instance), "TRAJECT_DEMO": True, "RGS_ADDRESS": "rgs@example.org"})
    limiter.reset()
    with app.app_context():
        _empty(db.engine)
        demo.load(app, echo=lambda *args: None)
    password = (instance / "demo_password.txt").read_text().strip()
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, name="traject-browser-tests", daemon=True)
    thread.start()
    try:
        yield Live(app, f"http://127.0.0.1:{server.server_port}", password)
    finally:
        server.shutdown()
        thread.join(timeout=10)
        with app.app_context():
            db.session.remove()
            _empty(db.engine)
            db.engine.dispose()


@pytest.fixture
def new_context(browser, live):
    """Fresh browser contexts (separate cookie jars: separate people), closed after the test."""
    contexts = []

    def make(viewport=LAPTOP, locale="nl-NL"):
        context = browser.new_context(viewport=viewport, locale=locale, base_url=live.url)
        context.set_default_timeout(10_000)
        contexts.append(context)
        return context

    yield make
    for context in contexts:
        context.close()


def _empty(engine) -> None:
    from flows import empty_tables

    empty_tables(engine)


AXE_DIR = __import__("pathlib").Path(__file__).resolve().parent / "axe"


@pytest.fixture(scope="session")
def axe_source() -> str:
    """axe-core's script, installed once from tests/browser/axe/package-lock.json into a cached folder
    (TRAJECT_AXE_CACHE, default ~/.cache/traject/axe-<lock's sha256>): `npm ci`, nothing else."""
    import hashlib
    import subprocess
    from pathlib import Path

    lock = (AXE_DIR / "package-lock.json").read_bytes()
    cache = Path(os.environ.get("TRAJECT_AXE_CACHE")
                 or Path.home() / ".cache" / "traject" / f"axe-{hashlib.sha256(lock).hexdigest()[:12]}")
    script = cache / "node_modules" / "axe-core" / "axe.min.js"
    if not script.exists():
        npm = shutil.which("npm")
        if not npm:
            _unavailable("npm not found (apt-get install npm): axe-core cannot be installed")
        cache.mkdir(parents=True, exist_ok=True)
        for name in ("package.json", "package-lock.json"):
            shutil.copyfile(AXE_DIR / name, cache / name)
        done = subprocess.run([npm, "ci", "--no-audit", "--no-fund", "--ignore-scripts"], cwd=cache,
                              capture_output=True, text=True, timeout=300)
        if done.returncode != 0 or not script.exists():
            _unavailable(f"npm ci of axe-core failed: {done.stderr.strip()[-300:]}")
    return script.read_text(encoding="utf-8")
