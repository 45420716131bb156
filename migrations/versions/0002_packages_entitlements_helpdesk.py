"""packages, entitlements, ledger, help desk

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22 22:44:54.110487

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('packages',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=120), nullable=False),
    sa.Column('description', sa.Text(), nullable=False),
    sa.Column('type', sa.String(length=12), nullable=False),
    sa.Column('price_minor', sa.Integer(), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('credits', sa.Integer(), nullable=True),
    sa.Column('days', sa.Integer(), nullable=True),
    sa.Column('on_sale', sa.Boolean(), nullable=False),
    sa.Column('archived', sa.Boolean(), nullable=False),
    sa.Column('sort_order', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.CheckConstraint("(type = 'credit' AND credits > 0 AND days IS NULL) OR (type = 'subscription' AND days > 0 AND credits IS NULL)", name=op.f('ck_packages_credits_or_days')),
    sa.CheckConstraint("currency IN ('TRY', 'USD', 'EUR')", name=op.f('ck_packages_currency')),
    sa.CheckConstraint("type IN ('credit', 'subscription')", name=op.f('ck_packages_type')),
    sa.CheckConstraint('price_minor > 0', name=op.f('ck_packages_price_positive')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_packages'))
    )
    op.create_table('grants',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('customer_id', sa.Integer(), nullable=False),
    sa.Column('package_id', sa.Integer(), nullable=True),
    sa.Column('package_type', sa.String(length=12), nullable=False),
    sa.Column('kind', sa.String(length=10), nullable=False),
    sa.Column('snapshot', sa.JSON(), nullable=False),
    sa.Column('source', sa.String(length=80), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('ended_at', sa.DateTime(), nullable=True),
    sa.Column('end_reason', sa.String(length=20), nullable=True),
    sa.ForeignKeyConstraint(['customer_id'], ['customers.id'], name=op.f('fk_grants_customer_id_customers'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['package_id'], ['packages.id'], name=op.f('fk_grants_package_id_packages'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_grants'))
    )
    with op.batch_alter_table('grants', schema=None) as batch_op:
        batch_op.create_index('ix_grants_customer_active', ['customer_id', 'ended_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_grants_package_id'), ['package_id'], unique=False)

    op.create_table('package_departments',
    sa.Column('package_id', sa.Integer(), nullable=False),
    sa.Column('department_id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['department_id'], ['departments.id'], name=op.f('fk_package_departments_department_id_departments')),
    sa.ForeignKeyConstraint(['package_id'], ['packages.id'], name=op.f('fk_package_departments_package_id_packages'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('package_id', 'department_id', name=op.f('pk_package_departments'))
    )
    op.create_table('usages',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('customer_id', sa.Integer(), nullable=False),
    sa.Column('department_id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=10), nullable=False),
    sa.Column('reference', sa.String(length=120), nullable=False),
    sa.Column('cost', sa.Integer(), nullable=False),
    sa.Column('covered_by', sa.String(length=12), nullable=False),
    sa.Column('credits_after', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.CheckConstraint("kind IN ('ticket', 'chat')", name=op.f('ck_usages_kind')),
    sa.CheckConstraint('cost >= 0', name=op.f('ck_usages_cost_not_negative')),
    sa.ForeignKeyConstraint(['customer_id'], ['customers.id'], name=op.f('fk_usages_customer_id_customers'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['department_id'], ['departments.id'], name=op.f('fk_usages_department_id_departments')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_usages')),
    sa.UniqueConstraint('kind', 'reference', name=op.f('uq_usages_kind_reference'))
    )
    with op.batch_alter_table('usages', schema=None) as batch_op:
        batch_op.create_index('ix_usages_customer_id_id', ['customer_id', 'id'], unique=False)

    op.create_table('conversations',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=10), nullable=False),
    sa.Column('customer_id', sa.Integer(), nullable=False),
    sa.Column('department_id', sa.Integer(), nullable=False),
    sa.Column('subject', sa.String(length=200), nullable=False),
    sa.Column('status', sa.String(length=10), nullable=False),
    sa.Column('usage_id', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('updated_at', sa.DateTime(), nullable=False),
    sa.CheckConstraint("kind IN ('ticket', 'chat')", name=op.f('ck_conversations_kind')),
    sa.CheckConstraint("status IN ('open', 'answered', 'closed')", name=op.f('ck_conversations_status')),
    sa.ForeignKeyConstraint(['customer_id'], ['customers.id'], name=op.f('fk_conversations_customer_id_customers'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['department_id'], ['departments.id'], name=op.f('fk_conversations_department_id_departments')),
    sa.ForeignKeyConstraint(['usage_id'], ['usages.id'], name=op.f('fk_conversations_usage_id_usages'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_conversations'))
    )
    with op.batch_alter_table('conversations', schema=None) as batch_op:
        batch_op.create_index('ix_conversations_customer_kind', ['customer_id', 'kind', 'id'], unique=False)
        batch_op.create_index('ix_conversations_kind_status', ['kind', 'status', 'id'], unique=False)

    op.create_table('ledger_entries',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('customer_id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=12), nullable=False),
    sa.Column('amount', sa.Integer(), nullable=False),
    sa.Column('balance_after', sa.Integer(), nullable=False),
    sa.Column('grant_id', sa.Integer(), nullable=True),
    sa.Column('usage_id', sa.Integer(), nullable=True),
    sa.Column('agent_id', sa.Integer(), nullable=True),
    sa.Column('reason', sa.Text(), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.CheckConstraint("kind IN ('purchase', 'usage', 'forfeit', 'reversal', 'adjustment')", name=op.f('ck_ledger_entries_kind')),
    sa.CheckConstraint('balance_after >= 0', name=op.f('ck_ledger_entries_balance_not_negative')),
    sa.ForeignKeyConstraint(['agent_id'], ['agents.id'], name=op.f('fk_ledger_entries_agent_id_agents'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['customer_id'], ['customers.id'], name=op.f('fk_ledger_entries_customer_id_customers'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['grant_id'], ['grants.id'], name=op.f('fk_ledger_entries_grant_id_grants'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['usage_id'], ['usages.id'], name=op.f('fk_ledger_entries_usage_id_usages'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_ledger_entries'))
    )
    with op.batch_alter_table('ledger_entries', schema=None) as batch_op:
        batch_op.create_index('ix_ledger_entries_customer_id_id', ['customer_id', 'id'], unique=False)
        batch_op.create_index(batch_op.f('ix_ledger_entries_grant_id'), ['grant_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_ledger_entries_usage_id'), ['usage_id'], unique=False)

    op.create_table('subscription_periods',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('customer_id', sa.Integer(), nullable=False),
    sa.Column('grant_id', sa.Integer(), nullable=False),
    sa.Column('starts_at', sa.DateTime(), nullable=False),
    sa.Column('ends_at', sa.DateTime(), nullable=False),
    sa.Column('cut_at', sa.DateTime(), nullable=True),
    sa.CheckConstraint('ends_at > starts_at', name=op.f('ck_subscription_periods_positive_length')),
    sa.ForeignKeyConstraint(['customer_id'], ['customers.id'], name=op.f('fk_subscription_periods_customer_id_customers'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['grant_id'], ['grants.id'], name=op.f('fk_subscription_periods_grant_id_grants'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_subscription_periods')),
    sa.UniqueConstraint('grant_id', name=op.f('uq_subscription_periods_grant_id'))
    )
    with op.batch_alter_table('subscription_periods', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_subscription_periods_customer_id'), ['customer_id'], unique=False)

    op.create_table('messages',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('conversation_id', sa.Integer(), nullable=False),
    sa.Column('author_type', sa.String(length=10), nullable=False),
    sa.Column('author_id', sa.Integer(), nullable=True),
    sa.Column('author_name', sa.String(length=220), nullable=False),
    sa.Column('body', sa.Text(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['conversation_id'], ['conversations.id'], name=op.f('fk_messages_conversation_id_conversations'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_messages'))
    )
    with op.batch_alter_table('messages', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_messages_conversation_id'), ['conversation_id'], unique=False)

    with op.batch_alter_table('customers', schema=None) as batch_op:
        batch_op.add_column(sa.Column('package_type', sa.String(length=12), nullable=True))
        batch_op.add_column(sa.Column('credits', sa.Integer(), server_default='0', nullable=False))
        batch_op.create_check_constraint('credits_not_negative', 'credits >= 0')
        batch_op.create_check_constraint('package_type', "package_type IN ('credit', 'subscription')")
        batch_op.create_check_constraint(
            'credits_only_for_credit_type', "credits = 0 OR COALESCE(package_type, '') = 'credit'"
        )



def downgrade():
    with op.batch_alter_table('customers', schema=None) as batch_op:
        batch_op.drop_constraint(op.f('ck_customers_credits_only_for_credit_type'), type_='check')
        batch_op.drop_constraint(op.f('ck_customers_package_type'), type_='check')
        batch_op.drop_constraint(op.f('ck_customers_credits_not_negative'), type_='check')
        batch_op.drop_column('credits')
        batch_op.drop_column('package_type')

    with op.batch_alter_table('messages', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_messages_conversation_id'))

    op.drop_table('messages')
    with op.batch_alter_table('subscription_periods', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_subscription_periods_customer_id'))

    op.drop_table('subscription_periods')
    with op.batch_alter_table('ledger_entries', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_ledger_entries_usage_id'))
        batch_op.drop_index(batch_op.f('ix_ledger_entries_grant_id'))
        batch_op.drop_index('ix_ledger_entries_customer_id_id')

    op.drop_table('ledger_entries')
    with op.batch_alter_table('conversations', schema=None) as batch_op:
        batch_op.drop_index('ix_conversations_kind_status')
        batch_op.drop_index('ix_conversations_customer_kind')

    op.drop_table('conversations')
    with op.batch_alter_table('usages', schema=None) as batch_op:
        batch_op.drop_index('ix_usages_customer_id_id')

    op.drop_table('usages')
    op.drop_table('package_departments')
    with op.batch_alter_table('grants', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_grants_package_id'))
        batch_op.drop_index('ix_grants_customer_active')

    op.drop_table('grants')
    op.drop_table('packages')
