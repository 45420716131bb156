"""Refunds as rows (domain.md §6a): full or partial, to the card through the bank or to the account balance.

A refund to the card is made in two steps, so that a crash or a timeout can
never refund twice or lose track of money: `start` records it (state created,
the amount no longer refundable) and the caller commits; `send` then locks the
order, asks the bank (Void on the payment's bank day, Credit after) and records
the answer. A refund whose answer is unknown is settled by asking the bank's
status first (`card_payments.reconcile`), never by sending it again blindly.

When an agent refunds all the order's money (Cancel & Refund), what the order
gave is revoked and the order is Cancelled once the refund is made; a partial
refund changes nothing else. Money we refused (half 3-D, a second approval, a late one) is refunded
`automatic`ally and leaves the order as it is.

A sale in instalments (taksit) goes back to the card only whole, by the same Void or Credit: Turkish issuers
do not reliably take back part of an instalment plan, so a partial refund of one is refused (a refund to the
account balance may still be partial; the card part then stays with us).
"""

from flask_babel import gettext as _

from ..clock import local_day, local_today, now
from ..extensions import db
from ..formatting import format_money, plain_amount
from ..models import Order, OrderState, Payment, PaymentMethod, PaymentState, Refund, RefundDestination
from ..models import RefundState as State
from ..models.lifecycle import REFUND_MOVES, move
from ..payments.base import GatewayError, PaymentGateway, SaleStatus
from . import ServiceError, audit, balance, entitlements, ledger, notifications, top_ups, webhooks
from .lifecycle import lock_order, move_order, settle
from .payments import move_payment


def card_plan(order: Order) -> str | None:
    """What a full refund to the card would ask the bank now: "void" for a payment of today, "credit"
    afterwards; None when no card payment can be refunded."""
    payment = next((p for p in order.confirmed_payments if p.method == PaymentMethod.CARD and p.refundable_minor), None)
    if payment is None:
        return None
    return _operation(payment, payment.refundable_minor)


def _operation(payment: Payment, amount_minor: int) -> str:
    whole = amount_minor == payment.amount_minor and not any(r.state == State.DONE for r in payment.refunds)
    return "void" if whole and local_day(payment.confirmed_at) == local_today() else "credit"


def _move(refund: Refund, target: State) -> None:
    refund.state = move(REFUND_MOVES, "refund", refund.state, target)
    refund.updated_at = now()


def start(order: Order, *, to: RefundDestination, actor: audit.Actor, amount_minor: int | None = None,
          automatic: bool = False, reason: str | None = None, payment: Payment | None = None) -> list[Refund]:
    """Record a refund of `amount_minor` (all that is refundable when None) and return its rows.

    To the balance it is done at once; to the card the rows wait for `send`, after the caller commits.
    """
    order = lock_order(order)
    if payment is not None:
        payment = db.session.get(Payment, payment.id)
    if not automatic and any(r.in_flight and not r.automatic for r in order.refunds):
        raise ServiceError("refund_in_flight", _("A refund of this order is still waiting for the bank's answer. "
                                                 "Ask the bank first; nothing is refunded twice."))
    # Money we refused (the bank would not take it back) goes first, then the newest payment: a partial refund
    # must not return the payment the order stands on and leave it given on money the store refused
    accepted = order.accepted_payments
    sources = [payment] if payment is not None else sorted((
        p for p in reversed(order.confirmed_payments)
        if p.refundable_minor and (to == RefundDestination.BALANCE or p.method == PaymentMethod.CARD)
    ), key=lambda p: p in accepted)
    available = sum(p.refundable_minor for p in sources)
    if available <= 0:
        raise ServiceError("nothing_to_refund", _("This order has no card payment to refund.")
                           if to == RefundDestination.CARD else _("This order has no payment to refund."))
    amount_minor = available if amount_minor is None else amount_minor
    if not 0 < amount_minor <= available:
        raise ServiceError("refund_amount", _("Refund an amount from 0.01 to %(most)s.",
                                              most=plain_amount(available)))
    if order.top_up and not automatic and to != RefundDestination.CARD:
        raise ServiceError("top_up_to_balance", _(
            "A balance top-up is not refunded to the balance it was added to. Refund a card top-up to the "
            "card; for a transfer, take the money off the balance with an adjustment and send it back."))
    if to == RefundDestination.BALANCE and ledger.lock_customer(order.customer_id).erased_at is not None:
        raise ServiceError("customer_erased", _(
            "This customer's data was erased and the account signs in no more: money refunded to its balance "
            "could never be reached. Refund it to the card, or pay it back by bank transfer."))
    closes_order = not automatic and amount_minor == order.refundable_minor
    moment = now()
    parts, left = [], amount_minor
    for source in sources:
        part = min(left, source.refundable_minor)
        if part and to == RefundDestination.CARD and source.instalments > 1 and part != source.amount_minor:
            raise ServiceError("instalments_whole_refund", _(
                "A card payment in %(count)d instalments goes back to the card only whole (%(amount)s), as the "
                "bank takes it; refund all of it, or refund part of it to the account balance.",
                count=source.instalments, amount=format_money(source.amount_minor, source.currency)))
        if part:
            parts.append((source, part))
            left -= part
    if order.top_up and not automatic:  # from the balance first, what of it was credited; refused if spent
        # money we refused was never credited: nothing to take back for it
        top_ups.take_back(order, sum(part for source, part in parts if source in accepted), actor)
    rows = [Refund(
        order=order, payment=source, destination=to, state=State.CREATED, amount_minor=part,
        currency=order.currency, automatic=automatic, closes_order=closes_order, reason=reason,
        created_at=moment, updated_at=moment,
        agent_id=actor.id if actor.type == "agent" else None,
    ) for source, part in parts]
    db.session.add_all(rows)
    db.session.flush()
    audit.record(actor, "order.refund_start", order, number=order.number, amount_minor=amount_minor, to=to,
                 automatic=automatic)
    if to == RefundDestination.BALANCE:
        balance.move(order.customer_id, order.currency, amount_minor, "refund", order=order,
                     agent_id=actor.id if actor.type == "agent" else None)  # worded by labels.balance_reason
        for row in rows:
            _done(order, row, _("Added to the account balance."), actor)
    settle(order)
    return rows


def send(order: Order, gateway: PaymentGateway, actor: audit.Actor, *, ask_first: bool = False) -> str:
    """Ask the bank to make every card refund of the order still waiting (created; with `ask_first`, also
    those whose outcome is unknown), each after asking the bank's status whether it is made already. Locks the
    order.

    Returns "refunded" when none is left waiting, "unknown" when the bank's answer is still missing,
    "failed" when the bank refused one (its row says why; the money stays with us).
    """
    order = lock_order(order)
    outcome = "refunded"
    for refund in [r for r in order.refunds if r.destination == RefundDestination.CARD]:
        if refund.state == State.CREATED or (ask_first and refund.state == State.UNKNOWN):
            result = _execute(order, refund, gateway, actor)
            if result != "refunded" and outcome != "failed":
                outcome = result
    settle(order)
    return outcome


def _execute(order: Order, refund: Refund, gateway: PaymentGateway, actor: audit.Actor) -> str:
    payment = refund.payment
    try:
        # Asked every time, not only after an unknown outcome: a refund the bank made whose answer was never
        # committed here (the database failed after the bank answered) is still "created", and sending it again
        # would refund a partial credit twice.
        if _bank_shows_refund(gateway.sale_status(payment.oid), payment, refund):
            _done(order, refund, _("Found refunded when the bank was asked."), actor)
            return "refunded"
        refund.operation = _operation(payment, refund.amount_minor)
        answer = gateway.refund(payment.oid, refund.amount_minor, refund.currency, operation=refund.operation,
                                whole=refund.amount_minor == payment.amount_minor and not payment.refunded_minor)
    except GatewayError as error:
        if refund.state == State.CREATED:
            _move(refund, State.UNKNOWN)
        refund.answer = str(error)
        audit.record(actor, "order.refund_unknown", order, number=order.number, refund=refund.id, error=str(error))
        if refund.automatic:
            _needs_attention(order, refund, _(
                "The bank did not answer when %(amount)s of a payment we did not accept was sent back; it is asked "
                "again every few minutes.", amount=_money(refund)))
        return "unknown"
    refund.operation, refund.proc_return_code, refund.trans_id = (answer.operation, answer.return_code,
                                                                  answer.transaction_id)
    if answer.succeeded:
        _done(order, refund, answer.message or _("The bank made the refund."), actor)
        return "refunded"
    _move(refund, State.FAILED)
    refund.answer = answer.message or answer.return_code
    if order.top_up:
        top_ups.put_back(order, refund, actor)  # the money stays with us: back into the customer's balance
    audit.record(actor, "order.refund_failed", order, number=order.number, refund=refund.id, answer=refund.answer)
    if refund.automatic:
        _needs_attention(order, refund, _(
            "The bank refused to return %(amount)s of a payment we did not accept: %(answer)s. Refund it from this "
            "page or with the bank.", amount=_money(refund), answer=refund.answer))
    return "failed"


def _bank_shows_refund(status: SaleStatus, payment: Payment, refund: Refund) -> bool:
    """Whether the bank's status shows this refund made: the sale voided, or the bank's refunded total
    covering our refunds to the card done so far plus this one (a refund to the account balance never went
    through the bank: counted, it would hide a refund the bank made and send it again)."""
    if status.state == "voided":
        return True
    through_bank = sum(r.amount_minor for r in payment.refunds
                       if r.state == State.DONE and r.destination == RefundDestination.CARD)
    return status.refunded_minor is not None and status.refunded_minor >= through_bank + refund.amount_minor


def _done(order: Order, refund: Refund, answer: str, actor: audit.Actor) -> None:
    _move(refund, State.DONE)
    refund.done_at, refund.answer = refund.updated_at, answer
    payment = refund.payment
    db.session.flush()
    if payment.refunded_minor >= payment.amount_minor:
        move_payment(payment, PaymentState.REFUNDED)
    audit.record(actor, "order.refund", order, number=order.number, amount_minor=refund.amount_minor,
                 to=refund.destination, automatic=refund.automatic)
    settle(order)
    if refund.closes_order:
        _cancel_refunded(order, actor)
    if not any(_return_outstanding(r) for r in order.refunds):
        order.attention = None  # money came back: what was flagged is settled
    notifications.order_refunded(order, refund)
    webhooks.emit("order.refunded", order=order, refund=refund)


def _cancel_refunded(order: Order, actor: audit.Actor) -> None:
    """Cancel & Refund made: what the order gave is revoked and the order is Cancelled."""
    for grant in order.grants:
        if grant.end_reason != "revoked":
            entitlements.revoke_grant(grant, actor, ledger.because("order_refunded", number=order.number))
    if order.status != OrderState.CANCELLED:
        move_order(order, OrderState.CANCELLED)
    settle(order)


def _return_outstanding(refund: Refund) -> bool:
    """A return of money we did not accept still on its way, or refused by the bank with the money still here:
    another refund made does not settle it."""
    return refund.automatic and (refund.in_flight or (refund.state == State.FAILED
                                                      and refund.payment.refundable_minor > 0))


def _needs_attention(order: Order, refund: Refund, detail: str) -> None:
    order.attention = detail
    notifications.money_needs_attention(order, detail, key=f"refund:{refund.id}")


def _money(refund: Refund) -> str:
    return format_money(refund.amount_minor, refund.currency)
