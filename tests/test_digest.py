"""The daily digest (docs/digest.md): informational mail for a user who chose it leaves once a day, as one mail;
reminders, overdue notices and requests to act leave at once; a user who did not choose it sees no change."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

from sqlalchemy import select, update

from engine import deadlines
from engine.models import Notification, OutboxStatus, User
from engine.outbox import DIGEST_KIND, digest_moment
from flows import browser, csrf_token, fire, ok
from notifications.render import MailSettings, compose
from test_delivery import REMIND, guidance
from test_gbt import IOP, open_gbt, signed
from web.extensions import db
from web.jobs import passes
from workflows import load_definitions

UTC = timezone.utc
AMSTERDAM = ZoneInfo("Europe/Amsterdam")
# The suite's clock starts on Monday 2 March 2026, 09:00 UTC; the next digest is Tuesday 07:00 in Amsterdam.
DIGEST = datetime(2026, 3, 3, 6, 0, tzinfo=UTC)
SETTINGS = MailSettings(sender="Traject <noreply@traject.test>", base_url="https://traject.test")


def choose_digest(app, *names_ids):
    with app.app_context():
        db.session.execute(update(User).where(User.id.in_(names_ids)).values(mail_digest=True))
        db.session.commit()


def started_gbt(world):
    """A GBT decided and started: the COC chair and HR are told twice, for information (gbt_decided, gbt_started)."""
    opleider, aios = world.api("opleider"), world.api("aios")
    case = open_gbt(opleider, world.users["aios"])
    signed(opleider, aios, case, "adjusted_iop", IOP)
    return fire(opleider, ok(opleider.get(f"/cases/{case['id']}")), "start")


def one_pass(app, now):
    with app.app_context():
        try:
            return passes.one_pass(app, now)
        finally:
            db.session.remove()


def rows_of(app, uid):
    with app.app_context():
        return list(db.session.scalars(select(Notification).where(Notification.recipient_user_id == uid)
                                       .order_by(Notification.id)))


def test_it_collects_the_informational_mail_of_a_digest_user_into_one_mail_at_the_digest_hour(app, world, clock):
    hr, coc = world.users["hr"], world.users["coc"]
    choose_digest(app, hr)
    case = started_gbt(world)
    one_pass(app, clock.now())
    held = rows_of(app, hr)
    assert [n.kind for n in held] == ["gbt_decided", "gbt_started"]
    assert {n.status for n in held} == {OutboxStatus.HELD} and {n.next_attempt_at for n in held} == {DIGEST}
    assert {n.attempts for n in held} == {0}  # waiting is not a failed attempt
    # the COC chair did not choose the digest: unchanged, each mail at once
    assert [(n.kind, n.status) for n in rows_of(app, coc)] == [("gbt_decided", "sent"), ("gbt_started", "sent")]

    one_pass(app, DIGEST - timedelta(minutes=1))  # not before the hour
    assert [n.status for n in rows_of(app, hr)] == ["held", "held"]

    one_pass(app, DIGEST)
    one_pass(app, DIGEST + timedelta(minutes=5))  # a later pass sends nothing twice
    after = rows_of(app, hr)
    digests = [n for n in after if n.kind == DIGEST_KIND]
    assert len(digests) == 1 and digests[0].status == "sent"
    assert digests[0].data["items"] == [held[0].id, held[1].id]
    assert {n.status for n in after} == {"sent"}
    with app.app_context():
        message = compose(db.session, db.session.get(Notification, digests[0].id), SETTINGS,
                          app.extensions["traject"])
    assert message.to == "hr@test.nl" and message.subject == "Dagoverzicht: 2 berichten ter informatie"
    assert message.text.startswith("Beste Hr,")
    assert "1. Melding: geïntensiveerd begeleidingstraject" in message.text and "2. GBT gestart (GBT)" in message.text
    assert message.text.count(f"https://traject.test/cases/{case['id']}") == 2
    assert "op 2 maart 2026 om 10:00" in message.text  # when, in local time
    assert "https://traject.test/account/mail" in message.text
    with app.app_context():  # in the reader's language
        db.session.execute(update(User).where(User.id == hr).values(language="en"))
        message = compose(db.session, db.session.get(Notification, digests[0].id), SETTINGS,
                          app.extensions["traject"])
    assert message.subject == "Daily digest: 2 messages for your information"
    assert message.text.startswith("Dear Hr,") and "View the case:" in message.text


def test_a_reminder_to_a_digest_user_still_goes_at_once(app, world, clock):
    opleider = world.users["opleider"]
    choose_digest(app, opleider)
    guidance(world)
    with app.app_context():
        assert deadlines.sweep(db.session, app.extensions["traject"], REMIND).reminded == 1
        db.session.commit()
    one_pass(app, REMIND)
    reminders = [n for n in rows_of(app, opleider) if n.kind == "deadline_reminder"]
    assert [n.status for n in reminders] == ["sent"]
    # what waits is news only: the aios signed the opleider's plan
    assert {n.kind for n in rows_of(app, opleider) if n.status == "held"} == {"document_signed"}


def test_the_setting_round_trips_through_the_account_page_and_turning_it_off_sends_what_waits(app, world, clock):
    hr = world.users["hr"]
    client = browser(world, "hr")
    page = client.get("/account/mail").get_data(as_text=True)
    assert "E-mailinstellingen" in page and 'value="immediately" aria-describedby="delivery-help" checked' in page
    response = client.post("/account/mail", data={"delivery": "daily", "csrf_token": csrf_token(client, "/account/mail")})
    assert response.status_code == 303
    with app.app_context():
        assert db.session.get(User, hr).mail_digest is True
    assert 'value="daily" aria-describedby="delivery-help" checked' in client.get("/account/mail").get_data(as_text=True)
    started_gbt(world)
    one_pass(app, clock.now())
    assert {n.status for n in rows_of(app, hr)} == {"held"}
    client.post("/account/mail", data={"delivery": "immediately", "csrf_token": csrf_token(client, "/account/mail")})
    with app.app_context():
        assert db.session.get(User, hr).mail_digest is False
    one_pass(app, clock.now())
    assert {(n.kind, n.status) for n in rows_of(app, hr)} == {("gbt_decided", "sent"), ("gbt_started", "sent")}
    assert client.post("/account/mail", data={"delivery": "sometimes",
                                              "csrf_token": csrf_token(client, "/account/mail")}).status_code == 422


def test_the_digest_moment_is_the_next_local_hour_across_daylight_saving():
    assert digest_moment(datetime(2026, 3, 2, 9, 0, tzinfo=UTC), 7, AMSTERDAM) == DIGEST
    assert digest_moment(datetime(2026, 3, 3, 5, 59, tzinfo=UTC), 7, AMSTERDAM) == DIGEST
    assert digest_moment(DIGEST, 7, AMSTERDAM) == DIGEST + timedelta(days=1)  # at the hour: the next one
    # summer time starts on 29 March 2026: 07:00 in Amsterdam is then 05:00 UTC
    assert digest_moment(datetime(2026, 3, 28, 12, 0, tzinfo=UTC), 7, AMSTERDAM) == \
        datetime(2026, 3, 29, 5, 0, tzinfo=UTC)


def test_only_news_without_anything_to_do_is_informational():
    notices = {d.key: d.informational_notices for d in load_definitions()}
    assert {("gbt_decided", "hr"), ("gbt_started", "coc_chair"), ("escalation_rvb_informed", "rvb")} <= \
        notices["intensified_guidance"] | notices["escalation"]
    everything = set().union(*notices.values())
    assert not {role for _, role in everything} & {"subject"}  # news about one's own training is never batched
    assert ("dispute_requested", "coc_chair") not in notices["dispute"]  # the COC chair acknowledges it
    assert not {kind for kind, _ in everything} & {"deadline_reminder", "deadline_overdue", "level_reached",
                                                   "signature_requested"}
