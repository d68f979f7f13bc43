"""privacy: legal holds, retention records, redaction admitted by the guard triggers

Revision ID: 0004
Revises: 0003

- legal_hold: an admin's hold on a case (with a reason); retention waits while one is in force.
- case_retention: what retention did to a closed case (pseudonymised / erased), when, under which
  policy, and the former subject's keyed pseudonym.
- signature.signer_id becomes nullable: retention unlinks the former subject; verdict, time and
  document_sha256 stay.
- The guard triggers (engine/models.py IMMUTABILITY_DDL) admit exactly one kind of change to
  documents, signatures and (PostgreSQL) audit events: the controlled redaction, declared in its
  transaction with SET LOCAL traject.redaction = 'on', keeping every hash.
"""
from alembic import op
import sqlalchemy as sa

import engine.models  # noqa: F401

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None

BIG_ID = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')

# The guards as they were before this revision (for downgrade).
PREVIOUS_DDL = {
    "sqlite": [
        """CREATE TRIGGER IF NOT EXISTS document_signed_undeletable BEFORE DELETE ON document
           WHEN EXISTS (SELECT 1 FROM signature WHERE document_id = OLD.id)
           BEGIN SELECT RAISE(ABORT, 'a signed document cannot be deleted'); END""",
        "DROP TRIGGER IF EXISTS document_content_immutable",
        """CREATE TRIGGER document_content_immutable BEFORE UPDATE OF content, sha256, kind, version, case_id ON document
           BEGIN SELECT RAISE(ABORT, 'document content is immutable: write a new version'); END""",
        "DROP TRIGGER IF EXISTS signature_immutable",
        """CREATE TRIGGER signature_immutable BEFORE UPDATE ON signature
           BEGIN SELECT RAISE(ABORT, 'signatures are immutable'); END""",
    ],
    "postgresql": [
        """CREATE OR REPLACE FUNCTION traject_document_guard() RETURNS trigger AS $$
           BEGIN
             IF TG_OP = 'DELETE' THEN
               IF EXISTS (SELECT 1 FROM signature WHERE document_id = OLD.id) THEN
                 RAISE EXCEPTION 'a signed document cannot be deleted';
               END IF;
               RETURN OLD;
             END IF;
             IF NEW.content::text IS DISTINCT FROM OLD.content::text OR NEW.sha256 <> OLD.sha256
                OR NEW.kind <> OLD.kind OR NEW.version <> OLD.version OR NEW.case_id <> OLD.case_id THEN
               RAISE EXCEPTION 'document content is immutable: write a new version';
             END IF;
             RETURN NEW;
           END $$ LANGUAGE plpgsql""",
        "DROP TRIGGER IF EXISTS signature_immutable ON signature",
        """CREATE TRIGGER signature_immutable BEFORE UPDATE ON signature
           FOR EACH ROW EXECUTE FUNCTION traject_reject('signatures are immutable')""",
        "DROP TRIGGER IF EXISTS audit_event_no_update ON audit_event",
        """CREATE TRIGGER audit_event_no_update BEFORE UPDATE OR DELETE ON audit_event
           FOR EACH ROW EXECUTE FUNCTION traject_reject('audit events are append-only')""",
        "DROP FUNCTION IF EXISTS traject_audit_guard()",
        "DROP FUNCTION IF EXISTS traject_signature_guard()",
        "DROP FUNCTION IF EXISTS traject_redacting()",
    ],
}


def upgrade():
    op.create_table(
        'legal_hold',
        sa.Column('id', BIG_ID, nullable=False),
        sa.Column('case_id', BIG_ID, nullable=False),
        sa.Column('reason', sa.Text(), nullable=False),
        sa.Column('placed_by_id', sa.Integer(), nullable=False),
        sa.Column('placed_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('lifted_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('lifted_by_id', sa.Integer(), nullable=True),
        sa.Column('lift_reason', sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(['case_id'], ['case_file.id'], name=op.f('fk_legal_hold_case_id_case_file')),
        sa.ForeignKeyConstraint(['placed_by_id'], ['user_account.id'],
                                name=op.f('fk_legal_hold_placed_by_id_user_account')),
        sa.ForeignKeyConstraint(['lifted_by_id'], ['user_account.id'],
                                name=op.f('fk_legal_hold_lifted_by_id_user_account')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_legal_hold')),
    )
    op.create_index(op.f('ix_legal_hold_case_id'), 'legal_hold', ['case_id'], unique=False)
    op.create_table(
        'case_retention',
        sa.Column('case_id', BIG_ID, nullable=False),
        sa.Column('action', sa.String(length=20), nullable=False),
        sa.Column('applied_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('event_seq', sa.Integer(), nullable=False),
        sa.Column('policy', sa.JSON(), nullable=False),
        sa.Column('subject_pseudonym', sa.String(length=64), nullable=True),
        sa.CheckConstraint("action in ('pseudonymised', 'erased')", name=op.f('ck_case_retention_action')),
        sa.ForeignKeyConstraint(['case_id'], ['case_file.id'], name=op.f('fk_case_retention_case_id_case_file')),
        sa.PrimaryKeyConstraint('case_id', name=op.f('pk_case_retention')),
    )
    op.create_index(op.f('ix_case_retention_subject_pseudonym'), 'case_retention', ['subject_pseudonym'],
                    unique=False)
    _rebuild_signature(nullable=True)
    engine.models.install_immutability(op.get_bind())


def _rebuild_signature(nullable: bool) -> None:
    """SQLite rebuilds the table for this: its triggers go with it, and a trigger on `document` that
    names `signature` would stop the rename; the callers install the triggers again afterwards."""
    bind = op.get_bind()
    if bind.dialect.name == "sqlite":
        bind.exec_driver_sql("DROP TRIGGER IF EXISTS document_signed_undeletable")
    with op.batch_alter_table('signature', schema=None) as batch_op:
        batch_op.alter_column('signer_id', existing_type=sa.Integer(), nullable=nullable)


def downgrade():
    _rebuild_signature(nullable=False)
    bind = op.get_bind()
    for statement in PREVIOUS_DDL.get(bind.dialect.name, []):
        bind.exec_driver_sql(statement)
    op.drop_index(op.f('ix_case_retention_subject_pseudonym'), table_name='case_retention')
    op.drop_table('case_retention')
    op.drop_index(op.f('ix_legal_hold_case_id'), table_name='legal_hold')
    op.drop_table('legal_hold')
