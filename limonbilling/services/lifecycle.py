"""The order lifecycle's mechanics (domain.md §6a): lock the order, move its state by the table, and keep its
money status and invoice in step with its payments and refunds.

Every action that changes an order or moves its money starts with `lock_order`
and ends with `settle`, inside the caller's one transaction.
"""
from flask_babel import gettext as _
from sqlalchemy import select

from ..clock import now
from ..extensions import db
from ..models import MoneyState, Order, OrderState, PaymentMethod
from ..models.lifecycle import ORDER_MOVES, invoice_state, may_move
from . import ServiceError, invoices, webhooks


def lock_order(order: Order | int) -> Order:
    """The order, re-read with its row locked until the transaction ends.

    Everything loaded before is forgotten first, so the payments, refunds and grants read after the lock are
    the committed ones (PostgreSQL: SELECT … FOR UPDATE; SQLite: every transaction holds the writer's lock).
    """
    order_id = order if isinstance(order, int) else order.id
    db.session.flush()
    db.session.expire_all()
    locked = db.session.execute(
        select(Order).where(Order.id == order_id).with_for_update().execution_options(populate_existing=True)
    ).scalar_one_or_none()
    if locked is None:
        raise ServiceError("not_found", _("This order no longer exists."))
    return locked


def refusal(order: Order, target: OrderState) -> ServiceError:
    """Why the order cannot move to `target` (already there, or not from where it is)."""
    if order.status == target:
        return ServiceError(f"already_{target}", {
            OrderState.PENDING: _("This order is already pending."),
            OrderState.ACTIVE: _("This order is already active."),
            OrderState.FRAUD: _("This order is already marked as fraud."),
            OrderState.CANCELLED: _("This order is already cancelled."),
        }[target])
    return ServiceError("not_allowed", {
        OrderState.PENDING: _("Only a cancelled or fraud order can go back to pending."),
        OrderState.ACTIVE: _("Only a pending order can be accepted."),
        OrderState.FRAUD: _("This order cannot be marked as fraud now."),
        OrderState.CANCELLED: _("This order cannot be cancelled now."),
    }[target])


def move_order(order: Order, target: OrderState, *, custom_status_id: int | None = None) -> None:
    """Move the (locked) order to `target` if the table allows it; a core move replaces any custom status.

    A custom status that counts as the state the order is in already is a change of label, not a move.
    """
    if not (custom_status_id is not None and order.status == target) and not may_move(ORDER_MOVES, order.status,
                                                                                         target):
        raise refusal(order, target)
    previous, order.status = order.status, target
    order.custom_status_id = custom_status_id
    if previous != target:
        webhooks.emit("order.status_changed", order=order, previous=previous)


def settle(order: Order) -> MoneyState:
    """Derive the order's money status and its invoice's status from its payments and refunds (in this
    transaction); an invoice gets its number once money for it was accepted (never for a free grant alone)."""
    db.session.flush()
    money, previous = order.money, order.payment_status
    order.payment_status = money
    accepted = order.accepted_payments
    # Money we refused counts as held until it is back (it is not ours to take again), but it paid for nothing.
    paid = money is MoneyState.PAID and bool(accepted)
    if paid and (previous != MoneyState.PAID or order.paid_at is None):
        order.paid_at = now()  # the first time, or again with new money after a refund: when order.paid says
    if paid and previous != MoneyState.PAID:
        webhooks.emit("order.paid", order=order)
    invoice = order.invoice
    if invoice is not None:
        if any(payment.method != PaymentMethod.FREE for payment in accepted):
            # money we accepted: money we refused and returned is not a sale, and an agent's free grant took none
            invoices.issue(invoice)
        invoice.status = invoice_state(order.status, money)
    return money
