"""Marshmallow schemas: they validate requests and generate the OpenAPI document."""
from __future__ import annotations

from marshmallow import Schema, fields, validate

from engine.models import DeadlineStatus


class ErrorBody(Schema):
    code = fields.String(required=True)
    message = fields.String(required=True)
    details = fields.Dict(required=True)


class ErrorSchema(Schema):
    error = fields.Nested(ErrorBody, required=True)


class TokenRequest(Schema):
    email = fields.String(required=True, validate=validate.Length(min=3, max=254))
    password = fields.String(required=True, validate=validate.Length(min=1, max=1000))
    # CONTRACT.md section 10: once the account has two-step verification, the current TOTP code
    # (or a recovery code).
    otp = fields.String(validate=validate.Length(max=64))


class TokenResponse(Schema):
    token = fields.String(required=True)
    expires_at = fields.DateTime(required=True)


class RoleOut(Schema):
    role = fields.String(required=True)
    institution = fields.String(allow_none=True)


class MeSchema(Schema):
    id = fields.Integer(required=True)
    email = fields.String(required=True)
    name = fields.String(required=True)
    roles = fields.List(fields.Nested(RoleOut), required=True)


class ChoiceWords(Schema):
    label = fields.String(required=True)
    label_en = fields.String(required=True)


class InputField(Schema):
    """One input of a step, for a client that builds its own form (CONTRACT.md section 9)."""

    type = fields.String(required=True)
    required = fields.Boolean(required=True)
    label = fields.String(required=True)
    label_en = fields.String(required=True)
    choices = fields.List(fields.String())
    choice_labels = fields.Dict(keys=fields.String(), values=fields.Nested(ChoiceWords))
    item = fields.Nested(lambda: InputField(partial=True), data_key="items")  # `items` would read dict.items
    subfields = fields.Dict(keys=fields.String(), values=fields.Nested(lambda: InputField()), data_key="fields")


class WorkflowOpen(Schema):
    roles = fields.List(fields.String(), required=True)
    input = fields.Dict(keys=fields.String(), values=fields.Nested(InputField), required=True)


class WorkflowTransition(Schema):
    trigger = fields.String(required=True)
    source = fields.String(required=True)
    dest = fields.String(required=True)
    roles = fields.List(fields.String(), required=True)
    label = fields.String()
    label_en = fields.String()
    input = fields.Dict(keys=fields.String(), values=fields.Nested(InputField))


class WorkflowSchema(Schema):
    key = fields.String(required=True)
    version = fields.Integer(required=True)
    sha256 = fields.String(required=True)
    title = fields.String(required=True)
    states = fields.List(fields.String(), required=True)
    final_states = fields.List(fields.String(), required=True)
    transitions = fields.List(fields.Nested(WorkflowTransition), required=True)
    title_en = fields.String()
    open = fields.Nested(WorkflowOpen)


class MovedSchema(Schema):
    """Why a due date is not the day the term would have ended on (`roll: next_working_day`)."""

    from_ = fields.String(required=True, data_key="from", attribute="from")  # YYYY-MM-DD
    reason = fields.String(required=True, validate=validate.OneOf(["saturday", "sunday", "holiday"]))
    note = fields.String(required=True)  # Dutch: "verschoven naar maandag 1 februari: 30 januari is een zaterdag"
    note_en = fields.String(required=True)


class DeadlineSchema(Schema):
    id = fields.Integer(required=True)
    kind = fields.String(required=True)
    label = fields.String()
    due_at = fields.DateTime(required=True)
    status = fields.String(required=True, validate=validate.OneOf([s.value for s in DeadlineStatus]))
    owner_role = fields.String(required=True)
    moved = fields.Nested(MovedSchema, allow_none=True)


class SignatureSchema(Schema):
    id = fields.Integer(required=True)
    signer_id = fields.Integer(required=True, allow_none=True)  # null once retention unlinked the signer
    verdict = fields.String(required=True)
    comment = fields.String()
    signed_at = fields.DateTime(required=True)
    document_sha256 = fields.String(required=True)


class DocumentSchema(Schema):
    id = fields.Integer(required=True)
    case_id = fields.Integer(required=True)
    kind = fields.String(required=True)
    version = fields.Integer(required=True)
    sha256 = fields.String(required=True)
    content = fields.Dict(required=True)
    required_signers = fields.List(fields.Integer(allow_none=True), required=True)
    signatures = fields.List(fields.Nested(SignatureSchema), required=True)
    created_at = fields.DateTime(required=True)


class TermSchema(Schema):
    """The last day a case's named term allows (e.g. `dispute_window`: until when a dispute can be lodged)."""

    name = fields.String(required=True)
    label = fields.String(required=True)
    label_en = fields.String(required=True)
    ends_on = fields.String(required=True)  # YYYY-MM-DD, inclusive
    moved = fields.Nested(MovedSchema, allow_none=True)


class CaseSchema(Schema):
    id = fields.Integer(required=True)
    workflow = fields.String(required=True)
    workflow_version = fields.Integer(required=True)
    institution = fields.String(required=True)
    programme = fields.String(required=True)
    subject_id = fields.Integer(allow_none=True)
    opened_by = fields.Integer(required=True, allow_none=True)  # null: the opener is confidential (rso_*)
    responsible_id = fields.Integer(allow_none=True)
    title = fields.String()
    state = fields.String(required=True)
    version = fields.Integer(required=True)
    opened_at = fields.DateTime(required=True)
    closed_at = fields.DateTime(allow_none=True)
    data = fields.Dict(required=True)
    available_triggers = fields.List(fields.String(), required=True)
    deadlines = fields.List(fields.Nested(DeadlineSchema), required=True)
    terms = fields.List(fields.Nested(TermSchema))
    documents = fields.List(fields.Nested(DocumentSchema), required=True)
    parent_id = fields.Integer(allow_none=True)
    child_ids = fields.List(fields.Integer(), required=True)


class CasePage(Schema):
    items = fields.List(fields.Nested(CaseSchema), required=True)
    next = fields.String(allow_none=True, required=True)


class CaseCreate(Schema):
    workflow = fields.String(required=True, validate=validate.Length(min=1, max=64))
    institution = fields.String(required=True, validate=validate.Length(min=1, max=64))
    subject_id = fields.Integer(strict=True, allow_none=True, validate=validate.Range(min=1, max=2**62))
    parent_id = fields.Integer(strict=True, allow_none=True, validate=validate.Range(min=1, max=2**62))
    title = fields.String(validate=validate.Length(max=300))
    data = fields.Dict(keys=fields.String(validate=validate.Length(max=100)), load_default=dict)
    # optional: the subject's training record decides, else the opener's own, else the region's default
    programme = fields.String(allow_none=True, validate=validate.Length(min=1, max=64))


class CaseQuery(Schema):
    q = fields.String(validate=validate.Length(max=100), metadata={
        "description": "finds cases by title, aios name or case number, within your scope"})
    workflow = fields.String(validate=validate.Length(max=64))
    state = fields.String(validate=validate.Length(max=64))
    institution = fields.String(validate=validate.Length(max=64))
    overdue = fields.Boolean()
    cursor = fields.String(validate=validate.Length(max=100))
    limit = fields.Integer(load_default=50, validate=validate.Range(min=1, max=200))


class TransitionRequest(Schema):
    trigger = fields.String(required=True, validate=validate.Length(min=1, max=64))
    expected_version = fields.Integer(required=True, strict=True, validate=validate.Range(min=1, max=2**31))
    data = fields.Dict(keys=fields.String(validate=validate.Length(max=100)), load_default=dict)


class EventSchema(Schema):
    seq = fields.Integer(required=True)
    at = fields.DateTime(required=True)
    actor_id = fields.Integer(allow_none=True)
    type = fields.String(required=True)
    trigger = fields.String(allow_none=True)
    from_state = fields.String(allow_none=True)
    to_state = fields.String(allow_none=True)
    data = fields.Dict(required=True)
    hash = fields.String(required=True)
    prev_hash = fields.String(required=True)


class NotificationSchema(Schema):
    id = fields.Integer(required=True)
    recipient = fields.String(required=True)
    recipient_role = fields.String(required=True)
    kind = fields.String(required=True)
    subject = fields.String(required=True)
    status = fields.String(required=True)
    attempts = fields.Integer(required=True)
    created_at = fields.DateTime(required=True)


class DocumentCreate(Schema):
    kind = fields.String(required=True, validate=validate.Length(min=1, max=64))
    content = fields.Dict(required=True, keys=fields.String(validate=validate.Length(max=100)))


class SignatureCreate(Schema):
    verdict = fields.String(required=True, validate=validate.OneOf(["agreed", "seen_not_agreed"]))
    comment = fields.String(load_default="", validate=validate.Length(max=20000))


class InboxItem(Schema):
    case_id = fields.Integer(required=True)
    workflow = fields.String(required=True)
    state = fields.String(required=True)
    reason = fields.String(required=True, validate=validate.OneOf(
        ["action_required", "escalation", "deadline_due", "deadline_overdue", "signature_requested"]))
    due_at = fields.DateTime(allow_none=True, required=True)
    title = fields.String()
    detail = fields.String()
    deadline_id = fields.Integer(allow_none=True)
    document_id = fields.Integer(allow_none=True)


class InboxPage(Schema):
    items = fields.List(fields.Nested(InboxItem), required=True)
    next = fields.String(allow_none=True, required=True)


class InboxQuery(Schema):
    cursor = fields.String(validate=validate.Length(max=200))
    limit = fields.Integer(load_default=50, validate=validate.Range(min=1, max=50))


class Cell(Schema):
    workflow = fields.String(required=True)
    state = fields.String()
    institution = fields.String()
    count = fields.Integer(allow_none=True, required=True)
    display = fields.String(required=True)


class LevelCount(Schema):
    workflow = fields.String(required=True)
    state = fields.String(required=True)
    count = fields.Integer(required=True)


class AgeRow(Schema):
    workflow = fields.String(required=True)
    open = fields.Integer(required=True)
    median_days = fields.Integer(required=True)
    max_days = fields.Integer(required=True)
    under_30 = fields.Integer(required=True)
    between_30_and_90 = fields.Integer(data_key="30_to_90", attribute="30_to_90", required=True)
    over_90 = fields.Integer(required=True)


class TrendRow(Schema):
    """null when the month includes personal trajectories: then only the band in *_display is published."""
    month = fields.String(required=True)
    opened = fields.Integer(required=True, allow_none=True)
    closed = fields.Integer(required=True, allow_none=True)
    opened_display = fields.String(required=True)
    closed_display = fields.String(required=True)


class OverviewSchema(Schema):
    generated_at = fields.DateTime(required=True)
    threshold = fields.Integer(required=True)
    counts = fields.List(fields.Nested(Cell), required=True)
    overdue = fields.List(fields.Nested(Cell), required=True)
    escalation_levels = fields.List(fields.Nested(LevelCount), required=True)
    escalation_age = fields.List(fields.Nested(AgeRow), required=True)
    trend = fields.List(fields.Nested(TrendRow), required=True)


class OverviewQuery(Schema):
    format = fields.String(load_default="json", validate=validate.OneOf(["json", "csv"]))


class RecordChange(Schema):
    changes = fields.Dict(required=True)
    at = fields.DateTime(required=True)
    actor_id = fields.Integer(allow_none=True, required=True)
    case_id = fields.Integer(allow_none=True, required=True)
    reason = fields.String(required=True)


class TrainingRecordSchema(Schema):
    aios_id = fields.Integer(required=True)
    programme = fields.String(required=True)
    start_date = fields.Date(allow_none=True, required=True)
    expected_end_date = fields.Date(allow_none=True, required=True)
    employer = fields.String(allow_none=True, required=True)
    placement = fields.String(allow_none=True, required=True)
    responsible_opleider_id = fields.Integer(allow_none=True, required=True)
    deputy_opleider_id = fields.Integer(allow_none=True, required=True)
    status = fields.String(required=True)
    history = fields.List(fields.Nested(RecordChange), required=True)


_CODE = validate.Length(min=1, max=64)
_ID = validate.Range(min=1, max=2**31)


class TrainingRecordUpdate(Schema):
    """Any of the fields; dates are checked by the service (a real date in 1900–2199, never a 500)."""
    programme = fields.String(validate=_CODE)
    start_date = fields.String(allow_none=True, validate=validate.Length(max=10))
    expected_end_date = fields.String(allow_none=True, validate=validate.Length(max=10))
    employer = fields.String(allow_none=True, validate=_CODE)
    placement = fields.String(allow_none=True, validate=_CODE)
    responsible_opleider_id = fields.Integer(strict=True, allow_none=True, validate=_ID)
    deputy_opleider_id = fields.Integer(strict=True, allow_none=True, validate=_ID)
    reason = fields.String(validate=validate.Length(max=500))
