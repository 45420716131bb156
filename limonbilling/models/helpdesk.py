"""The help-desk side (domain.md §10): tickets and chats, conversations in a department (or the free
identity-verification channel), and the files attached to their messages."""
from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..clock import now
from ..extensions import db
from .choices import AttachmentKind, ConversationChannel, ConversationStatus, MessageAuthor, RequestKind
from .columns import UtcDateTime


class Conversation(db.Model):
    """A ticket or a chat. Opening one in a department is what rule 6 charges; its messages never are. A
    verification ticket has no department and is never charged."""

    __tablename__ = "conversations"
    __table_args__ = (
        CheckConstraint(RequestKind.check("kind"), name="kind"),
        CheckConstraint(ConversationStatus.check("status"), name="status"),
        CheckConstraint(ConversationChannel.check("channel"), name="channel"),
        CheckConstraint("(channel = 'verification') = (department_id IS NULL)", name="department_unless_verification"),
        CheckConstraint("channel = 'department' OR (kind = 'ticket' AND usage_id IS NULL)",
                        name="verification_is_a_free_ticket"),
        Index("ix_conversations_customer_kind", "customer_id", "kind", "id"),
        Index("ix_conversations_kind_status", "kind", "status", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(10))
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"))
    channel: Mapped[str] = mapped_column(String(12), default=ConversationChannel.DEPARTMENT,
                                         server_default=ConversationChannel.DEPARTMENT.value)
    department_id: Mapped[int | None] = mapped_column(ForeignKey("departments.id"), index=True)
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

    @property
    def is_verification(self) -> bool:
        return self.channel == ConversationChannel.VERIFICATION

    @property
    def place_name(self) -> str:
        """The department's name, or the verification channel's, as lists and pages show where it is."""
        return str(ConversationChannel.VERIFICATION.label) if self.is_verification else self.department.name


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
    attachments: Mapped[list["Attachment"]] = relationship(
        back_populates="message", cascade="all, delete-orphan", order_by="Attachment.id"
    )


CONTENT_TYPES = {AttachmentKind.PNG: "image/png", AttachmentKind.JPEG: "image/jpeg",
                 AttachmentKind.WEBP: "image/webp", AttachmentKind.PDF: "application/pdf"}


class Attachment(db.Model):
    """A file sent with a message, kept outside `static/` under `stored_name` (random); `original_name` is only
    what the sender called it (cleaned), never a path. `kind` is what its content is, and alone decides how it
    is served."""

    __tablename__ = "attachments"
    __table_args__ = (
        CheckConstraint(AttachmentKind.check("kind"), name="kind"),
        CheckConstraint("size_bytes > 0", name="size_positive"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    message_id: Mapped[int] = mapped_column(ForeignKey("messages.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(4))
    size_bytes: Mapped[int] = mapped_column(Integer)
    original_name: Mapped[str] = mapped_column(String(120))
    stored_name: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=now)

    message: Mapped[Message] = relationship(back_populates="attachments")

    @property
    def content_type(self) -> str:
        return CONTENT_TYPES[AttachmentKind(self.kind)]

    @property
    def is_image(self) -> bool:
        return self.kind != AttachmentKind.PDF
