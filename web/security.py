"""Security headers on every response, and HTTPS awareness behind a reverse proxy.

- A Content-Security-Policy on every response. Pages: scripts and styles from this origin only
  (no inline script, no inline style: the templates have none, the SVG charts are coloured from
  app.css), no framing, forms post only here, no <base>. Everything else (JSON, CSV, PDF, ZIP,
  static files) gets `default-src 'none'`: nothing in it may load anything; a PDF only
  `frame-ancestors 'none'` (Chromium's viewer needs the rest). A view may set its
  own policy (the API's SVG diagrams allow exactly their one <style> element by its hash).
- X-Frame-Options DENY, X-Content-Type-Options nosniff, Referrer-Policy same-origin (not
  no-referrer: Flask-WTF checks the Referer of a form post over HTTPS, which same-origin keeps),
  Cross-Origin-Opener-Policy same-origin.
- Cache-Control no-store on every response but static files: pages and API answers carry
  personal data and must not stay in a shared or browser cache.
- Behind HTTPS: the session cookie is marked Secure whenever the request came over HTTPS (or
  always, with SESSION_COOKIE_SECURE=1), and Strict-Transport-Security is sent. Behind a reverse
  proxy that terminates TLS, set TRAJECT_PROXY=N (the number of proxies in front, usually 1): the
  X-Forwarded-For/-Proto/-Host/-Port/-Prefix headers of that many hops are then trusted
  (werkzeug's ProxyFix), so `request.is_secure` and the client address (rate limits) are right.
  Without TRAJECT_PROXY those headers are ignored: a client cannot forge them.
- Redirects to a target the user named (`next`) go through `safe_target`: a path on this site, or "/".
"""
from __future__ import annotations

import base64
import hashlib
import unicodedata
from urllib.parse import unquote, urlsplit

from flask import Flask, Response, current_app, has_request_context, request
from flask.sessions import SecureCookieSessionInterface
from werkzeug.middleware.proxy_fix import ProxyFix

PAGE_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; font-src 'self'; "
    "connect-src 'self'; object-src 'none'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'"
)
NONE_CSP = "default-src 'none'; frame-ancestors 'none'; form-action 'none'; base-uri 'none'"
# Chromium shows a PDF in a synthetic page with an <embed> and inline styles, to which the PDF's own
# policy applies: any fetch directive leaves the viewer blank. A PDF runs no script of ours anyway.
PDF_CSP = "frame-ancestors 'none'"
HSTS = "max-age=31536000; includeSubDomains"
HEADERS = {
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cross-Origin-Opener-Policy": "same-origin",
}


def _looks_local(path: str) -> bool:
    # Browsers drop tabs and newlines inside a URL and read a backslash as a slash, so "/\t/evil",
    # "/\\evil" and "//evil" all leave the site: refuse every control, format or space character and
    # every backslash rather than guess what a browser will make of them.
    if not path.startswith("/") or path.startswith(("//", "/\\")) or "\\" in path:
        return False
    return not any(ch.isspace() or unicodedata.category(ch)[0] in "CZ" for ch in path)


def safe_target(target: object, fallback: str = "/") -> str:
    """The user-supplied redirect target if it is a path on this site, else `fallback`.

    The one judge of every redirect whose target comes from a request (login, language switch).
    The path is judged as sent and percent-decoded (a proxy or a browser may decode it), the whole
    target as sent; a scheme or a host anywhere makes it foreign.
    """
    if not isinstance(target, str) or not _looks_local(target):
        return fallback
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not _looks_local(unquote(parts.path)):
        return fallback
    return target


def style_hash(css: str) -> str:
    """A CSP source allowing exactly one <style> element with this content."""
    return "'sha256-" + base64.b64encode(hashlib.sha256(css.encode("utf-8")).digest()).decode() + "'"


def svg_policy(css: str) -> str:
    """For a standalone SVG with one <style> element: that style, nothing else."""
    return f"default-src 'none'; style-src {style_hash(css)}; frame-ancestors 'none'"


class SessionInterface(SecureCookieSessionInterface):
    """Flask's signed-cookie sessions, with the Secure flag on every response to an HTTPS request."""

    def get_cookie_secure(self, app: Flask) -> bool:
        return bool(app.config.get("SESSION_COOKIE_SECURE")) or (has_request_context() and request.is_secure)


def _page_csp() -> str:
    # The single sign-on forms (log in, log out) post here and are redirected on to the identity
    # provider: form-action governs those redirects too, so the provider's origin joins 'self'.
    issuer = current_app.config.get("OIDC_ISSUER")
    if not issuer:
        return PAGE_CSP
    parts = urlsplit(issuer)
    return PAGE_CSP.replace("form-action 'self'", f"form-action 'self' {parts.scheme}://{parts.netloc}")


def _headers(response: Response) -> Response:
    static = request.endpoint == "static"
    if "Content-Security-Policy" not in response.headers:
        response.headers["Content-Security-Policy"] = {"text/html": _page_csp(), "application/pdf": PDF_CSP}.get(
            response.mimetype, NONE_CSP)
    for name, value in HEADERS.items():
        response.headers.setdefault(name, value)
    if not static:
        response.headers["Cache-Control"] = "no-store"
        response.headers.pop("Expires", None)
        response.headers.pop("Last-Modified", None)
    if request.is_secure:
        response.headers.setdefault("Strict-Transport-Security", HSTS)
    return response


def register(app: Flask) -> None:
    """Called from create_app: ProxyFix when configured, secure session cookies, the headers."""
    hops = int(app.config.get("TRAJECT_PROXY") or 0)
    if hops > 0:
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops, x_port=hops, x_prefix=hops)
    app.session_interface = SessionInterface()
    app.after_request(_headers)
