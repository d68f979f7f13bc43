"""case_exclusion: users a case is about never see it and are skipped in routing

Revision ID: 0003
Revises: 0002
"""
from alembic import op
import sqlalchemy as sa

import engine.models  # noqa: F401

revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'case_exclusion',
        sa.Column('case_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
        sa.Column('user_id', sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(['case_id'], ['case_file.id'], name=op.f('fk_case_exclusion_case_id_case_file')),
        sa.ForeignKeyConstraint(['user_id'], ['user_account.id'], name=op.f('fk_case_exclusion_user_id_user_account')),
        sa.PrimaryKeyConstraint('case_id', 'user_id', name=op.f('pk_case_exclusion')),
    )


def downgrade():
    op.drop_table('case_exclusion')
