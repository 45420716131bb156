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
    promo_code_id: Mapped[int | None] = mapped_column(ForeignKey("promo_codes.id", ondelete="SET NULL"))
    promo_code: Mapped[str | None] = mapped_column(String(40))
    discount_minor: Mapped[int] = mapped_column(Integer, default=0)
    amount_minor: Mapped[int] = mapped_column(Integer)  # what the customer pays, VAT included
    vat_minor: Mapped[int] = mapped_column(Integer, default=0)
    vat_rate_percent: Mapped[int] = mapped_column(Integer, default=0)
    currency: Mapped[str] = mapped_column(String(3))
    payment_method: Mapped[str] = mapped_column(String(16))
    payment_status: Mapped[str] = mapped_column(String(10), default="unpaid")
    status: Mapped[str] = mapped_column(String(10), default="pending")
    grant_id: Mapped[int | None] = mapped_column(ForeignKey("grants.id", ondelete="SET NULL"))
    # An agent's status of its own (Settings → Order Statuses); `status` then holds what it counts as.
    custom_status_id: Mapped[int | None] = mapped_column(ForeignKey("order_statuses.id", ondelete="SET NULL"))
    placed_by_agent_id: Mapped[int | None] = mapped_column(ForeignKey("agents.id", ondelete="SET NULL"))
    price_overridden: Mapped[bool] = mapped_column(Boolean, default=False)
    fraud_score: Mapped[int | None] = mapped_column(Integer)  # None: not checked (placed by an agent)
    fraud_checks: Mapped[list] = mapped_column(JSON, default=list)  # [{"rule", "points", "detail"}]
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
    custom_status = relationship("OrderStatus")
    placed_by = relationship("Agent")
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

    @property
    def list_price_minor(self) -> int:
        return self.package_snapshot["price_minor"]


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


class PromoCode(db.Model):
    """A discount code (WHMCS): percent or fixed amount, valid dates, maximum uses, packages it applies to."""

    __tablename__ = "promo_codes"
    __table_args__ = (
        CheckConstraint("kind IN ('percent', 'fixed')", name="kind"),
        CheckConstraint("value > 0", name="value_positive"),
        CheckConstraint("uses >= 0 AND (max_uses IS NULL OR uses <= max_uses)", name="uses_within_limit"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(40), unique=True)
    kind: Mapped[str] = mapped_column(String(8))
    value: Mapped[int] = mapped_column(Integer)  # percent (1–100) or minor units
    currency: Mapped[str | None] = mapped_column(String(3))  # for fixed amounts
    valid_from: Mapped[datetime | None] = mapped_column(DateTime)
    valid_until: Mapped[datetime | None] = mapped_column(DateTime)
    max_uses: Mapped[int | None] = mapped_column(Integer)
    uses: Mapped[int] = mapped_column(Integer, default=0)
    package_ids: Mapped[list] = mapped_column(JSON, default=list)  # empty: every package
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=now)


class OrderStatus(db.Model):
    """A status agents define (WHMCS custom order statuses), counted as pending, active or cancelled."""

    __tablename__ = "order_statuses"
    __table_args__ = (CheckConstraint("counts_as IN ('pending', 'active', 'cancelled')", name="counts_as"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(40), unique=True)
    colour: Mapped[str] = mapped_column(String(7))  # #rrggbb
    counts_as: Mapped[str] = mapped_column(String(10))
