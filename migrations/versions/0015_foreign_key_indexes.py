"""An index on every foreign key

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-02 06:00:00

Thirteen foreign keys had no index: with RESTRICT (0014) and SET NULL, deleting an
agent, a department, a package, a promo code or a usage scanned whole tables
(orders, the ledger, conversations) to find the rows that point at it.
"""
from alembic import op

# revision identifiers, used by Alembic.
revision = '0015'
down_revision = '0014'
branch_labels = None
depends_on = None

KEYS = [
    ('api_tokens', 'created_by_agent_id'), ('cancellation_requests', 'decided_by_id'),
    ('customer_notes', 'agent_id'), ('orders', 'custom_status_id'), ('orders', 'placed_by_agent_id'),
    ('orders', 'package_id'), ('orders', 'promo_code_id'), ('package_departments', 'department_id'),
    ('usages', 'department_id'), ('balance_entries', 'agent_id'), ('conversations', 'department_id'),
    ('conversations', 'usage_id'), ('ledger_entries', 'agent_id'),
]


def upgrade():
    for table, column in KEYS:
        op.create_index(f'ix_{table}_{column}', table, [column], unique=False)


def downgrade():
    for table, column in reversed(KEYS):
        op.drop_index(f'ix_{table}_{column}', table_name=table)
