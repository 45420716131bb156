"""Settings (key/value, typed in services.settings) and the audit log."""
from datetime import datetime

from sqlalchemy import JSON, BigInteger, CheckConstraint, Float, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from ..clock import now
from ..extensions import db
from .choices import ActorType
from .columns import UtcDateTime


class Setting(db.Model):
    __tablename__ = "settings"

    key: Mapped[str] = mapped_column(String(80), primary_key=True)
    value: Mapped[str] = mapped_column(Text)  # JSON-encoded


class AuditEntry(db.Model):
    """Who did what to which record, when, from which IP. Never deleted; only an approved erasure (KVKK,
    services/privacy.py) replaces the personal data in the entries about that customer."""

    __tablename__ = "audit_log"
    __table_args__ = (CheckConstraint(ActorType.check("actor_type"), name="actor_type"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(UtcDateTime, default=now, index=True)
    actor_type: Mapped[str] = mapped_column(String(10))
    actor_id: Mapped[int | None] = mapped_column(Integer)
    actor_label: Mapped[str] = mapped_column(String(254))
    action: Mapped[str] = mapped_column(String(80), index=True)
    target_type: Mapped[str | None] = mapped_column(String(40))
    target_id: Mapped[str | None] = mapped_column(String(40))
    details: Mapped[dict | None] = mapped_column(JSON)
    ip: Mapped[str | None] = mapped_column(String(45))


class RateLimitCounter(db.Model):
    """A throttle counter every worker and app server sees (see limonbilling/throttle.py).

    `expires_at` is a Unix time in seconds: a counter past it counts from zero again.
    """

    __tablename__ = "rate_limit_counters"

    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    count: Mapped[int] = mapped_column(BigInteger, default=0)
    expires_at: Mapped[float] = mapped_column(Float, index=True)
