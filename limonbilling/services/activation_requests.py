"""The public activation form (xcPanel, domain.md §6): someone who paid by bank transfer says so, signed in or
not; an agent approves by choosing the package, which places the order, records the transfer as stated and
activates it, or rejects the request with a reason.

The form never tells who has an account: a new e-mail address gets an account (welcome mail with a
set-password link), a known one gets the request, and the answer is the same. One request per customer waits
at a time; for someone not signed in as that customer a second one is not recorded and the customer is mailed
instead (a refusal on the page would say the address has an account).
"""
import secrets
from datetime import date

from flask_babel import gettext as _
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from ..clock import local_today, now
from ..extensions import db
from ..formatting import format_money
from ..models import ActivationRequest, ActivationState, Agent, Currency, Customer, Order, Package, PaymentMethod
from ..models.accounts import hash_password_for_nobody
from . import (
    ServiceError,
    ValidationFailed,
    audit,
    customers,
    decisions,
    ledger,
    notifications,
    order_actions,
    packages,
    payments,
    placement,
)
from .contacts import normalize_email, normalize_phone

MAX_NOTE = 1000
MAX_REASON = 1000


def form_packages() -> list[Package]:
    """The packages a requester may say they paid for, and an agent may approve with: those on sale."""
    return packages.on_sale()


def _package_on_sale(package_id) -> Package | None:
    return next((package for package in form_packages() if package.id == package_id), None)


def pending_request(customer: Customer) -> ActivationRequest | None:
    return db.session.scalar(select(ActivationRequest).where(
        ActivationRequest.customer_id == customer.id, ActivationRequest.state == ActivationState.PENDING))


def _validate(fields: dict) -> dict:
    """Every field's errors at once; the clean values."""
    errors: dict[str, list[str]] = {}
    clean: dict = {}

    def fail(field: str, message: str) -> None:
        errors.setdefault(field, []).append(message)

    try:
        clean["email"] = normalize_email(fields.get("email") or "")
    except ValueError:
        fail("email", _("Enter a valid e-mail address, like name@example.com."))
    try:
        clean["phone"] = normalize_phone(fields.get("phone") or "")
    except ValueError:
        fail("phone", _("Enter a valid phone number: 0532 123 45 67 or +44 20 7946 0958."))
    for field in ("first_name", "last_name"):
        clean[field] = (fields.get(field) or "").strip()
        if not clean[field]:
            fail(field, _("This field is required."))
        elif len(clean[field]) > customers.MAX_LENGTHS[field]:
            fail(field, _("At most %(n)d characters.", n=customers.MAX_LENGTHS[field]))
    try:
        clean["amount_minor"] = packages.parse_price(fields.get("amount"))
    except ValueError as error:
        fail("amount", str(error))
    currency = fields.get("currency")
    if not Currency.has(currency):
        fail("currency", _("Choose TRY, USD or EUR."))
    paid_on = fields.get("paid_on")
    if not isinstance(paid_on, date):
        fail("paid_on", _("Enter the day you paid, like 2026-03-01."))
    elif paid_on > local_today():
        fail("paid_on", _("The day you paid cannot be in the future."))
    package = None
    if fields.get("package_id"):
        package = _package_on_sale(fields["package_id"])
        if package is None:
            fail("package_id", _("Choose a package from the list."))
        elif Currency.has(currency) and package.currency != currency:
            fail("currency", _("%(package)s is priced in %(currency)s: enter the amount in %(currency)s.",
                               package=package.name, currency=package.currency))
    note = (fields.get("note") or "").strip()
    if len(note) > MAX_NOTE:
        fail("note", _("At most %(n)d characters.", n=MAX_NOTE))
    if errors:
        raise ValidationFailed(errors)
    return {**clean, "currency": currency, "paid_on": paid_on, "package": package, "note": note or None}


def _customer_for(clean: dict, language: str | None, actor: audit.Actor) -> Customer:
    """The account of the address, or a new one (individual, unconfirmed, with a password nobody knows: the
    welcome mail carries the link to choose one). Two forms sent at once with a new address make one account:
    the second insert fails on the unique address and finds the first."""
    def existing() -> Customer | None:
        return db.session.scalar(select(Customer).where(func.lower(Customer.email) == clean["email"]))

    customer = existing()
    if customer is not None:
        hash_password_for_nobody(secrets.token_urlsafe(32))  # a known address costs what a new account does
        return customer
    details = {"account_type": "individual", "first_name": clean["first_name"], "last_name": clean["last_name"],
               "email": clean["email"], "phone": clean["phone"], "language": language}
    try:
        with db.session.begin_nested():
            return customers.register_customer(details, None, actor)
    except IntegrityError:
        return existing()


def submit(fields: dict, *, signed_in: Customer | None = None, language: str | None = None,
           ip: str | None = None) -> ActivationRequest | None:
    """Record the request of the form `fields` (email, phone, first_name, last_name, amount as typed, currency,
    paid_on, package_id, note) and tell the agents; returns it, or None when one already waits for that
    customer and the sender is not signed in as them (the customer is mailed instead).

    The customer's row is locked first, so parallel forms for one customer record one request."""
    clean = _validate(fields)
    actor = (audit.Actor.of(signed_in, ip) if signed_in is not None
             else audit.Actor("system", None, "activation form", ip))
    customer = ledger.lock_active_customer(_customer_for(clean, language, actor).id)  # found before an erasure?
    if pending_request(customer) is not None:
        if signed_in is not None and signed_in.id == customer.id:
            raise ServiceError("already_requested", _(
                "Your activation request is already waiting for our answer. You can send a new one once we "
                "have answered it."))
        notifications.activation_already_waiting(customer)
        return None
    package = clean["package"]
    request = ActivationRequest(
        customer_id=customer.id, email=clean["email"], phone=clean["phone"], amount_minor=clean["amount_minor"],
        currency=clean["currency"], paid_on=clean["paid_on"], package_id=package.id if package else None,
        note=clean["note"], state=ActivationState.PENDING, created_at=now(),
    )
    db.session.add(request)
    db.session.flush()
    audit.record(actor, "activation.request", request, amount_minor=request.amount_minor,
                 currency=request.currency, package=package.name if package else None)
    notifications.activation_form_received(request)
    return request


def _agent(actor: audit.Actor) -> Agent | None:
    return db.session.get(Agent, actor.id) if actor.type == "agent" and actor.id is not None else None


def _request_id(request: ActivationRequest | int) -> int:
    return request if isinstance(request, int) else request.id


def approve(request: ActivationRequest | int, package_id, actor: audit.Actor) -> Order:
    """Approve with the package the agent chose: place the order for the customer (the purchase rules apply),
    record the bank transfer of the order's total on the day the customer stated, accept it (activated, Active;
    the customer gets the package details by e-mail and SMS). One transaction, the request locked first:
    approving twice makes one order. Refused when the stated amount does not cover the order: the request stays
    open.

    Only the order's total is recorded, whatever more the customer says they sent: a payment row is money a
    refund may give back, and the customer's word is not proof of it. What they say they sent above the total
    (`excess_minor`) is left for the agent, who adds it to the account balance with a reason once the bank
    account shows it."""
    request = decisions.lock_pending(ActivationRequest, _request_id(request), ActivationState)
    package = _package_on_sale(package_id)
    if package is None:
        raise ValidationFailed({"package_id": [_("Choose a package from the list.")]})
    if package.currency != request.currency:
        raise ServiceError("currency_differs", _(
            "The customer paid in %(paid)s; %(package)s is priced in %(currency)s. Choose a package in %(paid)s.",
            paid=request.currency, package=package.name, currency=package.currency))
    total = placement.quote(package).total_minor
    if request.amount_minor < total:
        raise ServiceError("amount_short", _(
            "The customer says they paid %(paid)s; %(package)s costs %(total)s. Choose the package they paid "
            "for, or reject the request and tell them why.", paid=format_money(request.amount_minor, request.currency),
            package=package.name, total=format_money(total, package.currency)))
    request_id, customer = request.id, db.session.get(Customer, request.customer_id)
    order = placement.place_agent_order(customer, package, payment_method=PaymentMethod.BANK_TRANSFER,
                                        actor=actor, placed_by=_agent(actor), transfer_arrived=True)
    request = db.session.get(ActivationRequest, request_id)
    request.order_id = order.id  # before the activation: its mail is the approval's (notifications)
    decisions.record(request, ActivationState.APPROVED, actor)
    payments.record(order, PaymentMethod.BANK_TRANSFER, order.amount_minor, actor, received_on=request.paid_on)
    order = order_actions.accept_order(order, actor)
    audit.record(actor, "activation.approve", db.session.get(ActivationRequest, request_id), number=order.number,
                 package=package.name, stated_minor=request.amount_minor, recorded_minor=order.amount_minor)
    return order


def excess_minor(request: ActivationRequest) -> int:
    """What the customer says they sent above the total of the order their approved request placed (not recorded
    as a payment: see `approve`)."""
    order = db.session.get(Order, request.order_id) if request.order_id else None
    return max(request.amount_minor - order.amount_minor, 0) if order is not None else 0


def reject(request: ActivationRequest | int, reason: str, actor: audit.Actor) -> None:
    """Reject with a reason the customer reads in their mail; they may then send a new request."""
    reason = (reason or "").strip()
    if not reason:
        raise ValidationFailed({"reason": [_("Tell the customer why the request is rejected.")]})
    if len(reason) > MAX_REASON:
        raise ValidationFailed({"reason": [_("At most %(n)d characters.", n=MAX_REASON)]})
    request = decisions.decide(ActivationRequest, _request_id(request), ActivationState.REJECTED, actor)
    request.reason = reason
    audit.record(actor, "activation.reject", request)
    notifications.activation_rejected(request)


def requests(state: str | None = ActivationState.PENDING):
    statement = select(ActivationRequest).order_by(ActivationRequest.id.desc())
    return statement.where(ActivationRequest.state == state) if state else statement
