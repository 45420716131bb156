"""Orders (WHMCS habits, domain.md §6), their payments and refunds (rows with a state machine each, as in
pretix), with the states and moves of `lifecycle.py`."""
from datetime import date, datetime, timedelta

from flask_babel import gettext
from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    Date,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    func,
    literal_column,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..clock import now
from ..extensions import db
from .choices import Currency, OrderKind, PromoKind, RefundOperation
from .columns import UtcDateTime
from .lifecycle import (
    ORDER_MOVES,
    REFUNDS_HOLDING_MONEY,
    REFUNDS_IN_FLIGHT,
    MoneyState,
    OrderState,
    PaymentMethod,
    PaymentState,
    RefundDestination,
    RefundState,
    may_move,
    money_state,
)

STATUS_FAILURE = "bank_status"  # a card attempt failed by the bank's status answer, not by its callback
RECHECK_FAILED = timedelta(days=1)


class Order(db.Model):
    """One purchase of one package. `number` is the public, random 10-digit order number.

    `payment_status` is derived from the payments and refunds (services/orders.py `settle`) in the same
    transaction that changes them; the predicates below are what pages and services ask.
    """

    __tablename__ = "orders"
    __table_args__ = (
        CheckConstraint(OrderState.check("status"), name="status"),
        CheckConstraint(MoneyState.check("payment_status"), name="payment_status"),
        # An agent's free grant is a payment row of its own; the order says how it was meant to be paid.
        CheckConstraint(PaymentMethod.check("payment_method", excluding={PaymentMethod.FREE}), name="payment_method"),
        CheckConstraint(OrderKind.check("kind"), name="kind"),
        CheckConstraint(Currency.check("currency"), name="currency"),
        CheckConstraint("amount_minor >= 0", name="amount_not_negative"),
        CheckConstraint("quantity >= 1", name="quantity_positive"),
        CheckConstraint("instalments BETWEEN 1 AND 12", name="instalments_range"),
        CheckConstraint("surcharge_minor >= 0", name="surcharge_not_negative"),
        Index("ix_orders_status_id", "status", "id"),
        Index("ix_orders_customer_id_id", "customer_id", "id"),
        Index("ix_orders_created_at_id", "created_at", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    number: Mapped[str] = mapped_column(String(10), unique=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id", ondelete="RESTRICT"))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=now)
    customer_was_new: Mapped[bool] = mapped_column(Boolean, default=False)
    kind: Mapped[str] = mapped_column(String(10))
    package_id: Mapped[int | None] = mapped_column(ForeignKey("packages.id", ondelete="SET NULL"), index=True)
    package_snapshot: Mapped[dict] = mapped_column(JSON)  # one unit of the package, as sold
    # n × the package (an agent's order): n × the credits, or n consecutive periods, at n × the price.
    quantity: Mapped[int] = mapped_column(Integer, default=1)
    promo_code_id: Mapped[int | None] = mapped_column(ForeignKey("promo_codes.id", ondelete="SET NULL"), index=True)
    promo_code: Mapped[str | None] = mapped_column(String(40))
    # The promo code's use is held by this order (given back only when it ends without any payment).
    promo_use_held: Mapped[bool] = mapped_column(Boolean, default=False)
    # An agent applied the code whatever its dates, use limit or packages (it still counted as a use).
    promo_forced: Mapped[bool] = mapped_column(Boolean, default=False)
    discount_minor: Mapped[int] = mapped_column(BigInteger, default=0)
    amount_minor: Mapped[int] = mapped_column(BigInteger)  # what the customer pays, VAT included
    vat_minor: Mapped[int] = mapped_column(BigInteger, default=0)
    vat_rate_percent: Mapped[int] = mapped_column(Integer, default=0)
    # A card sale split by the card's issuer (taksit): the count (1: a single payment) and the surcharge (vade
    # farkı, VAT included, part of amount_minor), chosen at checkout and fixed for the order (services/instalments).
    instalments: Mapped[int] = mapped_column(Integer, default=1)
    surcharge_minor: Mapped[int] = mapped_column(BigInteger, default=0)
    currency: Mapped[str] = mapped_column(String(3))
    payment_method: Mapped[str] = mapped_column(String(16))
    payment_status: Mapped[str] = mapped_column(String(16), default=MoneyState.UNPAID)
    status: Mapped[str] = mapped_column(String(10), default=OrderState.PENDING)
    # An agent's status of its own (Settings → Order Statuses); `status` then holds what it counts as.
    custom_status_id: Mapped[int | None] = mapped_column(ForeignKey("order_statuses.id", ondelete="SET NULL"),
                                                         index=True)
    placed_by_agent_id: Mapped[int | None] = mapped_column(ForeignKey("agents.id", ondelete="SET NULL"), index=True)
    price_overridden: Mapped[bool] = mapped_column(Boolean, default=False)
    fraud_score: Mapped[int | None] = mapped_column(Integer)  # None: not checked (placed by an agent)
    fraud_checks: Mapped[list] = mapped_column(JSON, default=list)  # [{"rule", "points", "args"}]: fraud.describe
    ip: Mapped[str | None] = mapped_column(String(45))
    notes: Mapped[str | None] = mapped_column(Text)  # internal: agents only
    expires_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    paid_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    # Money the bank took that could not be returned by itself: agents must act (see the order page).
    attention: Mapped[str | None] = mapped_column(Text)
    # Bank transfer: the customer's activation request (domain.md §6)
    activation_requested_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    contact_email: Mapped[str | None] = mapped_column(String(254))
    contact_phone: Mapped[str | None] = mapped_column(String(20))
    customer_note: Mapped[str | None] = mapped_column(Text)  # the customer's own words (checkout, transfer)
    # Who referred the customer (a `?ref=` link remembered at checkout, or an agent's choice).
    affiliate_id: Mapped[int | None] = mapped_column(ForeignKey("affiliates.id", ondelete="RESTRICT"), index=True)

    customer = relationship("Customer")
    package = relationship("Package")
    custom_status = relationship("OrderStatus")
    placed_by = relationship("Agent")
    affiliate = relationship("Affiliate")
    grants = relationship("Grant", back_populates="order", order_by="Grant.id", passive_deletes=True)
    # Money rows are never deleted with their order (the database refuses: RESTRICT); delete_order removes
    # only card attempts that took nothing, and refuses an order that ever moved money.
    payments: Mapped[list["Payment"]] = relationship(back_populates="order", passive_deletes="all",
                                                     order_by="Payment.id")
    refunds: Mapped[list["Refund"]] = relationship(back_populates="order", passive_deletes="all",
                                                   order_by="Refund.id")
    invoice = relationship("Invoice", back_populates="order", uselist=False)
    # The contracts the buyer accepted at checkout (models/legal.py); none on an order an agent placed.
    contract = relationship("OrderContract", uselist=False, passive_deletes=True)
    # The account-balance movements of this order: a payment from the balance, a refund to it, a top-up's credit.
    balance_entries = relationship("BalanceEntry", viewonly=True, order_by="BalanceEntry.id")

    @property
    def top_up(self) -> bool:
        """A balance top-up: money into the account balance, no package (services/top_ups.py)."""
        return self.kind == OrderKind.BALANCE

    @property
    def package_name(self) -> str:
        if self.top_up:
            return gettext("Account balance top-up")
        return self.package_snapshot["name"]

    @property
    def list_price_minor(self) -> int:
        return self.package_snapshot["price_minor"]

    @property
    def item_label(self) -> str:
        """What was bought, with the arithmetic of a quantity: "3 × Gold"."""
        return self.package_name if self.quantity == 1 else f"{self.quantity} × {self.package_name}"

    # --- what the order gave -------------------------------------------------------------------------

    @property
    def live_grant(self):
        """What the order gave and still stands (a grant ended by a later switch still counts as given)."""
        return next((grant for grant in reversed(self.grants) if grant.end_reason != "revoked"), None)

    @property
    def activated(self) -> bool:
        """What the order sold was given: its package, or for a top-up its money credited to the balance (once:
        a top-up is never credited again, even after a refund, so it never goes back to pending)."""
        if self.top_up:
            return any(entry.kind == "top_up" for entry in self.balance_entries)
        return self.live_grant is not None

    # --- money ---------------------------------------------------------------------------------------

    @property
    def confirmed_payments(self) -> list["Payment"]:
        return [p for p in self.payments if p.state in (PaymentState.CONFIRMED, PaymentState.REFUNDED)]

    @property
    def accepted_payments(self) -> list["Payment"]:
        """The confirmed payments we accepted: money the bank took that we refused (half 3-D, a second approval,
        a late one) is returned by itself (an automatic refund) and was never a sale."""
        returned = {refund.payment_id for refund in self.refunds if refund.automatic}
        return [p for p in self.confirmed_payments if p.id not in returned]

    @property
    def standing_payments(self) -> list["Payment"]:
        """The accepted payments not refunded in full: the money what the order gives stands on."""
        return [p for p in self.accepted_payments if p.state == PaymentState.CONFIRMED]

    @property
    def card_attempts(self) -> list["Payment"]:
        return [p for p in self.payments if p.method == PaymentMethod.CARD]

    @property
    def captured_minor(self) -> int:
        return sum(p.amount_minor for p in self.confirmed_payments)

    @property
    def refunded_minor(self) -> int:
        return sum(r.amount_minor for r in self.refunds if r.state == RefundState.DONE)

    @property
    def returning_minor(self) -> int:
        """Refunded, or on its way back (a refund the bank has not answered yet is not ours to spend)."""
        return sum(r.amount_minor for r in self.refunds if r.state in REFUNDS_HOLDING_MONEY)

    @property
    def refundable_minor(self) -> int:
        return self.captured_minor - self.returning_minor

    @property
    def money(self) -> MoneyState:
        """Where the money stands by what the bank (or the balance) has confirmed: a refund still in flight is
        neither spendable again (`refundable_minor`) nor counted as returned."""
        confirmed = self.confirmed_payments
        free_grant = any(p.method == PaymentMethod.FREE for p in confirmed)
        return money_state(self.captured_minor, self.refunded_minor, self.amount_minor,
                           has_payment=bool(confirmed), free_grant=free_grant)

    @property
    def holds_money(self) -> bool:
        """Paid, or partly refunded with the rest held: what the order gives may stand."""
        return self.money in (MoneyState.PAID, MoneyState.PARTLY_REFUNDED)

    @property
    def refund_in_flight(self) -> bool:
        return any(r.state in REFUNDS_IN_FLIGHT for r in self.refunds)

    @property
    def awaiting_payment(self) -> bool:
        """A pending card order with no money (never paid, or all of it returned): a bank approval now is
        taken, any other is returned."""
        return (self.status == OrderState.PENDING and self.payment_method == PaymentMethod.CARD
                and self.money in (MoneyState.UNPAID, MoneyState.REFUNDED) and not self.refund_in_flight
                and not (self.top_up and self.activated))  # a top-up credited once is never paid again

    @property
    def pending_attempts(self) -> list["Payment"]:
        return [p for p in self.card_attempts if p.state == PaymentState.PENDING]

    @property
    def under_review(self) -> bool:
        """Set aside as fraud: customers see it as under review."""
        return self.status == OrderState.FRAUD

    @property
    def awaiting_transfer(self) -> bool:
        """A bank-transfer order waiting for the customer's money."""
        return (self.status == OrderState.PENDING and self.payment_method == PaymentMethod.BANK_TRANSFER
                and not self.holds_money and not (self.top_up and self.activated))

    @property
    def awaits_review(self) -> bool:
        """Paid and waiting for an agent's Accept."""
        return self.status == OrderState.PENDING and self.holds_money

    @property
    def customer_may_cancel(self) -> bool:
        """A customer gives up their own order only while we hold no money for it."""
        return self.status == OrderState.PENDING and not self.holds_money and not self.refund_in_flight

    # --- what agents may do now ----------------------------------------------------------------------

    def may_become(self, state: OrderState) -> bool:
        return may_move(ORDER_MOVES, self.status, state)

    @property
    def can_accept(self) -> bool:
        """Pending, and paid, or payable by the agent's confirmation (bank transfer, manual)."""
        return self.may_become(OrderState.ACTIVE) and not self.refund_in_flight and (
            self.holds_money or self.payment_method != PaymentMethod.CARD)

    @property
    def can_cancel(self) -> bool:
        return self.may_become(OrderState.CANCELLED)

    @property
    def can_set_fraud(self) -> bool:
        return self.may_become(OrderState.FRAUD)

    @property
    def can_back_to_pending(self) -> bool:
        return self.may_become(OrderState.PENDING)

    @property
    def can_refund(self) -> bool:
        return self.refundable_minor > 0

    @property
    def still_busy(self) -> bool:
        """Something given still stands, money is held, or something is on its way at the bank (or may still
        come: a card attempt the bank had no sale for is asked about again for a day)."""
        return (self.live_grant is not None and self.live_grant.ended_at is None) or self.refundable_minor > 0 \
            or self.refund_in_flight or bool(self.pending_attempts) or bool(self.rechecked_attempts)

    @property
    def can_delete(self) -> bool:
        """Not busy, and no money ever went through it: payments and refunds stay on record, so such an order
        stays cancelled instead."""
        return not self.still_busy and not self.moved_money

    @property
    def moved_money(self) -> bool:
        """A payment was ever confirmed (a card sale, a transfer, a balance debit, a free grant) or refunded."""
        return bool(self.refunds) or any(p.state in (PaymentState.CONFIRMED, PaymentState.REFUNDED)
                                         for p in self.payments)

    @property
    def rechecked_attempts(self) -> list["Payment"]:
        return [p for p in self.card_attempts if p.rechecked]

    @property
    def can_ask_bank(self) -> bool:
        return bool(self.pending_attempts) or self.refund_in_flight


class Payment(db.Model):
    """Money that arrived for an order, or a card attempt to get it, with the bank's answer (never card data
    beyond the masked PAN). States and moves: lifecycle.PAYMENT_MOVES."""

    __tablename__ = "payments"
    __table_args__ = (
        CheckConstraint(PaymentState.check("state"), name="state"),
        CheckConstraint(PaymentMethod.check("method"), name="method"),
        CheckConstraint(Currency.check("currency"), name="currency"),
        CheckConstraint("amount_minor >= 0", name="amount_not_negative"),
        CheckConstraint("(method = 'card') = (oid IS NOT NULL)", name="card_has_oid"),
        CheckConstraint("instalments BETWEEN 1 AND 12", name="instalments_range"),
        Index("ix_payments_state_created_at", "state", "created_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id", ondelete="RESTRICT"), index=True)
    method: Mapped[str] = mapped_column(String(16))
    gateway: Mapped[str | None] = mapped_column(String(20))
    oid: Mapped[str | None] = mapped_column(String(64), unique=True)  # what the bank sees (card)
    state: Mapped[str] = mapped_column(String(10))
    amount_minor: Mapped[int] = mapped_column(BigInteger)  # what the customer pays, VAT included
    vat_minor: Mapped[int] = mapped_column(BigInteger, default=0)
    vat_rate_percent: Mapped[int] = mapped_column(Integer, default=0)
    instalments: Mapped[int] = mapped_column(Integer, default=1)  # what the bank was asked to split it into
    currency: Mapped[str] = mapped_column(String(3))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=now)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime, default=now)
    confirmed_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    received_on: Mapped[date | None] = mapped_column(Date)  # bank transfer: the day the money arrived
    reason: Mapped[str | None] = mapped_column(Text)  # manual payment or free grant: the agent's words
    agent_id: Mapped[int | None] = mapped_column(ForeignKey("agents.id", ondelete="SET NULL"), index=True)
    failure_code: Mapped[str | None] = mapped_column(String(40))
    message: Mapped[str | None] = mapped_column(Text)
    trans_id: Mapped[str | None] = mapped_column(String(64))
    auth_code: Mapped[str | None] = mapped_column(String(32))
    host_ref_num: Mapped[str | None] = mapped_column(String(64))
    masked_pan: Mapped[str | None] = mapped_column(String(32))
    md_status: Mapped[str | None] = mapped_column(String(4))
    proc_return_code: Mapped[str | None] = mapped_column(String(8))
    raw: Mapped[dict | None] = mapped_column(JSON)

    order: Mapped[Order] = relationship(back_populates="payments")
    agent = relationship("Agent")
    refunds: Mapped[list["Refund"]] = relationship(back_populates="payment", order_by="Refund.id")

    @property
    def awaiting_bank(self) -> bool:
        return self.state == PaymentState.PENDING

    @property
    def rechecked(self) -> bool:
        """Failed (the bank had no sale for it when asked, or declined it), recently enough that the customer
        may still have paid on the bank's 3-D page since, the same form sent again with the same oid, its
        post-back lost: reconciliation asks about it again."""
        return self.state == PaymentState.FAILED and self.created_at > now() - RECHECK_FAILED

    @classmethod
    def rechecked_at(cls, moment: datetime):
        """`rechecked` as a SQL condition, at `moment`."""
        return (cls.state == PaymentState.FAILED) & (cls.created_at > moment - RECHECK_FAILED)

    @property
    def failed(self) -> bool:
        return self.state == PaymentState.FAILED

    @property
    def returned(self) -> bool:
        """All of it went back."""
        return self.state == PaymentState.REFUNDED

    @property
    def refunded_minor(self) -> int:
        return sum(r.amount_minor for r in self.refunds if r.state == RefundState.DONE)

    @property
    def refundable_minor(self) -> int:
        if self.state != PaymentState.CONFIRMED:
            return 0
        return self.amount_minor - sum(r.amount_minor for r in self.refunds if r.state in REFUNDS_HOLDING_MONEY)


class Refund(db.Model):
    """Money going back: to the card through the bank (Void on the payment's day, Credit after) or to the
    customer's account balance. Partial refunds are rows too; history is never overwritten.
    States and moves: lifecycle.REFUND_MOVES."""

    __tablename__ = "refunds"
    __table_args__ = (
        CheckConstraint(RefundState.check("state"), name="state"),
        CheckConstraint(RefundDestination.check("destination"), name="destination"),
        CheckConstraint(RefundOperation.check("operation"), name="operation"),
        CheckConstraint(Currency.check("currency"), name="currency"),
        CheckConstraint("amount_minor > 0", name="amount_positive"),
        Index("ix_refunds_state_created_at", "state", "created_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id", ondelete="RESTRICT"), index=True)
    payment_id: Mapped[int] = mapped_column(ForeignKey("payments.id", ondelete="RESTRICT"), index=True)
    destination: Mapped[str] = mapped_column(String(8))
    state: Mapped[str] = mapped_column(String(10), default=RefundState.CREATED)
    amount_minor: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    operation: Mapped[str | None] = mapped_column(String(8))  # once sent to the bank
    automatic: Mapped[bool] = mapped_column(Boolean, default=False)  # money we did not accept, sent back by itself
    # All the order's money, as an agent asked (Cancel & Refund): when done, the order is cancelled and revoked.
    closes_order: Mapped[bool] = mapped_column(Boolean, default=False)
    reason: Mapped[str | None] = mapped_column(Text)
    agent_id: Mapped[int | None] = mapped_column(ForeignKey("agents.id", ondelete="SET NULL"), index=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=now)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime, default=now)
    done_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    answer: Mapped[str | None] = mapped_column(Text)  # the bank's words, or what we found out
    proc_return_code: Mapped[str | None] = mapped_column(String(8))
    trans_id: Mapped[str | None] = mapped_column(String(64))

    order: Mapped[Order] = relationship(back_populates="refunds")
    payment: Mapped[Payment] = relationship(back_populates="refunds")
    agent = relationship("Agent")

    @property
    def in_flight(self) -> bool:
        return self.state in REFUNDS_IN_FLIGHT

    @property
    def done(self) -> bool:
        return self.state == RefundState.DONE

    @property
    def troubled(self) -> bool:
        """The bank refused it, or its outcome is unknown."""
        return self.state in (RefundState.UNKNOWN, RefundState.FAILED)


class BankAccount(db.Model):
    """An account customers can pay into by bank transfer (Settings → Payment Systems)."""

    __tablename__ = "bank_accounts"
    __table_args__ = (CheckConstraint(Currency.check("currency"), name="currency"),)

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
        CheckConstraint(PromoKind.check("kind"), name="kind"),
        CheckConstraint(Currency.check("currency"), name="currency"),
        Index("uq_promo_codes_code_ci", func.lower(literal_column("code")), unique=True),
        CheckConstraint("value > 0", name="value_positive"),
        # `max_uses` limits customers' uses (promo_codes.take_use); a code an agent forces still counts past it.
        CheckConstraint("uses >= 0", name="uses_not_negative"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(40), unique=True)
    kind: Mapped[str] = mapped_column(String(8))
    value: Mapped[int] = mapped_column(BigInteger)  # percent (1–100) or minor units
    currency: Mapped[str | None] = mapped_column(String(3))  # for fixed amounts
    valid_from: Mapped[datetime | None] = mapped_column(UtcDateTime)
    valid_until: Mapped[datetime | None] = mapped_column(UtcDateTime)
    max_uses: Mapped[int | None] = mapped_column(Integer)
    uses: Mapped[int] = mapped_column(Integer, default=0)
    package_ids: Mapped[list] = mapped_column(JSON, default=list)  # empty: every package
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=now)


class OrderStatus(db.Model):
    """A status agents define (WHMCS custom order statuses), counted as pending, active or cancelled."""

    __tablename__ = "order_statuses"
    __table_args__ = (
        CheckConstraint(OrderState.check("counts_as", excluding={OrderState.FRAUD}), name="counts_as"),
        Index("uq_order_statuses_name_ci", func.lower(literal_column("name")), unique=True),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(40), unique=True)
    colour: Mapped[str] = mapped_column(String(7))  # #rrggbb
    counts_as: Mapped[str] = mapped_column(String(10))
