"""worker: template data on outbox rows; the due index also covers claimed (`sending`) rows

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25 15:00:00

A `sending` row is one a worker claimed; when the worker dies before marking it sent,
its lease (next_attempt_at) runs out and another worker claims it again. The drain's
claim query therefore looks at pending *and* sending rows, and the partial index covers
both.
"""
from alembic import op
import sqlalchemy as sa

import engine.models  # noqa: F401


# revision identifiers, used by Alembic.
revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('notification', schema=None) as batch_op:
        batch_op.add_column(sa.Column('data', sa.JSON(), server_default=sa.text("'{}'"), nullable=False))
        batch_op.drop_index('ix_notification_pending', postgresql_where=sa.text("status = 'pending'"),
                            sqlite_where=sa.text("status = 'pending'"))
        batch_op.create_index('ix_notification_due', ['next_attempt_at'], unique=False,
                              postgresql_where=sa.text("status in ('pending', 'sending')"),
                              sqlite_where=sa.text("status in ('pending', 'sending')"))


def downgrade():
    with op.batch_alter_table('notification', schema=None) as batch_op:
        batch_op.drop_index('ix_notification_due', postgresql_where=sa.text("status in ('pending', 'sending')"),
                            sqlite_where=sa.text("status in ('pending', 'sending')"))
        batch_op.create_index('ix_notification_pending', ['next_attempt_at'], unique=False,
                              postgresql_where=sa.text("status = 'pending'"),
                              sqlite_where=sa.text("status = 'pending'"))
        batch_op.drop_column('data')
