"""Subscription cancellation requests (DT): the subscriber asks, an agent approves or rejects.

"now" ends the running period at approval; "period_end" lets it run out.
Renewals the customer already paid for are kept unless the agent refunds them
(to the card or the account balance, through refunds.py), which takes them
away (domain.md §6a). The agents are told of a request, the customer of the
decision and its note.
"""
from datetime import timedelta

from flask_babel import gettext as _
from sqlalchemy import select

from ..clock import now
from ..extensions import db
from ..models import (
    CancellationRequest,
    CancellationState,
    CancellationTiming,
    Customer,
    Order,
    PackageType,
    RefundDestination,
)
from . import (
    ServiceError,
    ValidationFailed,
    audit,
    decisions,
    entitlements,
    holdings,
    ledger,
    notifications,
    purchase_rules,
    refunds,
)
from .lifecycle import lock_order


def pending_request(customer: Customer) -> CancellationRequest | None:
    return db.session.scalar(select(CancellationRequest).where(
        CancellationRequest.customer_id == customer.id, CancellationRequest.state == CancellationState.PENDING))


def request_cancellation(customer: Customer, *, timing: str, reason: str, actor: audit.Actor) -> CancellationRequest:
    errors: dict[str, list[str]] = {}
    if not CancellationTiming.has(timing):
        errors["timing"] = [_("Choose when the subscription should end.")]
    reason = (reason or "").strip()
    if not reason:
        errors["reason"] = [_("Tell us why you want to cancel.")]
    if errors:
        raise ValidationFailed(errors)
    customer = ledger.lock_active_customer(customer.id)  # one waiting request, even when requests arrive at once
    if customer.package_type != PackageType.SUBSCRIPTION or holdings.current_period_end(customer) is None:
        raise ServiceError("no_subscription", _("You have no running subscription to cancel."))
    if pending_request(customer) is not None:
        raise ServiceError("already_requested", _("Your cancellation request is already waiting for our answer."))
    request = CancellationRequest(customer_id=customer.id, timing=timing, reason=reason,
                                  state=CancellationState.PENDING, created_at=now())
    db.session.add(request)
    db.session.flush()
    audit.record(actor, "cancellation.request", request, timing=timing)
    notifications.cancellation_requested(request)
    return request


def renewals_ahead(customer: Customer, after) -> list[tuple]:
    """Subscription periods bought ahead, starting after `after` (not running yet), with the order that sold
    each (None when no order did): paid time a cancellation keeps unless the agent refunds it."""
    rows = []
    for period in holdings.subscription_periods(customer):
        if period.starts_at > after:
            order = db.session.get(Order, period.grant.order_id) if period.grant.order_id else None
            rows.append((period, order))
    return rows


def approve(request: CancellationRequest, actor: audit.Actor, note: str = "",
            refund_renewals: RefundDestination | None = None) -> list[Order]:
    """End the subscription now (the running period is cut) or let the running period run out, as the
    customer asked.

    Renewals bought ahead stay, and the subscription ends when they run out,
    unless `refund_renewals` says where their money goes back: then each
    renewal's order is refunded in full (which takes its period away). Returns
    the orders refunded to the card: the caller commits, then sends them to the bank (refunds.send).
    Orders are locked before the customer, as every order action does.
    """
    request = decisions.decide(CancellationRequest, request.id, CancellationState.APPROVED, actor, note=note)
    customer_id, timing, request_id = request.customer_id, request.timing, request.id
    moment = now()
    ahead = renewals_ahead(db.session.get(Customer, customer_id), moment)
    refunded = []
    if refund_renewals is not None:
        # Every renewal order is locked (by id) before the first refund locks the customer: locking the next
        # order after it would deadlock with an action on that order, which holds it and waits for the customer
        for order_id in sorted(order.id for _period, order in ahead if order is not None):
            lock_order(order_id)
        _refuse_partly_used(ahead)
        for _period, order in sorted(ahead, key=lambda row: row[1].id if row[1] else 0):
            if order is not None and order.refundable_minor > 0:
                refunds.start(order, to=refund_renewals, actor=actor)
                refunded.append(order.id)
    customer = db.session.get(Customer, customer_id)
    request = db.session.get(CancellationRequest, request_id)
    if timing == "now":
        entitlements.end_subscription(customer, moment, actor, ledger.because("subscription_cancelled"))
    end = moment if timing == "now" else holdings.current_period_end(customer) or moment
    kept = [period for period, order in renewals_ahead(customer, moment)
            if order is None or order.id not in refunded]
    request.ends_at = max([end, *(period.effective_end for period in kept)])
    audit.record(actor, "cancellation.approve", request, ends_at=request.ends_at.isoformat(),
                 renewals_kept=len(kept), renewals_refunded=len(refunded))
    notifications.cancellation_decided(request)
    orders = [db.session.get(Order, order_id) for order_id in refunded]
    return orders if refund_renewals == RefundDestination.CARD else []


def _refuse_partly_used(ahead: list[tuple]) -> None:
    """A renewal ahead is refunded in full because none of its time was used. An order accepted again after a
    Cancel or Fraud gave back only the time it had left (entitlements.restoration), placed after the renewals:
    its period ahead is shorter than what it sold, and a full refund would pay back the days already used."""
    for period, order in ahead:
        if order is None or order.refundable_minor <= 0:
            continue
        sold = timedelta(days=purchase_rules.Offer.sold(order.package_snapshot, order.quantity).days)
        if period.effective_end - period.starts_at < sold:
            # A partial refund alone changes nothing else: the order must be cancelled first to take its days
            raise ServiceError("renewal_partly_used", _(
                "Order %(number)s gave back only the days it had left after part of its period was used: refunding "
                "it in full would pay back the days used. Cancel it (that takes its days back), refund what those "
                "days were worth from the order's page, then approve again; or approve without refunding "
                "renewals.", number=order.number))


def reject(request: CancellationRequest, actor: audit.Actor, note: str) -> None:
    if not (note or "").strip():
        raise ValidationFailed({"note": [_("Tell the customer why the request is rejected.")]})
    request = decisions.decide(CancellationRequest, request.id, CancellationState.REJECTED, actor, note=note)
    audit.record(actor, "cancellation.reject", request)
    notifications.cancellation_decided(request)


def latest_request(customer: Customer) -> CancellationRequest | None:
    """The customer's most recent request, to show its state and the agent's note on their page."""
    return db.session.scalar(select(CancellationRequest).where(CancellationRequest.customer_id == customer.id)
                             .order_by(CancellationRequest.id.desc()).limit(1))


def requests(state: str | None = CancellationState.PENDING):
    statement = select(CancellationRequest).order_by(CancellationRequest.id.desc())
    return statement.where(CancellationRequest.state == state) if state else statement
