"""One pass of each interval job: sweep the due deadlines, drain the outbox (also `traject sweep`).

The drain first collects the daily digests whose moment has passed (notifications/digest.py): the
digest job is part of every pass, and has work once a day, at TRAJECT_DIGEST_HOUR local time."""
from __future__ import annotations

from datetime import datetime, timedelta

from flask import Flask

from engine import deadlines
from notifications import backends, digest, outbox
from notifications.render import MailSettings

from ..extensions import db


def sweep_deadlines(app: Flask, now: datetime, batch: int = deadlines.BATCH) -> deadlines.SweepResult:
    """Every due deadline as of `now`: one transaction per batch, until a batch finds nothing more to do."""
    engine = app.extensions["traject"]
    total = deadlines.SweepResult()
    session = db.session
    while True:
        try:
            result = deadlines.sweep(session, engine, now, limit=batch)
            session.commit()
        except BaseException:
            session.rollback()
            raise
        finally:
            session.expunge_all()  # memory stays flat however many rows a pass handles
        total += result
        # A short batch means nothing more is due; a batch with no progress means the rest is
        # claimed by other workers (or their cases are busy): leave it to the next pass.
        if result.candidates < batch or result.processed == 0:
            return total


def collect_digests(app: Flask, now: datetime) -> int:
    return digest.collect(db.session, now)


def drain_outbox(app: Flask, clock) -> outbox.DrainResult:
    collect_digests(app, clock())
    return outbox.drain(db.session, mail_backend(app), clock, settings=MailSettings.from_config(app.config),
                        engine=app.extensions["traject"], lease=timedelta(seconds=app.config["TRAJECT_DELIVERY_LEASE"]))


def mail_backend(app: Flask):
    backend = app.extensions.get("traject.mail")
    if backend is None:
        backend = app.extensions["traject.mail"] = backends.from_config(app.config)
    return backend


def one_pass(app: Flask, now: datetime | None = None) -> dict:
    """Deadlines, then the outbox, as of `now` (default: the app's clock): what `traject sweep` prints."""
    clock = app.extensions["traject"].clock
    fixed = now is not None
    when = now or clock.now()
    swept = sweep_deadlines(app, when)
    drained = drain_outbox(app, (lambda: when) if fixed else clock.now)
    return {**swept.summary(), **drained.summary()}
