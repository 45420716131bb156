"""Typed settings with defaults, stored as JSON values in the `settings` table.

They are read once per transaction (one query for all of them) and kept in the
session until it commits or rolls back, so a request that looks at several
settings, or at the same one in several places, pays for one small query.
"""
import copy
import json
import secrets
from pathlib import Path
from typing import Any

from flask_babel import gettext as _
from sqlalchemy import event, select
from sqlalchemy.orm import Session

from ..extensions import db, insert_ignoring_conflict
from ..models import Language, LegalText, Setting, TopUpInvoicing
from . import ValidationFailed, audit
from .contacts import normalize_email

DEFAULTS: dict[str, Any] = {
    "company_name": "LimonBilling",
    "notification_email": "",
    "notification_email_cc": [],
    "default_language": "en",
    "renewal_window_days": 30,
    "vip_support_enabled": True,
    # Settings → Payment Systems: NestPay 3D_PAY (domain.md §8). Secrets are write-only on the page.
    "nestpay_enabled": False,
    "nestpay_bank": "asseco_test",
    "nestpay_gate_url": "",
    "nestpay_api_url": "",
    "nestpay_client_id": "",
    "nestpay_store_key": "",
    "nestpay_api_user": "",
    "nestpay_api_password": "",
    "nestpay_store_type": "3d_pay",
    "nestpay_hash_version": "ver3",
    "nestpay_accept_half_3d": False,
    "nestpay_test_mode": True,
    "nestpay_api_body": "raw",
    "auto_activate_card": True,
    # Card instalments (services/instalments.py): on or off, and the counts offered, each as
    # {"count": 2–12, "minimum_minor": single-payment total from which it is offered, "surcharge_basis_points"}
    "card_instalments_enabled": False,
    "card_instalment_plans": [],
    # Invoices: seller details and VAT (domain.md §7)
    "seller_address": "",
    "seller_tax_office": "",
    "seller_tax_number": "",
    "vat_rate_percent": 20,
    "vat_inclusive": True,
    "card_checkout_minutes": 30,
    # Account balance top-ups (services/top_ups.py): the least and the most one top-up adds, in kuruş (TRY only),
    # and how their money is invoiced (models.TopUpInvoicing: the top-up when paid, or the orders the balance pays).
    "top_up_minimum_minor": 10_000,
    "top_up_maximum_minor": 5_000_000,
    "top_up_invoicing": "orders",
    # Bank-transfer orders nobody paid (and the customer did not say they paid): a reminder after this many days,
    # cancelled after that many; 0 switches either off.
    "transfer_reminder_days": 3,
    "transfer_cancel_days": 0,
    # Card testing (services/card_payments.py): card attempts per order, and per customer in a rolling hour
    "card_attempts_per_order": 5,
    "card_attempts_per_customer_hour": 10,
    # Checkout (DT): individual customers must be identity-verified by an agent first
    "require_identity_verification": False,
    # Settings → Agents (owner only): every agent signs in with two-factor sign-in (services/two_factor.py)
    "require_two_factor_agents": False,
    # Fraud check (WHMCS): each rule's points; at or above the threshold an order goes to Fraud (services/fraud.py)
    "fraud_check_enabled": True,
    "fraud_threshold": 60,
    "fraud_failed_cards_points": 40,
    "fraud_failed_cards_limit": 3,
    "fraud_many_orders_points": 30,
    "fraud_many_orders_limit": 3,
    "fraud_many_orders_minutes": 60,
    # An IP address counts only when this many other customers had cards refused from it in the last hour
    "fraud_ip_failed_customers_points": 30,
    "fraud_ip_failed_customers_limit": 3,
    "fraud_unverified_email_points": 10,
    "fraud_price_points": 30,
    "fraud_price_factor": 5,
    # KVKK (services/privacy.py): years an erased customer's invoices keep the buyer's details (tax law)
    "retention_years": 10,
    # Notifications (domain.md §9): e-mail by SMTP, SMS by an HTTP provider; passwords are write-only.
    "smtp_host": "",
    "smtp_port": 587,
    "smtp_security": "starttls",  # starttls, ssl, none
    "smtp_username": "",
    "smtp_password": "",
    "smtp_from_address": "",
    "smtp_from_name": "",
    "notification_max_attempts": 8,
    "low_credit_threshold": 5,
    "sms_enabled": False,
    "sms_url": "",
    "sms_method": "POST",
    "sms_parameters": "to={phone}\nmessage={message}",
    "sms_username": "",
    "sms_password": "",
    "sms_agent_phone": "",
    # Help desk: files with a ticket or chat message (services/attachments.py)
    "attachment_max_mb": 5,
    "attachment_max_count": 3,
}



def legal_text_key(text: str, language: str) -> str:
    """The setting that holds one legal text (models.LegalText) in one language."""
    return f"legal_{text}_{language}"


# Settings → Legal texts (services/contracts.py): the shipped templates, to be reviewed by the seller's lawyer.
_LEGAL_TEMPLATES = Path(__file__).resolve().parent.parent / "data" / "legal"
DEFAULTS |= {legal_text_key(text, language): (_LEGAL_TEMPLATES / f"{text}.{language}.txt").read_text("utf-8")
             for text in LegalText for language in Language}

SECRET_KEYS = frozenset({"nestpay_store_key", "nestpay_api_password", "smtp_password", "sms_password"})


_STORED = "limonbilling.settings"  # key in Session.info: this transaction's (rows as JSON text, values decoded)
_ROWS = select(Setting.__table__.c.key, Setting.__table__.c.value)  # plain rows: read at least once per request


def _stored() -> tuple[dict[str, str], dict[str, Any]]:
    stored = db.session.info.get(_STORED)
    if stored is None:
        stored = dict(db.session.execute(_ROWS).all()), {}
        db.session.info[_STORED] = stored
    return stored


def _value(key: str, default: Any = None) -> Any:
    """The stored value of `key`, decoded once per transaction (a value that is not JSON fails only its
    readers), else `default`."""
    rows, decoded = _stored()
    if key not in decoded:
        decoded[key] = json.loads(rows[key]) if key in rows else default
    return decoded[key]


def _keep(key: str, text: str) -> None:
    """A row this transaction writes, as the next read in it must see it."""
    rows, decoded = _stored()
    rows[key] = text
    decoded.pop(key, None)


def _copy(value: Any) -> Any:
    """A list or dict goes out as a copy, so a caller that changes it does not change the transaction's."""
    return copy.deepcopy(value) if isinstance(value, list | dict) else value


@event.listens_for(Session, "after_transaction_end")
def _forget_stored(session: Session, transaction) -> None:
    """At the end of the transaction, and of a savepoint (it may have rolled back an update); not after each
    flush, which runs in an inner transaction of its own and changes no setting behind our back."""
    if transaction.parent is None or transaction.nested:
        session.info.pop(_STORED, None)


def get(key: str) -> Any:
    if key not in DEFAULTS:
        raise KeyError(key)
    return _copy(_value(key, DEFAULTS[key]))


def get_all() -> dict[str, Any]:
    return {key: _copy(_value(key, default)) for key, default in DEFAULTS.items()}


_VERSION_PREFIX = "version:"  # rows beside the settings that name the state of something a process may cache


def version(name: str) -> str | None:
    """The version of `name` (e.g. the webhook endpoints) as this transaction sees it, read with the settings
    (no query of its own): a process keeps a copy of what it names for as long as the version stays the same."""
    return _value(_VERSION_PREFIX + name)


def new_version(name: str) -> None:
    """Give `name` a new version in this transaction, so every process reads it afresh once this commits.

    Random rather than counted: two transactions that change it at once still leave a version no process has
    seen."""
    key = _VERSION_PREFIX + name
    row = db.session.get(Setting, key) or Setting(key=key)
    row.value = json.dumps(secrets.token_hex(8))
    db.session.add(row)
    _keep(key, row.value)


# Every whole-number setting with its bounds, checked by update() whoever stores them (the forms show the same
# bounds from here). Attempts: at 50 a message is already retried 6 hours apart for almost two weeks.
BOUNDS = {
    "renewal_window_days": (1, 365), "vat_rate_percent": (0, 100), "card_checkout_minutes": (5, 1440),
    "transfer_reminder_days": (0, 60), "transfer_cancel_days": (0, 90),
    "notification_max_attempts": (1, 50), "low_credit_threshold": (0, 1_000_000), "smtp_port": (1, 65535),
    "card_attempts_per_order": (1, 50), "card_attempts_per_customer_hour": (1, 200),
    "fraud_threshold": (1, 1000), "fraud_failed_cards_points": (0, 1000), "fraud_failed_cards_limit": (1, 100),
    "fraud_many_orders_points": (0, 1000), "fraud_many_orders_limit": (2, 100),
    "fraud_many_orders_minutes": (1, 10080), "fraud_ip_failed_customers_points": (0, 1000),
    "fraud_ip_failed_customers_limit": (1, 100), "fraud_unverified_email_points": (0, 1000),
    "fraud_price_points": (0, 1000), "fraud_price_factor": (2, 100),
    "attachment_max_mb": (1, 20), "attachment_max_count": (1, 10), "retention_years": (1, 50),
    "top_up_minimum_minor": (100, 100_000_000), "top_up_maximum_minor": (100, 100_000_000),
}


def bound_errors(values: dict[str, Any]) -> dict[str, list[str]]:
    """The errors of the values in BOUNDS that are not whole numbers within their bounds."""
    return {key: [_("Enter a number from %(min)d to %(max)d.", min=low, max=high)]
            for key, (low, high) in BOUNDS.items()
            if key in values and (type(values[key]) is not int or not low <= values[key] <= high)}


def _transfer_deadline_errors(values: dict[str, Any]) -> dict[str, list[str]]:
    """An unpaid transfer order is reminded of before it is cancelled, never after."""
    if not {"transfer_reminder_days", "transfer_cancel_days"} & values.keys():
        return {}
    remind, cancel = (values.get(key, get(key)) for key in ("transfer_reminder_days", "transfer_cancel_days"))
    if remind and cancel and cancel <= remind:
        return {"transfer_cancel_days": [_("Cancel later than the reminder goes out (more days), or enter 0.")]}
    return {}


def _top_up_errors(values: dict[str, Any]) -> dict[str, list[str]]:
    """The least top-up is at most the most, and the invoicing is one of its choices."""
    errors: dict[str, list[str]] = {}
    if "top_up_invoicing" in values and not TopUpInvoicing.has(values["top_up_invoicing"]):
        errors["top_up_invoicing"] = [_("Choose one of the listed ways.")]
    if {"top_up_minimum_minor", "top_up_maximum_minor"} & values.keys():
        least, most = (values.get(key, get(key)) for key in ("top_up_minimum_minor", "top_up_maximum_minor"))
        if least > most:
            errors["top_up_maximum_minor"] = [_("The most a top-up adds cannot be less than the least.")]
    return errors


def lock(key: str, *, shared: bool = False) -> None:
    """Lock the setting's row until the transaction ends: exclusively to change it after checking what depends on
    it, shared to act on its value (PostgreSQL; SQLite already serialises writers). A setting never saved gets
    its row first, holding its default.

    The value read with the lock is the one this transaction goes on with: the settings it read earlier (once per
    transaction) may predate a change committed before the lock was granted."""
    if key not in DEFAULTS:
        raise KeyError(key)
    insert_ignoring_conflict(Setting, key=key, value=json.dumps(DEFAULTS[key]))
    row = select(Setting.value).where(Setting.key == key)
    _keep(key, db.session.execute(row.with_for_update(read=shared)).scalar_one())


def update(values: dict[str, Any], actor: audit.Actor) -> list[str]:
    """Store the given values; returns the keys that changed (audited by name only)."""
    if errors := bound_errors(values) or _transfer_deadline_errors(values) or _top_up_errors(values):
        raise ValidationFailed(errors)
    changed = []
    for key, value in values.items():
        if key not in DEFAULTS:
            raise KeyError(key)
        if get(key) == value:
            continue
        row = db.session.get(Setting, key) or Setting(key=key)
        row.value = json.dumps(value)
        db.session.add(row)
        _keep(key, row.value)
        changed.append(key)
    if changed:
        audit.record(actor, "settings.update", keys=changed)
    return changed


def vip_support_enabled() -> bool:
    """The licence switch of domain.md §2: off means billing does not exist (404)."""
    return bool(get("vip_support_enabled"))


def update_general(
    *, company_name: str, notification_email: str, notification_email_cc: str,
    default_language: str, renewal_window_days: int, actor: audit.Actor,
) -> list[str]:
    """Settings → General, with each e-mail address checked and the CC list split on commas."""

    errors: dict[str, list[str]] = {}
    email = (notification_email or "").strip()
    if email:
        try:
            email = normalize_email(email)
        except ValueError:
            errors["notification_email"] = [_("Enter a valid e-mail address, like name@example.com.")]
    cc = []
    for address in (notification_email_cc or "").replace(";", ",").split(","):
        if not address.strip():
            continue
        try:
            cc.append(normalize_email(address))
        except ValueError:
            errors.setdefault("notification_email_cc", []).append(
                _("%(address)s is not a valid e-mail address.", address=address.strip())
            )
    if not Language.has(default_language):
        errors["default_language"] = [_("Choose a language from the list.")]
    errors |= bound_errors({"renewal_window_days": renewal_window_days})
    if not (company_name or "").strip():
        errors["company_name"] = [_("This field is required.")]
    if errors:
        raise ValidationFailed(errors)
    return update(
        {
            "company_name": company_name.strip(),
            "notification_email": email,
            "notification_email_cc": cc,
            "default_language": default_language,
            "renewal_window_days": renewal_window_days,
        },
        actor,
    )
