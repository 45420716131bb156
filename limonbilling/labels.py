"""How stored values (order kinds, statuses, payment methods, ledger kinds …) are named to people.

One place, so every page says the same word in the reader's language:
`{{ order.payment_method | label("payment_method") }}`.
"""
from datetime import datetime

from flask_babel import format_date, gettext, ngettext
from flask_babel import lazy_gettext as _l

from .models import (
    ActivationState,
    ActorType,
    AttachmentKind,
    BalanceKind,
    CancellationState,
    Choice,
    ConversationStatus,
    CoveredBy,
    ErasureState,
    InvoiceState,
    Language,
    LedgerKind,
    MoneyState,
    NotificationChannel,
    NotificationState,
    OrderKind,
    OrderState,
    PackageType,
    PaymentMethod,
    PaymentState,
    RefundDestination,
    RefundOperation,
    RefundState,
    RequestKind,
    TopUpInvoicing,
)

# The enum each label group names; a group's words are the labels of its enum's members (models/choices.py).
LABELS: dict[str, type[Choice]] = {
    "channel": NotificationChannel,
    "order_kind": OrderKind,
    "package_type": PackageType,
    "order_status": OrderState,
    "payment_method": PaymentMethod,
    "payment_status": MoneyState,
    "invoice_status": InvoiceState,
    "payment_state": PaymentState,
    "refund_state": RefundState,
    "refund_destination": RefundDestination,
    "refund_operation": RefundOperation,
    "ledger_kind": LedgerKind,
    "balance_kind": BalanceKind,
    "top_up_invoicing": TopUpInvoicing,
    "covered_by": CoveredBy,
    "usage_kind": RequestKind,
    "actor_type": ActorType,
    "conversation_status": ConversationStatus,
    "notification_state": NotificationState,
    "cancellation_state": CancellationState,
    "erasure_state": ErasureState,
    "activation_state": ActivationState,
    "attachment_kind": AttachmentKind,
    "language": Language,
}
# What customers see of their own order's status: an order kept aside for fraud is "under review".
CUSTOMER_ORDER_STATUS = {OrderState.FRAUD: _l("Under review")}


def label(value: str | None, group: str) -> str:
    """The name of a stored value; an unknown value shows as it is rather than breaking the page."""
    member = LABELS[group]._value2member_map_.get(value)
    return str(member.label) if member is not None else value or ""


def customer_order_status(order) -> str:
    """The order's status as its customer reads it: paid and waiting for an agent's review is "Paid — being
    reviewed", not "Pending" beside "Paid"."""
    if order.awaits_review:
        return str(_l("Paid — being reviewed"))
    return str(CUSTOMER_ORDER_STATUS.get(order.status) or label(order.status, "order_status"))


# The bank's ProcReturnCode of a declined card payment, by what the customer can do about it.
DECLINE_CODES = {"51": "funds", "61": "funds", "33": "expired", "54": "expired"}
DECLINE_ADVICE = {
    "funds": _l("Your bank declined the payment: the card's balance or limit is not enough. Try another card, "
                "or ask your bank to raise the limit."),
    "expired": _l("Your bank says the card has expired. Check the expiry date or try another card."),
    "3d_secure": _l("The bank's 3-D Secure check did not succeed. Try again and complete the check on your bank's "
                    "page (e.g. the code it sends by SMS), or try another card."),
    "other": _l("Your bank declined the payment. Check the card details or try another card."),
}


def customer_decline(payment) -> str:
    """What a customer reads of a failed card attempt: plain advice chosen from the bank's mdStatus (the attempt
    failed 3-D Secure) and ProcReturnCode. The bank's own text (e.g. "Red-Onaylanmadı (Do not honour)") is for
    agents only."""
    if payment.failure_code == "md_status":
        return str(DECLINE_ADVICE["3d_secure"])
    return str(DECLINE_ADVICE[DECLINE_CODES.get(payment.proc_return_code or "", "other")])


def customer_invoice_status(invoice) -> str:
    """The invoice's status as its customer reads it. An order under review (Fraud) may still go ahead, so its
    invoice is "On hold" to the customer, never "Cancelled"; agents see the stored status."""
    order = invoice.order
    if order is not None and order.status == OrderState.FRAUD and invoice.status == InvoiceState.CANCELLED:
        return str(_l("On hold"))
    return label(invoice.status, "invoice_status")


# Why the system wrote a ledger row: a code and its arguments, worded when read (ledger_reason)
LEDGER_REASONS = {
    "credits_forfeited": lambda a: gettext("Credits forfeited on switching to a subscription."),
    "subscription_forfeited": lambda a: gettext(
        "Subscription until %(date)s forfeited on switching to credits.",
        date=format_date(datetime.fromisoformat(a["until"]), "long")),
    "order_cancelled": lambda a: gettext("Order %(number)s cancelled.", number=a["number"]),
    "order_under_review": lambda a: gettext("Order %(number)s is under review.", number=a["number"]),
    "order_refunded": lambda a: gettext("Order %(number)s refunded.", number=a["number"]),
    "subscription_cancelled": lambda a: gettext("Subscription cancelled on request."),
    "credits_already_used": lambda a: ngettext(
        "%(num)d of the %(granted)d credits was already used and cannot be taken back.",
        "%(num)d of the %(granted)d credits were already used and cannot be taken back.",
        a["num"], granted=a["granted"]),
}


def ledger_reason(entry) -> str:
    """Why a ledger row was written, in the reader's language: the system stores a code and its arguments (the
    customer who caused a forfeit and the agent who reads it may speak different languages); an agent's
    adjustment keeps the agent's own words, as do rows written before codes."""
    if entry.reason_code:
        return LEDGER_REASONS[entry.reason_code](entry.reason_args or {})
    return entry.reason or ""


def balance_reason(entry) -> str:
    """Why an account-balance row was written, in the reader's language: a payment or a refund of an order is
    named from the row's kind and order; an agent's adjustment keeps the agent's words, as do older rows."""
    if entry.reason:
        return entry.reason
    if entry.order is not None and entry.kind == "payment":
        return gettext("Order %(number)s", number=entry.order.number)
    if entry.order is not None and entry.kind == "refund":
        return gettext("Refund of order %(number)s", number=entry.order.number)
    if entry.order is not None and entry.kind in ("top_up", "top_up_back", "top_up_kept"):
        return gettext("Top-up order %(number)s", number=entry.order.number)
    return ""
