"""Orders (domain.md §6, §6a): money arriving for an order, activating what it sold, the customer's own orders.

An order keeps the package as sold (`package_snapshot`) and stays Pending until an agent reviews it, even when
a card payment already activated it. Placing orders is in placement.py, the agents' actions in
order_actions.py, card payments in card_payments.py, refunds in refunds.py.
"""
from flask_babel import gettext as _
from sqlalchemy import select

from ..extensions import db
from ..models import Customer, Grant, Order, OrderKind, OrderState, PackageType, PaymentMethod
from . import ServiceError, audit, entitlements, ledger, notifications, purchase_rules, settings, top_ups
from .lifecycle import move_order, settle


def payment_confirmed(order: Order, actor: audit.Actor) -> None:
    """Money arrived for the (locked) order: settle it, and activate the package when auto-activation is on
    (always for other methods than card). A card order stays Pending for an agent's review either way; if the
    rules refuse the activation now, the order keeps its payment and a note for the agent. A balance top-up is
    credited at once and is Active: there is nothing for an agent to review (top_ups.py)."""
    settle(order)
    audit.record(actor, "order.paid", order, number=order.number, method=order.payment_method)
    if order.top_up:
        activate_order(order, actor)
        if order.status == OrderState.PENDING:
            move_order(order, OrderState.ACTIVE)
        settle(order)
        return
    if order.payment_method != PaymentMethod.CARD or settings.get("auto_activate_card"):
        activate_order(order, actor)
    if order.payment_method == PaymentMethod.CARD and order.status == OrderState.PENDING and not order.activated:
        notifications.paid_order_awaiting_review(order)  # when activated, the purchase mail tells the agents


def activate_order(order: Order, actor: audit.Actor) -> bool:
    """Give the customer what the paid order sold, once. Returns False when the rules refuse it now.

    No package is activated without a payment or an agent's free grant (domain.md §6a). Accepted again after
    Cancel or Fraud with the same money, it gives back what the revocation took (entitlements.restoration).
    """
    if order.activated:
        return True
    if not order.holds_money:
        raise ServiceError("payment_required", _("This order has no payment; it cannot be activated."))
    if order.top_up:
        top_ups.credit(order, actor)
        return True
    customer = ledger.lock_customer(order.customer_id)
    offer, restored = entitlements.restoration(order, purchase_rules.Offer.sold(order.package_snapshot,
                                                                                order.quantity))
    if restored and not (offer.credits if offer.type == PackageType.CREDIT else offer.length):
        entitlements.restore_nothing(customer, offer, source=f"order {order.number}", for_order=order)
        _restored(order, offer, actor)
        return True  # the revocation took nothing: nothing to give back, nothing to mail
    try:
        # A forfeit only as the customer agreed to it when ordering (a switch order; never a restoration): one who
        # bought something since, e.g. while an abandoned checkout was paid after all, would lose it unasked.
        grant = entitlements.activate_package(
            customer, offer, source=f"order {order.number}", actor=actor, for_order=order,
            may_forfeit=order.kind == OrderKind.SWITCH and not restored and not given_since(order))
    except purchase_rules.PurchaseRefused as refused:
        return _activation_refused(order, actor, refused.code, refused.message)
    if restored:
        _restored(order, offer, actor)
    notifications.purchase_activated(order, grant)
    return True


def given_since(order: Order) -> bool:
    """Whether the customer holds a grant activated after the order was placed: a switch agreed to forfeit what
    they held then (10 credits), not what they bought after it (a top-up of 100 while its checkout was abandoned)."""
    return db.session.scalar(select(Grant.id).where(
        Grant.customer_id == order.customer_id, Grant.ended_at.is_(None), Grant.created_at > order.created_at
    ).limit(1)) is not None


def _restored(order: Order, offer: purchase_rules.Offer, actor: audit.Actor) -> None:
    """The audit log says the activation gave back what the revocation took, not the whole package."""
    audit.record(actor, "order.restored", order, number=order.number, credits=offer.credits,
                 seconds=int(offer.length.total_seconds()) if offer.length is not None else None)


def _activation_refused(order: Order, actor: audit.Actor, code: str, reason: str) -> bool:
    """The order keeps its payment and a note for the agent; nothing is given."""
    note = _("Activation refused: %(reason)s", reason=reason)
    order.notes = f"{order.notes}\n{note}" if order.notes else note
    audit.record(actor, "order.activation_refused", order, reason=code)
    return False


def customer_order(customer: Customer, number: str) -> Order | None:
    """The customer's own order by its number; another customer's order is None."""
    return db.session.scalar(select(Order).where(Order.number == number, Order.customer_id == customer.id))


def customer_orders(customer: Customer):
    return select(Order).where(Order.customer_id == customer.id).order_by(Order.id.desc())
