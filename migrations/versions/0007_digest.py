"""mail_digest: a user may take informational mail once a day, in one digest (docs/digest.md); the rows
waiting for it are found by a partial index

Revision ID: 0007_digest
Revises: 0006_identity
"""
from alembic import op
import sqlalchemy as sa

revision = '0007_digest'
down_revision = '0006_identity'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('user_account', schema=None) as batch_op:
        batch_op.add_column(sa.Column('mail_digest', sa.Boolean(), server_default=sa.false(), nullable=False))
    with op.batch_alter_table('notification', schema=None) as batch_op:
        batch_op.create_index('ix_notification_held', ['next_attempt_at'], unique=False,
                              postgresql_where=sa.text("status = 'held'"), sqlite_where=sa.text("status = 'held'"))


def downgrade():
    with op.batch_alter_table('notification', schema=None) as batch_op:
        batch_op.drop_index('ix_notification_held', postgresql_where=sa.text("status = 'held'"),
                            sqlite_where=sa.text("status = 'held'"))
    with op.batch_alter_table('user_account', schema=None) as batch_op:
        batch_op.drop_column('mail_digest')
