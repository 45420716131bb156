"""Card payments through the bank (domain.md §6a): attempts, the bank's callback, reconciliation and expiry.

Whatever tells us the bank's outcome — its signed callback, or its answer to
ORDERSTATUS when the callback never came — goes through `_apply_outcome`,
under the order's lock, so a replay, a late answer and a race all end the same:
money taken for an order that awaits it is accepted; money taken that we do
not accept (half 3-D refused, a second approved attempt, an order cancelled,
set aside as fraud or expired meanwhile) is returned by itself (refunds.py).
"""
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from flask_babel import format_time
from flask_babel import gettext as _
from sqlalchemy import select

from ..clock import now
from ..extensions import db
from ..models import (
    Customer,
    MoneyState,
    Notification,
    Order,
    OrderState,
    Payment,
    PaymentMethod,
    PaymentState,
    Refund,
    RefundDestination,
    RefundState,
)
from ..models.orders import STATUS_FAILURE
from ..payments.base import GatewayError, PaymentGateway, SaleStatus
from . import (
    ServiceError,
    audit,
    ledger,
    notifications,
    orders,
    payments,
    promo_codes,
    purchase_rules,
    refunds,
    settings,
    tokens,
)
from .lifecycle import lock_order, move_order, settle
from .payments import move_payment

ATTEMPT_WINDOW = timedelta(hours=1)  # the customer's card attempts count for an hour (rolling)
# An agent's card order waits this long for the customer to pay through the mailed link, then expires (rule 7).
PAYMENT_LINK_LIFETIME = timedelta(days=7)
# A failed attempt is asked about on every reconciliation in its first hour (a customer goes back to the bank's
# form within minutes), then once an hour for the rest of its day: a bounded number of questions per decline.
RECHECK_HOURLY_AFTER = timedelta(hours=1)


def payment_link_order(token: str, customer: Customer) -> Order:
    """The order a mailed payment link is for, if this customer may pay it now: the link is signed for that
    order and customer, and works until the order is paid, cancelled or expired (`expires_at`)."""
    data = tokens.load(token, "payment-link", max_age=int(PAYMENT_LINK_LIFETIME.total_seconds()))
    order = db.session.get(Order, data.get("o")) if isinstance(data.get("o"), int) else None
    if order is None or order.number != data.get("n"):
        raise ServiceError("link_invalid", _("This payment link is no longer valid: its order does not exist."))
    if order.customer_id != customer.id:
        raise ServiceError("link_other_customer", _(
            "This payment link was sent to another account. Sign out, then open it again and sign in with the "
            "account it was sent to."))
    if order.holds_money:
        raise ServiceError("link_paid", _("Order %(number)s is already paid; the link is no longer needed.",
                                          number=order.number))
    if order.status == OrderState.CANCELLED:
        raise ServiceError("link_cancelled", _("Order %(number)s was cancelled; the link no longer works.",
                                               number=order.number))
    if order.expires_at is not None and order.expires_at <= now():
        raise ServiceError("link_expired", _("The payment link of order %(number)s has expired. Please contact "
                                             "us for a new order.", number=order.number))
    if not order.awaiting_payment:
        raise ServiceError("not_payable", _("This order cannot be paid any more."))
    return order


def has_payment_link(order: Order) -> bool:
    """A card order an agent (or the API) placed, whose payment link was mailed when it was placed."""
    return order.payment_method == PaymentMethod.CARD and db.session.scalar(select(Notification.id).where(
        Notification.order_number == order.number, Notification.event == "payment_link").limit(1)) is not None


def resend_payment_link(order: Order, actor: audit.Actor) -> bool:
    """Mail the card payment link of an order an agent placed again (the customer lost it, or it is about to
    expire): a fresh link, and the order waits PAYMENT_LINK_LIFETIME from now. Refused once the order is paid,
    cancelled or expired. Pressed again within the same minute it sends nothing more; returns whether it sent."""
    order = lock_order(order)
    if not has_payment_link(order):
        raise ServiceError("no_payment_link", _("Only a card order an agent placed has a payment link."))
    moment = now()
    if not order.awaiting_payment or order.expires_at is None or order.expires_at <= moment:
        raise ServiceError("not_payable", _("Order %(number)s is paid, cancelled or expired: its payment link "
                                            "cannot be sent again.", number=order.number))
    order.expires_at = moment + PAYMENT_LINK_LIFETIME
    sent = notifications.payment_link(order, resent_at=moment)
    if sent:
        audit.record(actor, "order.payment_link_resent", order, number=order.number,
                     expires_at=order.expires_at.isoformat())
    return sent


def start_card_payment(order: Order, provider: str) -> Payment:
    """A new card attempt through `provider` (its name) for an order awaiting its money (a cancelled order can
    no longer be paid, nor an agent's order whose payment link expired)."""
    order = lock_order(order)
    if order.status == OrderState.CANCELLED:
        raise ServiceError("not_payable", _("This order was cancelled; start a new one."))
    if not order.awaiting_payment:
        raise ServiceError("not_payable", _("This order cannot be paid any more."))
    moment = now()
    expired = order.expires_at is not None and order.expires_at <= moment
    if expired and has_payment_link(order):  # the agent's offer ends with its link, even before `expire` runs
        raise ServiceError("link_expired", _("The payment link of order %(number)s has expired. Please contact "
                                             "us for a new order.", number=order.number))
    _check_attempt_limits(order, moment)
    if expired:  # a customer's own checkout, not cancelled yet: it gets a new window if it still holds
        _check_still_as_ordered(order)
        order.expires_at = moment + timedelta(minutes=settings.get("card_checkout_minutes"))
    return payments.start_card_attempt(order, provider)


def _check_still_as_ordered(order: Order) -> None:
    """A checkout past its time stopped counting for rule 7, so the customer may have bought something since:
    resumed, it must still be the purchase the customer agreed to (rules 1–4 and 7 again, and the same kind), or
    paying it could forfeit what they bought meanwhile, unasked (also a switch's, which agreed to forfeit only what
    was held when it was placed: orders.given_since). The order is locked, and so is the customer."""
    if order.top_up:
        return
    preview = purchase_rules.preview_purchase(
        ledger.lock_customer(order.customer_id), purchase_rules.Offer.sold(order.package_snapshot, order.quantity),
        allow_off_sale=True, for_order=order)
    if (not preview.allowed or preview.kind != order.kind
            or (preview.forfeits_something and orders.given_since(order))):
        raise ServiceError("checkout_outdated", _(
            "Order %(number)s was left unpaid past its time, and your account has changed since. Please start a "
            "new order.", number=order.number))


def _check_attempt_limits(order: Order, moment: datetime) -> None:
    """Against card testing: at most `card_attempts_per_order` attempts on an order, and at most
    `card_attempts_per_customer_hour` by its customer in the 60 minutes before `moment`.

    The order is locked; the customer is locked too before counting, so parallel attempts on the customer's
    other orders are counted one after the other."""
    if len(order.card_attempts) >= settings.get("card_attempts_per_order"):
        raise ServiceError("card_attempts_order", _(
            "Too many card attempts for this order. Cancel it and order again choosing bank transfer, "
            "or contact us."))
    ledger.lock_customer(order.customer_id)
    limit = settings.get("card_attempts_per_customer_hour")
    recent = list(db.session.scalars(select(Payment.created_at).join(Order).where(
        Order.customer_id == order.customer_id, Payment.method == PaymentMethod.CARD,
        Payment.created_at > moment - ATTEMPT_WINDOW).order_by(Payment.created_at)))
    if len(recent) >= limit:
        retry_at = recent[len(recent) - limit] + ATTEMPT_WINDOW  # when one fewer than the limit is left
        shown = retry_at + timedelta(minutes=1, microseconds=-1)  # rounded up to the minute
        raise ServiceError("card_attempts_hour", _(
            "Too many card attempts in the last hour; try again after %(time)s or choose bank transfer.",
            time=format_time(shown, "HH:mm")), retry_at=retry_at)


@dataclass
class Outcome:
    """What the bank says of one attempt: the money was taken (`taken`), and whether we accept it."""

    taken: bool
    accepted: bool
    refusal: str = ""  # why taken money is not accepted, for the refund row and the audit log
    answer: dict[str, str] = field(default_factory=dict)
    voided: bool = False  # the bank says the sale was voided: nothing to take, and nothing to take later


def apply_card_callback(gateway: PaymentGateway, fields: Mapping[str, str], actor: audit.Actor) -> Order | None:
    """Process a bank callback once, whatever arrives how often; returns the order it names, or None.

    The order is locked first, so a POST and a GET, a callback and a reconciliation, a callback and an agent's
    action are processed one after the other; an attempt already decided is not decided again.
    """
    oid = gateway.reference(fields)[:64]
    found = db.session.execute(select(Payment.id, Payment.order_id).where(Payment.oid == oid)).first()
    if found is None:
        decision = gateway.decide(fields, reference=None, amount_minor=None, currency=None)
        audit.record(actor, "payment.callback_unknown", None, oid=oid, reason=decision.reason)
        if decision.money_taken:  # no order to refund it from: the team returns it in the bank's panel
            notifications.unknown_payment_taken(oid, decision.details)
        return None
    order = lock_order(found.order_id)
    # From the order's payments, which the decision reads anyway (awaiting_payment): one query, and the answer
    # and the new state of the attempt are written in one UPDATE.
    payment = next(attempt for attempt in order.payments if attempt.id == found.id)
    decision = gateway.decide(fields, reference=payment.oid, amount_minor=payment.amount_minor,
                              currency=payment.currency, instalments=payment.instalments)
    if decision.reason == "bad_hash":
        # Not from the bank: the attempt stays as it is so the bank's real answer still counts.
        audit.record(actor, "payment.callback_rejected", order, oid=oid, reason=decision.reason)
        return order
    if (payment.state == PaymentState.CONFIRMED and payment.md_status is None and decision.reason == "md_status"
            and decision.money_taken):  # a failed 3-D try on the same oid (mdStatus 0) says nothing of the sale
        _half_3d_heard_late(order, payment, decision, actor)
        return order
    if payment.state in (PaymentState.CONFIRMED, PaymentState.REFUNDED, PaymentState.CANCELED):
        return order  # already decided (a voided sale has no money left to take): a replay changes nothing
    if not decision.money_taken and payment.state != PaymentState.PENDING:
        return order  # a refusal after the attempt was settled otherwise changes nothing
    if decision.approved and not gateway.callback_signs_amount:
        _approval_by_status(order, payment, decision, gateway, actor)
        return order
    _record_answer(payment, decision)
    refusal = {"md_status": _("half 3-D Secure, which this store does not accept"),
               "amount_mismatch": _("the amount differs from the order's"),
               "currency_mismatch": _("the currency differs from the order's"),
               "instalment_mismatch": _("the number of instalments differs from the order's"),
               }.get(decision.reason or "", "")
    _apply_outcome(order, payment, Outcome(decision.money_taken, decision.approved, refusal), actor)
    return order


def _approval_by_status(order: Order, payment: Payment, decision, gateway: PaymentGateway,
                        actor: audit.Actor) -> None:
    """An approval whose signature does not prove the amount counts as the bank's status shows the sale (its
    amount ours, or returned); without a clear answer the attempt stays as it is, for reconciliation."""
    try:
        outcome = _outcome_from_status(payment, gateway.sale_status(payment.oid))
    except GatewayError:
        outcome = None
    if outcome is None or not outcome.taken:
        audit.record(actor, "payment.callback_unconfirmed", order, oid=payment.oid)
        return
    _record_answer(payment, decision)
    payment.raw = {**payment.raw, "status": {**outcome.answer, "asked_at": now().isoformat()}}
    _apply_outcome(order, payment, outcome, actor)


def _half_3d_heard_late(order: Order, payment: Payment, decision, actor: audit.Actor) -> None:
    """The bank's signed post-back, arriving after the attempt was accepted from its status (ORDERSTATUS does
    not say whether 3-D Secure was full or half), says half 3-D, which the store does not accept. The order may
    be in use by now, so nothing is taken back by itself: agents are told to keep the money or Cancel & Refund.
    The post-back's mdStatus is kept, so a replay of it changes nothing."""
    payment.md_status = decision.details.authentication_status or "?"
    payment.raw = {**(payment.raw or {}), "post_back": decision.raw_fields}
    detail = _("The bank's post-back for %(oid)s came after the payment was accepted from the bank's status, and "
               "says half 3-D Secure, which this store does not accept. Keep the money (mark this as settled) or "
               "Cancel & Refund the order.", oid=payment.oid)
    order.attention = detail
    notifications.money_needs_attention(order, detail, key=f"half-3d:{payment.id}")
    audit.record(actor, "payment.half_3d_after_status", order, oid=payment.oid, md_status=payment.md_status)


def _record_answer(payment: Payment, decision) -> None:
    said = decision.details
    payment.updated_at = now()
    payment.failure_code = decision.reason
    payment.message = decision.message
    payment.trans_id, payment.auth_code, payment.host_ref_num = said.transaction_id, said.auth_code, said.host_reference
    payment.masked_pan, payment.md_status = said.masked_pan, said.authentication_status
    payment.proc_return_code = said.return_code
    payment.raw = decision.raw_fields


def _apply_outcome(order: Order, payment: Payment, outcome: Outcome, actor: audit.Actor) -> None:
    """Take the money, return it, or record the failure; the order is locked."""
    if not outcome.taken:
        if payment.state == PaymentState.PENDING:
            move_payment(payment, PaymentState.CANCELED if outcome.voided else PaymentState.FAILED)
            audit.record(actor, "payment.failed", order, oid=payment.oid, reason=payment.failure_code)
        return
    with db.session.no_autoflush:  # the order was locked just now: its refunds are all in the database
        awaiting = order.awaiting_payment  # (and the attempt's answer goes out with its new state, one UPDATE)
    move_payment(payment, PaymentState.CONFIRMED)
    if outcome.accepted and awaiting:
        orders.payment_confirmed(order, actor)
        return
    reason = outcome.refusal or _not_awaiting_reason(order)
    refunds.start(order, to=RefundDestination.CARD, actor=actor, automatic=True, payment=payment,
                  reason=_("Returned by itself: %(reason)s.", reason=reason))
    payment.message = _("The bank took the payment, but it was not accepted (%(reason)s); it is being returned "
                        "to the card.", reason=reason)
    audit.record(actor, "payment.returned", order, oid=payment.oid, reason=reason)


def _not_awaiting_reason(order: Order) -> str:
    if order.status == OrderState.CANCELLED:
        return _("the order was cancelled before the bank's approval arrived")
    if order.status == OrderState.FRAUD:
        return _("the order was set aside for review before the bank's approval arrived")
    return _("the order was already paid")


# --- asking the bank: reconciliation, "Ask the bank", expiry -------------------------------------------------

def _outcome_from_status(payment: Payment, status: SaleStatus) -> Outcome | None:
    """The bank's status of a sale as an outcome; None when it does not say (the attempt stays as it is)."""
    if status.state == "taken":
        accepted = status.original_minor == payment.amount_minor
        return Outcome(True, accepted, "" if accepted else _("the amount differs from the order's"), status.answer)
    if status.state == "voided":
        return Outcome(False, False, answer=status.answer, voided=True)
    if status.state == "failed":
        return Outcome(False, False, answer=status.answer)
    return None


def ask_bank_about_attempt(payment_id: int, gateway: PaymentGateway, actor: audit.Actor) -> str:
    """Ask the bank (ORDERSTATUS) about one card attempt with no final answer and apply what it says exactly as
    its callback would. Returns a line for the log: the attempt, and what became of it."""
    order_id = db.session.scalar(select(Payment.order_id).where(Payment.id == payment_id))
    order = lock_order(order_id)
    payment = db.session.get(Payment, payment_id)
    if payment.state != PaymentState.PENDING and not payment.rechecked:
        return f"{payment.oid}: already {payment.state}"
    if not gateway.is_set_up():  # switched off for new payments, it still answers for the ones it took
        return f"{payment.oid}: unknown, card payments are not set up"
    try:
        status = gateway.sale_status(payment.oid)
    except GatewayError as error:
        return f"{payment.oid}: unknown, the bank did not answer ({error})"
    outcome = _outcome_from_status(payment, status)
    if outcome is None:
        return f"{payment.oid}: unknown, the bank's status says {status.summary}"
    payment.raw = {**(payment.raw or {}), "status": {**outcome.answer, "asked_at": now().isoformat()}}
    if outcome.taken and payment.rechecked:
        _forget_failed_try(payment)
    payment.auth_code = payment.auth_code or status.auth_code or None
    if not outcome.taken:
        if not payment.rechecked:
            payment.failure_code = STATUS_FAILURE
            payment.message = _("The bank has no completed payment for this attempt.")
    _apply_outcome(order, payment, outcome, actor)
    audit.record(actor, "payment.reconciled", order, oid=payment.oid, state=payment.state)
    return f"{payment.oid}: {payment.state}" + (" (returned)" if payment.refunds else "")


def _forget_failed_try(payment: Payment) -> None:
    """The sale the bank's status shows on a failed attempt is a later try on the same oid: what the failed try
    said (declined, its mdStatus) is not about it. Cleared as on an attempt never answered, so the sale's own
    post-back, when it comes, is heard as one after the status (a half 3-D one is flagged)."""
    payment.failure_code = payment.message = payment.md_status = payment.proc_return_code = None
    payment.trans_id = payment.auth_code = payment.host_ref_num = payment.masked_pan = None


def unanswered_attempts(older_than_minutes: int) -> list[int]:
    """Card attempts sent to the bank at least that long ago with no final answer, and those that failed (the
    bank declined them, or had no sale when asked) for a day after: the customer may have paid on the 3-D page
    since, unheard. A failed one older than an hour only if it was not asked about in the last hour."""
    moment = now()
    rows = db.session.execute(select(Payment.id, Payment.state, Payment.created_at, Payment.raw).where(
        Payment.method == PaymentMethod.CARD, (Payment.state == PaymentState.PENDING) | Payment.rechecked_at(moment),
        Payment.created_at <= moment - timedelta(minutes=older_than_minutes)).order_by(Payment.id))
    return [row.id for row in rows if row.state == PaymentState.PENDING
            or row.created_at > moment - RECHECK_HOURLY_AFTER
            or _last_asked(row.raw) <= moment - RECHECK_HOURLY_AFTER]


def _last_asked(raw: dict | None) -> datetime:
    """When the bank's status was last asked for an attempt (long ago when never)."""
    asked = ((raw or {}).get("status") or {}).get("asked_at")
    return datetime.fromisoformat(asked) if isinstance(asked, str) else datetime.min.replace(tzinfo=UTC)


def orders_with_refunds_in_flight() -> list[int]:
    """Orders with a card refund whose outcome is unknown, or one recorded and not sent yet (whoever sends it
    holds the order's lock, and reconciliation asks the bank's status first, so it is never sent twice)."""
    return list(db.session.scalars(select(Refund.order_id).where(
        Refund.destination == RefundDestination.CARD, Refund.state.in_((RefundState.UNKNOWN, RefundState.CREATED))
    ).distinct().order_by(Refund.order_id)))


def ask_bank_about_refunds(order_id: int, gateway: PaymentGateway, actor: audit.Actor) -> str:
    """Settle the order's card refunds in flight: ask the bank's status first, send again only what it has not
    made. Returns a line for the log."""
    order = lock_order(order_id)
    outcome = refunds.send(order, gateway, actor, ask_first=True)
    return f"order {order.number}: refund {outcome}"


def ask_bank(order: Order, gateway: PaymentGateway, actor: audit.Actor) -> list[str]:
    """The order page's "Ask the bank": every attempt without a final answer and every refund in flight."""
    order = lock_order(order)
    lines = [ask_bank_about_attempt(p.id, gateway, actor) for p in order.pending_attempts]
    if order.refund_in_flight:
        lines.append(ask_bank_about_refunds(order.id, gateway, actor))
    return lines


def stale_checkouts() -> list[int]:
    """Card orders still awaiting their money past their checkout time."""
    return list(db.session.scalars(select(Order.id).where(
        Order.payment_method == PaymentMethod.CARD, Order.status == OrderState.PENDING,
        Order.payment_status.in_((MoneyState.UNPAID, MoneyState.REFUNDED)), Order.expires_at <= now()
    ).order_by(Order.id)))


def expire_checkout(order_id: int, gateway: PaymentGateway, actor: audit.Actor) -> bool:
    """Cancel a card checkout left unpaid past its time (rule 7), after asking the bank about every attempt
    without a final answer: an approval found is taken, and an attempt the bank cannot tell about keeps the
    order waiting. A failed attempt is asked about too (the customer may have paid on its form again within the
    checkout's time, its post-back lost), but does not keep the order waiting. Returns whether it was cancelled."""
    order = lock_order(order_id)
    if not order.awaiting_payment or order.expires_at is None or order.expires_at > now():
        return False
    for attempt in order.pending_attempts + order.rechecked_attempts:
        ask_bank_about_attempt(attempt.id, gateway, actor)
    order = lock_order(order_id)
    if not order.awaiting_payment or order.pending_attempts:
        return False
    move_order(order, OrderState.CANCELLED)
    promo_codes.release_use(order)
    settle(order)
    audit.record(actor, "order.expired", order, number=order.number)
    return True
