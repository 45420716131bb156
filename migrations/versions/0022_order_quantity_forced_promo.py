"""Order quantity and promo codes an agent forces

Revision ID: 0022
Revises: 0021
Create Date: 2026-12-10 09:00:00

An agent's order may buy n × the same package (`quantity`, 1 for every order
before). A promo code the agent picks is applied whatever its dates, limit or
packages (`promo_forced`) and still counts as a use, so a code's `uses` may pass
its `max_uses`: the limit is kept by the conditional UPDATE of customers' uses,
and the CHECK keeps only `uses >= 0`.
"""
import warnings
from contextlib import contextmanager

from alembic import op
import sqlalchemy as sa

# revision identifiers, used by Alembic.
revision = '0022'
down_revision = '0021'
branch_labels = None
depends_on = None


@contextmanager
def _batch(table: str):
    """batch_alter_table, quiet about what SQLite's reflection cannot read (the lower(...) unique indexes of
    0017 on this and the referenced tables); the one on promo_codes is made again below."""
    with warnings.catch_warnings():
        warnings.filterwarnings('ignore', 'Skipped unsupported reflection of expression-based index')
        with op.batch_alter_table(table, schema=None) as batch_op:
            yield batch_op


def _replace_promo_check(old: str, new: str, condition: str) -> None:
    with _batch('promo_codes') as batch_op:
        batch_op.drop_constraint(op.f(f'ck_promo_codes_{old}'), type_='check')
        batch_op.create_check_constraint(op.f(f'ck_promo_codes_{new}'), condition)
    if op.get_bind().dialect.name == 'sqlite':  # its table copy does not carry the expression index over
        op.create_index('uq_promo_codes_code_ci', 'promo_codes', [sa.text('lower(code)')], unique=True)


def upgrade():
    with _batch('orders') as batch_op:
        batch_op.add_column(sa.Column('quantity', sa.Integer(), nullable=False, server_default='1'))
        batch_op.add_column(sa.Column('promo_forced', sa.Boolean(), nullable=False, server_default=sa.false()))
        batch_op.create_check_constraint(op.f('ck_orders_quantity_positive'), 'quantity >= 1')
    _replace_promo_check('uses_within_limit', 'uses_not_negative', 'uses >= 0')


def downgrade():
    # Forced uses past a code's limit would break the old CHECK: the limit is raised to the uses first.
    op.execute('UPDATE promo_codes SET max_uses = uses WHERE max_uses IS NOT NULL AND uses > max_uses')
    _replace_promo_check('uses_not_negative', 'uses_within_limit',
                         'uses >= 0 AND (max_uses IS NULL OR uses <= max_uses)')
    with _batch('orders') as batch_op:
        batch_op.drop_constraint(op.f('ck_orders_quantity_positive'), type_='check')
        batch_op.drop_column('promo_forced')
        batch_op.drop_column('quantity')
