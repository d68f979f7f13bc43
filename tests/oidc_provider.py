"""A real OpenID provider for the tests: node's oidc-provider (tests/oidc/provider.mjs) on loopback.

`npm ci` installs it into tests/oidc/node_modules once (again only when package-lock.json changes;
a file lock keeps two pytest workers from installing at once). The provider starts once per test
session (per xdist worker) on a free port and is stopped by its pid at the end. Without node/npm the
tests skip, except in CI (CI=true), where that fails: CI has both and reaches the npm registry.

`login()` drives a browser's part of the code flow with requests: the app's redirect to the
provider, the provider's login form (posted programmatically), back to the app's callback.
"""
from __future__ import annotations

import fcntl
import hashlib
import os
import re
import select
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import requests

FOLDER = Path(__file__).parent / "oidc"
CLIENT_ID, OTHER_CLIENT_ID = "traject", "traject-other"
SECRET = "{}-secret-which-is-long-enough"


def _unavailable(reason: str):
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(f"{reason}: CI must run the single sign-on tests")
    pytest.skip(f"{reason}; single sign-on tests skipped outside CI")


def install() -> None:
    if not shutil.which("node") or not shutil.which("npm"):
        _unavailable("node and npm are needed for the OpenID provider (apt-get install nodejs npm)")
    want = hashlib.sha256((FOLDER / "package-lock.json").read_bytes()).hexdigest()
    stamp = FOLDER / "node_modules" / ".traject-installed"
    with open(FOLDER / ".install.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if stamp.exists() and stamp.read_text() == want:
            return
        done = subprocess.run(["npm", "ci", "--no-audit", "--no-fund", "--loglevel=error"], cwd=FOLDER,
                              capture_output=True, text=True, timeout=300)
        if done.returncode != 0:
            pytest.fail(f"npm ci in tests/oidc failed:\n{done.stderr[-2000:]}")
        stamp.write_text(want)


@dataclass
class Provider:
    issuer: str
    process: subprocess.Popen

    def secret(self, client_id: str = CLIENT_ID) -> str:
        return SECRET.format(client_id)

    def config(self, **extra) -> dict:
        return {"OIDC_ISSUER": self.issuer, "OIDC_CLIENT_ID": CLIENT_ID, "OIDC_CLIENT_SECRET": self.secret(),
                "OIDC_NAME": "Testziekenhuis", "OIDC_SCOPE": "openid email profile employee", "OIDC_CLAIM": "email",
                "OIDC_USER_FIELD": "email", "OIDC_JIT": False, "OIDC_MFA_AMR": ("mfa",),
                "OIDC_MFA_ACR": ("https://refeds.org/profile/mfa",), "OIDC_ACR_VALUES": "",
                "OIDC_REDIRECT_URI": "", **extra}


def start(log_path: Path) -> Provider:
    install()
    log = open(log_path, "w")
    process = subprocess.Popen(["node", "provider.mjs"], cwd=FOLDER, stdout=subprocess.PIPE, stderr=log, text=True,
                               env={**os.environ, "PORT": "0"})
    ready, _, _ = select.select([process.stdout], [], [], 20)
    line = process.stdout.readline() if ready else ""
    if not line.startswith("listening "):
        process.kill()
        pytest.fail(f"the OpenID provider did not start: {line!r} {log_path.read_text()[-2000:]}")
    return Provider(line.split()[1], process)


def stop(provider: Provider) -> None:
    provider.process.terminate()
    try:
        provider.process.wait(timeout=5)
    except subprocess.TimeoutExpired:
        provider.process.kill()


def follow_to_app(browser: requests.Session, url: str, app_prefix: str = "http://localhost/") -> str:
    """Follow the provider's redirects until one leads back to the app; returns that address."""
    for _ in range(10):
        if url.startswith(app_prefix):
            return url
        response = browser.get(url, allow_redirects=False)
        if response.status_code == 200 and "/interaction/" in url:
            return url  # the provider's login form
        assert response.status_code in (302, 303), (url, response.status_code, response.text[:300])
        location = response.headers["Location"]
        url = location if location.startswith("http") else f"{_origin(url)}{location}"
    raise AssertionError("too many redirects")


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def at_provider(browser: requests.Session, authorize_url: str, account: str, mfa: bool,
                app_prefix: str = "http://localhost/") -> str:
    """From the provider's authorisation address to the app's callback address: log in as `account`."""
    url = follow_to_app(browser, authorize_url, app_prefix)
    if url.startswith(app_prefix):
        return url  # the provider remembered the login: straight back
    uid = re.search(r"/interaction/([^/?]+)", url).group(1)
    response = browser.post(f"{_origin(url)}/interaction/{uid}/login",
                            data={"login": account, **({"mfa": "1"} if mfa else {})}, allow_redirects=False)
    assert response.status_code in (302, 303), response.text[:300]
    location = response.headers["Location"]
    return follow_to_app(browser, location if location.startswith("http") else _origin(url) + location, app_prefix)
