"""Account balance top-ups

Revision ID: 0026
Revises: 0025
Create Date: 2026-12-02 11:15:00

A top-up is an order of its own kind ('balance', no package) paid by card or bank transfer; when paid it
credits the account balance once (a 'top_up' entry, at most one per order: a partial unique index), a refund
takes that money back first ('top_up_back'), and a card refund the bank refuses puts it back ('top_up_kept').
"""
import warnings
from contextlib import contextmanager

from alembic import op
import sqlalchemy as sa

# revision identifiers, used by Alembic.
revision = '0026'
down_revision = '0025'
branch_labels = None
depends_on = None

ORDER_KINDS_BEFORE = "kind IN ('new', 'top-up', 'renewal', 'switch')"
ORDER_KINDS = "kind IN ('new', 'top-up', 'renewal', 'switch', 'balance')"
BALANCE_KINDS_BEFORE = "kind IN ('refund', 'adjustment', 'payment')"
BALANCE_KINDS = "kind IN ('refund', 'adjustment', 'payment', 'top_up', 'top_up_back', 'top_up_kept')"
ONE_CREDIT = sa.text("kind = 'top_up'")


@contextmanager
def _batch(table: str):
    """batch_alter_table, quiet about what SQLite's reflection cannot read (the lower(...) unique indexes of
    the tables these point to), which are only read, not copied."""
    with warnings.catch_warnings():
        warnings.filterwarnings('ignore', 'Skipped unsupported reflection of expression-based index')
        with op.batch_alter_table(table, schema=None) as batch_op:
            yield batch_op


def upgrade():
    with _batch('orders') as batch_op:
        batch_op.drop_constraint(op.f('ck_orders_kind'), type_='check')
        batch_op.create_check_constraint(op.f('ck_orders_kind'), ORDER_KINDS)
    with _batch('balance_entries') as batch_op:
        batch_op.drop_constraint(op.f('ck_balance_entries_kind'), type_='check')
        batch_op.create_check_constraint(op.f('ck_balance_entries_kind'), BALANCE_KINDS)
    op.create_index('uq_balance_entries_top_up_order', 'balance_entries', ['order_id'], unique=True,
                    postgresql_where=ONE_CREDIT, sqlite_where=ONE_CREDIT)


def downgrade():
    op.drop_index('uq_balance_entries_top_up_order', table_name='balance_entries')
    with _batch('balance_entries') as batch_op:
        batch_op.drop_constraint(op.f('ck_balance_entries_kind'), type_='check')
        batch_op.create_check_constraint(op.f('ck_balance_entries_kind'), BALANCE_KINDS_BEFORE)
    with _batch('orders') as batch_op:
        batch_op.drop_constraint(op.f('ck_orders_kind'), type_='check')
        batch_op.create_check_constraint(op.f('ck_orders_kind'), ORDER_KINDS_BEFORE)
