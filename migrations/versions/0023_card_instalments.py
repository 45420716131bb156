"""Card instalments (taksit)

Revision ID: 0023
Revises: 0022
Create Date: 2026-12-02 10:50:00

A card sale may be split by the card's issuer into 2 to 12 instalments: the
order keeps the count and the surcharge (vade farkı, VAT included, part of its
amount), the payment attempt the count the bank was asked for, the invoice the
count (its surcharge is a line of its own). Every existing row is a single
payment (1) without surcharge (0).
"""
import warnings
from contextlib import contextmanager

from alembic import op
import sqlalchemy as sa

# revision identifiers, used by Alembic.
revision = '0023'
down_revision = '0022'
branch_labels = None
depends_on = None

COUNT_RANGE = 'instalments BETWEEN 1 AND 12'


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
        batch_op.add_column(sa.Column('instalments', sa.Integer(), nullable=False, server_default='1'))
        batch_op.add_column(sa.Column('surcharge_minor', sa.BigInteger(), nullable=False, server_default='0'))
        batch_op.create_check_constraint(op.f('ck_orders_instalments_range'), COUNT_RANGE)
        batch_op.create_check_constraint(op.f('ck_orders_surcharge_not_negative'), 'surcharge_minor >= 0')
    for table in ('payments', 'invoices'):
        with _batch(table) as batch_op:
            batch_op.add_column(sa.Column('instalments', sa.Integer(), nullable=False, server_default='1'))
            batch_op.create_check_constraint(op.f(f'ck_{table}_instalments_range'), COUNT_RANGE)


def downgrade():
    for table in ('invoices', 'payments'):
        with _batch(table) as batch_op:
            batch_op.drop_constraint(op.f(f'ck_{table}_instalments_range'), type_='check')
            batch_op.drop_column('instalments')
    with _batch('orders') as batch_op:
        batch_op.drop_constraint(op.f('ck_orders_surcharge_not_negative'), type_='check')
        batch_op.drop_constraint(op.f('ck_orders_instalments_range'), type_='check')
        batch_op.drop_column('surcharge_minor')
        batch_op.drop_column('instalments')
