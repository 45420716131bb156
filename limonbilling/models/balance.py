"""The customer's account balance: money (not support credits), per currency, with its own ledger."""
from datetime import datetime

from sqlalchemy import BigInteger, CheckConstraint, ForeignKey, Index, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..clock import now
from ..extensions import db
from .choices import BalanceKind, Currency
from .columns import UtcDateTime


class AccountBalance(db.Model):
    """What the customer holds in one currency; always the sum of its entries, never negative."""

    __tablename__ = "account_balances"
    __table_args__ = (
        CheckConstraint("amount_minor >= 0", name="not_negative"),
        CheckConstraint(Currency.check("currency"), name="currency"),
    )

    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id", ondelete="RESTRICT"), primary_key=True)
    currency: Mapped[str] = mapped_column(String(3), primary_key=True)
    amount_minor: Mapped[int] = mapped_column(BigInteger, default=0)


class BalanceEntry(db.Model):
    """One movement of the account balance: a refund, an agent's adjustment, a payment of an order."""

    __tablename__ = "balance_entries"
    __table_args__ = (
        CheckConstraint(BalanceKind.check("kind"), name="kind"),
        CheckConstraint(Currency.check("currency"), name="currency"),
        CheckConstraint("amount_minor <> 0", name="not_zero"),
        # A top-up order credits the balance once, whatever replays or races (services/top_ups.py).
        Index("uq_balance_entries_top_up_order", "order_id", unique=True,
              postgresql_where=text("kind = 'top_up'"), sqlite_where=text("kind = 'top_up'")),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id", ondelete="RESTRICT"), index=True)
    currency: Mapped[str] = mapped_column(String(3))
    kind: Mapped[str] = mapped_column(String(12))
    amount_minor: Mapped[int] = mapped_column(BigInteger)
    balance_after_minor: Mapped[int] = mapped_column(BigInteger)
    order_id: Mapped[int | None] = mapped_column(ForeignKey("orders.id", ondelete="SET NULL"), index=True)
    agent_id: Mapped[int | None] = mapped_column(ForeignKey("agents.id", ondelete="SET NULL"), index=True)
    reason: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=now)

    order = relationship("Order")
    agent = relationship("Agent")
