"""All models, imported here so Alembic and `db.create_all()` see every table."""
from .accounts import CUSTOMER_SEARCH_SQL, PERMISSIONS, Agent, Customer, CustomerDepartment, CustomerNote
from .api import API_SCOPES, ApiToken
from .balance import BALANCE_KINDS, AccountBalance, BalanceEntry
from .catalog import CURRENCIES, PACKAGE_TYPES, Department, Package
from .entitlements import (
    CANCELLATION_STATES,
    CANCELLATION_TIMINGS,
    LEDGER_KINDS,
    USAGE_KINDS,
    CancellationRequest,
    Grant,
    LedgerEntry,
    SubscriptionPeriod,
    Usage,
)
from .helpdesk import CONVERSATION_KINDS, CONVERSATION_STATUSES, Conversation, Message
from .invoices import INVOICE_STATUSES, Invoice, InvoiceCounter
from .lifecycle import (
    InvoiceState,
    MoneyState,
    MoveRefused,
    OrderState,
    PaymentMethod,
    PaymentState,
    RefundDestination,
    RefundState,
)
from .notifications import NOTIFICATION_CHANNELS, NOTIFICATION_STATES, Notification
from .orders import ORDER_KINDS, ORDER_STATUSES, BankAccount, Order, OrderStatus, Payment, PromoCode, Refund
from .settings import AuditEntry, RateLimitCounter, Setting
from .webhooks import WEBHOOK_EVENTS, Webhook

__all__ = [
    "BALANCE_KINDS",
    "AccountBalance",
    "BalanceEntry",
    "CANCELLATION_STATES",
    "CANCELLATION_TIMINGS",
    "CancellationRequest",
    "OrderStatus",
    "API_SCOPES",
    "ApiToken",
    "CONVERSATION_KINDS",
    "CONVERSATION_STATUSES",
    "Conversation",
    "Message",
    "ORDER_KINDS",
    "ORDER_STATUSES",
    "Order",
    "InvoiceState",
    "MoneyState",
    "MoveRefused",
    "OrderState",
    "Payment",
    "PaymentMethod",
    "PaymentState",
    "Refund",
    "RefundDestination",
    "RefundState",
    "CURRENCIES",
    "LEDGER_KINDS",
    "PACKAGE_TYPES",
    "PERMISSIONS",
    "USAGE_KINDS",
    "Agent",
    "AuditEntry",
    "BankAccount",
    "Customer",
    "CustomerDepartment",
    "CustomerNote",
    "CUSTOMER_SEARCH_SQL",
    "Department",
    "Grant",
    "INVOICE_STATUSES",
    "Invoice",
    "InvoiceCounter",
    "LedgerEntry",
    "NOTIFICATION_CHANNELS",
    "NOTIFICATION_STATES",
    "Notification",
    "Package",
    "PromoCode",
    "RateLimitCounter",
    "Setting",
    "SubscriptionPeriod",
    "Usage",
    "WEBHOOK_EVENTS",
    "Webhook",
]

MAX_RECORD_ID = 2**31 - 1  # ids are 32-bit integers in PostgreSQL
