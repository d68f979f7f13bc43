"""Real servers on loopback for the delivery tests: an SMTP server (aiosmtpd) and a fake SendGrid API."""
from __future__ import annotations

import datetime as dt
import ipaddress
import json
import socket
import ssl
import threading
import time
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def self_signed_cert(directory: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 (cryptography is installed with sendgrid)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


@dataclass
class SMTPServer:
    """aiosmtpd on 127.0.0.1; `reject_rcpt` makes it answer RCPT with that reply (e.g. '450 busy')."""

    tls_dir: Path | None = None
    username: str | None = None
    password: str | None = None
    messages: list = field(default_factory=list)
    reject_rcpt: str | None = None
    port: int = 0
    cafile: Path | None = None

    def __enter__(self) -> "SMTPServer":
        from aiosmtpd.controller import Controller
        from aiosmtpd.smtp import AuthResult

        server = self

        class Handler:
            async def handle_RCPT(self, smtp, session, envelope, address, rcpt_options):
                if server.reject_rcpt:
                    return server.reject_rcpt
                envelope.rcpt_tos.append(address)
                return "250 OK"

            async def handle_DATA(self, smtp, session, envelope):
                server.messages.append({
                    "from": envelope.mail_from, "to": list(envelope.rcpt_tos),
                    "message": message_from_bytes(envelope.original_content or envelope.content, policy=policy.default),
                    "tls": session.ssl is not None, "login": getattr(session, "login_data", None),
                })
                return "250 Message accepted"

        kwargs = {}
        if self.tls_dir is not None:
            cert, key = self_signed_cert(self.tls_dir)
            context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            context.load_cert_chain(cert, key)
            kwargs.update(tls_context=context, require_starttls=True)
            self.cafile = cert
        if self.username:
            def authenticator(smtp, session, envelope, mechanism, auth_data):
                ok = auth_data.login == self.username.encode() and auth_data.password == self.password.encode()
                return AuthResult(success=ok)

            kwargs.update(authenticator=authenticator, auth_required=True, auth_require_tls=self.tls_dir is not None)
        self.port = free_port()
        self.controller = Controller(Handler(), hostname="127.0.0.1", port=self.port, **kwargs)
        self.controller.start()
        return self

    def __exit__(self, *exc) -> None:
        self.controller.stop()

    def client_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.cafile)) if self.cafile else ssl.create_default_context()


class FakeSendGrid:
    """POST /v3/mail/send answered from a script of (status, headers, delay seconds); 202 when it runs out."""

    def __init__(self, script=()):
        self.script = list(script)
        self.requests: list[dict] = []
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                fake.requests.append({"path": self.path, "headers": dict(self.headers), "json": json.loads(body)})
                status, headers, delay = fake.script.pop(0) if fake.script else (202, {}, 0)
                if delay:
                    time.sleep(delay)  # the client's timeout is shorter: it has given up by now
                payload = b"" if status == 202 else json.dumps({"errors": [{"message": f"status {status}"}]}).encode()
                try:
                    self.send_response(status)
                    for key, value in headers.items():
                        self.send_header(key, value)
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                except OSError:
                    pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)

    def __enter__(self) -> "FakeSendGrid":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()
