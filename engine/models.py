"""SQLAlchemy 2 models. UTC in the database; aware datetimes in Python."""
from __future__ import annotations

from datetime import date, datetime, timezone
from enum import StrEnum
from typing import Any, Optional

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    event,
    false,
    text,
)
from sqlalchemy.engine import Engine
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship
from sqlalchemy.types import TypeDecorator

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(TypeDecorator):
    """Stores UTC; always hands back an aware UTC datetime (SQLite forgets the zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime refused: pass an aware datetime")
        value = value.astimezone(timezone.utc)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=timezone.utc)
        return value.astimezone(timezone.utc)


# -- statuses: declared once, stored as the same strings as always (no migration) --------------


class DeadlineStatus(StrEnum):
    PENDING = "pending"
    REMINDED = "reminded"  # a reminder went out; still open
    OVERDUE = "overdue"  # due_at passed (the sweep marked it); still open until met or cancelled
    MET = "met"
    CANCELLED = "cancelled"


class OutboxStatus(StrEnum):
    """pending -> sending (claimed; next_attempt_at is then the lease's end) -> sent | pending (retry) | dead."""

    PENDING = "pending"
    SENDING = "sending"
    SENT = "sent"
    DEAD = "dead"
    HELD = "held"  # waits for a document's signatures (a report that leaves once both signed it)


class RetentionAction(StrEnum):
    PSEUDONYMISED = "pseudonymised"
    ERASED = "erased"


class Verdict(StrEnum):
    AGREED = "agreed"
    SEEN_NOT_AGREED = "seen_not_agreed"


# Open: counts for the case (met or cancelled end it). Waiting: the sweep still has to look at it.
DEADLINE_OPEN = (DeadlineStatus.PENDING, DeadlineStatus.REMINDED, DeadlineStatus.OVERDUE)
DEADLINE_WAITING = (DeadlineStatus.PENDING, DeadlineStatus.REMINDED)
OUTBOX_CLAIMABLE = (OutboxStatus.PENDING, OutboxStatus.SENDING)


def _in(column: str, values) -> str:
    """A CHECK or partial-index predicate from a status tuple, spelled as the migrations spell it."""
    return f"{column} in (" + ", ".join(f"'{v}'" for v in values) + ")"


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map = {datetime: UTCDateTime, dict[str, Any]: JSON, list[Any]: JSON}


# BigInteger ids that are still SQLite rowids (SQLite autoincrements only INTEGER PRIMARY KEY).
BigId = BigInteger().with_variant(Integer, "sqlite")


class Region(Base):
    __tablename__ = "region"
    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))


class Institution(Base):
    __tablename__ = "institution"
    id: Mapped[int] = mapped_column(primary_key=True)
    region_id: Mapped[int] = mapped_column(ForeignKey("region.id"))
    code: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    city: Mapped[Optional[str]] = mapped_column(String(100))

    region: Mapped[Region] = relationship()


class User(Base):
    __tablename__ = "user_account"
    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(254), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    password_hash: Mapped[Optional[str]] = mapped_column(String(255))
    language: Mapped[str] = mapped_column(String(5), default="nl")
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime]
    # Raised at logout and password change: every browser session of the user signed before ends.
    session_epoch: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))
    # Single sign-on: the account is the IdP's stable subject (issuer + sub), never a name (migration 0006).
    oidc_issuer: Mapped[Optional[str]] = mapped_column(String(255))
    oidc_subject: Mapped[Optional[str]] = mapped_column(String(255))
    employee_number: Mapped[Optional[str]] = mapped_column(String(64), unique=True)
    # TOTP (RFC 6238): the shared secret, set once enrolment is confirmed; the last time step used,
    # so that one code is never accepted twice.
    totp_secret: Mapped[Optional[str]] = mapped_column(String(64))
    totp_last_step: Mapped[Optional[int]] = mapped_column(BigInteger)
    mfa_enrolled_at: Mapped[Optional[datetime]]
    # Who stands in for this user (plv. opleider), set by an administrator.
    deputy_id: Mapped[Optional[int]] = mapped_column(ForeignKey("user_account.id", ondelete="SET NULL"))
    # Informational mail once a day in one digest instead of one by one (migration 0007; docs/digest.md).
    mail_digest: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())

    roles: Mapped[list["RoleAssignment"]] = relationship(
        back_populates="user", lazy="selectin", cascade="all, delete-orphan"
    )
    __table_args__ = (UniqueConstraint("oidc_issuer", "oidc_subject", name="uq_user_account_oidc_subject"),)


class RoleAssignment(Base):
    """A role held at one institution, or region-wide (institution_id null)."""

    __tablename__ = "role_assignment"
    __table_args__ = (
        UniqueConstraint("user_id", "role", "institution_id", "region_id", name="uq_role_assignment"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("user_account.id", ondelete="CASCADE"), index=True)
    role: Mapped[str] = mapped_column(String(40))
    institution_id: Mapped[Optional[int]] = mapped_column(ForeignKey("institution.id"))
    region_id: Mapped[int] = mapped_column(ForeignKey("region.id"))
    # The training programme (specialty) a programme-bound role serves; null: the region's default.
    programme: Mapped[Optional[str]] = mapped_column(String(64))

    user: Mapped[User] = relationship(back_populates="roles")
    institution: Mapped[Optional[Institution]] = relationship(lazy="joined")


class RecoveryCode(Base):
    """A one-time MFA recovery code; only its hash is kept."""

    __tablename__ = "recovery_code"
    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("user_account.id", ondelete="CASCADE"), index=True)
    code_hash: Mapped[str] = mapped_column(String(64))
    used_at: Mapped[Optional[datetime]]


class Invitation(Base):
    """A one-time link to set a first password (or to tie the account to its SSO subject)."""

    __tablename__ = "invitation"
    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("user_account.id", ondelete="CASCADE"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_by_id: Mapped[Optional[int]] = mapped_column(ForeignKey("user_account.id", ondelete="SET NULL"))
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime]
    used_at: Mapped[Optional[datetime]]


class SecurityEvent(Base):
    """The security log: every login, failure, logout and change to an account (web/security_log.py)."""

    __tablename__ = "security_event"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    at: Mapped[datetime] = mapped_column(index=True)
    kind: Mapped[str] = mapped_column(String(40))
    outcome: Mapped[str] = mapped_column(String(20))
    method: Mapped[str] = mapped_column(String(20), default="")
    user_id: Mapped[Optional[int]] = mapped_column(ForeignKey("user_account.id", ondelete="SET NULL"), index=True)
    actor_id: Mapped[Optional[int]] = mapped_column(ForeignKey("user_account.id", ondelete="SET NULL"))
    email: Mapped[str] = mapped_column(String(254), default="")
    ip: Mapped[str] = mapped_column(String(64), default="")
    user_agent: Mapped[str] = mapped_column(String(300), default="")
    detail: Mapped[str] = mapped_column(String(500), default="")


class WorkflowDefinition(Base):
    """One stored version of a definition; cases point at the version they were opened with."""

    __tablename__ = "workflow_definition"
    __table_args__ = (
        UniqueConstraint("key", "version", name="uq_workflow_definition_key_version"),
        UniqueConstraint("key", "sha256", name="uq_workflow_definition_key_sha256"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(64))
    version: Mapped[int]
    sha256: Mapped[str] = mapped_column(String(64))
    title: Mapped[str] = mapped_column(String(200))
    source: Mapped[str] = mapped_column(Text, deferred=True)
    loaded_at: Mapped[datetime]


class Case(Base):
    __tablename__ = "case_file"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    workflow_key: Mapped[str] = mapped_column(String(64))
    definition_id: Mapped[int] = mapped_column(ForeignKey("workflow_definition.id"))
    region_id: Mapped[int] = mapped_column(ForeignKey("region.id"))
    institution_id: Mapped[int] = mapped_column(ForeignKey("institution.id"))
    subject_id: Mapped[Optional[int]] = mapped_column(ForeignKey("user_account.id"), index=True)
    opened_by_id: Mapped[int] = mapped_column(ForeignKey("user_account.id"), index=True)
    responsible_id: Mapped[Optional[int]] = mapped_column(ForeignKey("user_account.id"))
    parent_id: Mapped[Optional[int]] = mapped_column(ForeignKey("case_file.id"), index=True)
    # The programme the case belongs to, fixed at opening (the subject's record, else the region's default).
    programme: Mapped[Optional[str]] = mapped_column(String(64))
    title: Mapped[str] = mapped_column(String(300), default="")
    state: Mapped[str] = mapped_column(String(64))
    version: Mapped[int] = mapped_column(Integer, default=1)
    data: Mapped[dict[str, Any]] = mapped_column(default=dict)
    opened_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    closed_at: Mapped[Optional[datetime]]
    # Head of the audit chain, kept on the case so a transition never reads the last event.
    audit_seq: Mapped[int] = mapped_column(Integer, default=0)
    audit_head: Mapped[str] = mapped_column(String(64), default="")

    definition: Mapped[WorkflowDefinition] = relationship(lazy="joined")
    institution: Mapped[Institution] = relationship(lazy="joined")

    __table_args__ = (
        Index("ix_case_file_scope", "institution_id", "workflow_key", "state"),
        Index("ix_case_file_region", "region_id", "workflow_key"),
    )


class Programme(Base):
    """A specialty's training in the region (e.g. anesthesiologie)."""

    __tablename__ = "programme"
    id: Mapped[int] = mapped_column(primary_key=True)
    region_id: Mapped[int] = mapped_column(ForeignKey("region.id"))
    code: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))


class RecordStatus(StrEnum):
    IN_TRAINING = "in_training"
    EXTENDED = "extended"
    COMPLETED = "completed"
    TERMINATED = "terminated"


class TrainingRecord(Base):
    """What the region knows of one subject's training: programme, term, employer and placement.

    Every change is a `TrainingRecordEvent` in a hash chain of its own (like a case's audit trail)."""

    __tablename__ = "training_record"
    subject_id: Mapped[int] = mapped_column(ForeignKey("user_account.id", ondelete="CASCADE"), primary_key=True)
    region_id: Mapped[int] = mapped_column(ForeignKey("region.id"))
    programme: Mapped[str] = mapped_column(String(64))
    start_date: Mapped[Optional[date]] = mapped_column(Date)
    expected_end_date: Mapped[Optional[date]] = mapped_column(Date)
    employer_id: Mapped[Optional[int]] = mapped_column(ForeignKey("institution.id"), index=True)
    placement_id: Mapped[Optional[int]] = mapped_column(ForeignKey("institution.id"), index=True)
    responsible_opleider_id: Mapped[Optional[int]] = mapped_column(ForeignKey("user_account.id"))
    deputy_opleider_id: Mapped[Optional[int]] = mapped_column(ForeignKey("user_account.id"))
    status: Mapped[str] = mapped_column(String(20), default=RecordStatus.IN_TRAINING)
    updated_at: Mapped[datetime]
    audit_seq: Mapped[int] = mapped_column(Integer, default=0)
    audit_head: Mapped[str] = mapped_column(String(64), default="")


class TrainingRecordEvent(Base):
    """One change of a training record: who, when, why, the fields before and after."""

    __tablename__ = "training_record_event"
    subject_id: Mapped[int] = mapped_column(ForeignKey("training_record.subject_id", ondelete="CASCADE"),
                                            primary_key=True)
    seq: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[datetime]
    actor_id: Mapped[Optional[int]] = mapped_column(ForeignKey("user_account.id"))
    case_id: Mapped[Optional[int]] = mapped_column(BigId)  # the case whose step changed it, if any
    reason: Mapped[str] = mapped_column(String(500), default="")
    changes: Mapped[dict[str, Any]] = mapped_column(default=dict)  # field → [before, after]
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))


class CaseExclusion(Base):
    """A user the case is about (conflict of interest): never sees it, never receives it."""

    __tablename__ = "case_exclusion"
    case_id: Mapped[int] = mapped_column(BigId, ForeignKey("case_file.id"), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("user_account.id"), primary_key=True)


class AuditEvent(Base):
    """Append-only; keyed by (case, seq) so that two writers collide instead of overwriting."""

    __tablename__ = "audit_event"
    case_id: Mapped[int] = mapped_column(BigId, ForeignKey("case_file.id"), primary_key=True)
    seq: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[datetime]
    actor_id: Mapped[Optional[int]] = mapped_column(ForeignKey("user_account.id"))
    type: Mapped[str] = mapped_column(String(40))
    trigger: Mapped[Optional[str]] = mapped_column(String(64))
    from_state: Mapped[Optional[str]] = mapped_column(String(64))
    to_state: Mapped[Optional[str]] = mapped_column(String(64))
    data: Mapped[dict[str, Any]] = mapped_column(default=dict)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))


class Document(Base):
    """Versioned; the content never changes once written (see the triggers below)."""

    __tablename__ = "document"
    __table_args__ = (UniqueConstraint("case_id", "kind", "version", name="uq_document_case_kind_version"),)
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    case_id: Mapped[int] = mapped_column(BigId, ForeignKey("case_file.id"), index=True)
    kind: Mapped[str] = mapped_column(String(64))
    version: Mapped[int] = mapped_column(Integer)
    content: Mapped[dict[str, Any]]
    sha256: Mapped[str] = mapped_column(String(64))
    required_signer_ids: Mapped[list[Any]] = mapped_column(default=list)
    created_by_id: Mapped[int] = mapped_column(ForeignKey("user_account.id"))
    created_at: Mapped[datetime]

    signatures: Mapped[list["Signature"]] = relationship(
        back_populates="document", lazy="selectin", order_by="Signature.id"
    )


class Signature(Base):
    __tablename__ = "signature"
    __table_args__ = (
        UniqueConstraint("document_id", "signer_id", name="uq_signature_document_signer"),
        CheckConstraint(_in("verdict", Verdict), name="verdict"),
    )
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    document_id: Mapped[int] = mapped_column(BigId, ForeignKey("document.id"), index=True)
    # Null only after retention unlinked the signer (engine/privacy.py); the verdict and hash stay.
    signer_id: Mapped[Optional[int]] = mapped_column(ForeignKey("user_account.id"))
    verdict: Mapped[str] = mapped_column(String(20))
    comment: Mapped[str] = mapped_column(Text, default="")
    document_sha256: Mapped[str] = mapped_column(String(64))
    signed_at: Mapped[datetime]

    document: Mapped[Document] = relationship(back_populates="signatures")


class Deadline(Base):
    __tablename__ = "deadline"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    case_id: Mapped[int] = mapped_column(BigId, ForeignKey("case_file.id"), index=True)
    kind: Mapped[str] = mapped_column(String(64))
    label: Mapped[str] = mapped_column(String(300), default="")
    due_at: Mapped[datetime]
    # Next moment the worker must look at this row: a reminder or the due time itself.
    remind_at: Mapped[Optional[datetime]]
    status: Mapped[str] = mapped_column(String(20), default=DeadlineStatus.PENDING.value)
    owner_role: Mapped[str] = mapped_column(String(40))
    reminder_days: Mapped[list[Any]] = mapped_column(default=list)
    created_at: Mapped[datetime]
    resolved_at: Mapped[Optional[datetime]]
    # The day the term would have ended on, when `roll: next_working_day` moved it (pages say why).
    rolled_from: Mapped[Optional[date]] = mapped_column(Date)

    __table_args__ = (
        CheckConstraint(_in("status", DeadlineStatus), name="status"),
        Index(
            "ix_deadline_open_due",
            "remind_at",
            postgresql_where=text(_in("status", DEADLINE_WAITING)),
            sqlite_where=text(_in("status", DEADLINE_WAITING)),
        ),
    )


class Notification(Base):
    """The outbox: written in the transition's transaction, delivered by the worker afterwards."""

    __tablename__ = "notification"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    idempotency_key: Mapped[str] = mapped_column(String(200), unique=True)
    case_id: Mapped[Optional[int]] = mapped_column(BigId, ForeignKey("case_file.id"), index=True)
    event_seq: Mapped[Optional[int]] = mapped_column(Integer)
    recipient_user_id: Mapped[Optional[int]] = mapped_column(ForeignKey("user_account.id"))
    recipient_address: Mapped[Optional[str]] = mapped_column(String(254))
    recipient_role: Mapped[str] = mapped_column(String(40))
    kind: Mapped[str] = mapped_column(String(64))
    subject: Mapped[str] = mapped_column(String(300))
    body_text: Mapped[str] = mapped_column(Text, default="")
    # What to attach, rendered at delivery: [{"type": "document_pdf", "document_id": n}, {"type": "ics", ...}]
    attachments: Mapped[list[Any]] = mapped_column(default=list)
    status: Mapped[str] = mapped_column(String(20), default=OutboxStatus.PENDING.value)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[Optional[datetime]]
    last_error: Mapped[Optional[str]] = mapped_column(Text)
    created_at: Mapped[datetime]
    sent_at: Mapped[Optional[datetime]]
    # Template variables beyond the case, e.g. {"deadline_id": 7, "days_before": 3} (migration 0002).
    data: Mapped[dict[str, Any]] = mapped_column(default=dict, server_default=text("'{}'"))

    # status: pending -> sending (claimed; next_attempt_at is then the lease's end) -> sent | pending (retry) | dead.
    # A `sending` row whose lease ran out is claimed again: see notifications/outbox.py.
    __table_args__ = (
        Index(
            "ix_notification_due",
            "next_attempt_at",
            postgresql_where=text(_in("status", OUTBOX_CLAIMABLE)),
            sqlite_where=text(_in("status", OUTBOX_CLAIMABLE)),
        ),
        # Rows waiting for a daily digest (notifications/digest.py): every worker pass asks for the due ones.
        Index("ix_notification_held", "next_attempt_at", postgresql_where=text("status = 'held'"),
              sqlite_where=text("status = 'held'")),
    )


class WorkerHeartbeat(Base):
    """One row per worker process, touched on every pass: /healthz and the admin page show it."""

    __tablename__ = "worker_heartbeat"
    name: Mapped[str] = mapped_column(String(200), primary_key=True)
    started_at: Mapped[datetime]
    seen_at: Mapped[datetime]
    info: Mapped[dict[str, Any]] = mapped_column(default=dict)


class AccessLog(Base):
    __tablename__ = "access_log"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    at: Mapped[datetime]
    user_id: Mapped[int] = mapped_column(ForeignKey("user_account.id"), index=True)
    case_id: Mapped[Optional[int]] = mapped_column(BigId, ForeignKey("case_file.id"), index=True)
    # a read of a training record (no case): whose record it was
    subject_id: Mapped[Optional[int]] = mapped_column(ForeignKey("user_account.id"), index=True)
    action: Mapped[str] = mapped_column(String(40))
    detail: Mapped[str] = mapped_column(String(300), default="")


class CaseNote(Base):
    """A note on a case (engine/notes.py): its text here, its sha256 in the case's audit chain (`note_added`)."""

    __tablename__ = "case_note"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    case_id: Mapped[int] = mapped_column(BigId, ForeignKey("case_file.id"), index=True)
    author_id: Mapped[Optional[int]] = mapped_column(ForeignKey("user_account.id"))
    at: Mapped[datetime]
    text: Mapped[str] = mapped_column(Text)
    sha256: Mapped[str] = mapped_column(String(64))
    event_seq: Mapped[int]


class LegalHold(Base):
    """Retention waits while a hold is in force (lifted_at null): placed by an admin, with a reason."""

    __tablename__ = "legal_hold"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    case_id: Mapped[int] = mapped_column(BigId, ForeignKey("case_file.id"), index=True)
    reason: Mapped[str] = mapped_column(Text)
    placed_by_id: Mapped[int] = mapped_column(ForeignKey("user_account.id"))
    placed_at: Mapped[datetime]
    lifted_at: Mapped[Optional[datetime]]
    lifted_by_id: Mapped[Optional[int]] = mapped_column(ForeignKey("user_account.id"))
    lift_reason: Mapped[Optional[str]] = mapped_column(Text)


class CaseRetention(Base):
    """What retention did to a closed case: pseudonymised, later perhaps erased (engine/privacy.py)."""

    __tablename__ = "case_retention"
    case_id: Mapped[int] = mapped_column(BigId, ForeignKey("case_file.id"), primary_key=True)
    action: Mapped[str] = mapped_column(String(20))
    applied_at: Mapped[datetime]
    # The audit event that recorded it, and the policy as configured at that moment.
    event_seq: Mapped[int] = mapped_column(Integer)
    policy: Mapped[dict[str, Any]] = mapped_column(default=dict)
    # Keyed hash of the former subject (pseudonymise only; null once erased).
    subject_pseudonym: Mapped[Optional[str]] = mapped_column(String(64), index=True)

    __table_args__ = (CheckConstraint(_in("action", RetentionAction), name="action"),)


class AuthToken(Base):
    """Only the sha256 of a token is stored: a stolen database yields no usable token."""

    __tablename__ = "auth_token"
    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("user_account.id", ondelete="CASCADE"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime]
    revoked_at: Mapped[Optional[datetime]]


# Database-level guarantees, installed by create_all and by the migration alike.
IMMUTABILITY_DDL = {
    # Retention (engine/privacy.py) may redact in place, and only so: a document's content becomes a
    # {"redacted": ...} marker with its sha256 kept; a signature loses its comment (and its signer);
    # an audit event's data becomes a marker and its actor may be cleared, hash and links kept.
    "sqlite": [
        """DROP TRIGGER IF EXISTS document_content_immutable""",
        """CREATE TRIGGER document_content_immutable BEFORE UPDATE OF content, sha256, kind, version, case_id
           ON document
           WHEN NOT (NEW.sha256 = OLD.sha256 AND NEW.kind = OLD.kind AND NEW.version = OLD.version
                     AND NEW.case_id = OLD.case_id AND json_extract(NEW.content, '$.redacted') IS NOT NULL)
           BEGIN SELECT RAISE(ABORT, 'document content is immutable: write a new version'); END""",
        """CREATE TRIGGER IF NOT EXISTS document_signed_undeletable BEFORE DELETE ON document
           WHEN EXISTS (SELECT 1 FROM signature WHERE document_id = OLD.id)
           BEGIN SELECT RAISE(ABORT, 'a signed document cannot be deleted'); END""",
        """DROP TRIGGER IF EXISTS signature_immutable""",
        """CREATE TRIGGER signature_immutable BEFORE UPDATE ON signature
           WHEN NOT (NEW.id = OLD.id AND NEW.document_id = OLD.document_id AND NEW.verdict = OLD.verdict
                     AND NEW.document_sha256 = OLD.document_sha256 AND NEW.signed_at = OLD.signed_at
                     AND NEW.comment = '' AND (NEW.signer_id IS NULL OR NEW.signer_id = OLD.signer_id))
           BEGIN SELECT RAISE(ABORT, 'signatures are immutable'); END""",
    ],
    "postgresql": [
        """CREATE OR REPLACE FUNCTION traject_reject() RETURNS trigger AS $$
           BEGIN RAISE EXCEPTION USING MESSAGE = TG_ARGV[0]; END $$ LANGUAGE plpgsql""",
        # A transaction that redacts says so first: SET LOCAL traject.redaction = 'on'.
        """CREATE OR REPLACE FUNCTION traject_redacting() RETURNS boolean AS $$
           SELECT coalesce(current_setting('traject.redaction', true), '') = 'on' $$ LANGUAGE sql STABLE""",
        """CREATE OR REPLACE FUNCTION traject_document_guard() RETURNS trigger AS $$
           BEGIN
             IF TG_OP = 'DELETE' THEN
               IF EXISTS (SELECT 1 FROM signature WHERE document_id = OLD.id) THEN
                 RAISE EXCEPTION 'a signed document cannot be deleted';
               END IF;
               RETURN OLD;
             END IF;
             IF NEW.sha256 <> OLD.sha256 OR NEW.kind <> OLD.kind OR NEW.version <> OLD.version
                OR NEW.case_id <> OLD.case_id
                OR (NEW.content::text IS DISTINCT FROM OLD.content::text
                    AND NOT (traject_redacting() AND NEW.content::jsonb ? 'redacted')) THEN
               RAISE EXCEPTION 'document content is immutable: write a new version';
             END IF;
             RETURN NEW;
           END $$ LANGUAGE plpgsql""",
        """DROP TRIGGER IF EXISTS document_guard ON document""",
        """CREATE TRIGGER document_guard BEFORE UPDATE OR DELETE ON document
           FOR EACH ROW EXECUTE FUNCTION traject_document_guard()""",
        """CREATE OR REPLACE FUNCTION traject_signature_guard() RETURNS trigger AS $$
           BEGIN
             IF traject_redacting() AND NEW.id = OLD.id AND NEW.document_id = OLD.document_id
                AND NEW.verdict = OLD.verdict AND NEW.document_sha256 = OLD.document_sha256
                AND NEW.signed_at = OLD.signed_at AND NEW.comment = ''
                AND (NEW.signer_id IS NULL OR NEW.signer_id = OLD.signer_id) THEN
               RETURN NEW;
             END IF;
             RAISE EXCEPTION 'signatures are immutable';
           END $$ LANGUAGE plpgsql""",
        """DROP TRIGGER IF EXISTS signature_immutable ON signature""",
        """CREATE TRIGGER signature_immutable BEFORE UPDATE ON signature
           FOR EACH ROW EXECUTE FUNCTION traject_signature_guard()""",
        # DELETE never; UPDATE only as a declared redaction that leaves the chain's skeleton as it was.
        """CREATE OR REPLACE FUNCTION traject_audit_guard() RETURNS trigger AS $$
           BEGIN
             IF TG_OP = 'UPDATE' AND traject_redacting()
                AND NEW.case_id = OLD.case_id AND NEW.seq = OLD.seq AND NEW.hash = OLD.hash
                AND NEW.prev_hash = OLD.prev_hash AND NEW.at = OLD.at AND NEW.type = OLD.type
                AND NEW.trigger IS NOT DISTINCT FROM OLD.trigger
                AND NEW.from_state IS NOT DISTINCT FROM OLD.from_state
                AND NEW.to_state IS NOT DISTINCT FROM OLD.to_state
                AND (NEW.actor_id IS NULL OR NEW.actor_id = OLD.actor_id)
                AND NEW.data::jsonb ? 'redacted' THEN
               RETURN NEW;
             END IF;
             RAISE EXCEPTION 'audit events are append-only';
           END $$ LANGUAGE plpgsql""",
        """DROP TRIGGER IF EXISTS audit_event_no_update ON audit_event""",
        # On SQLite anyone with the file can edit it; there `traject audit verify` is the guard.
        """CREATE TRIGGER audit_event_no_update BEFORE UPDATE OR DELETE ON audit_event
           FOR EACH ROW EXECUTE FUNCTION traject_audit_guard()""",
    ],
}


def install_immutability(connection) -> None:
    for statement in IMMUTABILITY_DDL.get(connection.dialect.name, []):
        connection.exec_driver_sql(statement)


@event.listens_for(Base.metadata, "after_create")
def _after_create(target, connection, **kw):
    install_immutability(connection)


@event.listens_for(Engine, "connect")
def _sqlite_pragmas(dbapi_connection, connection_record):
    # WAL lets the worker sweep while the web serves; foreign keys are off by default in SQLite.
    module = type(dbapi_connection).__module__
    if module.startswith("sqlite3"):
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA busy_timeout=5000")
        cursor.close()
