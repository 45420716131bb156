"""Attachments, and the free identity-verification channel

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-02 09:54:09

Tickets and chats take files (images and PDF, kept on disk outside `static/` under random names; the table
keeps what each is and who sent it). A conversation is now in a department or in the free "Account
verification" channel, which has no department and is never charged.
"""
import warnings

from alembic import op
import sqlalchemy as sa

# SQLite copies the conversations table and reflects the tables it refers to; the customers' lower(email)
# index cannot be reflected, and need not be: the customers table is not copied.
EXPRESSION_INDEX_WARNING = 'Skipped unsupported reflection of expression-based index'

# revision identifiers, used by Alembic.
revision = '0021'
down_revision = '0020'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('attachments',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('message_id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=4), nullable=False),
    sa.Column('size_bytes', sa.Integer(), nullable=False),
    sa.Column('original_name', sa.String(length=120), nullable=False),
    sa.Column('stored_name', sa.String(length=64), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint("kind IN ('png', 'jpeg', 'webp', 'pdf')", name=op.f('ck_attachments_kind')),
    sa.CheckConstraint('size_bytes > 0', name=op.f('ck_attachments_size_positive')),
    sa.ForeignKeyConstraint(['message_id'], ['messages.id'], name=op.f('fk_attachments_message_id_messages'),
                            ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_attachments')),
    sa.UniqueConstraint('stored_name', name=op.f('uq_attachments_stored_name'))
    )
    with op.batch_alter_table('attachments', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_attachments_message_id'), ['message_id'], unique=False)

    with warnings.catch_warnings(), op.batch_alter_table('conversations', schema=None) as batch_op:
        warnings.filterwarnings('ignore', EXPRESSION_INDEX_WARNING)
        batch_op.add_column(sa.Column('channel', sa.String(length=12), server_default='department', nullable=False))
        batch_op.alter_column('department_id', existing_type=sa.INTEGER(), nullable=True)
        batch_op.create_check_constraint(op.f('ck_conversations_channel'), "channel IN ('department', 'verification')")
        batch_op.create_check_constraint(op.f('ck_conversations_department_unless_verification'),
                                         "(channel = 'verification') = (department_id IS NULL)")
        batch_op.create_check_constraint(op.f('ck_conversations_verification_is_a_free_ticket'),
                                         "channel = 'department' OR (kind = 'ticket' AND usage_id IS NULL)")


def downgrade():
    op.execute("DELETE FROM conversations WHERE channel = 'verification'")
    with warnings.catch_warnings(), op.batch_alter_table('conversations', schema=None) as batch_op:
        warnings.filterwarnings('ignore', EXPRESSION_INDEX_WARNING)
        batch_op.drop_constraint(op.f('ck_conversations_verification_is_a_free_ticket'), type_='check')
        batch_op.drop_constraint(op.f('ck_conversations_department_unless_verification'), type_='check')
        batch_op.drop_constraint(op.f('ck_conversations_channel'), type_='check')
        batch_op.alter_column('department_id', existing_type=sa.INTEGER(), nullable=False)
        batch_op.drop_column('channel')

    with op.batch_alter_table('attachments', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_attachments_message_id'))

    op.drop_table('attachments')
