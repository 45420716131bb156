"""Trigram indexes for the admin searches of customers (and orders by customer) on PostgreSQL

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-29 16:40:00

A search is `LIKE '%…%'` on lower(name), lower(company), lower(email) and the
phone (services/customers.py `matching`); without these indexes it reads every
customer. SQLite has no such index and keeps reading the table.
"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None

EXPRESSIONS = {
    "name": "lower((first_name || ' ') || last_name)",
    "company": "lower(company_name)",
    "email": "lower(email)",
    "phone": "phone",
}


def upgrade():
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")  # a trusted extension: the database owner may create it
    for key, expression in EXPRESSIONS.items():
        op.create_index(f"ix_customers_{key}_trigram", "customers", [sa.text(f"{expression} gin_trgm_ops")],
                        postgresql_using="gin")


def downgrade():
    if op.get_bind().dialect.name != "postgresql":
        return
    for key in EXPRESSIONS:
        op.drop_index(f"ix_customers_{key}_trigram", table_name="customers")
