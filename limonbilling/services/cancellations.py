"""Subscription cancellation requests (DT): the subscriber asks, an agent approves or rejects.

"now" ends the subscription at approval; "period_end" ends it when the
current period runs out, removing any renewal bought ahead.
"""
from flask_babel import gettext as _
from sqlalchemy import select

from ..extensions import db
from ..models import CANCELLATION_TIMINGS, CancellationRequest, Customer
from . import ServiceError, ValidationFailed, audit, entitlements
from .clock import now


def pending_request(customer: Customer) -> CancellationRequest | None:
    return db.session.scalar(select(CancellationRequest).where(
        CancellationRequest.customer_id == customer.id, CancellationRequest.state == "pending"))


def current_period_end(customer: Customer):
    """The end of the period running now, or None when no subscription is running."""
    moment = now()
    running = [p for p in entitlements.subscription_periods(customer) if p.covers(moment)]
    return max(p.effective_end for p in running) if running else None


def request_cancellation(customer: Customer, *, timing: str, reason: str, actor: audit.Actor) -> CancellationRequest:
    errors: dict[str, list[str]] = {}
    if timing not in CANCELLATION_TIMINGS:
        errors["timing"] = [_("Choose when the subscription should end.")]
    reason = (reason or "").strip()
    if not reason:
        errors["reason"] = [_("Tell us why you want to cancel.")]
    if errors:
        raise ValidationFailed(errors)
    if customer.package_type != "subscription" or current_period_end(customer) is None:
        raise ServiceError("no_subscription", _("You have no running subscription to cancel."))
    if pending_request(customer) is not None:
        raise ServiceError("already_requested", _("Your cancellation request is already waiting for our answer."))
    request = CancellationRequest(customer_id=customer.id, timing=timing, reason=reason, state="pending",
                                  created_at=now())
    db.session.add(request)
    db.session.flush()
    audit.record(actor, "cancellation.request", request, timing=timing)
    return request


def _decide(request: CancellationRequest, state: str, note: str, actor: audit.Actor) -> None:
    if request.state != "pending":
        raise ServiceError("already_decided", _("This request has been answered already."))
    request.state, request.decided_at = state, now()
    request.decided_by_id = actor.id if actor.type == "agent" else None
    request.decision_note = (note or "").strip() or None


def approve(request: CancellationRequest, actor: audit.Actor, note: str = "") -> None:
    """End the subscription now or at the end of the running period, as the customer asked."""
    customer = db.session.get(Customer, request.customer_id)
    end = now() if request.timing == "now" else current_period_end(customer)
    _decide(request, "approved", note, actor)
    if end is not None:
        entitlements.end_subscription(customer, end, actor, _("Subscription cancelled on request."))
    request.ends_at = end or now()
    audit.record(actor, "cancellation.approve", request, ends_at=request.ends_at.isoformat())


def reject(request: CancellationRequest, actor: audit.Actor, note: str) -> None:
    if not (note or "").strip():
        raise ValidationFailed({"note": [_("Tell the customer why the request is rejected.")]})
    _decide(request, "rejected", note, actor)
    audit.record(actor, "cancellation.reject", request)


def requests(state: str | None = "pending"):
    statement = select(CancellationRequest).order_by(CancellationRequest.id.desc())
    return statement.where(CancellationRequest.state == state) if state else statement
