"""Invoices: one per order, numbered gap-free per year when issued (domain.md §7)."""
from datetime import datetime

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    ForeignKey,
    Integer,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..clock import now
from ..extensions import db
from .choices import Currency
from .columns import UtcDateTime
from .lifecycle import InvoiceState


class InvoiceCounter(db.Model):
    """The last invoice number used in a year; incremented under a row lock, so numbers have no gaps."""

    __tablename__ = "invoice_counters"

    year: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    last_number: Mapped[int] = mapped_column(Integer, default=0)


class Invoice(db.Model):
    __tablename__ = "invoices"
    __table_args__ = (
        CheckConstraint(InvoiceState.check("status"), name="status"),
        CheckConstraint(Currency.check("currency"), name="currency"),
        UniqueConstraint("year", "sequence"),
        CheckConstraint("instalments BETWEEN 1 AND 12", name="instalments_range"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    order_id: Mapped[int | None] = mapped_column(ForeignKey("orders.id", ondelete="SET NULL"), unique=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id", ondelete="RESTRICT"), index=True)
    number: Mapped[str | None] = mapped_column(String(20), unique=True)
    year: Mapped[int | None] = mapped_column(Integer)
    sequence: Mapped[int | None] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16), default=InvoiceState.UNPAID)  # follows the order's money
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=now)
    issued_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    seller: Mapped[dict] = mapped_column(JSON)
    buyer: Mapped[dict] = mapped_column(JSON)
    lines: Mapped[list] = mapped_column(JSON)
    currency: Mapped[str] = mapped_column(String(3))
    vat_rate_percent: Mapped[int] = mapped_column(Integer)
    vat_inclusive: Mapped[bool] = mapped_column(Boolean)
    net_minor: Mapped[int] = mapped_column(BigInteger)
    vat_minor: Mapped[int] = mapped_column(BigInteger)
    total_minor: Mapped[int] = mapped_column(BigInteger)
    instalments: Mapped[int] = mapped_column(Integer, default=1)  # the card sale's count; its surcharge is a line

    order = relationship("Order", back_populates="invoice")
