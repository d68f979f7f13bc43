"""Configuration from the environment, read when the app is created (never at import time)."""
from __future__ import annotations

import logging
import os
import secrets
from datetime import datetime, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

from .files import private_dir, write_private

DEV_ENVS = ("development", "testing")
# Sessions, CSRF tokens and the default pseudonym key are derived from SECRET_KEY: a short one can be guessed offline.
MIN_SECRET_BYTES = 32


log = logging.getLogger(__name__)

# The roles that read personal trajectories of others (CONTRACT.md section 3, and the record's deputy).
DEFAULT_MFA_ROLES = "opleider,plv_opleider,coc_chair,hr,vertrouwenspersoon,admin"
DEFAULT_MFA_ACR = "https://refeds.org/profile/mfa,http://schemas.microsoft.com/claims/multipleauthn"


class ConfigError(RuntimeError):
    pass


def _hour(value: str) -> int:
    try:
        hour = int(value)
    except ValueError:
        hour = -1
    if not 0 <= hour <= 23:
        raise ConfigError(f"TRAJECT_DIGEST_HOUR must be an hour from 0 to 23, not {value!r}")
    return hour


def fixed_now(env, mode: str) -> datetime | None:
    """TRAJECT_NOW (ISO-8601) fixes the clock of every process, for demos and acceptance tests (CONTRACT.md §6).

    Honoured only in development and testing: a production clock that can be set from the environment
    would let anyone who can set it back-date decisions and keep terms open. Without an offset the moment
    is local time (TRAJECT_TIMEZONE); a date alone is its midnight.
    """
    value = (env.get("TRAJECT_NOW") or "").strip()
    if not value:
        return None
    if mode not in DEV_ENVS:
        log.warning("TRAJECT_NOW is ignored: it is honoured only when TRAJECT_ENV is development or testing")
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise ConfigError(f"TRAJECT_NOW must be an ISO-8601 moment such as 2027-02-01T09:00:00+01:00, not {value!r}") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=ZoneInfo(env.get("TRAJECT_TIMEZONE", "Europe/Amsterdam")))
    return moment.astimezone(timezone.utc)


def _words(value: str | None) -> tuple[str, ...]:
    return tuple(w.strip() for w in (value or "").split(",") if w.strip())


def oidc_from_env(env) -> dict:
    """Single sign-on (OpenID Connect): one provider, configured when issuer and client id are set."""
    issuer = (env.get("OIDC_ISSUER") or "").rstrip("/")
    if issuer and not env.get("OIDC_CLIENT_ID"):
        raise ConfigError("OIDC_ISSUER is set but OIDC_CLIENT_ID is not")
    return {
        "OIDC_ISSUER": issuer,
        "OIDC_CLIENT_ID": env.get("OIDC_CLIENT_ID", ""),
        "OIDC_CLIENT_SECRET": env.get("OIDC_CLIENT_SECRET", ""),
        "OIDC_NAME": env.get("OIDC_NAME") or "",
        "OIDC_SCOPE": env.get("OIDC_SCOPE", "openid email profile"),
        # The claim that carries the e-mail address (or the employee number) of a first login, and the
        # account field it is compared with: `email` or `employee_number`.
        "OIDC_CLAIM": env.get("OIDC_CLAIM", "email"),
        "OIDC_USER_FIELD": env.get("OIDC_USER_FIELD", "email"),
        "OIDC_JIT": env.get("OIDC_JIT", "0") == "1",
        # What counts as a second factor in the ID token: any of these amr values or acr values.
        "OIDC_MFA_AMR": _words(env.get("OIDC_MFA_AMR", "mfa")),
        "OIDC_MFA_ACR": _words(env.get("OIDC_MFA_ACR", DEFAULT_MFA_ACR)),
        "OIDC_ACR_VALUES": env.get("OIDC_ACR_VALUES", ""),
        "OIDC_REDIRECT_URI": env.get("OIDC_REDIRECT_URI", ""),
    }


def _dev_secret(instance: Path) -> str:
    # Development only: a random key kept in the instance folder, never a default in code.
    path = instance / "secret_key"
    if not path.exists():
        private_dir(instance)
        write_private(path, secrets.token_hex(32))
    return path.read_text().strip()


def from_env(env=None) -> dict:
    env = os.environ if env is None else env
    mode = env.get("TRAJECT_ENV", "production")
    instance = Path(env.get("TRAJECT_INSTANCE") or Path.cwd() / "instance").resolve()
    secret = env.get("SECRET_KEY")
    if not secret:
        if mode not in DEV_ENVS:
            raise ConfigError("SECRET_KEY must be set (or TRAJECT_ENV=development for a local demo)")
        secret = _dev_secret(instance)
    elif mode not in DEV_ENVS and len(secret.encode()) < MIN_SECRET_BYTES:
        raise ConfigError(f"SECRET_KEY must be at least {MIN_SECRET_BYTES} bytes outside development "
                          f"(it has {len(secret.encode())}); make one with: "
                          "python3 -c 'import secrets; print(secrets.token_hex(32))'")
    database_url = env.get("DATABASE_URL") or f"sqlite:///{instance / 'traject.db'}"
    return {
        "TRAJECT_ENV": mode,
        "TRAJECT_INSTANCE": str(instance),
        "SECRET_KEY": secret,
        "SQLALCHEMY_DATABASE_URI": database_url,
        "TRAJECT_TIMEZONE": env.get("TRAJECT_TIMEZONE", "Europe/Amsterdam"),
        "TRAJECT_NOW": fixed_now(env, mode),
        "TRAJECT_DEMO": env.get("TRAJECT_DEMO", "1" if mode in DEV_ENVS else "0") == "1",
        "TOKEN_TTL_HOURS": int(env.get("TOKEN_TTL_HOURS", "12")),
        # A browser session ends after this long without a request, and this long after the login.
        "TRAJECT_SESSION_IDLE_MINUTES": int(env.get("TRAJECT_SESSION_IDLE_MINUTES") or 30),
        "TRAJECT_SESSION_MAX_HOURS": int(env.get("TRAJECT_SESSION_MAX_HOURS") or 12),
        # The login budget; default (create_app): counted together by every process of this machine, in the
        # instance folder (web/ratelimits.py).
        "RATELIMIT_STORAGE_URI": env.get("RATELIMIT_STORAGE_URI", ""),
        # The number of reverse proxies in front whose X-Forwarded-* headers are trusted (web/security.py).
        "TRAJECT_PROXY": int(env.get("TRAJECT_PROXY") or 0),
        # gunicorn (`traject web`): seconds a request may take before its worker is replaced.
        "TRAJECT_WEB_TIMEOUT": int(env.get("TRAJECT_WEB_TIMEOUT") or 30),
        "MAIL_BACKEND": env.get("MAIL_BACKEND", "file"),
        # Delivery (notifications/): the sender, the backends' settings, links in e-mails.
        "MAIL_FROM": env.get("MAIL_FROM", "Traject <noreply@traject.invalid>"),
        "MAIL_TIMEOUT": float(env.get("MAIL_TIMEOUT", "30")),
        "SMTP_URL": env.get("SMTP_URL", ""),
        "SENDGRID_API_KEY": env.get("SENDGRID_API_KEY", ""),
        "SENDGRID_API_URL": env.get("SENDGRID_API_URL", ""),
        "TRAJECT_BASE_URL": env.get("TRAJECT_BASE_URL", "http://127.0.0.1:5000"),
        # The worker (web/worker.py): seconds between passes; how long a claimed message is reserved.
        "TRAJECT_WORKER_INTERVAL": float(env.get("TRAJECT_WORKER_INTERVAL", "15")),
        "TRAJECT_DELIVERY_LEASE": float(env.get("TRAJECT_DELIVERY_LEASE", "300")),
        # The most documents one dossier request renders (every version of the case and its linked cases).
        "TRAJECT_DOSSIER_MAX_DOCUMENTS": int(env.get("TRAJECT_DOSSIER_MAX_DOCUMENTS", "300")),
        # Privacy (docs/privacy.md): the key of the subjects' pseudonyms (default: derived from SECRET_KEY;
        # set it, and keep it apart from the backups); how often the worker verifies the audit chains and
        # applies retention (seconds; daily).
        "TRAJECT_PSEUDONYM_KEY": env.get("TRAJECT_PSEUDONYM_KEY") or "",
        # The HMAC key of the audit checkpoints (docs/evidence.md): kept apart from the database, so that
        # whoever can write the database cannot forge a checkpoint. Required in production to write one.
        "TRAJECT_AUDIT_KEY": env.get("TRAJECT_AUDIT_KEY") or "",
        "TRAJECT_DAILY_INTERVAL": float(env.get("TRAJECT_DAILY_INTERVAL", "86400")),
        # The local hour (TRAJECT_TIMEZONE) at which informational mail waiting for a daily digest leaves.
        "TRAJECT_DIGEST_HOUR": _hour(env.get("TRAJECT_DIGEST_HOUR", "7")),
        "RGS_ADDRESS": env.get("RGS_ADDRESS"),
        # Identity (docs/identity.md): the roles that must log in with a second factor, invitations.
        "TRAJECT_MFA_ROLES": _words(env.get("TRAJECT_MFA_ROLES", DEFAULT_MFA_ROLES)),
        "TRAJECT_INVITE_DAYS": int(env.get("TRAJECT_INVITE_DAYS") or 7),
        **oidc_from_env(env),
        "TRAJECT_REGION_CONFIG": env.get("TRAJECT_REGION_CONFIG"),
    }
