"""CHECKs for every closed set of values; case-insensitive uniqueness in the database

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-02 08:00:00

The models now make their CHECK constraints from one enum per concept
(models/choices.py). Columns that had none get one here: currencies outside
packages, order and grant kinds, grant ends, what covered a usage, a refund's
bank operation, message authors, audit actors, languages. E-mail addresses,
department and status names and promo codes were unique regardless of case only
in Python; a unique index on lower(...) holds it in the database too. The values
are written out: a migration describes the schema of its own day.
"""
from alembic import op
import sqlalchemy as sa

# revision identifiers, used by Alembic.
revision = '0017'
down_revision = '0016'
branch_labels = None
depends_on = None

CURRENCY = "currency IN ('TRY', 'USD', 'EUR')"
LANGUAGE = "language IN ('en', 'tr')"
CHECKS = {
    'agents': {'language': LANGUAGE},
    'customers': {'language': LANGUAGE},
    'account_balances': {'currency': CURRENCY},
    'balance_entries': {'currency': CURRENCY},
    'grants': {
        'package_type': "package_type IN ('credit', 'subscription')",
        'kind': "kind IN ('new', 'top-up', 'renewal', 'switch')",
        'end_reason': "end_reason IN ('forfeit', 'revoked')",
        'ended_with_reason': "(ended_at IS NULL) = (end_reason IS NULL)",
    },
    'usages': {'covered_by': "covered_by IN ('credits', 'subscription', 'manual')"},
    'messages': {'author_type': "author_type IN ('customer', 'agent')"},
    'invoices': {'currency': CURRENCY},
    'audit_log': {'actor_type': "actor_type IN ('agent', 'customer', 'system', 'api')"},
    'orders': {'kind': "kind IN ('new', 'top-up', 'renewal', 'switch')", 'currency': CURRENCY},
    'payments': {'currency': CURRENCY},
    'refunds': {'operation': "operation IN ('void', 'credit')", 'currency': CURRENCY},
    'bank_accounts': {'currency': CURRENCY},
    'promo_codes': {'currency': CURRENCY},
}
CASE_INSENSITIVE_UNIQUE = {
    'uq_agents_email_ci': ('agents', 'email'),
    'uq_customers_email_ci': ('customers', 'email'),
    'uq_departments_name_ci': ('departments', 'name'),
    'uq_order_statuses_name_ci': ('order_statuses', 'name'),
    'uq_promo_codes_code_ci': ('promo_codes', 'code'),
}


def upgrade():
    for table, checks in CHECKS.items():
        with op.batch_alter_table(table, schema=None) as batch_op:
            for name, condition in checks.items():
                batch_op.create_check_constraint(op.f(f'ck_{table}_{name}'), condition)
    # Outside batch mode: SQLite's table copies do not carry expression indexes over.
    for index, (table, column) in CASE_INSENSITIVE_UNIQUE.items():
        op.create_index(index, table, [sa.text(f'lower({column})')], unique=True)


def downgrade():
    for index, (table, _column) in CASE_INSENSITIVE_UNIQUE.items():
        op.drop_index(index, table_name=table)
    for table, checks in CHECKS.items():
        with op.batch_alter_table(table, schema=None) as batch_op:
            for name in checks:
                batch_op.drop_constraint(op.f(f'ck_{table}_{name}'), type_='check')
