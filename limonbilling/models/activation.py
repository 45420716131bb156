"""Activation requests from the public form (xcPanel): someone who paid by bank transfer says so, and an agent
approves by choosing the package, which places, pays and activates its order."""
from datetime import date, datetime

from sqlalchemy import BigInteger, CheckConstraint, Date, ForeignKey, Index, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..clock import now
from ..extensions import db
from .choices import ActivationState, Currency
from .columns import UtcDateTime


class ActivationRequest(db.Model):
    """What the requester stated (contact, amount and day paid, the package if chosen, a note) and the agent's
    decision. At most one request per customer waits at a time: the partial unique index makes a second one
    impossible, whatever the timing."""

    __tablename__ = "activation_requests"
    __table_args__ = (
        CheckConstraint(ActivationState.check("state"), name="state"),
        CheckConstraint(Currency.check("currency"), name="currency"),
        CheckConstraint("amount_minor > 0", name="amount_positive"),
        Index("ix_activation_requests_state_id", "state", "id"),
        Index("uq_activation_requests_one_pending", "customer_id", unique=True,
              postgresql_where=text("state = 'pending'"), sqlite_where=text("state = 'pending'")),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"), index=True)
    email: Mapped[str] = mapped_column(String(254))
    phone: Mapped[str] = mapped_column(String(20))
    amount_minor: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    paid_on: Mapped[date] = mapped_column(Date)  # the Istanbul day the requester says the transfer was made
    package_id: Mapped[int | None] = mapped_column(ForeignKey("packages.id", ondelete="SET NULL"), index=True)
    note: Mapped[str | None] = mapped_column(Text)
    state: Mapped[str] = mapped_column(String(10), default=ActivationState.PENDING)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=now)
    decided_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    decided_by_id: Mapped[int | None] = mapped_column(ForeignKey("agents.id", ondelete="SET NULL"), index=True)
    reason: Mapped[str | None] = mapped_column(Text)  # why it was rejected, as the customer reads it
    order_id: Mapped[int | None] = mapped_column(ForeignKey("orders.id", ondelete="SET NULL"), index=True,
                                                 unique=True)

    customer = relationship("Customer")
    package = relationship("Package")
    decided_by = relationship("Agent")
    order = relationship("Order")

    @property
    def waiting(self) -> bool:
        return self.state == ActivationState.PENDING
