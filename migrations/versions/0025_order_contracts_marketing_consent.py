"""The distance-sale contracts kept with each order, and marketing consent changes

Revision ID: 0025
Revises: 0024
Create Date: 2026-12-12 09:00:00

A customer's order keeps the pre-information form and the distance sales contract exactly as the buyer
accepted them (filled in, in the language shown) with the moment and the IP address, one row per order.
Each change of a customer's consent to marketing e-mails is a row with its moment; the newest is the choice.
The texts themselves are settings (no schema).
"""
from alembic import op
import sqlalchemy as sa

# revision identifiers, used by Alembic.
revision = '0025'
down_revision = '0024'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('order_contracts',
    sa.Column('order_id', sa.Integer(), nullable=False),
    sa.Column('language', sa.String(length=5), nullable=False),
    sa.Column('pre_information', sa.Text(), nullable=False),
    sa.Column('distance_sales', sa.Text(), nullable=False),
    sa.Column('accepted_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('ip', sa.String(length=45), nullable=True),
    sa.CheckConstraint("language IN ('en', 'tr')", name=op.f('ck_order_contracts_language')),
    sa.ForeignKeyConstraint(['order_id'], ['orders.id'], name=op.f('fk_order_contracts_order_id_orders'),
                            ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('order_id', name=op.f('pk_order_contracts'))
    )
    op.create_table('marketing_consents',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('customer_id', sa.Integer(), nullable=False),
    sa.Column('granted', sa.Boolean(), nullable=False),
    sa.Column('changed_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('ip', sa.String(length=45), nullable=True),
    sa.ForeignKeyConstraint(['customer_id'], ['customers.id'], name=op.f('fk_marketing_consents_customer_id_customers'),
                            ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_marketing_consents'))
    )
    op.create_index('ix_marketing_consents_customer_id_id', 'marketing_consents', ['customer_id', 'id'], unique=False)


def downgrade():
    op.drop_index('ix_marketing_consents_customer_id_id', table_name='marketing_consents')
    op.drop_table('marketing_consents')
    op.drop_table('order_contracts')
