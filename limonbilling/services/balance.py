"""The account balance (domain.md §6): money the customer holds with us, separate from support credits.

Refunds to balance and agents' adjustments add to it; checkout can pay an
order from it when it covers the total. Like the credit ledger, every change
is one conditional UPDATE of the balance row plus an entry, in the caller's
transaction, so concurrent payments can never take it below zero.
"""
from flask_babel import gettext as _
from sqlalchemy import func, select, update

from ..clock import now
from ..extensions import db, insert_ignoring_conflict
from ..models import AccountBalance, ActorType, BalanceEntry, Currency, Customer, Order
from . import ServiceError, ValidationFailed, audit, ledger
from .packages import parse_price

MAX_BALANCE_MINOR = 2**63 - 1  # the most a 64-bit money column holds


class InsufficientBalance(ServiceError):
    def __init__(self):
        super().__init__("insufficient_balance", _("Your account balance does not cover this order."))


class BalanceLimit(ServiceError):
    def __init__(self):
        super().__init__("balance_limit", _("This would take the account balance above the most it can hold."))


def move(customer_id: int, currency: str, amount_minor: int, kind: str, *, order: Order | None = None,
         agent_id: int | None = None, reason: str | None = None) -> BalanceEntry:
    """Add (or, negative, take) money in one currency and write the entry; never below zero nor above
    MAX_BALANCE_MINOR.

    The customer's row is locked first, whoever calls: a refund locks the order, moves the balance and then
    locks the customer (to revoke), a purchase locks the customer and then moves the balance, so a balance row
    taken before the customer would deadlock the two (locks go order, then customer, then balance)."""
    if abs(amount_minor) > MAX_BALANCE_MINOR:
        raise InsufficientBalance() if amount_minor < 0 else BalanceLimit()
    ledger.lock_customer(customer_id)
    insert_ignoring_conflict(AccountBalance, customer_id=customer_id, currency=currency, amount_minor=0)
    row = AccountBalance.__table__.c
    statement = update(AccountBalance).where(row.customer_id == customer_id, row.currency == currency)
    if amount_minor < 0:
        statement = statement.where(row.amount_minor >= -amount_minor)
    else:
        statement = statement.where(row.amount_minor <= MAX_BALANCE_MINOR - amount_minor)
    after = db.session.execute(
        statement.values(amount_minor=row.amount_minor + amount_minor).returning(row.amount_minor)
        .execution_options(synchronize_session=False)
    ).scalar()
    if after is None:
        raise InsufficientBalance() if amount_minor < 0 else BalanceLimit()
    entry = BalanceEntry(customer_id=customer_id, currency=currency, kind=kind, amount_minor=amount_minor,
                         balance_after_minor=after, order_id=order.id if order else None, agent_id=agent_id,
                         reason=reason, created_at=now())
    db.session.add(entry)
    return entry


def amount(customer: Customer, currency: str) -> int:
    return amount_by_id(customer.id, currency)


def amount_by_id(customer_id: int, currency: str) -> int:
    return db.session.scalar(select(AccountBalance.amount_minor).where(
        AccountBalance.customer_id == customer_id, AccountBalance.currency == currency)) or 0


def amounts(customer: Customer) -> dict[str, int]:
    """The customer's non-zero balances by currency."""
    rows = db.session.execute(select(AccountBalance.currency, AccountBalance.amount_minor).where(
        AccountBalance.customer_id == customer.id, AccountBalance.amount_minor != 0).order_by(AccountBalance.currency))
    return dict(rows.all())


def customers_holding_money_query():
    """How many customers have money in their account balance, in any currency (a select of one number)."""
    return select(func.count(func.distinct(AccountBalance.customer_id))).where(AccountBalance.amount_minor > 0)


def entries(customer_id: int):
    """A select of the customer's balance movements, newest first."""
    return select(BalanceEntry).where(BalanceEntry.customer_id == customer_id).order_by(BalanceEntry.id.desc())


def adjust(customer: Customer, raw_amount: str, currency: str, reason: str, actor: audit.Actor) -> BalanceEntry:
    """An agent adds (or takes away, with a minus sign) money, with a mandatory reason."""
    errors: dict[str, list[str]] = {}
    reason = (reason or "").strip()
    if not reason:
        errors["reason"] = [_("Say why the balance changes; the customer sees it.")]
    if not Currency.has(currency):
        errors["currency"] = [_("Choose TRY, USD or EUR.")]
    text = (raw_amount or "").strip()
    sign = -1 if text.startswith("-") else 1
    try:
        minor = sign * parse_price(text.lstrip("+-").strip())
    except ValueError as error:
        errors["amount"] = [str(error)]
    if errors:
        raise ValidationFailed(errors)
    try:
        entry = move(customer.id, currency, minor, "adjustment",
                     agent_id=actor.id if actor.type == ActorType.AGENT else None, reason=reason)
    except InsufficientBalance:
        raise ValidationFailed({"amount": [_("The balance would go below zero.")]}) from None
    except BalanceLimit as error:
        raise ValidationFailed({"amount": [error.message]}) from None
    audit.record(actor, "balance.adjustment", customer, amount_minor=minor, currency=currency, reason=reason)
    return entry
