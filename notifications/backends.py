"""How an e-mail leaves: the `file`, `smtp` and `sendgrid` backends.

A backend gets one composed message and either returns (delivered: 2xx, 250) or raises
DeliveryError, which says whether to try again — like healthchecks' transports:
- retry: connection trouble, timeouts, HTTP 429 and 5xx, SMTP 4xx (with Retry-After
  when the server gave one);
- dead letter: any other 4xx (HTTP) or 5xx (SMTP), with the reason, for an admin to
  look at and requeue (notifications/outbox.py).
"""
from __future__ import annotations

import base64
import email.utils
import hashlib
import logging
import os
import smtplib
import socket
import ssl
import urllib.error
from dataclasses import dataclass, field
from datetime import datetime, timezone
from email.charset import QP, Charset
from email.header import Header
from email.message import Message
from email.mime.application import MIMEApplication
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from pathlib import Path
from typing import Mapping
from urllib.parse import parse_qs, unquote, urlsplit

log = logging.getLogger(__name__)


class DeliveryError(Exception):
    """A failed delivery: `retry` says whether trying again later can help."""

    def __init__(self, reason: str, *, retry: bool, retry_after: float | None = None):
        super().__init__(reason)
        self.reason = reason
        self.retry = retry
        self.retry_after = retry_after


@dataclass
class Attachment:
    filename: str
    mimetype: str
    content: bytes


@dataclass
class OutgoingMessage:
    notification_id: int
    idempotency_key: str
    sender: str
    to: str
    subject: str
    text: str
    html: str = ""
    attachments: list[Attachment] = field(default_factory=list)
    created_at: datetime | None = None

    @property
    def message_id(self) -> str:
        # Stable across retries: a mail client that sees the same Message-ID twice shows it once.
        return f"<{hashlib.sha256(self.idempotency_key.encode()).hexdigest()[:32]}@traject>"

    def as_email(self) -> Message:
        """The MIME message: text and HTML alternatives, then the attachments.

        Built with the compat32 classes (email.mime): several times faster than EmailMessage,
        whose header objects cost more than everything else a delivery does.
        """
        body = MIMEMultipart("alternative")
        body.attach(MIMEText(self.text, "plain", _UTF8))
        if self.html:
            body.attach(MIMEText(self.html, "html", _UTF8))
        if self.attachments:
            msg = MIMEMultipart("mixed")
            msg.attach(body)
            for a in self.attachments:
                maintype, _, subtype = a.mimetype.partition("/")
                if maintype == "text":
                    part = MIMEText(a.content.decode("utf-8"), subtype, _UTF8)
                    if a.mimetype == "text/calendar":
                        part.set_param("method", "PUBLISH")
                else:
                    part = MIMEApplication(a.content, subtype)
                part.add_header("Content-Disposition", "attachment", filename=a.filename)
                msg.attach(part)
        else:
            msg = body
        name, address = email.utils.parseaddr(self.sender)
        msg["From"] = email.utils.formataddr((name, address), charset="utf-8")
        msg["To"] = self.to
        msg["Subject"] = Header(self.subject, "utf-8") if not self.subject.isascii() else self.subject
        msg["Date"] = email.utils.format_datetime(self.created_at or datetime.now(timezone.utc))
        msg["Message-ID"] = self.message_id
        msg["Auto-Submitted"] = "auto-generated"
        msg["X-Traject-Notification"] = str(self.notification_id)
        return msg


_UTF8 = Charset("utf-8")
_UTF8.body_encoding = QP  # readable in an .eml file, safe on any relay


class FileBackend:
    """Writes each message as an .eml file in the instance folder: the embedded default.

    The file name is derived from the notification, so delivering a message twice writes
    the same file twice: this backend is idempotent.
    """

    name = "file"

    def __init__(self, directory: str | os.PathLike):
        self.directory = Path(directory)

    def path_for(self, message: OutgoingMessage) -> Path:
        digest = hashlib.sha256(message.idempotency_key.encode()).hexdigest()[:12]
        return self.directory / f"{message.notification_id:08d}-{digest}.eml"

    def send(self, message: OutgoingMessage) -> None:
        try:
            # Messages carry personal data: only Traject's own account may read them (0700 folder, 0600 files).
            self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
            target = self.path_for(message)
            tmp = target.with_suffix(".tmp")
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "wb") as f:
                os.fchmod(fd, 0o600)  # a .tmp left by a killed worker keeps its old mode through O_CREAT
                f.write(message.as_email().as_bytes())
            os.replace(tmp, target)  # atomic: a reader never sees half a message
        except OSError as exc:
            raise DeliveryError(f"cannot write {self.directory}: {exc}", retry=True) from exc


class SMTPBackend:
    """smtplib. SMTP_URL: smtp://user:password@host:port (STARTTLS) or smtps://… (TLS from the start).

    Query options: ?starttls=auto (default: use it when offered; credentials are never sent
    in clear), ?starttls=required, ?starttls=off (a trusted local relay).
    """

    name = "smtp"

    def __init__(self, url: str, *, timeout: float = 30.0, ssl_context: ssl.SSLContext | None = None):
        parts = urlsplit(url)
        if parts.scheme not in ("smtp", "smtps"):
            raise ValueError(f"SMTP_URL must start with smtp:// or smtps://, not {parts.scheme!r}")
        self.implicit_tls = parts.scheme == "smtps"
        self.host = parts.hostname or "localhost"
        self.port = parts.port or (465 if self.implicit_tls else 587)
        self.username = unquote(parts.username) if parts.username else None
        self.password = unquote(parts.password) if parts.password else None
        options = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        self.starttls = options.get("starttls", "auto")
        if self.starttls not in ("auto", "required", "off"):
            raise ValueError("SMTP_URL: starttls must be auto, required or off")
        self.timeout = timeout
        self.ssl_context = ssl_context or ssl.create_default_context()

    def send(self, message: OutgoingMessage) -> None:
        try:
            if self.implicit_tls:
                conn = smtplib.SMTP_SSL(self.host, self.port, timeout=self.timeout, context=self.ssl_context)
            else:
                conn = smtplib.SMTP(self.host, self.port, timeout=self.timeout)
            with conn:
                conn.ehlo()
                if not self.implicit_tls and self.starttls != "off":
                    if conn.has_extn("starttls"):
                        conn.starttls(context=self.ssl_context)
                        conn.ehlo()
                    elif self.starttls == "required" or self.username:
                        # A configuration problem, not the message's: keep it and try again later.
                        raise DeliveryError(f"{self.host}:{self.port} offers no STARTTLS", retry=True)
                if self.username:
                    conn.login(self.username, self.password or "")
                conn.send_message(message.as_email(), to_addrs=[message.to])
        except DeliveryError:
            raise
        except smtplib.SMTPRecipientsRefused as exc:
            code, reply = next(iter(exc.recipients.values()))
            raise _smtp_error(code, reply) from exc
        except smtplib.SMTPResponseException as exc:
            raise _smtp_error(exc.smtp_code, exc.smtp_error) from exc
        except (smtplib.SMTPException, OSError) as exc:  # disconnects, refused connections, timeouts, TLS
            raise DeliveryError(f"SMTP {type(exc).__name__}: {exc}", retry=True) from exc


def _smtp_error(code: int, reply) -> DeliveryError:
    text = reply.decode("utf-8", "replace") if isinstance(reply, bytes) else str(reply)
    # 4xx: transient ("try again later"); 5xx: permanent for this message.
    return DeliveryError(f"SMTP {code}: {text}", retry=400 <= code < 500)


class SendGridBackend:
    """The official `sendgrid` client. SENDGRID_API_URL replaces its host (tests point it at a fake).

    SendGrid has no idempotency key: a request that reached SendGrid but whose answer we
    never saw (timeout, crash) is sent again. outbox.py keeps that window as narrow as it can.
    """

    name = "sendgrid"

    def __init__(self, api_key: str, api_url: str | None = None, *, timeout: float = 30.0):
        import sendgrid

        if not api_key:
            raise ValueError("MAIL_BACKEND=sendgrid needs SENDGRID_API_KEY")
        self.client = sendgrid.SendGridAPIClient(api_key=api_key, host=(api_url or "https://api.sendgrid.com")
                                                 .rstrip("/"))
        self.timeout = timeout

    def body(self, message: OutgoingMessage) -> dict:
        sender_name, sender_address = email.utils.parseaddr(message.sender)
        content = [{"type": "text/plain", "value": message.text}]
        if message.html:
            content.append({"type": "text/html", "value": message.html})
        body = {
            "personalizations": [{"to": [{"email": message.to}]}],
            "from": {"email": sender_address, **({"name": sender_name} if sender_name else {})},
            "subject": message.subject,
            "content": content,
            "headers": {"Message-ID": message.message_id, "Auto-Submitted": "auto-generated"},
            "custom_args": {"idempotency_key": message.idempotency_key[:200],
                            "notification_id": str(message.notification_id)},
        }
        if message.attachments:
            body["attachments"] = [{"content": base64.b64encode(a.content).decode("ascii"), "type": a.mimetype,
                                    "filename": a.filename, "disposition": "attachment"} for a in message.attachments]
        return body

    def send(self, message: OutgoingMessage) -> None:
        from python_http_client.exceptions import HTTPError

        try:
            response = self.client.client.mail.send.post(request_body=self.body(message), timeout=self.timeout)
        except HTTPError as exc:
            raise _http_error(exc.status_code, getattr(exc, "headers", None) or {}, exc.body) from exc
        except (urllib.error.URLError, socket.timeout, TimeoutError, ConnectionError, OSError) as exc:
            raise DeliveryError(f"SendGrid unreachable: {getattr(exc, 'reason', exc)}", retry=True) from exc
        if not 200 <= response.status_code < 300:  # urllib raises for >= 400; a 1xx/3xx is not a delivery
            raise DeliveryError(f"SendGrid answered {response.status_code}", retry=True)


def _http_error(status: int, headers, body) -> DeliveryError:
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else str(body or "")
    reason = f"SendGrid {status}: {text[:500]}"
    if status == 429 or status >= 500:
        return DeliveryError(reason, retry=True, retry_after=retry_after(headers.get("Retry-After")))
    return DeliveryError(reason, retry=False)


def retry_after(value, now: datetime | None = None) -> float | None:
    """Retry-After in seconds: either delta-seconds or an HTTP date (RFC 9110 §10.2.3)."""
    if value is None:
        return None
    value = str(value).strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return max(0.0, (when - (now or datetime.now(timezone.utc))).total_seconds())


def from_config(config: Mapping) -> FileBackend | SMTPBackend | SendGridBackend:
    """The backend MAIL_BACKEND names, from the app's configuration (read from the environment at start)."""
    name = (config.get("MAIL_BACKEND") or "file").lower()
    timeout = float(config.get("MAIL_TIMEOUT") or 30)
    if name == "file":
        return FileBackend(config.get("MAIL_DIRECTORY") or Path(config["TRAJECT_INSTANCE"]) / "mail")
    if name == "smtp":
        if not config.get("SMTP_URL"):
            raise ValueError("MAIL_BACKEND=smtp needs SMTP_URL (smtp://user:password@host:port)")
        return SMTPBackend(config["SMTP_URL"], timeout=timeout)
    if name == "sendgrid":
        return SendGridBackend(config.get("SENDGRID_API_KEY") or "", config.get("SENDGRID_API_URL"), timeout=timeout)
    raise ValueError(f"unknown MAIL_BACKEND {name!r}: file, smtp or sendgrid")
