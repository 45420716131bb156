"""Requests a customer makes and an agent answers once: a subscription cancellation (cancellations.py), a KVKK
erasure (privacy.py), a bank-transfer activation from the public form (activation_requests.py).

The request is re-read with its row locked and decided only while it is still pending, so a second click, or
another agent at the same moment, is refused and the decision is recorded once, in the caller's transaction
(a refusal later in it rolls the decision back with everything else).
"""
from enum import StrEnum

from flask_babel import gettext as _
from sqlalchemy import select

from ..clock import now
from ..extensions import db
from ..models import ActorType
from . import ServiceError, audit


def lock_pending(model, request_id: int, states: type[StrEnum]):
    """The `model` row `request_id` re-read with its row locked; refused unless it is still pending."""
    request = db.session.execute(select(model).where(model.id == request_id).with_for_update()
                                 .execution_options(populate_existing=True)).scalar_one_or_none()
    if request is None:
        raise ServiceError("not_found", _("This request no longer exists."))
    if request.state != states.PENDING:
        raise ServiceError("already_decided", _("This request has been answered already."))
    return request


def record(request, state: StrEnum, actor: audit.Actor, *, note: str | None = None) -> None:
    """Who decided the locked, pending `request`, when, and how; `note` is the agent's words for the customer
    where the model keeps them."""
    request.state, request.decided_at = state, now()
    request.decided_by_id = actor.id if actor.type == ActorType.AGENT else None
    if note is not None:
        request.decision_note = note.strip() or None


def decide(model, request_id: int, state: StrEnum, actor: audit.Actor, *, note: str | None = None):
    """`lock_pending`, then `record` the decision at once."""
    request = lock_pending(model, request_id, type(state))
    record(request, state, actor, note=note)
    return request
