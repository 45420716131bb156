"""Money in 64-bit columns

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-02 01:40:00

Every amount of money is an integer number of minor units; the ones still in
32-bit columns (orders, invoices, packages, balances and their entries, promo
code amounts, payments' VAT) could hold at most 21,474,836.47. They become
64-bit (BIGINT), like payments and refunds already are. On SQLite an INTEGER is
64-bit anyway; the batch recreates the tables with the declared type.
"""
from alembic import op
import sqlalchemy as sa

# revision identifiers, used by Alembic.
revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None

MONEY_COLUMNS = {
    'account_balances': ['amount_minor'],
    'balance_entries': ['amount_minor', 'balance_after_minor'],
    'packages': ['price_minor'],
    'invoices': ['net_minor', 'vat_minor', 'total_minor'],
    'orders': ['discount_minor', 'amount_minor', 'vat_minor'],
    'payments': ['vat_minor'],
    'promo_codes': ['value'],
}


def _alter(old_type, new_type):
    for table, columns in MONEY_COLUMNS.items():
        with op.batch_alter_table(table, schema=None) as batch_op:
            for column in columns:
                batch_op.alter_column(column, existing_type=old_type, type_=new_type, existing_nullable=False)


def upgrade():
    _alter(sa.Integer(), sa.BigInteger())


def downgrade():
    _alter(sa.BigInteger(), sa.Integer())
