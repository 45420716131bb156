"""Orders (domain.md §6, §6a): creating them, activating what they sold, and the agents' actions.

An order keeps the package as sold (`package_snapshot`) and stays Pending
until an agent reviews it, even when a card payment already activated it.
Every action locks the order, checks its move (models/lifecycle.py), acts and
settles the money status and invoice, in the caller's one transaction. Card
payments are in card_payments.py, refunds in refunds.py.
"""
import secrets
from dataclasses import dataclass
from datetime import date, timedelta

from flask_babel import gettext as _
from sqlalchemy import select

from ..clock import local_today, now
from ..extensions import db
from ..models import (
    ORDER_STATUSES,
    Agent,
    Customer,
    MoneyState,
    Order,
    OrderState,
    OrderStatus,
    Package,
    PaymentMethod,
    PromoCode,
)
from . import (
    ServiceError,
    ValidationFailed,
    audit,
    balance,
    entitlements,
    fraud,
    invoices,
    ledger,
    notifications,
    order_statuses,
    payments,
    promo_codes,
    settings,
)
from .lifecycle import lock_order, move_order, refusal, settle

NUMBER_DIGITS = 10


def new_order_number() -> str:
    """A random 10-digit number that never starts with 0 and does not reveal how many orders exist."""
    while True:
        number = str(secrets.randbelow(9 * 10 ** (NUMBER_DIGITS - 1)) + 10 ** (NUMBER_DIGITS - 1))
        if db.session.scalar(select(Order.id).where(Order.number == number)) is None:
            return number


AGENT_PAYMENT_METHODS = ("manual", "bank_transfer", "account_balance")


def checkout_refusal(customer: Customer) -> str | None:
    """Why the customer may not check out at all now (DT: identity verification), or None."""
    if (settings.get("require_identity_verification") and customer.account_type == "individual"
            and not customer.identity_verified):
        return _("Your identity must be verified by our team before you can buy a package. "
                 "Please contact support.")
    return None


@dataclass
class Quote:
    """What an order of the package costs: price, promo discount, VAT (inside the total) and total."""

    price_minor: int
    discount_minor: int
    vat_rate_percent: int
    vat_minor: int
    total_minor: int
    currency: str
    promo: PromoCode | None


def quote(package: Package, promo_code: str | None = None, price_minor: int | None = None) -> Quote:
    """The price of the package now, with the promo code's discount (a bad code raises ServiceError)."""
    price = package.price_minor if price_minor is None else price_minor
    promo, discount = None, 0
    if promo_code and promo_code.strip():
        promo, discount = promo_codes.check(promo_code, package, price)
    vat_rate, vat, total = invoices.order_totals(price - discount)
    return Quote(price, discount, vat_rate, vat, total, package.currency, promo)


def create_order(
    customer: Customer, package: Package, *, payment_method: str, actor: audit.Actor, ip: str | None = None,
    promo_code: str | None = None, placed_by: Agent | None = None, price_override_minor: int | None = None,
    create_invoice: bool = True, send_confirmation: bool = False, send_invoice: bool = False,
) -> Order:
    """Start an order for the package if the rules allow it now (rules 1–4 and 7).

    A customer's own order (the actor is the customer) must pass the identity
    rule and is fraud-checked: at the threshold it goes to Fraud and nothing
    happens to it. A card order awaits payment and expires after
    `card_checkout_minutes` so an abandoned checkout does not block (rule 7).
    Paying from the account balance pays it at once. An order placed for the
    customer by an agent (`placed_by`) or the API is not fraud-checked and may
    override the price; a manual one (money received outside the system) or a
    balance one is paid, activated and
    Active at once, a bank-transfer one waits for Accept. The agent's options
    `send_confirmation` and `send_invoice` mail the order confirmation and the invoice to the customer.
    """
    by_customer = actor.type == "customer"
    if by_customer:
        refusal = checkout_refusal(customer)
        if refusal:
            raise ServiceError("identity_not_verified", refusal)
    elif payment_method not in AGENT_PAYMENT_METHODS:
        raise ServiceError("payment_method", _("An agent places orders paid manually, by bank transfer or "
                                               "from the account balance."))
    customer = ledger.lock_customer(customer.id)
    preview = entitlements.preview_purchase(customer, package)
    if not preview.allowed:
        raise entitlements.PurchaseRefused(preview)
    moment = now()
    has_orders = db.session.scalar(select(Order.id).where(Order.customer_id == customer.id).limit(1)) is not None
    price = quote(package, promo_code, price_override_minor)
    if price.promo is not None:
        promo_codes.take_use(price.promo)
    order = Order(
        number=new_order_number(), customer_id=customer.id, created_at=moment, customer_was_new=not has_orders,
        kind=preview.kind, package_id=package.id, package_snapshot=package.snapshot(),
        promo_code_id=price.promo.id if price.promo else None, promo_code=price.promo.code if price.promo else None,
        promo_use_held=price.promo is not None,
        discount_minor=price.discount_minor, amount_minor=price.total_minor, vat_minor=price.vat_minor,
        vat_rate_percent=price.vat_rate_percent,
        currency=package.currency, payment_method=payment_method, payment_status=MoneyState.UNPAID,
        status=OrderState.PENDING, ip=ip, placed_by_agent_id=placed_by.id if placed_by else None,
        price_overridden=price_override_minor is not None and price_override_minor != package.price_minor,
        expires_at=moment + timedelta(minutes=settings.get("card_checkout_minutes"))
        if payment_method == PaymentMethod.CARD else None,
    )
    db.session.add(order)
    if create_invoice:
        invoices.create_for_order(order)
    db.session.flush()
    audit.record(actor, "order.create", order, number=order.number, package=package.name,
                 method=payment_method, kind=preview.kind, agent=placed_by.email if placed_by else None)
    if by_customer and fraud.is_fraud(order, customer):
        move_order(order, OrderState.FRAUD)
        promo_codes.release_use(order)
        settle(order)
        audit.record(actor, "order.fraud_check", order, number=order.number, score=order.fraud_score)
        notifications.order_set_to_fraud(order)
        return order
    if payment_method == PaymentMethod.ACCOUNT_BALANCE:
        payments.take_from_balance(order, order.amount_minor, actor)
        payment_confirmed(order, actor)
    elif payment_method == PaymentMethod.MANUAL:
        payments.record(order, PaymentMethod.MANUAL, order.amount_minor, actor)
        payment_confirmed(order, actor)
    if not by_customer and order.holds_money and order.activated:
        move_order(order, OrderState.ACTIVE)
    settle(order)
    if send_confirmation:
        notifications.order_confirmation(order)
    if send_invoice:
        notifications.invoice_issued(order)
    return order


def payment_confirmed(order: Order, actor: audit.Actor) -> None:
    """Money arrived for the (locked) order: settle it, and activate the package when auto-activation is on
    (always for other methods than card). A card order stays Pending for an agent's review either way; if the
    rules refuse the activation now, the order keeps its payment and a note for the agent."""
    settle(order)
    audit.record(actor, "order.paid", order, number=order.number, method=order.payment_method)
    if order.payment_method != PaymentMethod.CARD or settings.get("auto_activate_card"):
        activate_order(order, actor)
    if order.payment_method == PaymentMethod.CARD and order.status == OrderState.PENDING and not order.activated:
        notifications.paid_order_awaiting_review(order)  # when activated, the purchase mail tells the agents


def activate_order(order: Order, actor: audit.Actor) -> bool:
    """Give the customer what the paid order sold, once. Returns False when the rules refuse it now.

    No package is activated without a payment or an agent's free grant (domain.md §6a).
    """
    if order.activated:
        return True
    if not order.holds_money:
        raise ServiceError("payment_required", _("This order has no payment; it cannot be activated."))
    customer = db.session.get(Customer, order.customer_id)
    try:
        grant = entitlements.activate_package(
            customer, entitlements.Offer.sold(order.package_snapshot), source=f"order {order.number}",
            actor=actor, for_order=order,
        )
    except entitlements.PurchaseRefused as refused:
        note = _("Activation refused: %(reason)s", reason=refused.message)
        order.notes = f"{order.notes}\n{note}" if order.notes else note
        audit.record(actor, "order.activation_refused", order, reason=refused.code)
        return False
    notifications.purchase_activated(order, grant)
    return True


def customer_order(customer: Customer, number: str) -> Order | None:
    """The customer's own order by its number; another customer's order is None."""
    return db.session.scalar(select(Order).where(Order.number == number, Order.customer_id == customer.id))


def customer_orders(customer: Customer):
    return select(Order).where(Order.customer_id == customer.id).order_by(Order.id.desc())


def cancel_unpaid_order(order: Order, actor: audit.Actor) -> None:
    """A customer gives up an order that was never paid (nothing to revoke, nothing to refund).

    Should the bank still approve one of its attempts, that money is returned by itself (card_payments).
    """
    order = lock_order(order)
    if not order.customer_may_cancel:
        raise ServiceError("not_cancellable", _("Only an unpaid, pending order can be cancelled here."))
    move_order(order, OrderState.CANCELLED)
    promo_codes.release_use(order)
    settle(order)
    audit.record(actor, "order.cancel_unpaid", order, number=order.number)


# --- agent actions (WHMCS): each locks the order, checks its move, acts; one transaction, audited ----------

def _revoke(order: Order, actor: audit.Actor, reason: dict) -> None:
    for grant in order.grants:
        if grant.end_reason != "revoked":
            entitlements.revoke_grant(grant, actor, reason)


def accept_order(order: Order, actor: audit.Actor, *, received_on: date | None = None,
                 free_reason: str | None = None) -> Order:
    """Accept: the order is paid, what it sold is active, and it is Active.

    A card order needs a confirmed card payment (`payment_required`), or an
    agent's explicit free grant with its reason. For a bank transfer Accept is
    the agent's confirmation that the money arrived (`received_on`, today by
    default); for a manual order, that it was received outside the system; an
    account-balance order takes the balance again. Back to Pending after a
    refund therefore needs a new payment before it can be accepted again.
    """
    order = lock_order(order)
    if not order.may_become(OrderState.ACTIVE):
        raise refusal(order, OrderState.ACTIVE)
    if order.refund_in_flight:
        raise ServiceError("refund_in_flight", _("A refund of this order is waiting for the bank's answer; "
                                                 "ask the bank before accepting it."))
    if not order.holds_money:
        _take_payment_on_accept(order, actor, received_on, free_reason)
    was_active = order.activated
    if not activate_order(order, actor):
        raise ServiceError("activation_refused", order.notes.splitlines()[-1])
    move_order(order, OrderState.ACTIVE)
    order.attention = None  # an agent looked at it and kept the money
    settle(order)
    audit.record(actor, "order.accept", order, number=order.number)
    if was_active:  # otherwise the activation mail just queued says it all
        notifications.order_accepted(order)
    return order


def _take_payment_on_accept(order: Order, actor: audit.Actor, received_on: date | None,
                            free_reason: str | None) -> None:
    if free_reason is not None and free_reason.strip():
        payments.record(order, PaymentMethod.FREE, 0, actor, reason=free_reason.strip())
    elif order.payment_method == PaymentMethod.CARD:
        raise ServiceError("payment_required", _(
            "The card payment has not arrived; the order cannot be accepted. Ask the bank, or give it free "
            "with a reason."))
    elif order.payment_method == PaymentMethod.BANK_TRANSFER:
        payments.record(order, PaymentMethod.BANK_TRANSFER, order.amount_minor - order.refundable_minor, actor,
                        received_on=received_on or local_today())
    elif order.payment_method == PaymentMethod.ACCOUNT_BALANCE:
        try:
            payments.take_from_balance(order, order.amount_minor - order.refundable_minor, actor)
        except balance.InsufficientBalance:
            raise ServiceError("insufficient_balance", _(
                "The customer's account balance does not cover this order.")) from None
    else:
        payments.record(order, PaymentMethod.MANUAL, order.amount_minor - order.refundable_minor, actor)
    settle(order)


def _set_aside(order: Order, target: OrderState, actor: audit.Actor, reason: dict) -> Order:
    """Cancel and Set as Fraud: revoke what the order gave, then the status; the invoice follows (Cancelled
    while the money is neither paid nor refunded). The money stays where it is (see refunds)."""
    order = lock_order(order)
    move_order(order, target)
    _revoke(order, actor, reason)
    promo_codes.release_use(order)
    settle(order)
    audit.record(actor, f"order.{target}", order, number=order.number)
    return order


def cancel_order(order: Order, actor: audit.Actor) -> Order:
    order = _set_aside(order, OrderState.CANCELLED, actor, ledger.because("order_cancelled", number=order.number))
    notifications.order_cancelled(order)
    return order


def set_fraud(order: Order, actor: audit.Actor) -> Order:
    order = _set_aside(order, OrderState.FRAUD, actor, ledger.because("order_under_review", number=order.number))
    notifications.order_set_to_fraud(order)
    return order


def back_to_pending(order: Order, actor: audit.Actor) -> Order:
    """Back to Pending, from Fraud or Cancelled. What was revoked stays revoked until the order is accepted,
    which needs the money to be held (a refunded order needs a new payment)."""
    order = lock_order(order)
    move_order(order, OrderState.PENDING)
    promo_codes.hold_use(order)
    settle(order)
    audit.record(actor, "order.pending", order, number=order.number)
    return order


def settle_attention(order: Order, note: str, actor: audit.Actor) -> Order:
    """An agent marks what the order was flagged for (money the bank holds that could not be returned, a
    half 3-D payment heard of late) as settled, saying how; the note goes to the audit log."""
    note = (note or "").strip()
    if not note:
        raise ValidationFailed({"note": [_("Say how it was settled (e.g. refunded by the bank's panel).")]})
    order = lock_order(order)
    if not order.attention:
        raise ServiceError("nothing_flagged", _("Nothing on this order needs attention any more."))
    audit.record(actor, "order.attention_settled", order, number=order.number, flagged=order.attention,
                 note=note[:1000])
    order.attention = None
    return order


def delete_order(order: Order, actor: audit.Actor) -> None:
    """Delete: irreversible; the audit log keeps that it happened and what the order was. Refused while it
    gives something, holds money or waits for the bank."""
    order = lock_order(order)
    if not order.can_delete:
        if not order.still_busy:  # then money went through it
            raise ServiceError("money_on_record", _("Money went through this order: its payments and refunds stay "
                                                    "on record, so it cannot be deleted. It stays cancelled."))
        raise ServiceError("still_active", _("Cancel the order and refund its money first: it still gives "
                                             "something, holds money or waits for the bank."))
    audit.record(actor, "order.delete", order, number=order.number, customer_id=order.customer_id,
                 package=order.package_name, amount_minor=order.amount_minor, currency=order.currency,
                 status=order.status, payment_status=order.payment_status,
                 invoice=order.invoice.number if order.invoice else None)
    promo_codes.release_use(order)
    invoices.remove_with_order(order)
    for attempt in order.payments:  # card attempts that took nothing (can_delete refused any other)
        db.session.delete(attempt)
    db.session.flush()
    db.session.delete(order)


def bulk_set_status(orders: list[Order], status: str, actor: audit.Actor) -> tuple[int, list[str]]:
    """Bulk actions change the status only: no gateway and no entitlement command runs (WHMCS).

    `status` is a core status or "custom:<id>" for an agent's own status. Each order is locked and moved by
    the table; an order the move does not fit (or that would be Active without its money and its package) is
    left as it is and its number returned.
    """
    custom_id = order_statuses.choice_id(status)
    custom = db.session.get(OrderStatus, custom_id) if custom_id else None
    if custom is None and status not in ORDER_STATUSES:
        raise ServiceError("unknown_status", _("Choose a status from the list."))
    target = OrderState(custom.counts_as if custom else status)
    changed, skipped = [], []
    for order_id, number in sorted((o.id, o.number) for o in orders):  # one lock order for all: no deadlock
        order = lock_order(order_id)
        if target is OrderState.ACTIVE and not (order.holds_money and order.activated):
            skipped.append(number)
            continue
        try:
            if target is OrderState.PENDING and order.status != OrderState.PENDING:
                if not order.may_become(OrderState.PENDING):
                    raise refusal(order, target)
                promo_codes.hold_use(order)  # reopened: its code counts again, if a use is left
            move_order(order, target, custom_status_id=custom.id if custom else None)
        except ServiceError:
            skipped.append(number)
            continue
        if target in (OrderState.CANCELLED, OrderState.FRAUD):
            promo_codes.release_use(order)
        settle(order)
        changed.append(number)
    audit.record(actor, "order.bulk_status", None, status=custom.name if custom else status, numbers=changed,
                 skipped=skipped)
    return len(changed), skipped
