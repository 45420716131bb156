"""Affiliates who refer customers (WHMCS) and the announcements agents publish on the portal (DT)."""
from datetime import datetime

from sqlalchemy import Boolean, CheckConstraint, ForeignKey, Index, Integer, String, Text, func, literal_column
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..clock import now
from ..extensions import db
from .choices import Language
from .columns import UtcDateTime


class Affiliate(db.Model):
    """Someone who sends customers with a link `/?ref=CODE` and earns a percentage of what they pay.

    Never deleted (its orders keep pointing to it): switched off, its code is no longer remembered."""

    __tablename__ = "affiliates"
    __table_args__ = (
        CheckConstraint("commission_percent BETWEEN 0 AND 100", name="commission_percent_range"),
        Index("uq_affiliates_code_ci", func.lower(literal_column("code")), unique=True),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(120))
    code: Mapped[str] = mapped_column(String(40), unique=True)  # kept in capitals, matched in any case
    commission_percent: Mapped[int] = mapped_column(Integer)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=now)


class Announcement(db.Model):
    """A short text for customers in one language (a customer reads those of the language they use);
    `published_at` is empty while it is a draft or withdrawn."""

    __tablename__ = "announcements"
    __table_args__ = (
        CheckConstraint(Language.check("language"), name="language"),
        Index("ix_announcements_language_published_at", "language", "published_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    language: Mapped[str] = mapped_column(String(2))
    title: Mapped[str] = mapped_column(String(200))
    body: Mapped[str] = mapped_column(Text)
    published_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=now)
    agent_id: Mapped[int | None] = mapped_column(ForeignKey("agents.id", ondelete="SET NULL"), index=True)

    agent = relationship("Agent")

    @property
    def published(self) -> bool:
        return self.published_at is not None
