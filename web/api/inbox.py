"""Your open work across all workflows, a page at a time (CONTRACT.md section 9)."""
from __future__ import annotations

from flask import g
from flask.views import MethodView

from engine.inbox import inbox_page

from ..access_log import log_listed
from ..extensions import db
from ..runtime import engine, now
from . import cursors
from .blueprint import api
from .schemas import InboxPage, InboxQuery


@api.route("/inbox")
class Inbox(MethodView):
    @api.arguments(InboxQuery, location="query")
    @api.response(200, InboxPage)
    def get(self, query):
        """Your open work across all workflows, most urgent first; `next` is the cursor of the following page."""
        after = cursors.decode_position(query["cursor"]) if "cursor" in query else None
        items, following = inbox_page(db.session, engine(), g.actor, now(), after, query["limit"])
        log_listed((item["case_id"], item["workflow"]) for item in items)  # only what this page shows
        db.session.commit()
        return {"items": items, "next": cursors.encode_position(following) if following else None}
