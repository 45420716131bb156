"""Account balance top-ups (issue 16): the customer adds money to the account balance by card or bank transfer.

A top-up is an order of its own kind (`OrderKind.BALANCE`, no package) placed by placement.place_top_up, so it
goes through the same payment rows, bank callback, idempotency, refusal/return, reconciliation and refund
machinery as any order. What it "activates" is a credit of the account balance:

- `credit`: once paid, the order's amount is added to the balance as one `top_up` entry linked to the order, under
  the order's lock; a partial unique index (one `top_up` entry per order) makes a second credit impossible even
  if two transactions got past the lock. A top-up is never credited again (it never goes back to pending).
- `take_back`: a refund of a top-up goes to the card only, and first takes its amount back from the balance
  (`top_up_back`), in the refund's transaction; when the customer has spent part of it, the refund is refused
  with what is still there, so an agent may refund that much.
- `put_back`: a refund the bank refuses leaves the money with us, so it returns to the balance (`top_up_kept`).
- Money the bank took that we did not accept (an automatic refund) was never credited: nothing to take back, also
  when the bank refused to return it and an agent refunds it later (not among `Order.accepted_payments`).

Invoicing (`top_up_invoicing`): "top_up" invoices the top-up when it is paid and then orders paid from the
balance get no invoice; "orders" (default) invoices the orders the balance pays and the top-up gets none. Either
way the same money is invoiced once, which is why the way cannot change while a balance holds money or a top-up
waits for its money.
"""
from flask_babel import gettext as _
from flask_babel import ngettext
from sqlalchemy import func, select

from ..extensions import db
from ..formatting import format_money, plain_amount
from ..models import BalanceKind, Order, OrderKind, OrderState, Refund, TopUpInvoicing
from . import ServiceError, ValidationFailed, audit, balance, settings
from .packages import parse_price


def limits() -> tuple[int, int]:
    """The least and the most one top-up adds, in kuruş (TRY)."""
    return settings.get("top_up_minimum_minor"), settings.get("top_up_maximum_minor")


def settings_text() -> dict[str, str]:
    """The settings as the form shows them: amounts as typed ("100.00")."""
    least, most = limits()
    return {"top_up_minimum": plain_amount(least), "top_up_maximum": plain_amount(most),
            "top_up_invoicing": settings.get("top_up_invoicing")}


def save_settings(least_text: str, most_text: str, invoicing: str, actor: audit.Actor) -> list[str]:
    """Settings → Payment Systems, balance top-ups: the least and the most one top-up adds (TRY, both included)
    and how top-ups are invoiced."""
    errors: dict[str, list[str]] = {}
    amounts = {}
    for name, text in (("top_up_minimum", least_text), ("top_up_maximum", most_text)):
        low, high = settings.BOUNDS[f"{name}_minor"]
        try:
            amounts[f"{name}_minor"] = parse_price(text)
        except ValueError as error:
            errors[name] = [str(error)]
            continue
        if not low <= amounts[f"{name}_minor"] <= high:
            errors[name] = [_("Enter an amount from %(low)s to %(high)s.", low=plain_amount(low),
                              high=plain_amount(high))]
    if invoicing != settings.get("top_up_invoicing"):
        settings.lock("top_up_invoicing")  # no top-up is placed under the old way while this one checks
        errors.update(_invoicing_change_errors())
    if errors:
        raise ValidationFailed(errors)
    try:
        return settings.update({**amounts, "top_up_invoicing": invoicing}, actor)
    except ValidationFailed as failed:  # the settings' keys → the form's fields
        raise ValidationFailed({key.removesuffix("_minor"): value for key, value in failed.errors.items()}) from None


def _invoicing_change_errors() -> dict[str, list[str]]:
    """Why the way top-ups are invoiced cannot change now: money topped up under the current way is still in a
    balance, or a top-up placed under it (invoiced or not when placed) still waits for its money. Spent under the
    other way, that money would be invoiced twice or never."""
    holders, waiting = db.session.execute(select(  # one snapshot: a top-up credited meanwhile is counted once
        balance.customers_holding_money_query().scalar_subquery(),
        select(func.count(Order.id)).where(Order.kind == OrderKind.BALANCE, Order.status == OrderState.PENDING)
        .scalar_subquery())).one()
    if holders:
        return {"top_up_invoicing": [ngettext(
            "%(num)d customer holds money in their account balance, topped up under the current way: changing it "
            "now would invoice that money twice or never. Change it once every balance is spent or refunded.",
            "%(num)d customers hold money in their account balances, topped up under the current way: changing it "
            "now would invoice that money twice or never. Change it once every balance is spent or refunded.",
            holders)]}
    if waiting:
        return {"top_up_invoicing": [ngettext(
            "%(num)d top-up placed under the current way still waits for its money: change the way once it is "
            "paid and spent, or cancelled.",
            "%(num)d top-ups placed under the current way still wait for their money: change the way once they "
            "are paid and spent, or cancelled.", waiting)]}
    return {}


def invoices_top_ups() -> bool:
    """Whether a top-up is invoiced when paid (then the orders the balance pays are not)."""
    return settings.get("top_up_invoicing") == TopUpInvoicing.TOP_UP


def credit(order: Order, actor: audit.Actor) -> None:
    """Add the paid top-up's amount to the customer's balance, once; the order is locked and holds its money."""
    if order.activated:
        return
    if not order.holds_money:
        raise ServiceError("payment_required", _("This order has no payment; it cannot be activated."))
    try:
        balance.move(order.customer_id, order.currency, order.amount_minor, BalanceKind.TOP_UP, order=order)
    except balance.BalanceLimit as error:
        raise ServiceError("balance_limit", error.message) from None
    audit.record(actor, "balance.top_up", order, number=order.number, amount_minor=order.amount_minor,
                 currency=order.currency)


def credited_minor(order: Order) -> int:
    """What the top-up added to the balance and was not taken back (the most a refund may take back)."""
    return sum(entry.amount_minor for entry in order.balance_entries
               if entry.kind in (BalanceKind.TOP_UP, BalanceKind.TOP_UP_BACK, BalanceKind.TOP_UP_KEPT))


def take_back(order: Order, amount_minor: int, actor: audit.Actor) -> None:
    """Before `amount_minor` of the (locked) top-up's credited money goes back to the card, take it from the
    balance; refuse with what is still there when the customer spent it."""
    if not order.activated or not amount_minor:
        return
    if amount_minor > credited_minor(order):
        raise ServiceError("top_up_refund_amount", _("At most %(most)s of this top-up is still to refund.",
                                                      most=format_money(credited_minor(order), order.currency)))
    try:
        balance.move(order.customer_id, order.currency, -amount_minor, BalanceKind.TOP_UP_BACK, order=order)
    except balance.InsufficientBalance:
        left = min(credited_minor(order), balance.amount_by_id(order.customer_id, order.currency))
        raise ServiceError("top_up_spent", _(
            "The customer has spent part of this top-up: only %(left)s of it is still in the account balance. "
            "Refund at most that much.", left=format_money(left, order.currency))) from None
    audit.record(actor, "balance.top_up_back", order, number=order.number, amount_minor=amount_minor)


def put_back(order: Order, refund: Refund, actor: audit.Actor) -> None:
    """The bank refused the top-up's refund: the money stays with us, so it goes back into the balance."""
    if refund.automatic or not order.activated or refund.payment not in order.accepted_payments:
        return  # nothing was taken from the balance for it (money we refused was never credited)
    balance.move(order.customer_id, order.currency, refund.amount_minor, BalanceKind.TOP_UP_KEPT, order=order)
    audit.record(actor, "balance.top_up_kept", order, number=order.number, amount_minor=refund.amount_minor)
