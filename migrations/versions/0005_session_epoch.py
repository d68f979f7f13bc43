"""session_epoch: a logout or password change ends every browser session signed before it

Revision ID: 0005
Revises: 0004

Flask's sessions are signed cookies: without a server-side marker, a cookie copied while a user
was logged in would keep working after logout.
"""
from alembic import op
import sqlalchemy as sa

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('user_account', schema=None) as batch_op:
        batch_op.add_column(sa.Column('session_epoch', sa.Integer(), server_default=sa.text('0'), nullable=False))


def downgrade():
    with op.batch_alter_table('user_account', schema=None) as batch_op:
        batch_op.drop_column('session_epoch')
