"""The states of an order, its payments, its refunds and its invoice, and the one table of moves for each.

domain.md §6a: every action locks the order, checks its move here, then acts.
Models expose predicates built on these tables (`Order.can_accept`, …); views
and templates call the predicates and never compare a state string.
(pretix `OrderPayment` / `OrderRefund`, Indico registration states.)
"""
from flask_babel import lazy_gettext as _l

from .choices import Choice


class OrderState(Choice):
    PENDING = "pending", _l("Pending")
    ACTIVE = "active", _l("Active")
    FRAUD = "fraud", _l("Fraud")
    CANCELLED = "cancelled", _l("Cancelled")


class PaymentMethod(Choice):
    """How money arrived: a card attempt the bank confirmed, a bank transfer an agent confirmed, a debit of
    the account balance, money an agent received outside the system, or an agent's free grant (amount 0)."""

    CARD = "card", _l("Card")
    BANK_TRANSFER = "bank_transfer", _l("Bank transfer")
    ACCOUNT_BALANCE = "account_balance", _l("Account balance")
    MANUAL = "manual", _l("Manual")
    FREE = "free", _l("Given without payment")


class PaymentState(Choice):
    PENDING = "pending", _l("sent to the bank")  # a card attempt sent to the bank, no final answer yet
    CONFIRMED = "confirmed", _l("received")  # the money is ours (partly refunded ones stay confirmed)
    FAILED = "failed", _l("failed")  # the bank refused, or said it has no such sale
    CANCELED = "canceled", _l("cancelled")  # voided at the bank before we heard of it: no money is there
    REFUNDED = "refunded", _l("refunded")  # all of it went back


class RefundState(Choice):
    """Created: recorded, the bank not asked yet (or we do not know whether it was). Unknown: sent to the bank,
    no readable answer; ask the bank's status before any retry."""

    CREATED = "created", _l("recorded")
    UNKNOWN = "unknown", _l("unknown: the bank did not answer")
    DONE = "done", _l("done")
    FAILED = "failed", _l("refused by the bank")  # the bank refused; the money stays with us


class RefundDestination(Choice):
    CARD = "card", _l("to the card")
    BALANCE = "balance", _l("to the account balance")


class MoneyState(Choice):
    """Where an order's money stands (`orders.payment_status`), derived from its payments and refunds."""

    UNPAID = "unpaid", _l("Unpaid")
    PAID = "paid", _l("Paid")
    PARTLY_REFUNDED = "partly_refunded", _l("Partly refunded")
    REFUNDED = "refunded", _l("Refunded")


class InvoiceState(Choice):
    UNPAID = "unpaid", _l("Unpaid")
    PAID = "paid", _l("Paid")
    PARTLY_REFUNDED = "partly_refunded", _l("Partly refunded")
    REFUNDED = "refunded", _l("Refunded")
    CANCELLED = "cancelled", _l("Cancelled")


# Back to Pending only from Fraud or Cancelled (domain.md §6); Active is reached by Accept.
ORDER_MOVES: dict[OrderState, frozenset[OrderState]] = {
    OrderState.PENDING: frozenset({OrderState.ACTIVE, OrderState.CANCELLED, OrderState.FRAUD}),
    OrderState.ACTIVE: frozenset({OrderState.CANCELLED, OrderState.FRAUD}),
    OrderState.FRAUD: frozenset({OrderState.PENDING, OrderState.CANCELLED}),
    OrderState.CANCELLED: frozenset({OrderState.PENDING, OrderState.FRAUD}),
}

# A failed card attempt may still turn out confirmed: the bank's signed approval (or its status answer) after
# we gave up on it means the money was taken, and it is then kept or returned, never ignored. A canceled one
# was voided at the bank: an approval arriving for it afterwards is old news, no money is there.
PAYMENT_MOVES: dict[PaymentState, frozenset[PaymentState]] = {
    PaymentState.PENDING: frozenset({PaymentState.CONFIRMED, PaymentState.FAILED, PaymentState.CANCELED}),
    PaymentState.FAILED: frozenset({PaymentState.CONFIRMED}),
    PaymentState.CANCELED: frozenset(),
    PaymentState.CONFIRMED: frozenset({PaymentState.REFUNDED}),
    PaymentState.REFUNDED: frozenset(),
}

REFUND_MOVES: dict[RefundState, frozenset[RefundState]] = {
    RefundState.CREATED: frozenset({RefundState.DONE, RefundState.FAILED, RefundState.UNKNOWN}),
    RefundState.UNKNOWN: frozenset({RefundState.DONE, RefundState.FAILED}),
    RefundState.DONE: frozenset(),
    RefundState.FAILED: frozenset(),
}

# Refunds that still hold their amount: done, or on their way (a second refund must not take it again).
REFUNDS_HOLDING_MONEY = frozenset({RefundState.CREATED, RefundState.UNKNOWN, RefundState.DONE})
REFUNDS_IN_FLIGHT = frozenset({RefundState.CREATED, RefundState.UNKNOWN})


class MoveRefused(Exception):
    """A move the table does not allow; the service turns it into a message for people."""

    def __init__(self, machine: str, current: str, target: str):
        super().__init__(f"{machine}: {current} → {target} is not allowed")
        self.machine, self.current, self.target = machine, current, target


def may_move(table: dict, current: str, target: str) -> bool:
    return target in table[type(next(iter(table)))(current)]


def move(table: dict, machine: str, current: str, target: str) -> str:
    """`target` if the table allows current → target, else MoveRefused."""
    if not may_move(table, current, target):
        raise MoveRefused(machine, current, target)
    return target


def money_state(captured_minor: int, refunded_minor: int, amount_minor: int, *, has_payment: bool,
                free_grant: bool) -> MoneyState:
    """Where the money stands. Paid: what we hold covers the amount (or an agent granted it free), even after
    an earlier refund and a new payment; partly refunded: some went back and some is held; refunded: all that
    came went back; unpaid: nothing came."""
    held = captured_minor - refunded_minor
    if has_payment and (held >= amount_minor or free_grant):
        return MoneyState.PAID
    if refunded_minor > 0:
        return MoneyState.PARTLY_REFUNDED if held > 0 else MoneyState.REFUNDED
    return MoneyState.UNPAID


def invoice_state(order_state: str, money: MoneyState) -> InvoiceState:
    """The invoice follows the money; an order cancelled or set aside as fraud with its money neither paid
    nor refunded has a cancelled invoice (domain.md §6, §7)."""
    if money is MoneyState.REFUNDED:
        return InvoiceState.REFUNDED
    if money is MoneyState.PARTLY_REFUNDED:
        return InvoiceState.PARTLY_REFUNDED
    if order_state in (OrderState.CANCELLED, OrderState.FRAUD):
        return InvoiceState.CANCELLED
    return InvoiceState.PAID if money is MoneyState.PAID else InvoiceState.UNPAID
