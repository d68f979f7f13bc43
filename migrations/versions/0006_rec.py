"""training records and programmes: a case and a programme-bound role belong to a specialty's training

Revision ID: 0006_rec
Revises: 0005

Existing rows keep a null programme, which means the region's default programme (CONTRACT.md
section 7), so nothing already stored changes its scope.
"""
from alembic import op
import sqlalchemy as sa

import engine.models  # noqa: F401  (UTCDateTime)

revision = '0006_rec'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'programme',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('region_id', sa.Integer(), nullable=False),
        sa.Column('code', sa.String(length=64), nullable=False),
        sa.Column('name', sa.String(length=200), nullable=False),
        sa.ForeignKeyConstraint(['region_id'], ['region.id'], name=op.f('fk_programme_region_id_region')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_programme')),
        sa.UniqueConstraint('code', name=op.f('uq_programme_code')),
    )
    op.create_table(
        'training_record',
        sa.Column('subject_id', sa.Integer(), nullable=False),
        sa.Column('region_id', sa.Integer(), nullable=False),
        sa.Column('programme', sa.String(length=64), nullable=False),
        sa.Column('start_date', sa.Date(), nullable=True),
        sa.Column('expected_end_date', sa.Date(), nullable=True),
        sa.Column('employer_id', sa.Integer(), nullable=True),
        sa.Column('placement_id', sa.Integer(), nullable=True),
        sa.Column('responsible_opleider_id', sa.Integer(), nullable=True),
        sa.Column('deputy_opleider_id', sa.Integer(), nullable=True),
        sa.Column('status', sa.String(length=20), nullable=False),
        sa.Column('updated_at', engine.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column('audit_seq', sa.Integer(), nullable=False),
        sa.Column('audit_head', sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(['subject_id'], ['user_account.id'], ondelete='CASCADE',
                                name=op.f('fk_training_record_subject_id_user_account')),
        sa.ForeignKeyConstraint(['region_id'], ['region.id'], name=op.f('fk_training_record_region_id_region')),
        sa.ForeignKeyConstraint(['employer_id'], ['institution.id'],
                                name=op.f('fk_training_record_employer_id_institution')),
        sa.ForeignKeyConstraint(['placement_id'], ['institution.id'],
                                name=op.f('fk_training_record_placement_id_institution')),
        sa.ForeignKeyConstraint(['responsible_opleider_id'], ['user_account.id'],
                                name=op.f('fk_training_record_responsible_opleider_id_user_account')),
        sa.ForeignKeyConstraint(['deputy_opleider_id'], ['user_account.id'],
                                name=op.f('fk_training_record_deputy_opleider_id_user_account')),
        sa.PrimaryKeyConstraint('subject_id', name=op.f('pk_training_record')),
    )
    op.create_index(op.f('ix_training_record_employer_id'), 'training_record', ['employer_id'])
    op.create_index(op.f('ix_training_record_placement_id'), 'training_record', ['placement_id'])
    op.create_table(
        'training_record_event',
        sa.Column('subject_id', sa.Integer(), nullable=False),
        sa.Column('seq', sa.Integer(), nullable=False),
        sa.Column('at', engine.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column('actor_id', sa.Integer(), nullable=True),
        sa.Column('case_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
        sa.Column('reason', sa.String(length=500), nullable=False),
        sa.Column('changes', sa.JSON(), nullable=False),
        sa.Column('prev_hash', sa.String(length=64), nullable=False),
        sa.Column('hash', sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(['subject_id'], ['training_record.subject_id'], ondelete='CASCADE',
                                name=op.f('fk_training_record_event_subject_id_training_record')),
        sa.ForeignKeyConstraint(['actor_id'], ['user_account.id'],
                                name=op.f('fk_training_record_event_actor_id_user_account')),
        sa.PrimaryKeyConstraint('subject_id', 'seq', name=op.f('pk_training_record_event')),
    )
    with op.batch_alter_table('role_assignment', schema=None) as batch_op:
        batch_op.add_column(sa.Column('programme', sa.String(length=64), nullable=True))
    with op.batch_alter_table('case_file', schema=None) as batch_op:
        batch_op.add_column(sa.Column('programme', sa.String(length=64), nullable=True))
    # Reads of a training record are access-logged like reads of a personal case.
    with op.batch_alter_table('access_log', schema=None) as batch_op:
        batch_op.add_column(sa.Column('subject_id', sa.Integer(), nullable=True))
        batch_op.alter_column('case_id', existing_type=sa.BigInteger().with_variant(sa.Integer(), 'sqlite'),
                              nullable=True)
        batch_op.create_index(batch_op.f('ix_access_log_subject_id'), ['subject_id'])
        batch_op.create_foreign_key(batch_op.f('fk_access_log_subject_id_user_account'), 'user_account',
                                    ['subject_id'], ['id'])


def downgrade():
    with op.batch_alter_table('access_log', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_access_log_subject_id_user_account'), type_='foreignkey')
        batch_op.drop_index(batch_op.f('ix_access_log_subject_id'))
        batch_op.alter_column('case_id', existing_type=sa.BigInteger().with_variant(sa.Integer(), 'sqlite'),
                              nullable=False)
        batch_op.drop_column('subject_id')
    with op.batch_alter_table('case_file', schema=None) as batch_op:
        batch_op.drop_column('programme')
    with op.batch_alter_table('role_assignment', schema=None) as batch_op:
        batch_op.drop_column('programme')
    op.drop_table('training_record_event')
    op.drop_index(op.f('ix_training_record_placement_id'), table_name='training_record')
    op.drop_index(op.f('ix_training_record_employer_id'), table_name='training_record')
    op.drop_table('training_record')
    op.drop_table('programme')
