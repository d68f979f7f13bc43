"""The case page and what can be done on it: fire a trigger, write a document, sign; and opening a case.

Successful posts redirect (303) back to the case; a refused post renders the case page
again with the message inline, next to the form that caused it, in plain language.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from flask import Response, abort, flash, g, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import login_required
from markupsafe import Markup
from sqlalchemy import select

from engine import builtins, fields
from engine.calendar import local_date
from engine.errors import Forbidden, PreconditionFailed, TransitionNotAllowed, ValidationError, VersionConflict
from engine import notes
from engine.inbox import next_level_owner
from engine.models import DEADLINE_OPEN, DEADLINE_WAITING, Case, Document, Notification, OutboxStatus
from workflows import is_final_decision, roles, terms


from .. import access_log, exports, svg
from ..access_log import log_read
from ..extensions import db
from ..runtime import engine, now
from . import data, forms, i18n, preview
from .blueprint import ui
from .dashboard import open_form


@dataclass
class FormState:
    """A refused form coming back: what was posted and what is wrong with it."""

    key: str
    values: dict = field(default_factory=dict)
    errors: dict = field(default_factory=dict)  # posted name -> [message]
    general: list = field(default_factory=list)
    reload: bool = False
    preview: preview.Preview | None = None  # a final decision's letters, shown for confirmation


def unmet_messages(unmet: list[dict]) -> list[tuple[str | None, str]]:
    english = i18n.is_english()
    return [(u.get("field"), (u.get("message") if english else u.get("message_nl")) or u.get("message") or "")
            for u in unmet]


def _names(fields_: list) -> set[str]:
    out = set()
    for f in fields_:
        out.add(f.name)
        for child in f.children:
            out |= _names(child if isinstance(child, list) else [child])
    return out


def _place(state: FormState, specs: dict, prefix: str, pairs) -> None:
    """Messages about a field of this form go next to it; the others above the form."""
    known = _names(forms.build(specs, prefix, "x", {}, {}, False))
    for path, message in pairs:
        if path in known:
            state.errors.setdefault(path, []).append(message)
        else:
            state.general.append(message)


# -- reading --------------------------------------------------------------------------------


@ui.get("/cases/<int(max=9223372036854775807):case_id>")
@login_required
def case(case_id: int):
    return render_case(case_id)


def render_case(case_id: int, state: FormState | None = None, status: int = 200):
    """The case page: read (and log) the case, build each form and the diagram, render."""
    actor = g.actor
    case_ = engine().get_case(db.session, actor, case_id)
    log_read(case_, "read")
    page = data.case_page(actor, case_)
    definition = page.definition
    closed = case_.state in definition.final_states
    trigger_forms = _trigger_forms(case_, page, state)
    # a stale form whose step is no longer offered says so at the top, not next to a form that is gone
    stale_elsewhere = bool(state and state.reload and all(f"t:{t['trigger']}" != state.key for t in trigger_forms))
    html = render_template(
        "case.html", case=case_, page=page, definition=definition, closed=closed,
        diagram=_diagram(case_, page), timeline=_timeline(page), deadlines=_deadlines(page, now()),
        terms=_terms(case_, page.definition),
        documents=_documents(case_, page, actor, state, closed),
        trigger_forms=trigger_forms, stale_elsewhere=stale_elsewhere,
        document_forms=[] if closed else _document_forms(case_, page, state),
        child_forms=_child_forms(case_, actor, state), state=state,
        related=[(c, engine().definition(c.definition)) for c in page.related],
        subject=page.people.get(case_.subject_id, ""), responsible=page.people.get(case_.responsible_id, ""),
        dossier_url=url_for("ui.dossier", case_id=case_.id),
        readers=_readers(case_, actor), notes=_notes(case_, actor, definition),
        remind=None if closed else _may_remind(case_, page, actor),
    )
    db.session.commit()  # the access log
    return html, status


def _may_remind(case_: Case, page, actor) -> list[str]:
    """The passed deadlines the reader, as the next level, may remind their owner of (labels)."""

    if next_level_owner(page.definition, case_.state) not in actor.roles_on(case_):
        return []
    moment = now()
    return [i18n.deadline_label(d, page.definition) for d in page.deadlines if data.is_late(d, moment)]


@ui.post("/cases/<int(max=9223372036854775807):case_id>/remind")
@login_required
def remind(case_id: int):
    try:
        engine().remind(db.session, g.actor, case_id)
        db.session.commit()
    except Forbidden:
        db.session.rollback()
        abort(403)
    except TransitionNotAllowed:  # nothing has passed (any more): a stale page
        db.session.rollback()
        abort(409)
    flash(_("The reminder was sent to whoever must act."), "success")
    return _back(case_id)


def _mine(state: FormState | None, key: str) -> FormState | None:
    """The refused form coming back, when it is this one."""
    return state if state and state.key == key else None


def _open_items(case_: Case, page, step) -> dict[str, list]:
    """The choices of a `choices_from` field: the case's open per-item deadlines of that kind that this
    reader may close (their own, or all of them for the level's owner), by the item's id."""
    owner = page.definition.state(case_.state).get("owner")
    out = {}
    for name, spec in step.input.items():
        prefix = f"{spec['choices_from']}_" if spec.get("choices_from") else None
        if prefix:
            out[name] = [(d.kind[len(prefix):], f"{i18n.deadline_label(d, page.definition)} "
                          f"({i18n.fmt_date(d.due_at)})") for d in page.deadlines
                         if d.kind.startswith(prefix) and d.status in DEADLINE_OPEN
                         and (d.owner_role in page.roles or owner in page.roles)]
    return out


def _trigger_forms(case_: Case, page, state: FormState | None) -> list[dict]:
    definition, out = page.definition, []
    for trigger in page.triggers:
        step = definition.step(trigger, case_.state)
        options = _open_items(case_, page, step)
        if any(not choices for choices in options.values()):
            continue  # nothing of this reader's to choose (no open action of theirs): no form that cannot work
        mine = _mine(state, f"t:{trigger}")
        out.append({
            "trigger": trigger,
            "label": i18n.label(step, trigger),
            "dest": i18n.state_label(definition, step.dest),
            "final": step.dest in definition.final_states,
            "confirm": is_final_decision(definition, step),
            "fields": forms.build(step.input, "data", f"t-{trigger}", mine.values if mine else {},
                                  mine.errors if mine else {}, False, options),
            "state": mine,
        })
    return out


def _child_forms(case_: Case, actor, state: FormState | None) -> list[dict]:
    out = []
    for child in _children_to_open(case_, actor):
        mine = _mine(state, f"c:{child.key}")
        blockers = engine().open_blockers(db.session, actor, child, case_)
        out.append({
            "blocked": [message for _field, message in unmet_messages(blockers)],
            "key": child.key, "label": i18n.label(child.open, i18n.title(child)), "title": i18n.title(child),
            "fields": forms.build(child.open.input, "data", f"c-{child.key}", mine.values if mine else {},
                                  mine.errors if mine else {}, False),
            "state": mine,
        })
    return out


def _document_forms(case_: Case, page, state: FormState | None) -> list[dict]:
    definition = page.definition
    # documents a step from here waits for: their forms start open
    needed = {req.get("kind") for t in definition.transitions if case_.state in t.sources
              for req in t.requires if req.get("guard") == "document_signed"}
    out = []
    for kind, spec in definition.documents.items():
        if not page.roles & set(spec["authors"]):
            continue
        versions = page.documents.get(kind, [])
        mine = _mine(state, f"d:{kind}")
        values = mine.values if mine else forms.initial(spec["fields"], "content",
                                                        versions[-1].content if versions else None)
        out.append({
            "kind": kind, "title": i18n.title(spec, kind), "exists": bool(versions),
            "needed": kind in needed and not versions,
            "fields": forms.build(spec["fields"], "content", f"d-{kind}", values, mine.errors if mine else {}, True),
            "state": mine,
        })
    return out


def _documents(case_: Case, page, actor, state: FormState | None, closed: bool) -> list[dict]:
    out = []
    for kind, versions in page.documents.items():
        spec = page.definition.documents.get(kind, {"title": kind, "fields": {}})
        latest = versions[-1]
        signed = {s.signer_id: s for s in latest.signatures}
        out.append({
            "kind": kind, "title": i18n.title(spec, kind), "latest": latest, "older": versions[:-1],
            "content": _content_rows(spec.get("fields", {}), latest.content),
            "signers": [{"id": uid, "name": page.people.get(uid, "?"), "role": _signer_role(case_, uid),
                         "signature": signed.get(uid)} for uid in latest.required_signer_ids or []],
            "complete": set(latest.required_signer_ids or []) <= set(signed),
            # A letter the procedure writes has no signers: it is sent, not "signed by everyone".
            "letter": not latest.required_signer_ids and "system" in spec.get("authors", []),
            "can_sign": actor.id in (latest.required_signer_ids or []) and actor.id not in signed and not closed,
            "may_disagree": actor.id == case_.subject_id,
            "state": _mine(state, f"s:{latest.id}"),
            "pdf": url_for("ui.document_pdf", document_id=latest.id),
        })
    return out


def _diagram(case_: Case, page) -> Markup:
    definition = page.definition
    ordered = [s["name"] for s in definition.states]
    visited = {e.to_state for e in page.events if e.to_state} | {e.from_state for e in page.events if e.from_state}
    return svg.state_diagram(
        [(s["name"], i18n.label(s, s["name"]), s["final"]) for s in definition.states],
        [(src, t.dest, i18n.label(t, t.trigger)) for t in definition.transitions for src in t.sources],
        case_.state, visited, {(case_.state, definition.step(t, case_.state).dest) for t in page.triggers},
        _("State diagram of %(workflow)s", workflow=i18n.title(definition)),
        _("States in order: %(states)s. Current state: %(state)s.",
          states=", ".join(i18n.state_label(definition, s) for s in ordered),
          state=i18n.state_label(definition, case_.state)),
    )


READ_ACTIONS = {
    "read": _l("opened the case"), "list": _l("saw the case in a list"), "events": _l("viewed the audit trail"),
    "notifications": _l("viewed the messages"), "document": _l("viewed a document"),
    "document_pdf": _l("opened a document as PDF"), "dossier_export": _l("downloaded the case file"),
    "diagram": _l("viewed the state diagram"), "access_log": _l("viewed who read the case"),
}


def _readers(case_: Case, actor) -> list[dict] | None:
    """For the aios the case is about: who else read it, newest first (the last 50)."""
    if case_.subject_id != actor.id:
        return None
    rows = access_log.entries(case_, limit=50, exclude_user=actor.id)
    for row in rows:
        row["roles"] = [i18n.role_label(r) for r in row["roles"] if r != "subject"]
        row["what"] = str(READ_ACTIONS.get(row["action"], row["action"]))
    return rows


def _notes(case_: Case, actor, definition) -> list[dict] | None:
    """The case's notes, for those who may read them (workflows/roles.py, docs/notes.md); None: no section."""
    if not notes.may_note(actor.roles_on(case_), roles.notes_excluded(definition.category)):
        return None
    rows = notes.notes_of(db.session, case_)
    who = data.names(n.author_id for n in rows)
    return [{"at": n.at, "who": who.get(n.author_id, _("Confidential") if n.author_id else _("System")),
             "text": n.text} for n in reversed(rows)]


@ui.post("/cases/<int(max=9223372036854775807):case_id>/notes")
@login_required
def add_note(case_id: int):
    case_ = engine().get_case(db.session, g.actor, case_id)  # 404 outside scope
    definition = engine().definition(case_.definition)
    state = FormState(key="note", values=request.form.to_dict())
    try:
        notes.add_note(db.session, case_, g.actor, request.form.get("text") or "", now(),
                       roles.notes_excluded(definition.category))
        db.session.commit()
    except ValidationError as exc:
        db.session.rollback()
        state.errors = {"text": [m for msgs in forms.field_errors(exc.details).values() for m in msgs]}
        return render_case(case_id, state, 422)
    flash(_("Note added."), "success")
    return _back(case_id, "notes")


def _signer_role(case_: Case, uid: int) -> str:
    if uid == case_.subject_id:
        return i18n.role_label("aios")
    if uid == case_.responsible_id:
        return i18n.role_label("responsible")
    return ""


def format_value(spec: dict | None, value) -> str | Markup:
    kind = (spec or {}).get("type")
    if value is None or value == "":
        return "—"
    if isinstance(value, bool):
        return _("yes") if value else _("no")
    if kind == "date" or (kind is None and isinstance(value, str) and len(value) == 10 and value[4:5] == "-"):
        return i18n.fmt_date(value) or str(value)
    if kind == "choice" or (kind == "string" and i18n.is_choice_code(value)):
        return i18n.choice_label(value)  # a letter's fact copied from a choice (the decision moment) too
    if isinstance(value, list):
        if all(isinstance(v, str) for v in value):
            return Markup("<ul class=\"plain\">") + Markup("").join(
                Markup("<li>{}</li>").format(v) for v in value) + Markup("</ul>")
        items = (spec or {}).get("items")
        return "; ".join(f"{i}. {format_value(items, v)}" for i, v in enumerate(value, 1))
    if isinstance(value, dict):
        subs = (spec or {}).get("fields") or {}
        return "; ".join(f"{i18n.label(subs.get(k), k)}: {format_value(subs.get(k), v)}"
                         for k, v in value.items() if k not in ("recorded_at", "recorded_by") and k in subs)
    return str(value)


def _content_rows(specs: dict, content: dict) -> list[tuple[str, object]]:
    rows = [(i18n.label(spec, name), format_value(spec, (content or {}).get(name))) for name, spec in specs.items()
            if (content or {}).get(name) not in (None, "", [])]
    # a stored field a later version no longer has keeps its value under its own name
    rows += [(k, format_value(None, v)) for k, v in (content or {}).items() if k not in specs]
    return rows


def _timeline(page) -> list[dict]:
    definition = page.definition
    related = {c.id for c in page.related}
    out = []
    for ev in reversed(page.events):
        details, links = [], []
        payload = ev.data or {}
        if ev.type == "opened":
            what = _("Opened in state “%(state)s”", state=i18n.state_label(definition, ev.to_state))
            specs = definition.open.input
        elif ev.type == "transition":
            step = definition.step(ev.trigger, ev.from_state)
            name = i18n.label(step, ev.trigger or "")
            if ev.from_state == ev.to_state:
                what = name
            else:
                what = _("%(step)s: from “%(a)s” to “%(b)s”", step=name, a=i18n.state_label(definition, ev.from_state),
                         b=i18n.state_label(definition, ev.to_state))
            specs = step.input if step else {}
        elif ev.type in ("document_added", "document_signed"):
            spec = definition.documents.get(payload.get("kind"), {})
            doc_title = i18n.title(spec, payload.get("kind", ""))
            if ev.type == "document_added":
                what = _("%(title)s version %(version)s written", title=doc_title, version=payload.get("version"))
            else:
                what = _("%(title)s version %(version)s signed: %(verdict)s", title=doc_title,
                         version=payload.get("version"), verdict=i18n.VERDICTS.get(payload.get("verdict"), ""))
                if payload.get("comment"):
                    details.append((_("Comment"), payload["comment"]))
            specs = {}
        else:
            what = i18n.event_label(ev.type)
            if ev.to_state:
                what += f" → {i18n.state_label(definition, ev.to_state)}"
            specs = {}
        shown_input = page.shown.data(payload.get("input") or {})
        for key, value in shown_input.items():
            details.append((i18n.label(specs.get(key), key), format_value(specs.get(key), value)))
        for effect in payload.get("effects") or []:
            child = effect.get("opened_case_id")
            if child:
                links.append((child, _("Linked case opened"), child in related))
        actor_id = page.shown.actor_of(ev.seq, ev.actor_id)
        who = page.people.get(actor_id) if actor_id else (_("Confidential") if ev.actor_id else _("System"))
        out.append({"seq": ev.seq, "at": ev.at, "who": who,
                    "what": what, "details": details, "links": links})
    return out


def _deadlines(page, moment) -> list[dict]:
    out = []
    calendar, tz = engine().config.calendar, engine().config.timezone
    for d in page.deadlines:
        shifted = terms.moved(local_date(d.due_at, tz), d.rolled_from, calendar)
        text, tone = i18n.remaining(d.due_at, d.status, moment)
        if d.status in DEADLINE_WAITING and data.is_late(d, moment):
            tone = "late"
        out.append({"label": i18n.deadline_label(d, page.definition), "due_at": d.due_at,
                    "remaining": text, "tone": tone, "status": i18n.DEADLINE_STATUS.get(d.status, d.status),
                    "owner": i18n.role_label(d.owner_role),
                    "moved": i18n.pick(shifted["note"], shifted["note_en"]) if shifted else ""})
    return out


def _terms(case_, definition) -> list[dict]:
    """The last days the case's terms allow (the dispute window of a GBT decision), as dates, and what a
    suspension did to the case's clock."""
    lang = "en" if i18n.is_english() else "nl"
    shown = [{"label": i18n.label(spec), "day": terms.long_date(end.day, lang),
              "moved": terms.moved_note(end.day, end.rolled_from, engine().config.calendar, lang)
              if end.rolled_from else ""}
             for _name, spec, end in engine().shown_terms(db.session, case_)]
    data_ = case_.data or {}
    since = fields.parse_date(data_.get(builtins.PAUSED_SINCE))
    if since:
        shown.append({"label": _("Suspended since"), "day": terms.long_date(since, lang),
                      "moved": _("The deadlines wait until it resumes.")})
    days = int(data_.get(builtins.PAUSED_DAYS) or 0)
    for entry, value in builtins.shifted_dates(definition, data_) if days else ():
        shown.append({"label": i18n.label(entry), "day": terms.long_date(fields.parse_date(value), lang),
                      "moved": _("moved by %(days)s days of suspension", days=days)})
    return shown


# -- acting ---------------------------------------------------------------------------------


def _back(case_id: int, anchor: str = ""):
    return redirect(url_for("ui.case", case_id=case_id) + (f"#{anchor}" if anchor else ""), 303)


def _refused(exc, state: FormState, specs: dict, prefix: str) -> int:
    """Fill `state` from an engine error; returns the HTTP status for the page."""
    db.session.rollback()
    if isinstance(exc, PreconditionFailed):
        _place(state, specs, prefix, unmet_messages(exc.unmet))
        return 422
    if isinstance(exc, ValidationError):
        _place(state, specs, prefix, [(k, m) for k, msgs in forms.field_errors(exc.details).items() for m in msgs])
        if not state.errors and not state.general:
            state.general.append(exc.message)
        return 422
    if isinstance(exc, VersionConflict):
        state.general.append(_("Someone else changed this case in the meantime, so nothing was saved. "
                               "Reload the page to see the current state and try again."))
        state.reload = True
        return 409
    if isinstance(exc, TransitionNotAllowed):
        state.general.append(_("This is not possible (any more) in the case's current state. "
                               "Reload the page to see what can be done now."))
        state.reload = True
        return 409
    raise exc


@ui.post("/cases/<int(max=9223372036854775807):case_id>/fire")
@login_required
def fire(case_id: int):
    eng = engine()
    trigger = request.form.get("trigger") or ""
    state = FormState(key=f"t:{trigger}", values=request.form.to_dict())
    case_ = eng.get_case(db.session, g.actor, case_id)  # 404 outside scope
    definition = eng.definition(case_.definition)
    step = definition.step(trigger, case_.state)
    if step is None:
        return render_case(case_id, state, _refused(TransitionNotAllowed(trigger), state, {}, "data"))
    confirm = is_final_decision(definition, step) and not request.form.get(preview.CONFIRM)
    if confirm and request.form.get(preview.BACK):  # "Terug" from the preview: the form, as it was filled in
        db.session.rollback()
        return render_case(case_id, state)
    values, problems = forms.parse(step.input, "data", request.form)
    if problems:
        state.errors = problems
        db.session.rollback()
        return render_case(case_id, state, 422)
    try:
        version = int(request.form.get("expected_version", ""))
    except ValueError:
        version = -1
    if confirm and request.form.get(preview.PDF, "").isdigit():  # one letter of the preview as its PDF
        try:
            name, body = preview.draft_pdf(eng, g.actor, case_id, trigger, version, values,
                                           int(request.form[preview.PDF]))
        except LookupError:
            abort(404)
        except (PreconditionFailed, ValidationError, VersionConflict, TransitionNotAllowed) as exc:
            return render_case(case_id, state, _refused(exc, state, step.input, "data"))
        access_log.visible_case(case_id, "document_pdf")  # after the roll-back: the read is kept
        db.session.commit()
        return Response(body, mimetype="application/pdf",
                        headers={"Content-Disposition": f'inline; filename="{name}"'})
    if confirm:  # a final decision is shown first, letters and all, and only taken when confirmed
        try:
            state.preview = preview.dry_run(eng, g.actor, case_id, trigger, version, values, request.form)
        except (PreconditionFailed, ValidationError, VersionConflict, TransitionNotAllowed) as exc:
            return render_case(case_id, state, _refused(exc, state, step.input, "data"))
        return render_case(case_id, state)
    children = set(db.session.scalars(select(Case.id).where(Case.parent_id == case_id)))
    try:
        fired = eng.fire(db.session, g.actor, case_id, trigger, version, values)
        seq = fired.audit_seq
        db.session.commit()
    except (PreconditionFailed, ValidationError, VersionConflict, TransitionNotAllowed) as exc:
        return render_case(case_id, state, _refused(exc, state, step.input, "data"))
    flash(_("Done: %(step)s.", step=i18n.label(step, trigger)), "success")
    _flash_letters(case_id, seq)
    new = sorted(set(db.session.scalars(select(Case.id).where(Case.parent_id == case_id))) - children)
    for child in new:  # the letters of the linked case it opened (the GBT's decision and its notification)
        _flash_letters(child)
    if new:  # the step opened a linked case (intensify: the GBT): that is where the work goes on
        flash(_("The linked case %(id)s was opened: you are on it now.", id=new[-1]), "success")
        return _back(new[-1])
    return _back(case_id)


def _flash_letters(case_id: int, seq: int | None = None) -> None:
    """Which letters the step sent (all of a case it just opened: `seq` None), to whom: the reader of a
    final decision sees where it went, and which wait for signatures before they leave."""
    q = select(Notification).where(Notification.case_id == case_id)
    rows = list(db.session.scalars(q if seq is None else q.where(Notification.event_seq == seq)))
    people = data.names(n.recipient_user_id for n in rows)
    sent: dict[int, list[str]] = {}
    held: set[int] = set()
    for n in rows:
        for entry in n.attachments or []:
            if isinstance(entry, dict) and entry.get("type") == "document_pdf":
                # An external recipient is named by its key in the region's configuration ("rgs": the RGS).
                who = people.get(n.recipient_user_id) if n.recipient_user_id else \
                    (n.recipient_role or "").split(":", 1)[-1].upper()
                sent.setdefault(int(entry["document_id"]), []).append(who or "")
                if n.status == OutboxStatus.HELD.value:
                    held.add(int(entry["document_id"]))
                break
    for document_id, names in sent.items():
        doc = db.session.get(Document, document_id)
        spec = engine().definition(db.session.get(Case, case_id).definition).documents.get(doc.kind, {})
        to = ", ".join(sorted(set(names)))
        if document_id in held:
            flash(_("Letter written: %(title)s, to %(people)s; it leaves once everyone has signed it.",
                    title=i18n.title(spec, doc.kind), people=to), "success")
        else:
            flash(_("Letter sent: %(title)s, to %(people)s.", title=i18n.title(spec, doc.kind), people=to),
                  "success")


@ui.post("/cases/<int(max=9223372036854775807):case_id>/documents")
@login_required
def add_document(case_id: int):
    eng = engine()
    kind = request.form.get("kind") or ""
    state = FormState(key=f"d:{kind}", values=request.form.to_dict())
    case_ = eng.get_case(db.session, g.actor, case_id)
    spec = eng.definition(case_.definition).documents.get(kind)
    if spec is None:
        abort(404)
    content, problems = forms.parse(spec["fields"], "content", request.form)
    if problems:
        state.errors = problems
        db.session.rollback()
        return render_case(case_id, state, 422)
    try:
        doc = eng.add_document(db.session, g.actor, case_id, kind, content)
        db.session.commit()
    except (ValidationError, VersionConflict, TransitionNotAllowed, PreconditionFailed) as exc:
        return render_case(case_id, state, _refused(exc, state, spec["fields"], "content"))
    flash(_("%(title)s version %(version)s saved; it now waits for signatures.", title=i18n.title(spec, kind),
            version=doc.version), "success")
    return _back(case_id, f"doc-{kind}")


@ui.post("/documents/<int(max=9223372036854775807):document_id>/sign")
@login_required
def sign(document_id: int):
    eng = engine()
    doc, case_ = eng.get_document(db.session, g.actor, document_id)  # 404 outside scope
    state = FormState(key=f"s:{doc.id}", values=request.form.to_dict())
    verdict = request.form.get("verdict") or ""
    if verdict not in ("agreed", "seen_not_agreed"):
        state.errors["verdict"] = [_("Choose “agreed” or “seen, not agreed”.")]
        db.session.rollback()
        return render_case(case_.id, state, 422)
    try:
        eng.sign(db.session, g.actor, document_id, verdict, (request.form.get("comment") or "").strip())
        db.session.commit()
    except (ValidationError, VersionConflict, TransitionNotAllowed) as exc:
        return render_case(case_.id, state, _refused(exc, state, {}, "x"))
    except Forbidden:
        db.session.rollback()
        state.general.append(_("You are not one of the signers of this document."))
        return render_case(case_.id, state, 403)
    flash(_("Signed: %(verdict)s.", verdict=i18n.VERDICTS[verdict]), "success")
    return _back(case_.id, f"doc-{doc.kind}")


@ui.get("/documents/<int(max=9223372036854775807):document_id>/pdf")
@login_required
def document_pdf(document_id: int):
    return exports.document_pdf(document_id)


@ui.get("/cases/<int(max=9223372036854775807):case_id>/dossier.zip")
@login_required
def dossier(case_id: int):
    return exports.dossier_zip(case_id)


# -- opening ----------------------------------------------------------------------------------


def _children_to_open(case_: Case, actor) -> list:
    """Workflows opened from this case by this actor now (a dispute about a GBT decision, by its aios)."""
    roles = actor.roles_on(case_)
    out = []
    for _key, d in sorted(engine().latest(db.session).items()):
        for req in d.open.requires:
            if req.get("guard") == "parent_is" and case_.workflow_key in req.get("workflow", []) \
                    and case_.state in req.get("states", []) and roles & set(d.open.roles):
                out.append(d)
                break
    return out


@ui.post("/cases/<int(max=9223372036854775807):case_id>/open/<string:workflow>")
@login_required
def open_child(case_id: int, workflow: str):
    case_ = engine().get_case(db.session, g.actor, case_id)  # 404 outside scope
    definition = next((d for d in _children_to_open(case_, g.actor) if d.key == workflow), None)
    if definition is None:
        abort(404)
    state = FormState(key=f"c:{workflow}", values=request.form.to_dict())
    values, problems = forms.parse(definition.open.input, "data", request.form)
    if problems:
        state.errors = problems
        db.session.rollback()
        return render_case(case_id, state, 422)
    try:
        child = engine().open_case(db.session, g.actor, workflow=workflow, institution=case_.institution_id,
                                   parent_id=case_.id, title=case_.title, data=values)
        db.session.commit()
    except (PreconditionFailed, ValidationError) as exc:
        return render_case(case_id, state, _refused(exc, state, definition.open.input, "data"))
    flash(_("%(workflow)s opened.", workflow=i18n.title(definition)), "success")
    return redirect(url_for("ui.case", case_id=child.id), 303)


@ui.route("/cases/new", methods=["GET", "POST"])
@login_required
def new_case():
    actor = g.actor
    workflows = {d.key: d for d in data.openable(actor)}
    key = request.values.get("workflow") or next(iter(workflows), "")
    definition = workflows.get(key)
    if definition is None:
        abort(404)
    if request.method == "GET":
        return render_template("new_case.html", form=open_form(definition, actor), workflows=workflows.values())
    values = request.form.to_dict()
    data_, problems = forms.parse(definition.open.input, "data", request.form)
    general: list[str] = []
    inst_id = subject_id = None
    if data.for_aios(definition):
        try:
            inst_raw, _sep, subject_raw = (request.form.get("subject") or "").partition(":")
            inst_id, subject_id = int(inst_raw), int(subject_raw)
        except ValueError:
            problems["subject"] = [_("Choose an aios.")]
    else:
        inst_id = request.form.get("institution", type=int)
        if inst_id not in {i for i, _name in data.institutions_in_regions(actor)}:
            problems["institution"] = [_("Choose the institution concerned.")]
    if not problems:
        try:
            case_ = engine().open_case(db.session, actor, workflow=key, institution=inst_id, subject_id=subject_id,
                                       title=(request.form.get("title") or "").strip(), data=data_)
            db.session.commit()
        except PreconditionFailed as exc:
            db.session.rollback()
            state = FormState("open")
            _place(state, definition.open.input, "data", unmet_messages(exc.unmet))
            problems, general = state.errors, state.general
        except ValidationError as exc:
            db.session.rollback()
            for k, msgs in forms.field_errors(exc.details).items():
                if k in ("subject_id", "institution"):
                    target = "subject" if data.for_aios(definition) else "institution"
                    msgs = [_("Choose an aios.") if target == "subject" else _("Choose the institution concerned.")]
                else:
                    target = k
                problems.setdefault(target, []).extend(msgs)
        else:
            flash(_("%(workflow)s opened.", workflow=i18n.title(definition)), "success")
            return redirect(url_for("ui.case", case_id=case_.id), 303)
    form = open_form(definition, actor, values, problems, general)
    return render_template("new_case.html", form=form, workflows=workflows.values()), 422
