"""identity: single sign-on subjects, TOTP, recovery codes, invitations, deputies, the security log

Revision ID: 0006_identity
Revises: 0006_notes
"""
from alembic import op
import sqlalchemy as sa


revision = '0006_identity'
down_revision = '0006_notes'
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')


def upgrade():
    with op.batch_alter_table('user_account', schema=None) as batch_op:
        batch_op.add_column(sa.Column('oidc_issuer', sa.String(length=255), nullable=True))
        batch_op.add_column(sa.Column('oidc_subject', sa.String(length=255), nullable=True))
        batch_op.add_column(sa.Column('employee_number', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('totp_secret', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('totp_last_step', sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column('mfa_enrolled_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('deputy_id', sa.Integer(), nullable=True))
        batch_op.create_unique_constraint('uq_user_account_oidc_subject', ['oidc_issuer', 'oidc_subject'])
        batch_op.create_unique_constraint('uq_user_account_employee_number', ['employee_number'])
        batch_op.create_foreign_key('fk_user_account_deputy_id_user_account', 'user_account', ['deputy_id'], ['id'],
                                    ondelete='SET NULL')
    op.create_table(
        'recovery_code',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('user_id', sa.Integer(), nullable=False),
        sa.Column('code_hash', sa.String(length=64), nullable=False),
        sa.Column('used_at', sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(['user_id'], ['user_account.id'], name='fk_recovery_code_user_id_user_account',
                                ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name='pk_recovery_code'),
    )
    op.create_index('ix_recovery_code_user_id', 'recovery_code', ['user_id'])
    op.create_table(
        'invitation',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('user_id', sa.Integer(), nullable=False),
        sa.Column('token_hash', sa.String(length=64), nullable=False),
        sa.Column('created_by_id', sa.Integer(), nullable=True),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('used_at', sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(['user_id'], ['user_account.id'], name='fk_invitation_user_id_user_account',
                                ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['created_by_id'], ['user_account.id'],
                                name='fk_invitation_created_by_id_user_account', ondelete='SET NULL'),
        sa.PrimaryKeyConstraint('id', name='pk_invitation'),
        sa.UniqueConstraint('token_hash', name='uq_invitation_token_hash'),
    )
    op.create_index('ix_invitation_user_id', 'invitation', ['user_id'])
    op.create_table(
        'security_event',
        sa.Column('id', BigId, nullable=False),
        sa.Column('at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('kind', sa.String(length=40), nullable=False),
        sa.Column('outcome', sa.String(length=20), nullable=False),
        sa.Column('method', sa.String(length=20), nullable=False),
        sa.Column('user_id', sa.Integer(), nullable=True),
        sa.Column('actor_id', sa.Integer(), nullable=True),
        sa.Column('email', sa.String(length=254), nullable=False),
        sa.Column('ip', sa.String(length=64), nullable=False),
        sa.Column('user_agent', sa.String(length=300), nullable=False),
        sa.Column('detail', sa.String(length=500), nullable=False),
        sa.ForeignKeyConstraint(['user_id'], ['user_account.id'], name='fk_security_event_user_id_user_account',
                                ondelete='SET NULL'),
        sa.ForeignKeyConstraint(['actor_id'], ['user_account.id'], name='fk_security_event_actor_id_user_account',
                                ondelete='SET NULL'),
        sa.PrimaryKeyConstraint('id', name='pk_security_event'),
    )
    op.create_index('ix_security_event_at', 'security_event', ['at'])
    op.create_index('ix_security_event_user_id', 'security_event', ['user_id'])


def downgrade():
    op.drop_table('security_event')
    op.drop_table('invitation')
    op.drop_table('recovery_code')
    with op.batch_alter_table('user_account', schema=None) as batch_op:
        batch_op.drop_constraint('fk_user_account_deputy_id_user_account', type_='foreignkey')
        batch_op.drop_constraint('uq_user_account_employee_number', type_='unique')
        batch_op.drop_constraint('uq_user_account_oidc_subject', type_='unique')
        for column in ('deputy_id', 'mfa_enrolled_at', 'totp_last_step', 'totp_secret', 'employee_number',
                       'oidc_subject', 'oidc_issuer'):
            batch_op.drop_column(column)
