"""KVKK erasure requests and erased customers

Revision ID: 0024
Revises: 0023
Create Date: 2026-12-02 11:00:00

A customer asks for their personal data to be erased; an agent approves or rejects the request. A partial
unique index keeps one waiting request per customer. `customers.erased_at` marks an anonymised account, which
signs in no more.
"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0024'
down_revision = '0023'
branch_labels = None
depends_on = None


def upgrade():
    op.add_column('customers', sa.Column('erased_at', sa.DateTime(timezone=True), nullable=True))
    op.create_table('erasure_requests',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('customer_id', sa.Integer(), nullable=False),
    sa.Column('reason', sa.Text(), nullable=True),
    sa.Column('state', sa.String(length=10), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('decided_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('decided_by_id', sa.Integer(), nullable=True),
    sa.Column('decision_note', sa.Text(), nullable=True),
    sa.CheckConstraint("state IN ('pending', 'approved', 'rejected')", name=op.f('ck_erasure_requests_state')),
    sa.ForeignKeyConstraint(['customer_id'], ['customers.id'], name=op.f('fk_erasure_requests_customer_id_customers'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['decided_by_id'], ['agents.id'], name=op.f('fk_erasure_requests_decided_by_id_agents'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_erasure_requests'))
    )
    with op.batch_alter_table('erasure_requests', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_erasure_requests_customer_id'), ['customer_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_erasure_requests_decided_by_id'), ['decided_by_id'], unique=False)
        batch_op.create_index('ix_erasure_requests_state_id', ['state', 'id'], unique=False)
        batch_op.create_index('uq_erasure_requests_one_pending', ['customer_id'], unique=True,
                              postgresql_where=sa.text("state = 'pending'"),
                              sqlite_where=sa.text("state = 'pending'"))


def downgrade():
    op.drop_table('erasure_requests')
    op.drop_column('customers', 'erased_at')
