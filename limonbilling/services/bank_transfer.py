"""Paying by bank transfer (domain.md §6): the accounts, and the customer's activation request.

The customer pays into one of the accounts with the order number as the
reference and then sends an activation request; an agent checks the money
arrived and accepts the order, which marks it paid and activates it.
"""
from flask_babel import gettext as _
from sqlalchemy import select
from stdnum import iban as iban_number

from ..clock import now
from ..extensions import db
from ..models import BankAccount, Currency, Order
from . import ServiceError, ValidationFailed, audit, notifications
from .contacts import normalize_email, normalize_phone
from .lifecycle import lock_order


def add_account(*, bank_name: str, account_holder: str, iban: str, currency: str, actor: audit.Actor) -> BankAccount:
    errors: dict[str, list[str]] = {}
    bank_name, account_holder = (bank_name or "").strip(), (account_holder or "").strip()
    if not bank_name:
        errors["bank_name"] = [_("This field is required.")]
    if not account_holder:
        errors["account_holder"] = [_("This field is required.")]
    compact = iban_number.compact(iban or "")
    if not iban_number.is_valid(compact):
        errors["iban"] = [_("This IBAN is not valid: check the letters, the digits and the checksum.")]
    elif db.session.scalar(select(BankAccount.id).where(BankAccount.iban == compact)) is not None:
        errors["iban"] = [_("This IBAN is already listed.")]
    if not Currency.has(currency):
        errors["currency"] = [_("Choose TRY, USD or EUR.")]
    if errors:
        raise ValidationFailed(errors)
    account = BankAccount(bank_name=bank_name, account_holder=account_holder, iban=compact, currency=currency)
    db.session.add(account)
    db.session.flush()
    audit.record(actor, "bank_account.add", account, bank=bank_name, currency=currency)
    return account


def remove_account(account: BankAccount, actor: audit.Actor) -> None:
    audit.record(actor, "bank_account.remove", account, bank=account.bank_name)
    db.session.delete(account)


def accounts_for(currency: str) -> list[BankAccount]:
    return list(db.session.scalars(
        select(BankAccount).where(BankAccount.active, BankAccount.currency == currency).order_by(BankAccount.id)
    ))


def all_accounts() -> list[BankAccount]:
    return list(db.session.scalars(select(BankAccount).order_by(BankAccount.currency, BankAccount.id)))


def request_activation(order: Order, *, email: str, phone: str, note: str, actor: audit.Actor) -> None:
    """The customer says the transfer is made; the order waits, Pending and Unpaid, for an agent (and no longer
    for a transfer deadline). The order is locked: a deadline's cancellation at the same instant comes first or
    not at all, and a second request (another tab) is refused."""
    order = lock_order(order)
    if not order.awaiting_transfer:
        raise ServiceError("not_awaiting_transfer", _("This order is not waiting for a bank transfer."))
    if order.activation_requested_at is not None:
        raise ServiceError("already_requested", _("Your activation request was sent already. We activate the "
                                                  "package when we see the transfer."))
    errors: dict[str, list[str]] = {}
    try:
        email = normalize_email(email or "")
    except ValueError:
        errors["email"] = [_("Enter a valid e-mail address, like name@example.com.")]
    try:
        phone = normalize_phone(phone or "")
    except ValueError:
        errors["phone"] = [_("Enter a valid phone number: 0532 123 45 67 or +44 20 7946 0958.")]
    if len(note or "") > 1000:
        errors["note"] = [_("At most %(n)d characters.", n=1000)]
    if errors:
        raise ValidationFailed(errors)
    order.activation_requested_at = now()
    order.contact_email, order.contact_phone = email, phone
    note = (note or "").strip()
    if note:  # after the note written at checkout, if any: both are the customer's words
        order.customer_note = f"{order.customer_note}\n{note}" if order.customer_note else note
    audit.record(actor, "order.activation_request", order, number=order.number)
    notifications.activation_requested(order)
