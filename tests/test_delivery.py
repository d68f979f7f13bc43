"""The outbox's delivery: templates, attachments, the file, SMTP and SendGrid backends, retries and dead letters."""
from __future__ import annotations

import json
import random
import threading
from datetime import date, datetime, timedelta, timezone
from email import message_from_bytes, policy
from pathlib import Path

from icalendar import Calendar
from sqlalchemy import select, update

from engine import deadlines
from engine.models import Deadline, Notification, User
from flows import open_internal, to_guidance, to_plan
from mailservers import FakeSendGrid, SMTPServer, free_port
from notifications import attachments, outbox
from notifications.backends import FileBackend, SendGridBackend, SMTPBackend, retry_after
from notifications.render import MailSettings, compose
from web.extensions import db
from web.jobs.passes import one_pass

UTC = timezone.utc
SETTINGS = MailSettings(sender="Traject <noreply@traject.test>", base_url="https://traject.test")
REMIND = datetime(2026, 5, 18, 7, 0, tzinfo=UTC)  # the plan_term's first reminder (14 days before 1 June)


def guidance(world):
    opleider, aios = world.api("opleider"), world.api("aios")
    return to_guidance(opleider, aios, open_internal(opleider, world.users["aios"]))


def swept_reminder(app, world, language="nl") -> int:
    """A plan_term reminder in the outbox (everything else already delivered); returns its id."""
    guidance(world)
    with app.app_context():
        db.session.execute(update(Notification).values(status="sent"))
        db.session.execute(update(User).where(User.id == world.users["opleider"]).values(language=language))
        assert deadlines.sweep(db.session, app.extensions["traject"], REMIND).reminded == 1
        db.session.commit()
        return db.session.scalar(select(Notification.id).where(Notification.kind == "deadline_reminder"))


def drain(app, backend, clock, **kw):
    with app.app_context():
        try:
            return outbox.drain(db.session, backend, clock.now, settings=SETTINGS, engine=app.extensions["traject"],
                                rng=random.Random(7), **kw)
        finally:
            db.session.remove()


def row(app, notification_id) -> Notification:
    with app.app_context():
        return db.session.get(Notification, notification_id)


def parts(message):
    text = message.get_body(("plain",)).get_content()
    html = message.get_body(("html",)).get_content()
    files = [(p.get_filename(), p.get_content_type(), p.get_content()) for p in message.iter_attachments()]
    return text, html, files


# -- rendering ------------------------------------------------------------------------------

def test_the_file_backend_writes_a_dutch_reminder_with_text_html_and_a_calendar_entry(app, world, clock):
    nid = swept_reminder(app, world)
    clock.at = REMIND
    with app.app_context():
        assert one_pass(app, REMIND)["delivered"] == 1
    [eml] = sorted((Path(app.instance_path) / "mail").glob("*.eml"))
    message = message_from_bytes(eml.read_bytes(), policy=policy.default)
    assert message["To"] == "opleider@test.nl"
    assert message["Subject"] == "Herinnering: Einde termijn verbeterplan uiterlijk 01-06-2026"
    assert message["Message-ID"].endswith("@traject>") and message["Auto-Submitted"] == "auto-generated"
    text, html, files = parts(message)
    assert "Beste Opleider," in text and "1 juni 2026 om 23:59" in text and "over 14 dagen" in text
    assert "Intern begeleidingstraject" in text and "Begeleiding" in text
    assert "<strong>Einde termijn verbeterplan</strong>" in html
    [(filename, mimetype, ics)] = files
    assert mimetype == "text/calendar" and filename.endswith(".ics")
    event = Calendar.from_ical(ics).walk("VEVENT")[0]
    with app.app_context():
        deadline = db.session.scalar(select(Deadline))
    assert str(event["UID"]) == f"deadline-{deadline.id}@traject"
    assert event.decoded("DTSTART") == date(2026, 6, 1)
    assert sorted(a.decoded("TRIGGER") for a in event.walk("VALARM")) == [timedelta(days=-14), timedelta(days=-3)]
    assert row(app, nid).status == "sent"


def test_an_english_reader_gets_english(app, world):
    nid = swept_reminder(app, world, language="en")
    with app.app_context():
        message = compose(db.session, db.session.get(Notification, nid), SETTINGS, app.extensions["traject"])
    assert message.subject == "Reminder: End of the improvement plan's term due by 1 June 2026"
    assert "falls on 1 June 2026 at 23:59 (in 14 days)" in message.text
    assert "Internal guidance trajectory" in message.text and "Guidance" in message.text
    assert "https://traject.test/cases/" in message.text
    assert 'lang="en"' in message.html


def test_a_kind_without_its_own_template_gets_the_generic_one(app, world):
    opleider = world.api("opleider")
    case = open_internal(opleider, world.users["aios"])
    with app.app_context():
        n = db.session.scalar(select(Notification).where(Notification.kind == "case_opened"))
        message = compose(db.session, n, SETTINGS, app.extensions["traject"])
    assert message.to == "aios@test.nl"
    assert message.subject == "Er is een intern begeleidingstraject voor u geopend"
    assert "Er is een intern begeleidingstraject voor u geopend" in message.text
    assert f"https://traject.test/cases/{case['id']}" in message.text
    assert "Stand van zaken: Gesignaleerd" in message.text
    assert "<p><strong>Er is een intern begeleidingstraject voor u geopend</strong></p>" in message.html


def test_html_bodies_escape_what_users_typed(app, world):
    opleider = world.api("opleider")
    response = opleider.post("/cases", json={"workflow": "internal_guidance", "institution": "meander",
                                             "subject_id": world.users["aios"], "title": "<script>x</script>",
                                             "data": {"signal": "s"}})
    assert response.status_code == 201
    with app.app_context():
        n = db.session.scalar(select(Notification).where(Notification.kind == "case_opened"))
        message = compose(db.session, n, SETTINGS, app.extensions["traject"])
    assert "<script>" not in message.html and "&lt;script&gt;" in message.html


def test_the_calendar_entry_is_the_same_on_every_retry(app, world):
    nid = swept_reminder(app, world)
    with app.app_context():
        n = db.session.get(Notification, nid)
        first = compose(db.session, n, SETTINGS).attachments[0].content
        second = compose(db.session, n, SETTINGS).attachments[0].content
    assert first == second


def test_a_meeting_becomes_a_calendar_entry_in_utc(app):
    with app.app_context():
        attachment = attachments.render(db.session, {"type": "ics", "meeting": {
            "uid": "progress-7@traject", "start": "2026-04-15T10:00:00+02:00", "end": "2026-04-15T11:00:00+02:00",
            "summary": "Voortgangsgesprek", "location": "Meander MC"}},
            attachments.RenderContext(now=datetime(2026, 3, 2, tzinfo=UTC)))
    event = Calendar.from_ical(attachment.content).walk("VEVENT")[0]
    assert str(event["UID"]) == "progress-7@traject"
    assert event.decoded("DTSTART") == datetime(2026, 4, 15, 8, 0, tzinfo=UTC)


def test_a_document_is_attached_as_its_pdf(app, world):
    opleider, aios = world.api("opleider"), world.api("aios")
    _, doc = to_plan(opleider, aios, open_internal(opleider, world.users["aios"]))
    with app.app_context():
        pdf = attachments.render(db.session, {"type": "document_pdf", "document_id": doc["id"]},
                                 attachments.RenderContext(now=datetime(2026, 3, 2, tzinfo=UTC)))
    assert pdf.mimetype == "application/pdf" and pdf.content.startswith(b"%PDF") and pdf.filename.endswith(".pdf")


def queue(app, world, *, attachments_=(), user="opleider", address=None, kind="case_opened", key=None) -> int:
    with app.app_context():
        now = app.extensions["traject"].clock.now()
        n = Notification(idempotency_key=key or f"test:{random.random()}", case_id=None, event_seq=None,
                         recipient_user_id=None if address else world.users[user], recipient_address=address,
                         recipient_role="test", kind=kind, subject="Onderwerp", body_text="Tekst",
                         attachments=list(attachments_), status="pending", attempts=0, next_attempt_at=now,
                         created_at=now, data={})
        db.session.add(n)
        db.session.commit()
        return n.id


def test_an_unknown_attachment_type_is_a_dead_letter(app, world, clock, tmp_path):
    nid = queue(app, world, attachments_=[{"type": "hologram"}])
    assert drain(app, FileBackend(tmp_path / "mail"), clock).dead == 1
    assert "unknown attachment type 'hologram'" in row(app, nid).last_error


def test_an_inactive_recipient_is_a_dead_letter(app, world, clock, tmp_path):
    nid = queue(app, world)
    with app.app_context():
        db.session.execute(update(User).where(User.id == world.users["opleider"]).values(active=False))
        db.session.commit()
    assert drain(app, FileBackend(tmp_path / "mail"), clock).dead == 1
    assert "inactive" in row(app, nid).last_error


def test_the_file_backend_is_idempotent(app, world, clock, tmp_path):
    nid = queue(app, world)
    drain(app, FileBackend(tmp_path / "mail"), clock)
    with app.app_context():
        db.session.execute(update(Notification).values(status="pending", next_attempt_at=clock.now()))
        db.session.commit()
    drain(app, FileBackend(tmp_path / "mail"), clock)
    assert len(list((tmp_path / "mail").glob("*.eml"))) == 1 and row(app, nid).status == "sent"


# -- SMTP ----------------------------------------------------------------------------------

def test_smtp_delivers_over_starttls_with_a_login(app, world, clock, tmp_path):
    nid = swept_reminder(app, world)
    clock.at = REMIND
    with SMTPServer(tls_dir=tmp_path, username="traject", password="geheim wachtwoord") as server:
        backend = SMTPBackend(f"smtp://traject:geheim%20wachtwoord@127.0.0.1:{server.port}",
                              ssl_context=server.client_context(), timeout=5)
        assert drain(app, backend, clock).delivered == 1
    [received] = server.messages
    assert received["tls"] and received["to"] == ["opleider@test.nl"]
    assert received["from"] == "noreply@traject.test"
    text, html, files = parts(received["message"])
    assert "1 juni 2026" in text and files[0][1] == "text/calendar"
    assert row(app, nid).status == "sent"


def test_smtp_4xx_is_retried_and_5xx_is_a_dead_letter(app, world, clock):
    busy = queue(app, world)
    with SMTPServer(reject_rcpt="450 4.2.1 Mailbox busy, try later") as server:
        backend = SMTPBackend(f"smtp://127.0.0.1:{server.port}?starttls=off", timeout=5)
        assert drain(app, backend, clock).retried == 1
        assert row(app, busy).status == "pending" and "450" in row(app, busy).last_error
        unknown = queue(app, world, address="niemand@example.org")
        server.reject_rcpt = "550 5.1.1 No such user"
        clock.advance(hours=1)
        result = drain(app, backend, clock)
    assert (result.dead, result.delivered) == (2, 0)
    assert "550" in row(app, unknown).last_error and row(app, unknown).status == "dead"


def test_smtp_unreachable_or_without_tls_for_a_login_is_retried(app, world, clock):
    nid = queue(app, world)
    backend = SMTPBackend(f"smtp://127.0.0.1:{free_port()}", timeout=2)
    assert drain(app, backend, clock).retried == 1
    assert "Connection" in row(app, nid).last_error or "refused" in row(app, nid).last_error
    with SMTPServer() as server:  # no STARTTLS offered: the password is never sent in clear
        clock.advance(hours=1)
        backend = SMTPBackend(f"smtp://user:pw@127.0.0.1:{server.port}", timeout=5)
        assert drain(app, backend, clock).retried == 1
    assert "offers no STARTTLS" in row(app, nid).last_error and server.messages == []


# -- SendGrid -------------------------------------------------------------------------------

def sendgrid(fake, timeout=5.0):
    return SendGridBackend("SG.test-key", fake.url, timeout=timeout)


def test_sendgrid_202_is_sent_with_the_whole_message(app, world, clock):
    nid = swept_reminder(app, world)
    clock.at = REMIND
    with FakeSendGrid([(202, {}, 0)]) as fake:
        assert drain(app, sendgrid(fake), clock).delivered == 1
    [request] = fake.requests
    assert request["path"] == "/v3/mail/send"
    assert request["headers"]["Authorization"] == "Bearer SG.test-key"
    body = request["json"]
    assert body["personalizations"] == [{"to": [{"email": "opleider@test.nl"}]}]
    assert body["from"] == {"email": "noreply@traject.test", "name": "Traject"}
    assert [c["type"] for c in body["content"]] == ["text/plain", "text/html"]
    assert body["attachments"][0]["type"] == "text/calendar"
    n = row(app, nid)
    assert body["custom_args"]["idempotency_key"] == n.idempotency_key
    assert n.status == "sent" and n.sent_at == REMIND and n.attempts == 1


def test_sendgrid_429_waits_as_long_as_retry_after_says(app, world, clock):
    nid = queue(app, world)
    start = clock.now()
    with FakeSendGrid([(429, {"Retry-After": "120"}, 0)]) as fake:
        assert drain(app, sendgrid(fake), clock).retried == 1
        n = row(app, nid)
        assert n.status == "pending" and n.next_attempt_at == start + timedelta(seconds=120)
        assert n.last_error.startswith("SendGrid 429")
        clock.advance(seconds=119)
        assert drain(app, sendgrid(fake), clock).claimed == 0
        clock.advance(seconds=1)
        assert drain(app, sendgrid(fake), clock).delivered == 1
    assert len(fake.requests) == 2 and row(app, nid).attempts == 2


def test_sendgrid_500_is_retried_with_backoff_then_recovers(app, world, clock):
    nid = queue(app, world)
    start = clock.now()
    with FakeSendGrid([(500, {}, 0), (503, {}, 0)]) as fake:
        assert drain(app, sendgrid(fake), clock).retried == 1
        first = row(app, nid).next_attempt_at - start
        assert timedelta(seconds=30) <= first <= timedelta(seconds=60)
        clock.at = row(app, nid).next_attempt_at
        assert drain(app, sendgrid(fake), clock).retried == 1
        second = row(app, nid).next_attempt_at - clock.now()
        assert timedelta(seconds=60) <= second <= timedelta(seconds=120)  # doubled, jittered
        clock.at = row(app, nid).next_attempt_at
        assert drain(app, sendgrid(fake), clock).delivered == 1
    n = row(app, nid)
    assert n.status == "sent" and n.attempts == 3 and n.last_error is None


def test_sendgrid_400_is_a_dead_letter_that_an_admin_can_requeue(app, world, clock, runner):
    nid = queue(app, world)
    with FakeSendGrid([(400, {}, 0)]) as fake:
        assert drain(app, sendgrid(fake), clock).dead == 1
        n = row(app, nid)
        assert n.status == "dead" and n.last_error.startswith("SendGrid 400") and n.next_attempt_at is None
        with app.app_context():
            assert [d.id for d in outbox.dead_letters(db.session)] == [nid]
        listed = runner.invoke(["outbox", "dead"])
        assert json.loads(listed.stdout.splitlines()[0])["id"] == nid
        result = runner.invoke(["outbox", "requeue", str(nid)])
        assert result.exit_code == 0 and json.loads(result.stdout) == {"requeued": 1}
        assert drain(app, sendgrid(fake), clock).delivered == 1
    assert row(app, nid).status == "sent"


def test_a_sendgrid_timeout_is_retried_and_that_is_the_at_least_once_window(app, world, clock):
    nid = queue(app, world)
    with FakeSendGrid([(202, {}, 1.0)]) as fake:
        assert drain(app, sendgrid(fake, timeout=0.3), clock).retried == 1
        assert "unreachable" in row(app, nid).last_error or "timed out" in row(app, nid).last_error
        clock.advance(hours=1)
        assert drain(app, sendgrid(fake), clock).delivered == 1
    # SendGrid may have accepted the first request too: it saw two, with one idempotency key.
    assert [r["json"]["custom_args"]["idempotency_key"] for r in fake.requests] == [row(app, nid).idempotency_key] * 2


def test_other_4xx_are_dead_and_429_5xx_are_retried():
    from notifications.backends import _http_error

    for status in (400, 401, 403, 404, 413, 422):
        assert _http_error(status, {}, b"x").retry is False
    for status in (429, 500, 502, 503, 504):
        assert _http_error(status, {}, b"x").retry is True
    assert _http_error(503, {"Retry-After": "7"}, b"").retry_after == 7.0
    now = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
    assert retry_after("Mon, 02 Mar 2026 09:01:00 GMT", now) == 60.0
    assert retry_after("nonsense") is None


# -- claims, leases, attempts ----------------------------------------------------------------

def test_a_message_claimed_by_a_worker_that_died_comes_back_when_its_lease_ends(app, world, clock, tmp_path):
    nid = queue(app, world)
    with app.app_context():
        assert outbox.claim(db.session, clock.now(), lease=timedelta(minutes=5)) == [(nid, 1)]
    # ... and the worker was killed before it sent anything.
    clock.advance(minutes=4)
    assert drain(app, FileBackend(tmp_path / "mail"), clock).claimed == 0
    clock.advance(minutes=1)
    assert drain(app, FileBackend(tmp_path / "mail"), clock).delivered == 1
    assert row(app, nid).attempts == 2


def test_a_worker_whose_lease_ran_out_does_not_overwrite_the_new_claim(app, world, clock):
    nid = queue(app, world)
    with app.app_context():
        [(_, first)] = outbox.claim(db.session, clock.now(), lease=timedelta(seconds=1))
        [(_, second)] = outbox.claim(db.session, clock.now() + timedelta(seconds=2))
        assert outbox._finish(db.session, nid, first, "delivered", status="sent") == "lost"
        assert outbox._finish(db.session, nid, second, "delivered", status="sent") == "delivered"


def test_it_gives_up_after_the_last_attempt(app, world, clock):
    nid = queue(app, world)
    with FakeSendGrid([(500, {}, 0)] * 3) as fake:
        for _ in range(3):
            drain(app, sendgrid(fake), clock, max_attempts=3)
            clock.advance(hours=7)
    n = row(app, nid)
    assert n.status == "dead" and n.last_error.startswith("gave up after 3 attempts: SendGrid 500")


def test_backoff_doubles_with_jitter_and_is_capped():
    rng = random.Random(1)
    for attempt in range(1, 8):
        ceiling = min(outbox.MAX_DELAY, outbox.BASE_DELAY * 2 ** (attempt - 1))
        assert ceiling / 2 <= outbox.backoff(attempt, rng) <= ceiling
    assert outbox.backoff(40, rng) <= outbox.MAX_DELAY


def test_two_drains_at_once_send_each_message_once(app, world, clock):
    ids = [queue(app, world, key=f"k{i}") for i in range(40)]
    with FakeSendGrid() as fake:
        barrier = threading.Barrier(2)
        results = []

        def run():
            barrier.wait()
            results.append(drain(app, sendgrid(fake), clock, limit=5))

        threads = [threading.Thread(target=run) for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    keys = [r["json"]["custom_args"]["idempotency_key"] for r in fake.requests]
    assert sorted(keys) == sorted(f"k{i}" for i in range(40))
    assert sum(r.delivered for r in results) == 40
    assert {row(app, i).status for i in ids} == {"sent"}


def test_a_message_that_cannot_be_built_is_a_dead_letter_at_once_and_its_sender_and_the_admins_are_told(
        app, world, clock, tmp_path):
    opleider = world.api("opleider")
    case = open_internal(opleider, world.users["aios"])
    with app.app_context():
        # a title from before titles were checked: a line break would end the mail's Subject header
        n = db.session.scalars(select(Notification).where(Notification.case_id == case["id"])).first()
        n.subject = "Begeleiding\r\nBcc: iedereen@example.org"
        db.session.commit()
        broken = n.id
    result = drain(app, FileBackend(tmp_path / "mail"), clock)
    assert result.dead >= 1 and result.retried == 0
    n = row(app, broken)
    assert n.status == "dead" and n.attempts == 1 and n.last_error.startswith("cannot be built")
    with app.app_context():
        told = {(r.recipient_user_id, r.recipient_role) for r in db.session.scalars(
            select(Notification).where(Notification.kind == outbox.UNBUILDABLE_KIND))}
    assert told == {(world.users["opleider"], "sender"), (world.users["admin"], "admin")}
    # the alerts themselves are delivered in the next pass
    drain(app, FileBackend(tmp_path / "mail"), clock)
    with app.app_context():
        statuses = set(db.session.scalars(select(Notification.status).where(
            Notification.kind == outbox.UNBUILDABLE_KIND)))
    assert statuses == {"sent"}
