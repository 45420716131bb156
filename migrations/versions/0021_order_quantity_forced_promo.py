"""Order quantity and promo codes an agent forces

Revision ID: 0021
Revises: 0018
Create Date: 2026-12-10 09:00:00

An agent's order may buy n × the same package (`quantity`, 1 for every order
before). A promo code the agent picks is applied whatever its dates, limit or
packages (`promo_forced`) and still counts as a use, so a code's `uses` may pass
its `max_uses`: the limit is kept by the conditional UPDATE of customers' uses,
and the CHECK keeps only `uses >= 0`.
"""
from alembic import op
import sqlalchemy as sa

# revision identifiers, used by Alembic.
revision = '0021'
down_revision = '0018'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('orders', schema=None) as batch_op:
        batch_op.add_column(sa.Column('quantity', sa.Integer(), nullable=False, server_default='1'))
        batch_op.add_column(sa.Column('promo_forced', sa.Boolean(), nullable=False, server_default=sa.false()))
        batch_op.create_check_constraint(op.f('ck_orders_quantity_positive'), 'quantity >= 1')
    with op.batch_alter_table('promo_codes', schema=None) as batch_op:
        batch_op.drop_constraint(op.f('ck_promo_codes_uses_within_limit'), type_='check')
        batch_op.create_check_constraint(op.f('ck_promo_codes_uses_not_negative'), 'uses >= 0')


def downgrade():
    # Forced uses past a code's limit would break the old CHECK: the limit is raised to the uses first.
    op.execute('UPDATE promo_codes SET max_uses = uses WHERE max_uses IS NOT NULL AND uses > max_uses')
    with op.batch_alter_table('promo_codes', schema=None) as batch_op:
        batch_op.drop_constraint(op.f('ck_promo_codes_uses_not_negative'), type_='check')
        batch_op.create_check_constraint(op.f('ck_promo_codes_uses_within_limit'),
                                         'uses >= 0 AND (max_uses IS NULL OR uses <= max_uses)')
    with op.batch_alter_table('orders', schema=None) as batch_op:
        batch_op.drop_constraint(op.f('ck_orders_quantity_positive'), type_='check')
        batch_op.drop_column('promo_forced')
        batch_op.drop_column('quantity')
