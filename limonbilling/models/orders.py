"""Orders (WHMCS habits, domain.md §6) and their payment attempts (a state machine per attempt, as in pretix)."""
from datetime import datetime

from sqlalchemy import JSON, Boolean, CheckConstraint, DateTime, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..extensions import db
from ..services.clock import now

ORDER_STATUSES = ("pending", "active", "fraud", "cancelled")
PAYMENT_STATUSES = ("unpaid", "paid", "refunded")
PAYMENT_METHODS = ("card", "bank_transfer", "account_balance", "manual")
ORDER_KINDS = ("new", "top-up", "renewal", "switch")


class Order(db.Model):
    """One purchase of one package. `number` is the public, random 10-digit order number."""

    __tablename__ = "orders"
    __table_args__ = (
        CheckConstraint("status IN ('pending', 'active', 'fraud', 'cancelled')", name="status"),
        CheckConstraint("payment_status IN ('unpaid', 'paid', 'refunded')", name="payment_status"),
        CheckConstraint(
            "payment_method IN ('card', 'bank_transfer', 'account_balance', 'manual')", name="payment_method"
        ),
        CheckConstraint("amount_minor >= 0", name="amount_not_negative"),
        Index("ix_orders_status_id", "status", "id"),
        Index("ix_orders_customer_id_id", "customer_id", "id"),
        Index("ix_orders_created_at_id", "created_at", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    number: Mapped[str] = mapped_column(String(10), unique=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"))
    created_at: Mapped[datetime] = mapped_column(DateTime, default=now)
    customer_was_new: Mapped[bool] = mapped_column(Boolean, default=False)
    kind: Mapped[str] = mapped_column(String(10))
    package_id: Mapped[int | None] = mapped_column(ForeignKey("packages.id", ondelete="SET NULL"))
    package_snapshot: Mapped[dict] = mapped_column(JSON)
    amount_minor: Mapped[int] = mapped_column(Integer)  # what the customer pays, VAT included
    vat_minor: Mapped[int] = mapped_column(Integer, default=0)
    vat_rate_percent: Mapped[int] = mapped_column(Integer, default=0)
    currency: Mapped[str] = mapped_column(String(3))
    payment_method: Mapped[str] = mapped_column(String(16))
    payment_status: Mapped[str] = mapped_column(String(10), default="unpaid")
    status: Mapped[str] = mapped_column(String(10), default="pending")
    grant_id: Mapped[int | None] = mapped_column(ForeignKey("grants.id", ondelete="SET NULL"))
    ip: Mapped[str | None] = mapped_column(String(45))
    notes: Mapped[str | None] = mapped_column(Text)
    expires_at: Mapped[datetime | None] = mapped_column(DateTime)
    paid_at: Mapped[datetime | None] = mapped_column(DateTime)
    # Bank transfer: the customer's activation request (domain.md §6)
    activation_requested_at: Mapped[datetime | None] = mapped_column(DateTime)
    contact_email: Mapped[str | None] = mapped_column(String(254))
    contact_phone: Mapped[str | None] = mapped_column(String(20))
    customer_note: Mapped[str | None] = mapped_column(Text)

    customer = relationship("Customer")
    package = relationship("Package")
    grant = relationship("Grant")
    attempts: Mapped[list["PaymentAttempt"]] = relationship(
        back_populates="order", cascade="all, delete-orphan", order_by="PaymentAttempt.id"
    )
    invoice = relationship("Invoice", back_populates="order", uselist=False)

    @property
    def package_name(self) -> str:
        return self.package_snapshot["name"]

    @property
    def activated(self) -> bool:
        return self.grant_id is not None


ATTEMPT_STATES = ("created", "pending", "confirmed", "failed", "canceled", "refunded")


class PaymentAttempt(db.Model):
    """One try to pay an order at a gateway, with the bank's answer (never card data beyond the masked PAN).

    created → pending (sent to the bank) → confirmed | failed | canceled; confirmed → refunded.
    """

    __tablename__ = "payment_attempts"
    __table_args__ = (
        CheckConstraint(
            "state IN ('created', 'pending', 'confirmed', 'failed', 'canceled', 'refunded')", name="state"
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id", ondelete="CASCADE"), index=True)
    gateway: Mapped[str] = mapped_column(String(20))
    oid: Mapped[str] = mapped_column(String(64), unique=True)
    state: Mapped[str] = mapped_column(String(10), default="created")
    amount_minor: Mapped[int] = mapped_column(Integer)  # what the customer pays, VAT included
    vat_minor: Mapped[int] = mapped_column(Integer, default=0)
    vat_rate_percent: Mapped[int] = mapped_column(Integer, default=0)
    currency: Mapped[str] = mapped_column(String(3))
    created_at: Mapped[datetime] = mapped_column(DateTime, default=now)
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=now)
    failure_code: Mapped[str | None] = mapped_column(String(40))
    message: Mapped[str | None] = mapped_column(Text)
    trans_id: Mapped[str | None] = mapped_column(String(64))
    auth_code: Mapped[str | None] = mapped_column(String(32))
    host_ref_num: Mapped[str | None] = mapped_column(String(64))
    masked_pan: Mapped[str | None] = mapped_column(String(32))
    md_status: Mapped[str | None] = mapped_column(String(4))
    proc_return_code: Mapped[str | None] = mapped_column(String(8))
    raw: Mapped[dict | None] = mapped_column(JSON)
    confirmed_at: Mapped[datetime | None] = mapped_column(DateTime)
    # None, "unknown" (the bank did not answer: ask its status before any retry) or "done"
    refund_status: Mapped[str | None] = mapped_column(String(10))
    refund_answer: Mapped[str | None] = mapped_column(Text)

    order: Mapped[Order] = relationship(back_populates="attempts")


class BankAccount(db.Model):
    """An account customers can pay into by bank transfer (Settings → Payment Systems)."""

    __tablename__ = "bank_accounts"

    id: Mapped[int] = mapped_column(primary_key=True)
    bank_name: Mapped[str] = mapped_column(String(120))
    account_holder: Mapped[str] = mapped_column(String(200))
    iban: Mapped[str] = mapped_column(String(34), unique=True)
    currency: Mapped[str] = mapped_column(String(3))
    active: Mapped[bool] = mapped_column(Boolean, default=True)

    @property
    def iban_display(self) -> str:
        return " ".join(self.iban[i:i + 4] for i in range(0, len(self.iban), 4))
