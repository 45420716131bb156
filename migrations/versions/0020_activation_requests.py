"""Activation requests from the public form

Revision ID: 0020
Revises: 0018
Create Date: 2026-12-03 10:00:00

Someone who paid by bank transfer sends the public activation form (xcPanel); the request waits for an agent,
who approves it by choosing the package (its order is then placed, paid and activated) or rejects it. A
partial unique index keeps one waiting request per customer.
"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0020'
down_revision = '0019'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('activation_requests',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('customer_id', sa.Integer(), nullable=False),
    sa.Column('email', sa.String(length=254), nullable=False),
    sa.Column('phone', sa.String(length=20), nullable=False),
    sa.Column('amount_minor', sa.BigInteger(), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('paid_on', sa.Date(), nullable=False),
    sa.Column('package_id', sa.Integer(), nullable=True),
    sa.Column('note', sa.Text(), nullable=True),
    sa.Column('state', sa.String(length=10), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('decided_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('decided_by_id', sa.Integer(), nullable=True),
    sa.Column('reason', sa.Text(), nullable=True),
    sa.Column('order_id', sa.Integer(), nullable=True),
    sa.CheckConstraint("state IN ('pending', 'approved', 'rejected')", name=op.f('ck_activation_requests_state')),
    sa.CheckConstraint("currency IN ('TRY', 'USD', 'EUR')", name=op.f('ck_activation_requests_currency')),
    sa.CheckConstraint('amount_minor > 0', name=op.f('ck_activation_requests_amount_positive')),
    sa.ForeignKeyConstraint(['customer_id'], ['customers.id'], name=op.f('fk_activation_requests_customer_id_customers'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['decided_by_id'], ['agents.id'], name=op.f('fk_activation_requests_decided_by_id_agents'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['order_id'], ['orders.id'], name=op.f('fk_activation_requests_order_id_orders'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['package_id'], ['packages.id'], name=op.f('fk_activation_requests_package_id_packages'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_activation_requests'))
    )
    with op.batch_alter_table('activation_requests', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_activation_requests_customer_id'), ['customer_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_activation_requests_decided_by_id'), ['decided_by_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_activation_requests_order_id'), ['order_id'], unique=True)
        batch_op.create_index(batch_op.f('ix_activation_requests_package_id'), ['package_id'], unique=False)
        batch_op.create_index('ix_activation_requests_state_id', ['state', 'id'], unique=False)
        batch_op.create_index('uq_activation_requests_one_pending', ['customer_id'], unique=True,
                              postgresql_where=sa.text("state = 'pending'"),
                              sqlite_where=sa.text("state = 'pending'"))


def downgrade():
    with op.batch_alter_table('activation_requests', schema=None) as batch_op:
        batch_op.drop_index('uq_activation_requests_one_pending')
        batch_op.drop_index('ix_activation_requests_state_id')
        batch_op.drop_index(batch_op.f('ix_activation_requests_package_id'))
        batch_op.drop_index(batch_op.f('ix_activation_requests_order_id'))
        batch_op.drop_index(batch_op.f('ix_activation_requests_decided_by_id'))
        batch_op.drop_index(batch_op.f('ix_activation_requests_customer_id'))
    op.drop_table('activation_requests')
