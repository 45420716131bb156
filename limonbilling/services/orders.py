"""Orders (domain.md §6): creating them, paying them by card, and activating what they sold.

An order keeps the package as sold (`package_snapshot`) and stays Pending
until an agent reviews it, even when a card payment already activated it.
"""
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from flask import current_app
from flask_babel import gettext as _
from sqlalchemy import select

from ..extensions import db
from ..models import Agent, Customer, Order, OrderStatus, Package, PaymentAttempt, PromoCode
from ..payments.nestpay import NestPayError
from . import ServiceError, audit, balance, entitlements, fraud, invoices, notifications, promo_codes, settings
from .clock import now

NUMBER_DIGITS = 10


def new_order_number() -> str:
    """A random 10-digit number that never starts with 0 and does not reveal how many orders exist."""
    while True:
        number = str(secrets.randbelow(9 * 10 ** (NUMBER_DIGITS - 1)) + 10 ** (NUMBER_DIGITS - 1))
        if db.session.scalar(select(Order.id).where(Order.number == number)) is None:
            return number


AGENT_PAYMENT_METHODS = ("manual", "bank_transfer", "account_balance")


def checkout_refusal(customer: Customer) -> str | None:
    """Why the customer may not check out at all now (DT: identity verification), or None."""
    if (settings.get("require_identity_verification") and customer.account_type == "individual"
            and not customer.identity_verified):
        return _("Your identity must be verified by our team before you can buy a package. "
                 "Please contact support.")
    return None


@dataclass
class Quote:
    """What an order of the package costs: price, promo discount, VAT (inside the total) and total."""

    price_minor: int
    discount_minor: int
    vat_rate_percent: int
    vat_minor: int
    total_minor: int
    currency: str
    promo: PromoCode | None


def quote(package: Package, promo_code: str | None = None, price_minor: int | None = None) -> Quote:
    """The price of the package now, with the promo code's discount (a bad code raises ServiceError)."""
    price = package.price_minor if price_minor is None else price_minor
    promo, discount = None, 0
    if promo_code and promo_code.strip():
        promo, discount = promo_codes.check(promo_code, package, price)
    vat_rate, vat, total = invoices.order_totals(price - discount)
    return Quote(price, discount, vat_rate, vat, total, package.currency, promo)


def create_order(
    customer: Customer, package: Package, *, payment_method: str, actor: audit.Actor, ip: str | None = None,
    promo_code: str | None = None, placed_by: Agent | None = None, price_override_minor: int | None = None,
    create_invoice: bool = True, send_confirmation: bool = False, send_invoice: bool = False,
) -> Order:
    """Start an order for the package if the rules allow it now (rules 1–4 and 7).

    A customer's own order (the actor is the customer) must pass the identity
    rule and is fraud-checked: at the threshold it goes to Fraud and nothing
    happens to it. A card order awaits payment and expires after
    `card_checkout_minutes` so an abandoned checkout does not block (rule 7).
    Paying from the account balance pays it at once. An order placed for the
    customer by an agent (`placed_by`) or the API is not fraud-checked and may
    override the price; a manual or balance one is paid, activated and Active
    at once, a bank-transfer one waits for Accept. The agent's options
    `send_confirmation` and `send_invoice` mail the order confirmation and the
    invoice to the customer.
    """
    by_customer = actor.type == "customer"
    if by_customer:
        refusal = checkout_refusal(customer)
        if refusal:
            raise ServiceError("identity_not_verified", refusal)
    elif payment_method not in AGENT_PAYMENT_METHODS:
        raise ServiceError("payment_method", _("An agent places orders paid manually, by bank transfer or "
                                               "from the account balance."))
    customer = entitlements.lock_customer(customer.id)
    preview = entitlements.preview_purchase(customer, package)
    if not preview.allowed:
        raise entitlements.PurchaseRefused(preview)
    moment = now()
    has_orders = db.session.scalar(select(Order.id).where(Order.customer_id == customer.id).limit(1)) is not None
    price = quote(package, promo_code, price_override_minor)
    if price.promo is not None:
        promo_codes.take_use(price.promo)
    order = Order(
        number=new_order_number(), customer_id=customer.id, created_at=moment, customer_was_new=not has_orders,
        kind=preview.kind, package_id=package.id, package_snapshot=package.snapshot(),
        promo_code_id=price.promo.id if price.promo else None, promo_code=price.promo.code if price.promo else None,
        discount_minor=price.discount_minor, amount_minor=price.total_minor, vat_minor=price.vat_minor,
        vat_rate_percent=price.vat_rate_percent,
        currency=package.currency, payment_method=payment_method, payment_status="unpaid", status="pending",
        ip=ip, placed_by_agent_id=placed_by.id if placed_by else None,
        price_overridden=price_override_minor is not None and price_override_minor != package.price_minor,
        expires_at=moment + timedelta(minutes=settings.get("card_checkout_minutes"))
        if payment_method == "card" else None,
    )
    db.session.add(order)
    if create_invoice:
        invoices.create_for_order(order)
    db.session.flush()
    audit.record(actor, "order.create", order, number=order.number, package=package.name,
                 method=payment_method, kind=preview.kind, agent=placed_by.email if placed_by else None)
    if by_customer and fraud.is_fraud(order, customer):
        _set_status(order, "fraud")
        invoices.set_status(order, "cancelled")
        promo_codes.give_back_use(order)
        audit.record(actor, "order.fraud_check", order, number=order.number, score=order.fraud_score)
        return order
    if payment_method == "account_balance":
        _pay_from_balance(order, actor)
    elif payment_method == "manual":
        mark_paid(order, actor)
    if not by_customer and order.payment_status == "paid" and order.activated:
        _set_status(order, "active")
    if send_confirmation:
        notifications.order_confirmation(order)
    if send_invoice:
        notifications.invoice_issued(order)
    return order


def _pay_from_balance(order: Order, actor: audit.Actor) -> None:
    """Take the total from the customer's balance in the order's currency, then the order is paid."""
    if order.amount_minor:
        balance.move(order.customer_id, order.currency, -order.amount_minor, "payment", order=order,
                     reason=_("Order %(number)s", number=order.number))
    mark_paid(order, actor)


def _set_status(order: Order, status: str) -> None:
    """A core status change; it replaces any custom status an agent set."""
    order.status = status
    order.custom_status_id = None


def start_card_payment(order: Order, gateway: str = "nestpay") -> PaymentAttempt:
    """A new payment attempt for an unpaid order; its `oid` is what the bank sees and sends back."""
    if order.payment_status != "unpaid" or order.status not in ("pending", "cancelled"):
        raise ServiceError("not_payable", _("This order cannot be paid any more."))
    if order.status == "cancelled":
        raise ServiceError("not_payable", _("This order was cancelled; start a new one."))
    moment = now()
    if order.expires_at is not None and order.expires_at <= moment:
        order.expires_at = moment + timedelta(minutes=settings.get("card_checkout_minutes"))
    attempt = PaymentAttempt(
        order=order, gateway=gateway, oid=f"{order.number}-{len(order.attempts) + 1}", state="pending",
        amount_minor=order.amount_minor, currency=order.currency, created_at=moment, updated_at=moment,
    )
    db.session.add(attempt)
    db.session.flush()
    return attempt


def apply_card_callback(gateway, fields: Mapping[str, str], actor: audit.Actor) -> Order | None:
    """Process a bank callback once, whatever arrives how often (idempotent by the attempt's state).

    Returns the order the callback names, or None when it names none of ours.
    The attempt row is locked, so a POST and a GET arriving together are
    processed one after the other and the second finds nothing to do.
    """
    oid = str(fields.get("oid") or fields.get("ReturnOid") or "")
    attempt = db.session.scalars(
        select(PaymentAttempt).where(PaymentAttempt.oid == oid).with_for_update()
        .execution_options(populate_existing=True)
    ).first()
    awaiting = attempt is not None and attempt.state == "pending"
    decision = gateway.decide(
        fields,
        oid=attempt.oid if awaiting else None,
        amount_minor=attempt.amount_minor if awaiting else None,
        currency=attempt.currency if awaiting else None,
    )
    if attempt is None:
        audit.record(actor, "payment.callback_unknown", None, oid=oid[:64], reason=decision.reason)
        return None
    order = attempt.order
    if not awaiting:
        return order  # already decided: a replay changes nothing
    if decision.reason == "bad_hash":
        # Not from the bank: the attempt stays pending so the bank's real answer still counts.
        audit.record(actor, "payment.callback_rejected", order, oid=oid, reason=decision.reason)
        return order
    _record_answer(attempt, decision)
    if decision.approved:
        attempt.state = "confirmed"
        attempt.confirmed_at = now()
        mark_paid(order, actor)
    else:
        attempt.state = "failed"
        audit.record(actor, "payment.failed", order, oid=oid, reason=decision.reason)
    return order


def _record_answer(attempt: PaymentAttempt, decision) -> None:
    fields = decision.attempt_fields
    attempt.updated_at = now()
    attempt.failure_code = decision.reason
    attempt.message = decision.message
    attempt.trans_id = fields.get("TransId")
    attempt.auth_code = fields.get("AuthCode")
    attempt.host_ref_num = fields.get("HostRefNum")
    attempt.masked_pan = fields.get("MaskedPan")
    attempt.md_status = fields.get("mdStatus")
    attempt.proc_return_code = fields.get("ProcReturnCode")
    attempt.raw = decision.raw_fields


def mark_paid(order: Order, actor: audit.Actor) -> None:
    """The money arrived: the order is Paid, and its package is activated when auto-activation is on.

    A card order stays Pending for an agent's review either way. If the rules
    refuse the activation now, the order keeps its payment and a note for the agent.
    """
    order.payment_status = "paid"
    order.paid_at = now()
    invoices.set_status(order, "paid")
    if order.status == "cancelled":
        _set_status(order, "pending")  # a late payment of an expired checkout reopens it for review
        if order.promo_code_id is not None:
            try:
                promo_codes.take_use_again(order)
            except ServiceError:
                pass  # the money arrived: the order keeps its discount even if the code is used up now
    audit.record(actor, "order.paid", order, number=order.number, method=order.payment_method)
    if order.payment_method != "card" or settings.get("auto_activate_card"):
        activate_order(order, actor)


def activate_order(order: Order, actor: audit.Actor) -> bool:
    """Give the customer what the order sold (once). Returns False when the rules refuse it now."""
    if order.grant_id is not None:
        return True
    customer = db.session.get(Customer, order.customer_id)
    try:
        grant = entitlements.activate_package(
            customer, entitlements.Offer.sold(order.package_snapshot), source=f"order {order.number}",
            actor=actor, for_order=order,
        )
    except entitlements.PurchaseRefused as refused:
        note = _("Activation refused: %(reason)s", reason=refused.message)
        order.notes = f"{order.notes}\n{note}" if order.notes else note
        audit.record(actor, "order.activation_refused", order, reason=refused.code)
        return False
    order.grant_id = grant.id
    notifications.purchase_activated(order, grant)
    return True


def customer_order(customer: Customer, number: str) -> Order | None:
    """The customer's own order by its number; another customer's order is None."""
    return db.session.scalar(select(Order).where(Order.number == number, Order.customer_id == customer.id))


def customer_orders(customer: Customer):
    return select(Order).where(Order.customer_id == customer.id).order_by(Order.id.desc())


def expire_card_checkouts() -> int:
    """Cancel unpaid card checkouts past their time (cron); a late approved callback still reopens one."""
    moment = now()
    stale = db.session.scalars(select(Order).where(
        Order.payment_method == "card", Order.payment_status == "unpaid", Order.status == "pending",
        Order.expires_at <= moment,
    ))
    count = 0
    for order in stale:
        _set_status(order, "cancelled")
        invoices.set_status(order, "cancelled")
        promo_codes.give_back_use(order)
        audit.record(audit.Actor.system("expiry"), "order.expired", order, number=order.number)
        count += 1
    return count


def cancel_unpaid_order(order: Order, actor: audit.Actor) -> None:
    """A customer gives up an order that was never paid (nothing to revoke, nothing to refund).

    Its payment attempts stay as they are: should the bank still approve one, the
    payment is recorded and the order reopens for review (see mark_paid).
    """
    if order.payment_status != "unpaid" or order.status != "pending":
        raise ServiceError("not_cancellable", _("Only an unpaid, pending order can be cancelled here."))
    _set_status(order, "cancelled")
    invoices.set_status(order, "cancelled")
    promo_codes.give_back_use(order)
    audit.record(actor, "order.cancel_unpaid", order, number=order.number)


# --- agent actions (WHMCS): each one transaction, audited ------------------------------------------

def _revoke(order: Order, actor: audit.Actor, reason: str) -> None:
    if order.grant is not None:
        entitlements.revoke_grant(order.grant, actor, reason)


def accept_order(order: Order, actor: audit.Actor) -> None:
    """Accept: activate what the order sold if it is not active yet, and mark the order Active.

    A bank-transfer or manual order is paid by accepting it; an unpaid card order cannot be accepted.
    """
    if order.status != "pending":
        raise ServiceError("not_pending", _("Only a pending order can be accepted."))
    if order.payment_status == "unpaid":
        if order.payment_method == "card":
            raise ServiceError("unpaid", _("The card payment has not arrived; the order cannot be accepted."))
        order.payment_status = "paid"
        order.paid_at = now()
        invoices.set_status(order, "paid")
    was_active = order.grant_id is not None
    if not activate_order(order, actor):
        raise ServiceError("activation_refused", order.notes.splitlines()[-1])
    _set_status(order, "active")
    audit.record(actor, "order.accept", order, number=order.number)
    if was_active:  # otherwise the activation mail just queued says it all
        notifications.order_accepted(order)


def _revoke_and_set(order: Order, status: str, actor: audit.Actor, already: str, reason: str) -> None:
    """Cancel and Set as Fraud: revoke what the order granted, then the status; the invoice is Cancelled."""
    if order.status == status:
        raise ServiceError(f"already_{status}", already)
    _revoke(order, actor, reason)
    if order.status not in ("cancelled", "fraud"):
        promo_codes.give_back_use(order)
    _set_status(order, status)
    invoices.set_status(order, "cancelled")
    audit.record(actor, f"order.{status}", order, number=order.number)


def cancel_order(order: Order, actor: audit.Actor) -> None:
    """Cancel: revoke what the order granted; the money stays where it is (see refund_order)."""
    _revoke_and_set(order, "cancelled", actor, _("This order is already cancelled."),
                    _("Order %(number)s cancelled.", number=order.number))
    notifications.order_cancelled(order)


def set_fraud(order: Order, actor: audit.Actor) -> None:
    """Set as Fraud: revoke what the order granted and keep it aside."""
    _revoke_and_set(order, "fraud", actor, _("This order is already marked as fraud."),
                    _("Order %(number)s marked as fraud.", number=order.number))


def back_to_pending(order: Order, actor: audit.Actor) -> None:
    """Back to Pending, from Fraud or Cancelled. What was revoked stays revoked until the order is accepted."""
    if order.status not in ("fraud", "cancelled"):
        raise ServiceError("not_reopenable", _("Only a cancelled or fraud order can go back to pending."))
    if order.payment_status == "unpaid" and order.promo_code_id is not None:
        promo_codes.take_use_again(order)
    _set_status(order, "pending")
    invoices.set_status(order, "unpaid")
    if order.grant is not None and order.grant.end_reason == "revoked":
        order.grant_id = None  # accepting activates it again, as a new grant
    audit.record(actor, "order.pending", order, number=order.number)


def delete_order(order: Order, actor: audit.Actor) -> None:
    """Delete: irreversible; the audit log keeps that it happened and what the order was."""
    if order.grant is not None and order.grant.ended_at is None:
        raise ServiceError("still_active", _("Cancel the order first: what it granted is still active."))
    audit.record(actor, "order.delete", order, number=order.number, customer_id=order.customer_id,
                 package=order.package_name, amount_minor=order.amount_minor, currency=order.currency,
                 status=order.status, payment_status=order.payment_status,
                 invoice=order.invoice.number if order.invoice else None)
    invoices.detach_for_deletion(order)
    db.session.delete(order)


def bulk_set_status(orders: list[Order], status: str, actor: audit.Actor) -> int:
    """Bulk actions change the status only: no gateway and no entitlement command runs (WHMCS).

    `status` is a core status or "custom:<id>" for an agent's own status.
    """
    custom = None
    if status.startswith("custom:") and status[7:].isdigit():
        custom = db.session.get(OrderStatus, int(status[7:]))
    if custom is None and status not in ("pending", "active", "fraud", "cancelled"):
        raise ServiceError("unknown_status", _("Choose a status from the list."))
    for order in orders:
        if custom is None:
            _set_status(order, status)
        else:
            order.status, order.custom_status_id = custom.counts_as, custom.id
    audit.record(actor, "order.bulk_status", None, status=custom.name if custom else status,
                 numbers=[o.number for o in orders])
    return len(orders)


# --- Cancel & Refund through the gateway ---------------------------------------------------------

def _bank_day(moment: datetime) -> date:
    """The bank's calendar day (Turkish banks settle at the end of the day in Istanbul time)."""
    return moment.replace(tzinfo=UTC).astimezone(ZoneInfo(current_app.config["BABEL_DEFAULT_TIMEZONE"])).date()


def refund_plan(order: Order) -> str | None:
    """What a refund would do now: "void" for a payment of today, "credit" afterwards, None if nothing to refund."""
    attempt = _refundable_attempt(order)
    if attempt is None:
        return None
    return "void" if _bank_day(attempt.confirmed_at or attempt.updated_at) == _bank_day(now()) else "credit"


def _refundable_attempt(order: Order) -> PaymentAttempt | None:
    return next((a for a in order.attempts if a.state == "confirmed"), None)


def _already_refunded(status) -> bool:
    """An ORDERSTATUS answer that shows the sale voided or (partly) refunded."""
    extra = status.extra
    if extra.get("TRANS_STAT") in ("V", "CNCL"):
        return True
    captured, original = extra.get("CAPTURE_AMT", ""), extra.get("ORIG_TRANS_AMT", "")
    return captured.isdigit() and original.isdigit() and int(captured) < int(original)


def refund_order(order: Order, gateway, actor: audit.Actor) -> str:
    """Cancel & Refund: give the money back through the bank, then revoke what the order granted.

    Void on the payment's day, Credit afterwards; if the bank says the other one
    applies (settled already / not settled yet), that one is used. A timeout or
    an unreadable answer leaves the refund "unknown" (returned as such, to be
    committed): the next try asks the bank for the order's status first, so
    nothing is refunded twice. Returns "refunded" or "unknown".
    """
    attempt = _refundable_attempt(order)
    if attempt is None or order.payment_status != "paid" or order.payment_method != "card":
        raise ServiceError("nothing_to_refund", _("This order has no card payment to refund."))
    try:
        if attempt.refund_status == "unknown" and _already_refunded(gateway.status(attempt.oid)):
            answer = None
        else:
            answer = _void_or_credit(gateway, attempt, refund_plan(order))
    except NestPayError as error:
        attempt.refund_status = "unknown"
        attempt.refund_answer = str(error)
        audit.record(actor, "order.refund_unknown", order, number=order.number, error=str(error))
        return "unknown"
    if answer is not None and not answer.succeeded:
        raise ServiceError("refund_declined", _("The bank refused the refund: %(message)s",
                                                message=answer.err_msg or answer.proc_return_code))
    attempt.state = "refunded"
    attempt.refund_status = "done"
    attempt.refund_answer = answer.err_msg if answer else "found refunded by a status query"
    attempt.updated_at = now()
    order.payment_status = "refunded"
    _revoke(order, actor, _("Order %(number)s refunded.", number=order.number))
    _set_status(order, "cancelled")
    invoices.set_status(order, "refunded")
    audit.record(actor, "order.refund", order, number=order.number, amount_minor=attempt.amount_minor)
    notifications.order_refunded(order, to_balance=False)
    return "refunded"


def _void_or_credit(gateway, attempt: PaymentAttempt, plan: str):
    if plan == "void":
        answer = gateway.void(attempt.oid)
        if not answer.succeeded:  # settled already: the bank wants a Credit
            answer = gateway.refund(attempt.oid, attempt.amount_minor, attempt.currency)
    else:
        answer = gateway.refund(attempt.oid, attempt.amount_minor, attempt.currency)
        if answer.proc_return_code == "99" and answer.extra.get("ERRORCODE") == "CORE-2508":
            answer = gateway.void(attempt.oid)  # not settled yet: a Void cancels it
    return answer


def refund_to_balance(order: Order, actor: audit.Actor) -> None:
    """Cancel & Refund to the customer's account balance: no bank involved, the money stays with us."""
    if order.payment_status != "paid" or order.amount_minor == 0:
        raise ServiceError("nothing_to_refund", _("This order has no payment to refund."))
    if any(attempt.refund_status == "unknown" for attempt in order.attempts):
        raise ServiceError("refund_unknown", _("A bank refund of this order is unresolved; retry it first."))
    balance.move(order.customer_id, order.currency, order.amount_minor, "refund", order=order,
                 agent_id=actor.id if actor.type == "agent" else None,
                 reason=_("Refund of order %(number)s", number=order.number))
    order.payment_status = "refunded"
    _revoke(order, actor, _("Order %(number)s refunded.", number=order.number))
    _set_status(order, "cancelled")
    invoices.set_status(order, "refunded")
    audit.record(actor, "order.refund", order, number=order.number, amount_minor=order.amount_minor,
                 to="balance")
    notifications.order_refunded(order, to_balance=True)
