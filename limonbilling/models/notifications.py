"""The notification outbox: every e-mail and SMS is a row first, written with the event that causes it."""
from datetime import datetime

from sqlalchemy import JSON, CheckConstraint, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from ..clock import now
from ..extensions import db
from .choices import NotificationChannel, NotificationState
from .columns import UtcDateTime


class Notification(db.Model):
    """One message to one recipient.

    `event_key` names the event (e.g. `order:4829103744:activated:17`); with the
    channel and the recipient it is unique, so an event processed twice queues
    its message once. The content is rendered when the row is written, in the
    recipient's language, so a sender needs nothing but the row (the invoice e-mail's PDF alone is rendered
    when it is sent, from the order the row names: services/invoice_pdf.py). A sender
    claims a row (`sending`, `claim_token`, `claimed_until`) before it talks
    to the mail server; a claim whose time ran out (a killed worker) may be
    taken again.
    """

    __tablename__ = "notifications"
    __table_args__ = (
        UniqueConstraint("event_key", "channel", "recipient"),
        CheckConstraint(NotificationChannel.check("channel"), name="channel"),
        CheckConstraint(NotificationState.check("state"), name="state"),
        Index("ix_notifications_due", "state", "next_attempt_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    event: Mapped[str] = mapped_column(String(40), index=True)
    event_key: Mapped[str] = mapped_column(String(120))
    channel: Mapped[str] = mapped_column(String(7))
    recipient: Mapped[str] = mapped_column(String(254))
    cc: Mapped[list] = mapped_column(JSON, default=list)
    language: Mapped[str] = mapped_column(String(5))
    subject: Mapped[str] = mapped_column(String(255))
    body_text: Mapped[str] = mapped_column(Text)
    body_html: Mapped[str | None] = mapped_column(Text)
    sensitive: Mapped[bool] = mapped_column(default=False)  # holds a sign-in link: agents do not see the body
    customer_id: Mapped[int | None] = mapped_column(ForeignKey("customers.id", ondelete="SET NULL"), index=True)
    order_number: Mapped[str | None] = mapped_column(String(10), index=True)  # kept when the order is deleted
    state: Mapped[str] = mapped_column(String(8), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UtcDateTime, default=now)
    claim_token: Mapped[str | None] = mapped_column(String(32))
    claimed_until: Mapped[datetime | None] = mapped_column(UtcDateTime)
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=now)
    sent_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    # A webhook delivery (channel `webhook`, body_text the signed JSON): its endpoint, and the last answer.
    webhook_id: Mapped[int | None] = mapped_column(ForeignKey("webhooks.id", ondelete="CASCADE"), index=True)
    response_code: Mapped[int | None] = mapped_column(Integer)
    response_excerpt: Mapped[str | None] = mapped_column(String(200))
