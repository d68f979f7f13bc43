"""Your open work across all workflows."""
from __future__ import annotations

from flask import g
from flask.views import MethodView

from engine.inbox import inbox

from ..access_log import log_listed
from ..extensions import db
from ..runtime import engine, now
from .blueprint import api
from .schemas import InboxItem


@api.route("/inbox")
class Inbox(MethodView):
    @api.response(200, InboxItem(many=True))
    def get(self):
        """Your open work across all workflows, most urgent first."""
        items = inbox(db.session, engine(), g.actor, now())
        log_listed((item["case_id"], item["workflow"]) for item in items)
        db.session.commit()
        return items
