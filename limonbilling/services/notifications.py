"""Who is told what, and when (domain.md §9): each event queues its e-mails and SMS in the outbox.

A message is a row written in the caller's transaction, so a rolled-back
purchase sends nothing and a committed one never loses its mail (the outbox
sender delivers it, see services/outbox.py). Each row's key is the event and
the recipient: the same event queued twice is one message.

Customers are written to in their own language; agents at the addresses of
Settings → General ("E-mail", with "E-mail CC" as CC) in the default language,
and by SMS at the agents' phone of Settings → Notifications.
"""
from collections.abc import Callable
from datetime import datetime, timedelta
from math import ceil

from flask import current_app, render_template
from flask_babel import force_locale, ngettext
from flask_babel import gettext as _
from sqlalchemy import or_, select

from .. import signals
from ..clock import now
from ..extensions import db, insert_ignoring_conflict
from ..links import external_url
from ..models import (
    ActivationRequest,
    Agent,
    CancellationRequest,
    Customer,
    Grant,
    LedgerEntry,
    Notification,
    Order,
    PaymentMethod,
    SubscriptionPeriod,
)
from ..payments.base import AttemptDetails
from . import holdings, invoices, ledger, messaging, settings, tokens, webhooks

# The reminders before a subscription ends, in days; each goes once, the nearest one that applies.
ENDING_REMINDER_DAYS = (1, 7, 30)
# A subscription that ended longer ago than this gets no "ended" mail (e.g. on the first run of `remind`).
ENDED_NOTICE_WITHIN = timedelta(days=7)


def _customer_language(customer: Customer) -> str:
    return customer.language or settings.get("default_language")


def _queue(event: str, event_key: str, *, channel: str, recipient: str, language: str, template: str,
           context: dict, subject: Callable[[], str] | None = None, cc: list[str] | None = None,
           customer_id: int | None = None, order: Order | None = None, sensitive: bool = False) -> bool:
    """Render the message in the recipient's language and add it to the outbox unless it is there already.

    Returns whether it was added: the unique key decides (INSERT … ON CONFLICT DO NOTHING), so a message queued
    before, or by a concurrent transaction first, is not added again."""
    if not recipient:
        return False
    with force_locale(language):
        if channel == "email":
            title = subject()
            body_text = render_template(f"emails/{template}.txt", subject=title, **context)
            body_html = render_template(f"emails/{template}.html", subject=title, **context)
        else:
            title, body_html = "", None
            body_text = render_template(f"sms/{template}.txt", **context).strip()
    added = insert_ignoring_conflict(
        Notification, returning=Notification.id, event=event, event_key=event_key, channel=channel,
        recipient=recipient, cc=cc or [], language=language, subject=title[:255], body_text=body_text,
        body_html=body_html, sensitive=sensitive, customer_id=customer_id,
        order_number=order.number if order is not None else None, state="pending", attempts=0,
        next_attempt_at=now(), created_at=now(),
    ) is not None
    if added and _may_deliver(channel):  # an e-mail with no SMTP server waits for the worker; no sender is woken
        db.session.info["outbox_queued"] = True
    return added


_CONFIGURED = {"email": messaging.smtp_configured, "sms": messaging.sms_configured}


def _may_deliver(channel: str) -> bool:
    """Whether the web process's sender could deliver on `channel` now. A stored setting it cannot read (not
    JSON) must not fail the request that queues the message: the sender is woken and logs the failure, and the
    worker retries, as before this check."""
    try:
        return _CONFIGURED[channel]()
    except ValueError:
        return True


def _to_customer(customer: Customer, event: str, event_key: str, template: str, subject: Callable[[], str],
                 order: Order | None = None, sensitive: bool = False, recipient: str | None = None,
                 **context) -> bool:
    """A mail to the customer, at their address unless `recipient` names another (an address change). An erased
    customer (KVKK) has no address any more: nothing is queued."""
    if customer.erased_at is not None:
        return False
    return _queue(event, event_key, channel="email", recipient=recipient or customer.email,
                  language=_customer_language(customer),
           template=template, subject=subject, customer_id=customer.id, order=order, sensitive=sensitive,
           context={"customer": customer, "order": order, **context})


def _to_agents(event: str, event_key: str, template: str, subject: Callable[[], str], customer: Customer | None,
               order: Order | None = None, **context) -> None:
    """One mail to Settings → General "E-mail", with "E-mail CC" as CC (the CC list alone if no E-mail); about a
    customer, or about none (money nothing here names)."""
    addresses = [settings.get("notification_email"), *settings.get("notification_email_cc")]
    addresses = [address for address in addresses if address]
    if not addresses:
        return
    _queue(event, event_key, channel="email", recipient=addresses[0], cc=addresses[1:],
           language=settings.get("default_language"), template=template, subject=subject,
           customer_id=customer.id if customer is not None else None, order=order,
           context={"customer": customer, "order": order, **context})


def _sms(event: str, event_key: str, phone: str | None, language: str, template: str, customer: Customer,
         order: Order | None = None, **context) -> None:
    """An SMS, only when SMS is switched on in Settings → Notifications."""
    if phone and messaging.sms_configured():
        _queue(event, event_key, channel="sms", recipient=phone, language=language, template=template,
               customer_id=customer.id, order=order, context={"customer": customer, "order": order, **context})


def _order_links(order: Order) -> dict:
    return {
        "order_url": external_url("portal.order_detail", number=order.number),
        "invoice_url": external_url("portal.order_invoice", number=order.number) if order.invoice else None,
        "admin_order_url": external_url("admin.order_detail", number=order.number),
    }


# --- order events ---------------------------------------------------------------------------------

def purchase_activated(order: Order, grant: Grant) -> None:
    """A purchase is activated: the customer (e-mail and SMS), and the agents, with what it gave."""
    customer = db.session.get(Customer, order.customer_id)
    details = {
        "grant": grant, "package": grant.snapshot,  # all the order gave: n × the credits of a quantity
        "credits_now": customer.credits, "expiry": holdings.subscription_expiry(customer)
        if grant.package_type == "subscription" else None, **_order_links(order),
    }
    key = f"order:{order.number}:activated:{grant.id}"
    approved = (db.session.scalar(select(ActivationRequest).where(ActivationRequest.order_id == order.id))
                if order.payment_method == PaymentMethod.BANK_TRANSFER else None)  # the form's orders are transfers
    event = "activation_approved" if approved is not None else "purchase_activated"  # the form's request
    _to_customer(customer, event, key, event,
                 lambda: _("Your %(package)s package is active", package=order.package_name), order,
                 request=approved, sign_in_url=external_url("portal.login"), **details)
    _to_agents("purchase_activated", key, "purchase_activated_agents",
               lambda: _("Purchase: %(package)s for %(customer)s (order %(number)s)", package=order.package_name,
                         customer=customer.display_name, number=order.number), customer, order, **details)
    _sms(event, key, approved.phone if approved is not None else customer.phone, _customer_language(customer),
         event, customer, order, request=approved, **details)


def activation_requested(order: Order) -> None:
    """A customer says a bank transfer is made: the agents check the account and accept the order."""
    customer = db.session.get(Customer, order.customer_id)
    key = f"order:{order.number}:activation_request"
    links = _order_links(order)
    _to_agents("activation_requested", key, "activation_requested",
               lambda: _("Activation request: order %(number)s by %(customer)s", number=order.number,
                         customer=customer.display_name), customer, order, **links)
    _sms("activation_requested", key, settings.get("sms_agent_phone"), settings.get("default_language"),
         "activation_requested", customer, order, **links)


def activation_form_received(request: ActivationRequest) -> None:
    """Someone sent the public activation form: the agents check the account, then approve with a package."""
    customer = db.session.get(Customer, request.customer_id)
    key = f"activation:{request.id}:received"
    links = {"requests_url": external_url("admin.activation_list")}
    _to_agents("activation_form_received", key, "activation_form_received",
               lambda: _("Activation request from %(customer)s", customer=customer.display_name), customer,
               request=request, **links)
    _sms("activation_form_received", key, settings.get("sms_agent_phone"), settings.get("default_language"),
         "activation_form_received", customer, request=request, **links)


def activation_already_waiting(customer: Customer) -> None:
    """The form was sent again for a customer whose request waits (by someone not signed in as them, who is
    not told on the page): tell the customer, at most once an hour."""
    _to_customer(customer, "activation_already_waiting",
                 f"customer:{customer.id}:activation-waiting:{now():%Y-%m-%dT%H}", "activation_already_waiting",
                 lambda: _("Your activation request is already waiting"))


def activation_rejected(request: ActivationRequest) -> None:
    customer = db.session.get(Customer, request.customer_id)
    _to_customer(customer, "activation_rejected", f"activation:{request.id}:rejected", "activation_rejected",
                 lambda: _("Your activation request is not approved"), request=request,
                 form_url=external_url("portal.activate"))


def order_accepted(order: Order) -> None:
    customer = db.session.get(Customer, order.customer_id)
    _to_customer(customer, "order_accepted", f"order:{order.number}:accepted:{now().isoformat()}", "order_accepted",
                 lambda: _("Order %(number)s is accepted", number=order.number), order, **_order_links(order))


def order_cancelled(order: Order) -> None:
    customer = db.session.get(Customer, order.customer_id)
    _to_customer(customer, "order_cancelled", f"order:{order.number}:cancelled:{now().isoformat()}",
                 "order_cancelled", lambda: _("Order %(number)s is cancelled", number=order.number), order,
                 **_order_links(order))


def transfer_reminder(order: Order, days: int, accounts: list) -> bool:
    """The bank transfer for the order has not arrived after `days` days: how to pay, once per order."""
    customer = db.session.get(Customer, order.customer_id)
    return _to_customer(customer, "transfer_reminder", f"order:{order.number}:transfer_reminder", "transfer_reminder",
                        lambda: _("Order %(number)s waits for your bank transfer", number=order.number), order,
                        days=days, cancel_days=settings.get("transfer_cancel_days"), accounts=accounts,
                        **_order_links(order))


def transfer_cancelled(order: Order, days: int) -> None:
    customer = db.session.get(Customer, order.customer_id)
    _to_customer(customer, "transfer_cancelled", f"order:{order.number}:transfer_cancelled", "transfer_cancelled",
                 lambda: _("Order %(number)s is cancelled: no transfer arrived", number=order.number), order,
                 days=days, **_order_links(order))


def order_refunded(order: Order, refund) -> None:
    """A refund is made (each one mails once: a partial refund and the rest later are two mails)."""
    customer = db.session.get(Customer, order.customer_id)
    _to_customer(customer, "order_refunded", f"order:{order.number}:refund:{refund.id}", "order_refunded",
                 lambda: _("Order %(number)s is refunded", number=order.number), order,
                 to_balance=refund.destination == "balance", refund=refund, **_order_links(order))


def order_confirmation(order: Order) -> None:
    """An agent placed the order for the customer and ticked "Send order confirmation"."""
    customer = db.session.get(Customer, order.customer_id)
    _to_customer(customer, "order_confirmation", f"order:{order.number}:confirmation", "order_confirmation",
                 lambda: _("Order confirmation %(number)s", number=order.number), order, **_order_links(order))


def payment_link(order: Order, resent_at: datetime | None = None) -> bool:
    """An agent placed a card order for the customer: the signed link to pay it (card_payments.payment_link_order),
    with the day it stops working. Sent again (`resent_at`), once a minute at most."""
    customer = db.session.get(Customer, order.customer_id)
    key = f"order:{order.number}:payment_link" + (f":{resent_at:%Y%m%d%H%M}" if resent_at is not None else "")
    return _to_customer(customer, "payment_link", key, "payment_link",
                 lambda: _("Pay order %(number)s by card", number=order.number), order, sensitive=True,
                 pay_url=external_url("portal.payment_link", token=tokens.payment_link_token(order)),
                 **_order_links(order))


def invoice_issued(order: Order) -> None:
    """An agent placed the order for the customer and ticked "Send invoice e-mail"."""
    if order.invoice is None:
        return
    invoices.number_now(order.invoice)
    customer = db.session.get(Customer, order.customer_id)
    _to_customer(customer, "invoice_issued", f"order:{order.number}:invoice", "invoice_issued",
                 lambda: _("Invoice for order %(number)s", number=order.number), order, invoice=order.invoice,
                 **_order_links(order))


# --- for the team: orders that need a person (domain.md §6a) ----------------------------------------

def order_set_to_fraud(order: Order) -> None:
    """The order went to Fraud (by the fraud check or by an agent): the team sees its score and the rules that
    fired, and reviews it. Each move to Fraud is its own event (an order may come back from Fraud and go again)."""
    customer = db.session.get(Customer, order.customer_id)
    _to_agents("order_set_to_fraud", f"order:{order.number}:fraud:{_stamp(now())}", "order_set_to_fraud",
               lambda: _("Order %(number)s by %(customer)s is set as fraud", number=order.number,
                         customer=customer.display_name), customer, order,
               threshold=settings.get("fraud_threshold"), checks=list(order.fraud_checks or []),
               **_order_links(order))


def paid_order_awaiting_review(order: Order) -> None:
    """A card order is paid and stays Pending until an agent reviews it (domain.md §6): once per confirmed
    payment, so a replayed bank callback mails once and a new payment after a refund mails again."""
    customer = db.session.get(Customer, order.customer_id)
    db.session.flush()  # a payment recorded in this transaction gets its id, the event's key
    confirmed = order.confirmed_payments
    reference = confirmed[-1].id if confirmed else _stamp(now())
    _to_agents("paid_order_awaiting_review", f"order:{order.number}:awaiting_review:{reference}",
               "paid_order_awaiting_review",
               lambda: _("Paid, waiting for your review: order %(number)s by %(customer)s", number=order.number,
                         customer=customer.display_name), customer, order,
               checks=list(order.fraud_checks or []), **_order_links(order))


def money_needs_attention(order: Order, detail: str, key: str) -> None:
    """Money the bank took for the order could not be returned by itself (e.g. the bank refused the Void or
    the Credit): the team must act. `key` names the problem (e.g. the refund's id), so each one mails once."""
    customer = db.session.get(Customer, order.customer_id)
    _to_agents("money_needs_attention", f"order:{order.number}:attention:{key}", "money_needs_attention",
               lambda: _("Action needed: money for order %(number)s could not be returned", number=order.number),
               customer, order, detail=detail, **_order_links(order))


def unknown_payment_taken(reference: str, details: AttemptDetails) -> None:
    """The bank approved a payment for a reference no order here has (the order was deleted after a decline, and
    the customer paid on the bank's page after all): nothing here can return it, so the team is told once."""
    _to_agents("unknown_payment_taken", f"payment:{reference}:unknown", "unknown_payment_taken",
               lambda: _("Action needed: the bank took a payment for %(reference)s, which matches no order",
                         reference=reference), None, reference=reference, details=details)


def cancellation_requested(request: CancellationRequest) -> None:
    """A subscriber asks to end the subscription: the team decides on the requests page."""
    customer = db.session.get(Customer, request.customer_id)
    _to_agents("cancellation_requested", f"cancellation:{request.id}:requested", "cancellation_requested",
               lambda: _("Cancellation request from %(customer)s", customer=customer.display_name), customer,
               request=request, period_end=holdings.current_period_end(customer),
               requests_url=external_url("admin.cancellation_list"))


def cancellation_decided(request: CancellationRequest) -> None:
    """The customer hears the decision on their cancellation request, when the subscription ends, and the
    agent's note."""
    customer = db.session.get(Customer, request.customer_id)
    approved = request.state == "approved"
    _to_customer(customer, "cancellation_decided", f"cancellation:{request.id}:decided", "cancellation_decided",
                 lambda: _("Your cancellation request is approved") if approved
                 else _("Your cancellation request is not approved"),
                 request=request, approved=approved, ended=approved and request.ends_at is not None
                 and request.ends_at <= now(), subscription_url=external_url("portal.subscription_cancel"))


# --- accounts -------------------------------------------------------------------------------------

def welcome(customer: Customer, set_password: bool = False) -> None:
    """On registration: welcome, with the link that confirms the e-mail address.

    An account an agent or the API opened has a password nobody knows: the
    mail then also carries a link to choose one.
    """
    set_password_url = None
    if set_password:
        set_password_url = external_url("portal.reset_password",
                                        token=tokens.password_reset_token(customer, welcome=True))
    _to_customer(customer, "welcome", f"customer:{customer.id}:welcome", "welcome",
                 lambda: _("Welcome to %(company)s", company=settings.get("company_name")), sensitive=True,
                 verify_url=external_url("portal.verify_email", token=tokens.email_verification_token(customer)),
                 verify_days=current_app.config["EMAIL_VERIFICATION_MAX_AGE"] // 86400,
                 set_password_url=set_password_url)


def email_verification(customer: Customer) -> None:
    """A new confirmation link (the customer asked again, or changed the address)."""
    _to_customer(customer, "email_verification", f"customer:{customer.id}:verify:{now().isoformat()}",
                 "email_verification", lambda: _("Confirm your e-mail address"), sensitive=True,
                 verify_url=external_url("portal.verify_email", token=tokens.email_verification_token(customer)),
                 verify_days=current_app.config["EMAIL_VERIFICATION_MAX_AGE"] // 86400)


def account_exists(customer: Customer) -> None:
    """Someone registered with the address of an existing account: tell its owner how to get in, at most once
    an hour (registering again and again must not flood the owner's inbox)."""
    _to_customer(customer, "account_exists", f"customer:{customer.id}:account-exists:{now():%Y-%m-%dT%H}",
                 "account_exists", lambda: _("You already have an account"),
                 sign_in_url=external_url("portal.login"), reset_url=external_url("portal.forgot_password"))


def email_change(customer: Customer, new_email: str, token: str) -> None:
    """The link that moves the account to `new_email`, sent there (it proves the address is theirs)."""
    _to_customer(customer, "email_change", f"customer:{customer.id}:change-email:{now().isoformat()}",
                 "email_change", lambda: _("Confirm your new e-mail address"), sensitive=True, recipient=new_email,
                 new_email=new_email, confirm_url=external_url("portal.confirm_email_change", token=token),
                 verify_days=current_app.config["EMAIL_VERIFICATION_MAX_AGE"] // 86400)


def email_change_notice(customer: Customer, old_email: str, new_email: str) -> None:
    """Tell the old address that the account is moving (or moved) to another one, and what to do if that
    was not the customer."""
    _to_customer(customer, "email_change_notice", f"customer:{customer.id}:change-notice:{now().isoformat()}",
                 "email_change_notice", lambda: _("Your e-mail address is being changed"), recipient=old_email,
                 new_email=new_email, reset_url=external_url("portal.forgot_password"))


def password_reset(user: Agent | Customer) -> None:
    """A signed link to choose a new password; it expires and works once (see tokens)."""
    endpoint = "portal.reset_password" if user.kind == "customer" else "admin.reset_password"
    language = user.language or settings.get("default_language")
    _queue("password_reset", f"{user.kind}:{user.id}:reset:{now().isoformat()}", channel="email",
           recipient=user.email, language=language, template="password_reset",
           subject=lambda: _("Choose a new password"), sensitive=True,
           customer_id=user.id if user.kind == "customer" else None,
           context={"user": user, "reset_url": external_url(endpoint, token=tokens.password_reset_token(user)),
                    "minutes": current_app.config["PASSWORD_RESET_MAX_AGE"] // 60})


# --- credits and subscriptions --------------------------------------------------------------------

def _warn_when_credits_run_low(kind: str, *, customer_id: int, entry_id: int, before: int, after: int,
                               own_low_credit_threshold: int | None) -> None:
    """Credits running low: warn once per crossing, when a charge or an agent's deduction took the balance
    below the threshold (a forfeit or a refund's reversal is told about by its own message)."""
    if kind not in ("usage", "adjustment") or not ledger.runs_low(own_low_credit_threshold, before, after):
        return
    customer, entry = db.session.get(Customer, customer_id), db.session.get(LedgerEntry, entry_id)
    _to_customer(customer, "credits_low", f"customer:{customer.id}:credits_low:{entry.id}", "credits_low",
                 lambda: ngettext("You have %(num)d credit left", "You have %(num)d credits left", after),
                 credits=after, packages_url=external_url("portal.packages"))
    webhooks.emit("credits.low", customer=customer, entry=entry)


def subscribe() -> None:
    """Listen to the lower layers' signals (create_app calls it; connecting twice is harmless)."""
    signals.credits_moved.connect(_warn_when_credits_run_low)


def queue_reminders() -> int:
    """`billing remind` (cron, idempotent): subscriptions ending and ended. Returns how many were queued.

    Inside the renewal window a subscriber hears at 30, 7 and 1 days before the
    end, each once: the nearest reminder that applies is queued under a key
    naming the end date and the day, so a renewal (a new end) starts over and
    a second run the same day queues nothing.
    """
    moment = now()
    queued = 0
    window_days = settings.get("renewal_window_days")
    subscribers = db.session.scalars(select(Customer).where(Customer.package_type == "subscription"))
    for customer in subscribers:
        expiry = holdings.subscription_expiry(customer)
        if expiry is None or expiry <= moment:
            continue
        days_left = ceil((expiry - moment) / timedelta(days=1))
        reminder = next((days for days in ENDING_REMINDER_DAYS if days_left <= days <= window_days), None)
        if reminder is not None:
            queued += _subscription_ending(customer, expiry, reminder, days_left)
    for period in _periods_ended_since(moment - ENDED_NOTICE_WITHIN, moment):
        customer = db.session.get(Customer, period.customer_id)
        if holdings.subscription_expiry(customer) == period.effective_end:
            key = f"customer:{customer.id}:ended:{_stamp(period.effective_end)}"
            queued += _to_customer(customer, "subscription_ended", key, "subscription_ended",
                                   lambda: _("Your subscription has ended"), expiry=period.effective_end,
                                   packages_url=external_url("portal.packages"))
    return queued


def _stamp(moment: datetime) -> str:
    return moment.strftime("%Y%m%dT%H%M%S")


def _subscription_ending(customer: Customer, expiry: datetime, reminder: int, days_left: int) -> bool:
    return _to_customer(customer, "subscription_ending", f"customer:{customer.id}:ending:{_stamp(expiry)}:{reminder}",
                 "subscription_ending", lambda: _("Your subscription ends in %(days)d days", days=days_left)
                 if days_left > 1 else _("Your subscription ends tomorrow"),
                 expiry=expiry, days_left=days_left, packages_url=external_url("portal.packages"))


def _periods_ended_since(start: datetime, end: datetime) -> list[SubscriptionPeriod]:
    """Periods that ran out (not forfeited by a switch, not revoked with their order) between start and end."""
    rows = db.session.scalars(
        select(SubscriptionPeriod).join(Grant).where(
            SubscriptionPeriod.ends_at > start,
            SubscriptionPeriod.starts_at < end,
            or_(Grant.end_reason.is_(None), Grant.end_reason.notin_(("forfeit", "revoked"))),
        )
    )
    return [period for period in rows if start < period.effective_end <= end
            and period.effective_end > period.starts_at]
