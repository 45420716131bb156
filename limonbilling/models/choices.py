"""Every closed set of stored values: one StrEnum per concept, each value with the word people read for it.

Everything else is made from these: a column's CHECK constraint (`Currency.check("currency")`), the API's
OpenAPI enums (`list(Currency)`), form choices and the page labels (`value | label("currency")`). A new value
is one line here, plus a migration for the CHECK (tests/unit/test_choices.py compares the schema).
The order, payment, refund and invoice states live beside their transition tables in `lifecycle.py`.
"""
from enum import StrEnum

from flask_babel import lazy_gettext as _l


class Choice(StrEnum):
    """A StrEnum whose members carry a label: `NEW = "new", _l("New")`. The label defaults to the value."""

    def __new__(cls, value: str, label=None):
        member = str.__new__(cls, value)
        member._value_ = value
        member.label = value if label is None else label
        return member

    @classmethod
    def has(cls, value) -> bool:
        """Whether `value` is one of the stored values (on Python 3.11, `in` takes members only)."""
        return isinstance(value, str) and value in cls._value2member_map_

    @classmethod
    def check(cls, column: str, *, excluding=()) -> str:
        """The SQL condition that keeps `column` inside this set, less `excluding` (NULL passes: nullability is
        the column's)."""
        return f"{column} IN (" + ", ".join(f"'{member.value}'" for member in cls if member not in excluding) + ")"


class Currency(Choice):
    TRY = "TRY"
    USD = "USD"
    EUR = "EUR"


class Language(Choice):
    EN = "en", "English"
    TR = "tr", "Türkçe"


class LegalText(Choice):
    """The texts the law asks for (Settings → Legal texts), each kept in every language."""

    PRE_INFORMATION = "pre_information", _l("Pre-information form")
    DISTANCE_SALES = "distance_sales", _l("Distance sales contract")
    PRIVACY = "privacy", _l("Privacy notice")


class Permission(Choice):
    BILLING = "billing", _l("Billing: packages, subscriptions, orders, invoices, promo codes")
    CUSTOMERS = "customers", _l("Customers: customer cards")
    SETTINGS = "settings", _l("Settings: general, payment systems, modules, API tokens, agents")
    SUPPORT = "support", _l("Support: tickets and chats")


class ApiScope(Choice):
    READ = "read", _l("read: departments, packages, customers, entitlements, ledgers")
    WRITE = "write", _l("write: create customers, charge usage, adjust credits")


class AccountType(Choice):
    INDIVIDUAL = "individual", _l("Individual")
    CORPORATE = "corporate", _l("Corporate")


class PackageType(Choice):
    CREDIT = "credit", _l("Credit")
    SUBSCRIPTION = "subscription", _l("Subscription")


class OrderKind(Choice):
    """What a purchase does to what the customer holds (also a grant's kind)."""

    NEW = "new", _l("New")
    TOP_UP = "top-up", _l("Top-up")
    RENEWAL = "renewal", _l("Renewal")
    SWITCH = "switch", _l("Switch")
    BALANCE = "balance", _l("Balance top-up")  # money into the account balance, no package (services/top_ups.py)


class GrantEnd(Choice):
    """Why a grant ended early: given up on switching type, or taken back with its order."""

    FORFEIT = "forfeit", _l("Forfeited")
    REVOKED = "revoked", _l("Taken back")


class DepartmentSource(Choice):
    """How a department came to be on for a customer: an agent switched it on, or a purchase did."""

    MANUAL = "manual", _l("by an agent")
    PACKAGE = "package", _l("by a purchase")


class LedgerKind(Choice):
    PURCHASE = "purchase", _l("Purchase")
    USAGE = "usage", _l("Used")
    FORFEIT = "forfeit", _l("Forfeited")
    REVERSAL = "reversal", _l("Taken back")
    ADJUSTMENT = "adjustment", _l("Adjustment")


class BalanceKind(Choice):
    REFUND = "refund", _l("Refund")
    ADJUSTMENT = "adjustment", _l("Adjustment")
    PAYMENT = "payment", _l("Payment")
    # A paid top-up order (services/top_ups.py), credited once; taken back before its refund goes to the card,
    # and put back if the bank refuses that refund.
    TOP_UP = "top_up", _l("Top-up")
    TOP_UP_BACK = "top_up_back", _l("Top-up refunded")
    TOP_UP_KEPT = "top_up_kept", _l("Top-up refund refused by the bank")


class TopUpInvoicing(Choice):
    """How the money of balance top-ups is invoiced (Settings → Payment Systems), never twice: the top-up when it
    is paid (orders the balance pays then get no invoice), or the orders the balance pays (a top-up gets none)."""

    TOP_UP = "top_up", _l("Invoice the top-up when it is paid")
    ORDERS = "orders", _l("Invoice the orders the balance pays")


class RequestKind(Choice):
    """A new help-desk request: what a usage is charged for and what a conversation is."""

    TICKET = "ticket", _l("Ticket")
    CHAT = "chat", _l("Chat")


class CoveredBy(Choice):
    """What paid for a usage."""

    CREDITS = "credits", _l("credits")
    SUBSCRIPTION = "subscription", _l("subscription")
    MANUAL = "manual", _l("included")


class CancellationTiming(Choice):
    PERIOD_END = "period_end", _l("at the end of the current period")
    NOW = "now", _l("now")


class CancellationState(Choice):
    PENDING = "pending", _l("Waiting")
    APPROVED = "approved", _l("Approved")
    REJECTED = "rejected", _l("Rejected")


class ActivationState(Choice):
    """An activation request from the public form (xcPanel): waiting for an agent, approved with a package
    (its order made), or rejected with a reason."""

    PENDING = "pending", _l("Waiting")
    APPROVED = "approved", _l("Approved")
    REJECTED = "rejected", _l("Rejected")


class ErasureState(Choice):
    """A customer's request to erase their personal data (KVKK): waiting for an agent, approved (the data is
    anonymised then), or rejected with a note."""

    PENDING = "pending", _l("Waiting")
    APPROVED = "approved", _l("Approved")
    REJECTED = "rejected", _l("Rejected")


class ConversationChannel(Choice):
    """Where a conversation is: a department (charged by rule 6), or the free identity-verification channel (DT)
    every customer may use, department or none."""

    DEPARTMENT = "department", _l("Department")
    VERIFICATION = "verification", _l("Account verification")


class AttachmentKind(Choice):
    """What an attachment is, as its content shows (never its name or the browser's word): the only kinds kept."""

    PNG = "png", "PNG"
    JPEG = "jpeg", "JPEG"
    WEBP = "webp", "WebP"
    PDF = "pdf", "PDF"


class ConversationStatus(Choice):
    OPEN = "open", _l("Open")
    ANSWERED = "answered", _l("Answered")
    CLOSED = "closed", _l("Closed")


class ActorType(Choice):
    """Who did something (the audit log); a message's author is one of the first two."""

    AGENT = "agent", _l("agent")
    CUSTOMER = "customer", _l("customer")
    SYSTEM = "system", _l("system")
    API = "api", _l("API")


class MessageAuthor(Choice):
    CUSTOMER = "customer", _l("customer")
    AGENT = "agent", _l("agent")


class NotificationChannel(Choice):
    EMAIL = "email", _l("E-mail")
    SMS = "sms", "SMS"
    WEBHOOK = "webhook", "Webhook"


class NotificationState(Choice):
    PENDING = "pending", _l("Waiting")
    SENDING = "sending", _l("Sending")
    SENT = "sent", _l("Sent")
    FAILED = "failed", _l("Failed")


class PromoKind(Choice):
    PERCENT = "percent", _l("Percent")
    FIXED = "fixed", _l("Fixed amount")


class RefundOperation(Choice):
    """How the bank gives card money back: a void cancels the sale on its day, a credit returns money later."""

    VOID = "void", _l("void")
    CREDIT = "credit", _l("credit")


class WebhookEvent(Choice):
    """What a webhook endpoint can hear about (services/webhooks.py builds each one's data)."""

    ORDER_PAID = "order.paid", _l("an order is paid")
    ORDER_STATUS_CHANGED = "order.status_changed", _l("an order moves to another status")
    ORDER_REFUNDED = "order.refunded", _l("money of an order is refunded")
    ENTITLEMENT_CHANGED = "entitlement.changed", _l("a package is given, taken back or ended")
    CREDITS_LOW = "credits.low", _l("a customer's credits fall below the warning threshold")
    USAGE_CHARGED = "usage.charged", _l("a new ticket or chat is charged")
