"""What customers are entitled to: grants of packages, subscription periods, the credit ledger, usage."""
from datetime import datetime

from sqlalchemy import JSON, CheckConstraint, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..clock import now
from ..extensions import db
from .choices import (
    CancellationState,
    CancellationTiming,
    CoveredBy,
    GrantEnd,
    LedgerKind,
    OrderKind,
    PackageType,
    RequestKind,
)
from .columns import UtcDateTime


class Grant(db.Model):
    """One activated purchase of a package, with the package as it was sold.

    A credit grant covers its departments until it ends (a type switch forfeits
    it, a cancelled order revokes it); a subscription grant has one period.
    """

    __tablename__ = "grants"

    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"))
    package_id: Mapped[int | None] = mapped_column(ForeignKey("packages.id", ondelete="SET NULL"), index=True)
    package_type: Mapped[str] = mapped_column(String(12))
    kind: Mapped[str] = mapped_column(String(10))
    snapshot: Mapped[dict] = mapped_column(JSON)
    source: Mapped[str] = mapped_column(String(80))  # e.g. "order 4829103744", "api", "demo"
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=now)
    ended_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    end_reason: Mapped[str | None] = mapped_column(String(20))
    # The order that sold it; an order may give several over time (accepted, revoked, paid and accepted again).
    order_id: Mapped[int | None] = mapped_column(ForeignKey("orders.id", ondelete="SET NULL"), index=True)

    period: Mapped["SubscriptionPeriod | None"] = relationship(back_populates="grant", uselist=False)
    order = relationship("Order", back_populates="grants")

    __table_args__ = (
        Index("ix_grants_customer_active", "customer_id", "ended_at"),
        CheckConstraint(PackageType.check("package_type"), name="package_type"),
        # A top-up (OrderKind.BALANCE) grants no package.
        CheckConstraint(OrderKind.check("kind", excluding={OrderKind.BALANCE}), name="kind"),
        CheckConstraint(GrantEnd.check("end_reason"), name="end_reason"),
        CheckConstraint("(ended_at IS NULL) = (end_reason IS NULL)", name="ended_with_reason"),
    )

    @property
    def department_ids(self) -> list[int]:
        return list(self.snapshot["department_ids"])


class SubscriptionPeriod(db.Model):
    """A stretch of unlimited use of the grant's departments: [starts_at, ends_at), cut short by `cut_at`."""

    __tablename__ = "subscription_periods"
    __table_args__ = (CheckConstraint("ends_at > starts_at", name="positive_length"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"), index=True)
    grant_id: Mapped[int] = mapped_column(ForeignKey("grants.id", ondelete="CASCADE"), unique=True)
    starts_at: Mapped[datetime] = mapped_column(UtcDateTime)
    ends_at: Mapped[datetime] = mapped_column(UtcDateTime)
    cut_at: Mapped[datetime | None] = mapped_column(UtcDateTime)

    grant: Mapped[Grant] = relationship(back_populates="period")

    @property
    def effective_end(self) -> datetime:
        return min(self.ends_at, self.cut_at) if self.cut_at is not None else self.ends_at

    def covers(self, moment: datetime) -> bool:
        return self.starts_at <= moment < self.effective_end




class LedgerEntry(db.Model):
    """One movement of a customer's credit balance. Rows are only ever added.

    `balance_after` is the balance right after this movement; the customer's
    `credits` column always equals the sum of `amount` over its entries.
    """

    __tablename__ = "ledger_entries"
    __table_args__ = (
        CheckConstraint(LedgerKind.check("kind"), name="kind"),
        CheckConstraint("balance_after >= 0", name="balance_not_negative"),
        Index("ix_ledger_entries_customer_id_id", "customer_id", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id", ondelete="RESTRICT"))
    kind: Mapped[str] = mapped_column(String(12))
    amount: Mapped[int] = mapped_column(Integer)
    balance_after: Mapped[int] = mapped_column(Integer)
    grant_id: Mapped[int | None] = mapped_column(ForeignKey("grants.id", ondelete="SET NULL"), index=True)
    usage_id: Mapped[int | None] = mapped_column(ForeignKey("usages.id", ondelete="SET NULL"), index=True)
    agent_id: Mapped[int | None] = mapped_column(ForeignKey("agents.id", ondelete="SET NULL"), index=True)
    reason: Mapped[str | None] = mapped_column(Text)  # an agent's own words (an adjustment)
    # Why the system wrote the row, worded when read in the reader's language (labels.ledger_reason)
    reason_code: Mapped[str | None] = mapped_column(String(40))
    reason_args: Mapped[dict | None] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=now)

    usage: Mapped["Usage | None"] = relationship()
    grant: Mapped[Grant | None] = relationship()
    agent = relationship("Agent")




class Usage(db.Model):
    """One new ticket or chat, recorded once per (kind, reference) whatever retries happen."""

    __tablename__ = "usages"
    __table_args__ = (
        UniqueConstraint("kind", "reference"),
        CheckConstraint(RequestKind.check("kind"), name="kind"),
        CheckConstraint(CoveredBy.check("covered_by"), name="covered_by"),
        CheckConstraint("cost >= 0", name="cost_not_negative"),
        Index("ix_usages_customer_id_id", "customer_id", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"))
    department_id: Mapped[int] = mapped_column(ForeignKey("departments.id"), index=True)
    kind: Mapped[str] = mapped_column(String(10))
    reference: Mapped[str] = mapped_column(String(120))
    cost: Mapped[int] = mapped_column(Integer)
    covered_by: Mapped[str] = mapped_column(String(12))
    credits_after: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=now)

    department = relationship("Department")




class CancellationRequest(db.Model):
    """A subscriber asks to end the subscription now or at the end of the period (DT); an agent decides."""

    __tablename__ = "cancellation_requests"
    __table_args__ = (
        CheckConstraint(CancellationTiming.check("timing"), name="timing"),
        CheckConstraint(CancellationState.check("state"), name="state"),
        Index("ix_cancellation_requests_state_id", "state", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"), index=True)
    timing: Mapped[str] = mapped_column(String(10))
    reason: Mapped[str] = mapped_column(Text)
    state: Mapped[str] = mapped_column(String(10), default="pending")
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=now)
    decided_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    decided_by_id: Mapped[int | None] = mapped_column(ForeignKey("agents.id", ondelete="SET NULL"), index=True)
    decision_note: Mapped[str | None] = mapped_column(Text)
    ends_at: Mapped[datetime | None] = mapped_column(UtcDateTime)  # when the approved end takes effect

    customer = relationship("Customer")
    decided_by = relationship("Agent")
