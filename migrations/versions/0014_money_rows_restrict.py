"""Money rows are never deleted by a cascade

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-02 05:30:00

Deleting a customer cascaded into their orders, invoices, credit ledger and
account balance, and deleting an order into its payments and refunds: records
of money and tax documents could vanish with one DELETE. These foreign keys
become RESTRICT: the database refuses such a delete (delete_order removes only
card attempts that took nothing, and refuses an order that ever moved money).
"""
from alembic import op

# revision identifiers, used by Alembic.
revision = '0014'
down_revision = '0013'
branch_labels = None
depends_on = None

# (table, column, referred table)
KEYS = [
    ('orders', 'customer_id', 'customers'),
    ('invoices', 'customer_id', 'customers'),
    ('ledger_entries', 'customer_id', 'customers'),
    ('account_balances', 'customer_id', 'customers'),
    ('balance_entries', 'customer_id', 'customers'),
    ('payments', 'order_id', 'orders'),
    ('refunds', 'order_id', 'orders'),
    ('refunds', 'payment_id', 'payments'),
]


def _set(ondelete: str) -> None:
    for table, column, referred in KEYS:
        name = f'fk_{table}_{column}_{referred}'
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_constraint(name, type_='foreignkey')
            batch_op.create_foreign_key(name, referred, [column], ['id'], ondelete=ondelete)


def upgrade():
    _set('RESTRICT')


def downgrade():
    _set('CASCADE')
