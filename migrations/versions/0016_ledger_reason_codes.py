"""Ledger reasons as codes

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-02 06:30:00

Reasons the system writes on ledger rows (a forfeit, a reversal) were stored as
text in the language of whoever caused them, so an English agent read Turkish
and the reverse. They are stored as a code and its arguments and worded when
read; `reason` keeps an agent's own words. Rows written before keep their text.
"""
from alembic import op
import sqlalchemy as sa

# revision identifiers, used by Alembic.
revision = '0016'
down_revision = '0015'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('ledger_entries', schema=None) as batch_op:
        batch_op.add_column(sa.Column('reason_code', sa.String(length=40), nullable=True))
        batch_op.add_column(sa.Column('reason_args', sa.JSON(), nullable=True))


def downgrade():
    with op.batch_alter_table('ledger_entries', schema=None) as batch_op:
        batch_op.drop_column('reason_args')
        batch_op.drop_column('reason_code')
