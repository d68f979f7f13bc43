"""deadline.rolled_from: the day a term would have ended on before it moved to the next working day

Revision ID: 0006_terms
Revises: 0006_rec

A due date moved off a Saturday, Sunday or holiday of the Algemene termijnenwet says why on the
case page and in the API; it needs the day it was moved from.
"""
from alembic import op
import sqlalchemy as sa

revision = '0006_terms'
down_revision = '0006_rec'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('deadline', schema=None) as batch_op:
        batch_op.add_column(sa.Column('rolled_from', sa.Date(), nullable=True))


def downgrade():
    with op.batch_alter_table('deadline', schema=None) as batch_op:
        batch_op.drop_column('rolled_from')
