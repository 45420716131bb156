"""Bank-transfer orders nobody paid: a reminder after `transfer_reminder_days`, cancelled after
`transfer_cancel_days` (Settings → Orders; 0 switches either off), each once, through the outbox.

Only an order that waits for a transfer and holds nothing counts: Pending, Unpaid, no refund on its way, and
no activation request (a customer who says the money is sent waits for an agent, never for a deadline).
`billing remind` queues the reminders, `billing expire` cancels (both from cron, both idempotent).
"""
from datetime import timedelta

from sqlalchemy import select

from ..clock import now
from ..extensions import db
from ..models import MoneyState, Order, OrderState, PaymentMethod
from . import audit, bank_transfer, notifications, order_actions, settings
from .lifecycle import lock_order


def _waiting_for_transfer(order: Order) -> bool:
    """What `_placed_before` selects, checked again on the locked order."""
    return (order.awaiting_transfer and order.payment_status == MoneyState.UNPAID
            and order.activation_requested_at is None and not order.refund_in_flight)


def _placed_before(days: int) -> list[int]:
    """Orders waiting for a transfer, placed at least `days` days ago (the same moment of the day)."""
    return list(db.session.scalars(select(Order.id).where(
        Order.payment_method == PaymentMethod.BANK_TRANSFER, Order.status == OrderState.PENDING,
        Order.payment_status == MoneyState.UNPAID, Order.activation_requested_at.is_(None),
        Order.created_at <= now() - timedelta(days=days)).order_by(Order.id)))


def queue_reminders() -> int:
    """Remind the customer of each order waiting for its transfer for `transfer_reminder_days`; how many were
    queued (an order is reminded once, whatever runs when). Each order is checked under its lock: read unlocked,
    an order an agent accepted (or the customer said is paid) meanwhile was still told to wait for the money,
    with the accounts to send it to again."""
    days = settings.get("transfer_reminder_days")
    if not days:
        return 0
    queued = 0
    for order_id in _placed_before(days):
        order = lock_order(order_id)
        if _waiting_for_transfer(order):
            queued += notifications.transfer_reminder(order, days, bank_transfer.accounts_for(order.currency))
    return queued


def overdue_orders() -> list[int]:
    days = settings.get("transfer_cancel_days")
    return _placed_before(days) if days else []


def cancel_overdue(order_id: int, actor: audit.Actor) -> bool:
    """Cancel one order past its transfer deadline, checked again under its lock (the customer may have said
    meanwhile that they paid, an agent may have accepted it, another run may have cancelled it)."""
    order = lock_order(order_id)
    days = settings.get("transfer_cancel_days")
    if not days or not _waiting_for_transfer(order) or order.created_at > now() - timedelta(days=days):
        return False
    order_actions.cancel_unpaid_order(order, actor)
    notifications.transfer_cancelled(order, days)
    return True
