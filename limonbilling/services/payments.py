"""Payments as rows (domain.md §6a): every way money arrives for an order is a `Payment` with a state.

A card attempt is created pending when the customer is sent to the bank and
moves by the bank's answer; the other ways are recorded confirmed: a bank
transfer an agent confirmed (amount and day), a debit of the account balance,
money an agent received outside the system, or an agent's free grant (amount 0,
with its reason). The caller holds the order's lock (lifecycle.lock_order).
"""
from datetime import date

from flask_babel import gettext as _

from ..clock import now
from ..extensions import db
from ..models import Order, Payment, PaymentMethod, PaymentState
from ..models.lifecycle import PAYMENT_MOVES, MoveRefused, move
from . import ServiceError, audit, balance


def move_payment(payment: Payment, target: PaymentState) -> None:
    try:
        payment.state = move(PAYMENT_MOVES, "payment", payment.state, target)
    except MoveRefused:
        raise ServiceError("payment_state", _("This payment cannot change that way.")) from None
    payment.updated_at = now()
    if target is PaymentState.CONFIRMED:
        payment.confirmed_at = payment.updated_at


def record(order: Order, method: PaymentMethod, amount_minor: int, actor: audit.Actor, *,
           reason: str | None = None, received_on: date | None = None) -> Payment:
    """Money that arrived other than by card, confirmed at once."""
    moment = now()
    payment = Payment(
        order=order, method=method, state=PaymentState.CONFIRMED, amount_minor=amount_minor,
        vat_minor=order.vat_minor if amount_minor == order.amount_minor else 0,
        vat_rate_percent=order.vat_rate_percent, currency=order.currency, created_at=moment, updated_at=moment,
        confirmed_at=moment, received_on=received_on, reason=reason,
        agent_id=actor.id if actor.type == "agent" else None,
    )
    db.session.add(payment)
    db.session.flush()
    audit.record(actor, "payment.record", order, number=order.number, method=method, amount_minor=amount_minor,
                 reason=reason, received_on=received_on.isoformat() if received_on else None)
    return payment


def take_from_balance(order: Order, amount_minor: int, actor: audit.Actor) -> Payment:
    """Debit the customer's account balance in the order's currency (never below zero) and record it."""
    if amount_minor:
        balance.move(order.customer_id, order.currency, -amount_minor, "payment", order=order)  # labels.balance_reason
    return record(order, PaymentMethod.ACCOUNT_BALANCE, amount_minor, actor)


def start_card_attempt(order: Order, gateway: str) -> Payment:
    """A new card attempt for the order's amount in its instalments; its `oid` is what the bank sees and sends
    back."""
    moment = now()
    attempt = Payment(
        order=order, method=PaymentMethod.CARD, gateway=gateway, oid=f"{order.number}-{len(order.card_attempts) + 1}",
        state=PaymentState.PENDING, amount_minor=order.amount_minor, vat_minor=order.vat_minor,
        vat_rate_percent=order.vat_rate_percent, instalments=order.instalments, currency=order.currency,
        created_at=moment, updated_at=moment,
    )
    db.session.add(attempt)
    db.session.flush()
    return attempt
