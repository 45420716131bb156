"""What agents (and the API) do to an order (domain.md §6, §6a, WHMCS): Accept, Cancel, Fraud, Back to Pending,
Delete, bulk status changes, settling what it was flagged for; and a customer giving up an unpaid order.

Each locks the order, checks its move (models/lifecycle.py), acts and settles the money status and invoice, in
the caller's one transaction, audited. Refunds (Cancel & Refund) are in refunds.py.
"""
from datetime import date

from flask_babel import gettext as _

from ..clock import local_today
from ..extensions import db
from ..models import Order, OrderState, PaymentMethod
from . import (
    ServiceError,
    ValidationFailed,
    audit,
    balance,
    entitlements,
    invoices,
    ledger,
    notifications,
    order_statuses,
    payments,
    promo_codes,
)
from .lifecycle import lock_order, move_order, refusal, settle
from .orders import activate_order


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
    elif not order.standing_payments:
        # Held only because the bank would not take it back: money the store refused is not a payment for it, nor
        # is a payment of the order's that was refunded since
        raise ServiceError("refused_money_only", _(
            "The only money on this order is a payment the store refused, which the bank would not take back. "
            "Refund it first (from this page or with the bank); then accept the order with a new payment, or "
            "give it free with a reason."))
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
    if free_reason is not None and free_reason.strip() and order.top_up:
        raise ServiceError("top_up_not_free", _("A balance top-up adds money only when it is paid; to give "
                                                "money, adjust the customer's balance with a reason."))
    if free_reason is not None and free_reason.strip():
        payments.record(order, PaymentMethod.FREE, 0, actor, reason=free_reason.strip())
    elif order.payment_method == PaymentMethod.CARD:
        raise ServiceError("payment_required", _(
            "The card payment has not arrived; the order cannot be accepted. Ask the bank, or give it free "
            "with a reason."))
    elif order.payment_method == PaymentMethod.BANK_TRANSFER:
        if received_on is not None and received_on > local_today():
            raise ServiceError("received_on_future", _("A transfer cannot have arrived after today (the day is "
                                                       "Istanbul's); give the day the bank shows."))
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
    if order.may_become(target):  # else move_order says why (already there)
        _refuse_paid_top_up(order)
    move_order(order, target)
    _revoke(order, actor, reason)
    promo_codes.release_use(order)
    settle(order)
    audit.record(actor, f"order.{target}", order, number=order.number)
    return order


def _refuse_paid_top_up(order: Order) -> None:
    """A paid top-up gave money, not a grant: Cancel or Fraud would revoke nothing and leave it spendable in the
    balance (its invoice Cancelled). Its money is taken back only by refunding it (top_ups.take_back)."""
    if order.top_up and order.activated and order.holds_money:
        raise ServiceError("top_up_paid", _(
            "This top-up's money is in the customer's account balance. Refund it (Cancel & Refund takes it from "
            "the balance first), or take it off the balance with an adjustment."))


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
    if order.top_up:
        raise ServiceError("top_up_not_again", _("A balance top-up does not go back to pending; the customer "
                                                 "places a new one."))
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
    custom = order_statuses.lock(custom_id, shared=True) if custom_id else None  # what it counts as stays meanwhile
    if custom is None and not OrderState.has(status):
        raise ServiceError("unknown_status", _("Choose a status from the list."))
    target = OrderState(custom.counts_as if custom else status)
    changed, skipped = [], []
    selected = sorted((o.id, o.number) for o in orders)  # one lock order for all: no deadlock
    # Every order is locked before the first promo code row is (a use held or given back): a code's row locked
    # between two orders would deadlock with a single action on the second one, which gives back its use after
    # locking it.
    for order_id, _number in selected:
        lock_order(order_id)
    for order_id, number in selected:
        order = lock_order(order_id)
        if target is OrderState.ACTIVE and not (order.holds_money and order.activated):
            skipped.append(number)
            continue
        try:
            if target is OrderState.PENDING and order.status != OrderState.PENDING:
                if not order.may_become(OrderState.PENDING) or order.top_up:  # a top-up is never reopened
                    raise refusal(order, target)
                promo_codes.hold_use(order)  # reopened: its code counts again, if a use is left
            if target in (OrderState.CANCELLED, OrderState.FRAUD) and order.status != target:
                _refuse_paid_top_up(order)
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
