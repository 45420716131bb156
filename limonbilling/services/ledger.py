"""The credit ledger: every change of a customer's credit balance goes through `post`.

The balance column on the customer is a cache of the ledger, changed by one
conditional UPDATE in the same transaction as the ledger row, so two
concurrent requests can neither overdraw it nor lose an update (domain.md §7).
"""
from flask_babel import format_decimal
from flask_babel import gettext as _
from sqlalchemy import bindparam, event, func, insert, select, update
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from .. import signals
from ..clock import now
from ..extensions import db
from ..labels import ledger_reason
from ..models import ActorType, Conversation, Customer, Grant, LedgerEntry, LedgerKind, Order, OrderState, PackageType
from . import ServiceError, ValidationFailed, audit, settings

customers_table = Customer.__table__
ledger_table = LedgerEntry.__table__
MAX_BALANCE = 2**31 - 1  # the balance is a 32-bit integer column


class InsufficientCredits(ServiceError):
    def __init__(self, have: int, need: int):
        super().__init__(
            "insufficient_credits",
            _("Not enough credits: you have %(have)d, this needs %(need)d.", have=have, need=need),
            have=have,
            need=need,
        )


class BalanceLimit(ServiceError):
    def __init__(self):
        super().__init__("balance_limit", _("This would take the balance above %(max)s credits, the most an account "
                                            "can hold.", max=format_decimal(MAX_BALANCE)))


_LOCKED = "locked_customers"


def lock_customer(customer_id: int) -> Customer:
    """Reload the customer with its row locked until the transaction ends (PostgreSQL: FOR UPDATE;
    SQLite already serialises writers with BEGIN IMMEDIATE). A customer locked earlier in the transaction is not
    read again: nobody else can have changed the row since."""
    locked = db.session.info.setdefault(_LOCKED, {})
    customer = locked.get(customer_id)
    if customer is None or customer not in db.session:
        customer = locked[customer_id] = db.session.execute(
            select(Customer).where(Customer.id == customer_id).with_for_update()
            .execution_options(populate_existing=True)
        ).scalar_one()
    return customer


def lock_active_customer(customer_id: int) -> Customer:
    """The customer, locked, for something new of theirs (an order, a top-up, a request); refused once erased.
    A page loaded before the erasure committed, or an activation request approved after it, would otherwise pay,
    activate or record something for an account that signs in no more, with the data just erased."""
    customer = lock_customer(customer_id)
    if customer.erased_at is not None:
        raise ServiceError("customer_erased", _("This account's data was erased: it signs in no more and takes no "
                                                "new orders or requests. Nothing was recorded."))
    return customer


@event.listens_for(Session, "after_transaction_end")
def _forget_locks(session: Session, transaction) -> None:
    """Row locks end with the transaction (and with a savepoint rolled back to)."""
    if transaction.parent is None or transaction.nested:
        session.info.pop(_LOCKED, None)


_MOVE = (update(customers_table).where(customers_table.c.id == bindparam("customer_id"))
         .values(credits=customers_table.c.credits + bindparam("amount")).returning(customers_table.c.credits))
_TAKE = _MOVE.where(customers_table.c.credits >= bindparam("at_least"))
_GIVE = _MOVE.where(customers_table.c.credits <= bindparam("at_most"))  # never past the column's limit


def _move(customer_id: int, amount: int) -> int:
    """The balance change itself: one conditional UPDATE, never below zero nor above MAX_BALANCE.
    Returns the balance after; a copy of the customer already loaded in the session gets it too.
    """
    if abs(amount) > MAX_BALANCE:
        balance = None
    elif amount < 0:
        balance = db.session.execute(
            _TAKE, {"customer_id": customer_id, "amount": amount, "at_least": -amount}).scalar()
    else:
        balance = db.session.execute(
            _GIVE, {"customer_id": customer_id, "amount": amount, "at_most": MAX_BALANCE - amount}).scalar()
    if balance is None:
        if amount > 0:
            raise BalanceLimit()
        have = db.session.scalar(select(customers_table.c.credits).where(customers_table.c.id == customer_id))
        raise InsufficientCredits(have=have, need=-amount)
    loaded = db.session.identity_map.get(db.session.identity_key(Customer, customer_id))
    if loaded is not None:
        set_committed_value(loaded, "credits", balance)
    return balance


def low_credit_threshold(own: int | None) -> int:
    """The customer's own threshold, else the global one (Settings → Notifications); 0 means no warning."""
    return own if own is not None else settings.get("low_credit_threshold")


def runs_low(own_threshold: int | None, before: int, after: int) -> bool:
    """Whether a movement from `before` to `after` credits crosses below the customer's threshold."""
    return before >= low_credit_threshold(own_threshold) > after


def post(customer: Customer, kind: str, amount: int, **cause) -> LedgerEntry:
    """Move `amount` credits (negative takes away) and write the ledger row; never below zero.

    `cause` names why: grant, usage, agent_id, reason. Raises InsufficientCredits
    when a negative amount is more than the balance at this instant, BalanceLimit
    when the balance would pass MAX_BALANCE.
    """
    db.session.flush()  # pending ORM changes (e.g. the package type) reach the row first
    balance = _move(customer.id, amount)
    entry = LedgerEntry(customer_id=customer.id, kind=kind, amount=amount, balance_after=balance, **cause)
    db.session.add(entry)
    db.session.flush()
    signals.credits_moved.send(kind, customer_id=customer.id, entry_id=entry.id, before=balance - amount,
                               after=balance, own_low_credit_threshold=customer.low_credit_threshold)
    return entry


_INSERT_ENTRY = insert(ledger_table).returning(ledger_table.c.id)


def post_usage(customer_id: int, cost: int, usage_id: int, own_low_credit_threshold: int | None) -> int:
    """`post` for a charged ticket or chat, the help desk's hot path: the same conditional UPDATE and
    ledger row, written as two plain statements without loading the customer. Returns the balance after."""
    balance = _move(customer_id, -cost)
    entry_id = db.session.execute(_INSERT_ENTRY, {
        "customer_id": customer_id, "kind": LedgerKind.USAGE, "amount": -cost, "balance_after": balance,
        "usage_id": usage_id, "created_at": now(),
    }).scalar_one()
    signals.credits_moved.send("usage", customer_id=customer_id, entry_id=entry_id, before=balance + cost,
                               after=balance, own_low_credit_threshold=own_low_credit_threshold)
    return balance


def because(code: str, **args) -> dict:
    """Why the system writes a row, as `post` and `note` take it: a code of labels.LEDGER_REASONS and its
    arguments, worded when read in the reader's language."""
    return {"reason_code": code, "reason_args": args or None}


def note(customer: Customer, kind: str, **cause) -> LedgerEntry:
    """A ledger row that moves nothing but records an event, e.g. a forfeited subscription (`because`)."""
    entry = LedgerEntry(customer_id=customer.id, kind=kind, amount=0, balance_after=customer.credits, **cause)
    db.session.add(entry)
    return entry


def ledger_sum(customer_id: int) -> int:
    return db.session.scalar(
        select(func.coalesce(func.sum(LedgerEntry.amount), 0)).where(LedgerEntry.customer_id == customer_id)
    )


def entries(customer_id: int):
    """A select of the customer's ledger, newest first."""
    return select(LedgerEntry).where(LedgerEntry.customer_id == customer_id).order_by(LedgerEntry.id.desc())


def causes(entries: list[LedgerEntry]) -> dict[int, Conversation | Order]:
    """What each entry came from, for the customer's usage page: the ticket or chat it paid for, or the order."""
    usage_ids = {entry.usage_id for entry in entries if entry.usage_id is not None}
    grant_ids = {entry.grant_id for entry in entries if entry.grant_id is not None}
    conversations = {conversation.usage_id: conversation for conversation in db.session.scalars(
        select(Conversation).where(Conversation.usage_id.in_(usage_ids)))} if usage_ids else {}
    orders = {grant_id: order for grant_id, order in db.session.execute(
        select(Grant.id, Order).join(Order, Order.id == Grant.order_id).where(Grant.id.in_(grant_ids)))
    } if grant_ids else {}
    found = {}
    for entry in entries:
        cause = conversations.get(entry.usage_id) or orders.get(entry.grant_id)
        if cause is not None:
            found[entry.id] = cause
    return found


def customer_descriptions(entries: list[LedgerEntry], causes: dict[int, Conversation | Order]) -> dict[int, str]:
    """What the customer's usage page says of each entry besides its ticket, chat or order link.

    An agent writes an adjustment's reason for the customer to read, and the
    forfeit notes are written for them too. A reversal's reason is written by
    whoever revoked the order (e.g. an agent setting it as fraud) and is not
    for the customer: the page says in the customer's words what happened,
    from the entry and its order, whatever that reason says (issue 14, defect 10).
    """
    described = {}
    for entry in entries:
        cause = causes.get(entry.id)
        if entry.kind == "reversal":
            described[entry.id] = _reversal_for_customer(entry, cause if isinstance(cause, Order) else None)
        elif cause is None and (entry.reason or entry.reason_code):
            described[entry.id] = ledger_reason(entry)
    return described


def _reversal_for_customer(entry: LedgerEntry, order: Order | None) -> str:
    if entry.amount == 0:
        if entry.grant is not None and entry.grant.package_type == PackageType.CREDIT:
            return _("Credits of this order that were already used are not taken back.")
        return _("The subscription time of this order is removed.")
    if order is not None and order.status == OrderState.FRAUD:
        return _("Held while our team reviews the order.")
    if order is not None and order.status == OrderState.CANCELLED:
        return _("The order is cancelled.")
    return _("The credits of this order are taken back.")


def adjust_credits(customer: Customer, credits: int, reason: str, actor: audit.Actor) -> LedgerEntry:
    """An agent adds or takes away credits, with a mandatory reason (only for credit customers: rule 1)."""
    errors: dict[str, list[str]] = {}
    reason = (reason or "").strip()
    if not reason:
        errors["reason"] = [_("Say why the credits change; the customer's ledger shows it.")]
    if not isinstance(credits, int) or isinstance(credits, bool) or credits == 0:
        errors["credits"] = [_("Enter a whole number of credits other than 0 (negative takes away).")]
    if errors:
        raise ValidationFailed(errors)
    customer = lock_customer(customer.id)
    if customer.package_type != PackageType.CREDIT:
        raise ServiceError(
            "not_a_credit_customer",
            _("Only a customer with a credit package holds credits (one package type at a time)."),
        )
    entry = post(
        customer, LedgerKind.ADJUSTMENT, credits, agent_id=actor.id if actor.type == ActorType.AGENT else None,
        reason=reason,
    )
    audit.record(actor, "ledger.adjustment", customer, credits=credits, reason=reason, balance=entry.balance_after)
    return entry
