"""Outbound webhooks: the endpoints an external system (e.g. a help desk) gave us; each delivery is a row of
the outbox (`Notification`, channel `webhook`), so it is claimed and retried like an e-mail."""
from datetime import datetime

from sqlalchemy import JSON, String
from sqlalchemy.orm import Mapped, mapped_column

from ..clock import now
from ..extensions import db
from .columns import UtcDateTime


class Webhook(db.Model):
    """An endpoint and the events it hears about.

    The secret signs every delivery (HMAC-SHA256), so it is kept as is, like the other secrets of the
    settings pages; it is shown once, when the endpoint is made, and never again."""

    __tablename__ = "webhooks"

    id: Mapped[int] = mapped_column(primary_key=True)
    url: Mapped[str] = mapped_column(String(2000))
    secret: Mapped[str] = mapped_column(String(64))
    events: Mapped[list] = mapped_column(JSON, default=list)
    active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=now)
