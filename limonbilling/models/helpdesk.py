"""The help-desk side (domain.md §10): tickets and chats, both conversations in a department."""
from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..clock import now
from ..extensions import db
from .choices import ConversationStatus, MessageAuthor, RequestKind
from .columns import UtcDateTime


class Conversation(db.Model):
    """A ticket or a chat. Opening one is what rule 6 charges; its messages never are."""

    __tablename__ = "conversations"
    __table_args__ = (
        CheckConstraint(RequestKind.check("kind"), name="kind"),
        CheckConstraint(ConversationStatus.check("status"), name="status"),
        Index("ix_conversations_customer_kind", "customer_id", "kind", "id"),
        Index("ix_conversations_kind_status", "kind", "status", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(10))
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"))
    department_id: Mapped[int] = mapped_column(ForeignKey("departments.id"), index=True)
    subject: Mapped[str] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(10), default="open")
    usage_id: Mapped[int | None] = mapped_column(ForeignKey("usages.id", ondelete="SET NULL"), index=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=now)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime, default=now)

    customer = relationship("Customer")
    department = relationship("Department")
    usage = relationship("Usage")
    messages: Mapped[list["Message"]] = relationship(
        back_populates="conversation", cascade="all, delete-orphan", order_by="Message.id"
    )

    @property
    def credits_spent(self) -> int:
        return self.usage.cost if self.usage is not None else 0


class Message(db.Model):
    __tablename__ = "messages"
    __table_args__ = (CheckConstraint(MessageAuthor.check("author_type"), name="author_type"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    conversation_id: Mapped[int] = mapped_column(ForeignKey("conversations.id", ondelete="CASCADE"), index=True)
    author_type: Mapped[str] = mapped_column(String(10))
    author_id: Mapped[int | None] = mapped_column(Integer)
    author_name: Mapped[str] = mapped_column(String(220))
    body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=now)

    conversation: Mapped[Conversation] = relationship(back_populates="messages")
