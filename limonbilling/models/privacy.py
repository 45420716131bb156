"""KVKK requests: a customer asks for their personal data to be erased, an agent decides (services/privacy.py)."""
from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, Index, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..clock import now
from ..extensions import db
from .choices import ErasureState
from .columns import UtcDateTime


class ErasureRequest(db.Model):
    """The customer's request (with an optional reason) and the agent's decision. At most one request per
    customer waits at a time: the partial unique index makes a second one impossible, whatever the timing."""

    __tablename__ = "erasure_requests"
    __table_args__ = (
        CheckConstraint(ErasureState.check("state"), name="state"),
        Index("ix_erasure_requests_state_id", "state", "id"),
        Index("uq_erasure_requests_one_pending", "customer_id", unique=True,
              postgresql_where=text("state = 'pending'"), sqlite_where=text("state = 'pending'")),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"), index=True)
    reason: Mapped[str | None] = mapped_column(Text)  # the customer's words; cleared by the erasure
    state: Mapped[str] = mapped_column(String(10), default=ErasureState.PENDING)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=now)
    decided_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    decided_by_id: Mapped[int | None] = mapped_column(ForeignKey("agents.id", ondelete="SET NULL"), index=True)
    decision_note: Mapped[str | None] = mapped_column(Text)  # why it was rejected, as the customer reads it

    customer = relationship("Customer")
    decided_by = relationship("Agent")

    @property
    def waiting(self) -> bool:
        return self.state == ErasureState.PENDING
