"""Timestamps with time zone

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-02 08:30:00

Every moment was a naive `timestamp` holding UTC by convention, so code had to
remember the convention (and several places patched a zone on). The app now
works with aware datetimes in UTC (models/columns.py `UtcDateTime`); on
PostgreSQL the columns become `timestamp with time zone`, converted from UTC.
SQLite has no such type: its stored text is already the UTC wall time and stays
as it is. On PostgreSQL each ALTER rewrites its table under a lock: run it in a
quiet hour.
"""
from alembic import op

# revision identifiers, used by Alembic.
revision = '0018'
down_revision = '0017'
branch_labels = None
depends_on = None

MOMENTS = {
    'agents': ['created_at', 'totp_enabled_at'],
    'api_tokens': ['created_at', 'last_used_at', 'revoked_at'],
    'audit_log': ['at'],
    'balance_entries': ['created_at'],
    'cancellation_requests': ['created_at', 'decided_at', 'ends_at'],
    'conversations': ['created_at', 'updated_at'],
    'customer_departments': ['enabled_at'],
    'customer_notes': ['created_at'],
    'customers': ['email_verified_at', 'identity_verified_at', 'created_at', 'totp_enabled_at'],
    'grants': ['created_at', 'ended_at'],
    'invoices': ['created_at', 'issued_at'],
    'ledger_entries': ['created_at'],
    'messages': ['created_at'],
    'notifications': ['next_attempt_at', 'claimed_until', 'created_at', 'sent_at'],
    'orders': ['created_at', 'expires_at', 'paid_at', 'activation_requested_at'],
    'packages': ['created_at'],
    'payments': ['created_at', 'updated_at', 'confirmed_at'],
    'promo_codes': ['valid_from', 'valid_until', 'created_at'],
    'refunds': ['created_at', 'updated_at', 'done_at'],
    'subscription_periods': ['starts_at', 'ends_at', 'cut_at'],
    'usages': ['created_at'],
    'webhooks': ['created_at'],
}


def _convert(to_type: str) -> None:
    if op.get_bind().dialect.name != 'postgresql':
        return
    for table, columns in MOMENTS.items():
        changes = ', '.join(f"ALTER COLUMN {column} TYPE {to_type} USING {column} AT TIME ZONE 'UTC'"
                            for column in columns)
        op.execute(f'ALTER TABLE {table} {changes}')


def upgrade():
    _convert('timestamp with time zone')


def downgrade():
    _convert('timestamp without time zone')
