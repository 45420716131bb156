"""Customer accounts and cards: registration, profile rules, departments, notes, identity mark.

The validation here is the only one: the portal form, the admin pages and the
API all call `validate_details`, so a rule never differs between them.
"""
import secrets
from typing import Any

from flask_babel import gettext as _
from sqlalchemy import func, literal_column, or_, select
from stdnum.tr import tckimlik, vkn

from ..clock import now
from ..extensions import db
from ..models import CUSTOMER_SEARCH_SQL, Customer, CustomerDepartment, CustomerNote, Department, Language
from ..models.accounts import hash_password_for_nobody
from ..search import contains
from ..sqlite import fold_case
from . import ValidationFailed, accounts, audit, consents, ledger, notifications
from .contacts import normalize_email, normalize_phone

ACCOUNT_TYPES = ("individual", "corporate")
PERSONAL_FIELDS = ("first_name", "last_name", "email", "phone")
CORPORATE_FIELDS = ("company_name", "tax_number", "tax_office", "billing_address")
DETAIL_FIELDS = ("account_type", *PERSONAL_FIELDS, "national_id", *CORPORATE_FIELDS, "language")
MAX_LENGTHS = {
    "first_name": 100, "last_name": 100, "email": 254, "company_name": 200,
    "tax_office": 120, "billing_address": 1000,
}


def _digits(value: str) -> str:
    return "".join(value.split())


def validate_details(data: dict[str, Any], *, customer: Customer | None = None,
                     unique_email: bool = True) -> dict[str, Any]:
    """Check and normalise a customer's details (individual or corporate).

    Returns the clean values; raises ValidationFailed with every field error at once.
    `customer` is the record being edited, so its own e-mail is not a duplicate; `unique_email=False`
    leaves that check to the caller (sign-up must not tell which addresses have accounts).
    """
    errors: dict[str, list[str]] = {}
    clean: dict[str, Any] = {}

    def fail(field: str, message: str) -> None:
        errors.setdefault(field, []).append(message)

    def text(field: str) -> str:
        value = data.get(field)
        return str(value).strip() if value is not None else ""

    account_type = text("account_type") or "individual"
    if account_type not in ACCOUNT_TYPES:
        fail("account_type", _("Choose individual or corporate."))
    clean["account_type"] = account_type

    required = PERSONAL_FIELDS + (CORPORATE_FIELDS if account_type == "corporate" else ())
    for field in DETAIL_FIELDS[1:]:
        value = text(field)
        if field in required and not value:
            fail(field, _("This field is required."))
        elif field in MAX_LENGTHS and len(value) > MAX_LENGTHS[field]:
            fail(field, _("At most %(n)d characters.", n=MAX_LENGTHS[field]))
        clean[field] = value or None

    if clean["email"] and "email" not in errors:
        try:
            clean["email"] = normalize_email(clean["email"])
        except ValueError:
            fail("email", _("Enter a valid e-mail address, like name@example.com."))
        else:
            taken = select(Customer.id).where(func.lower(Customer.email) == clean["email"])
            if customer is not None:
                taken = taken.where(Customer.id != customer.id)
            if unique_email and db.session.scalar(taken) is not None:
                fail("email", _("An account with this e-mail address already exists."))

    if clean["phone"] and "phone" not in errors:
        try:
            clean["phone"] = normalize_phone(clean["phone"])
        except ValueError:
            fail("phone", _("Enter a valid phone number: 0532 123 45 67 or +44 20 7946 0958."))

    if account_type == "individual":
        for field in CORPORATE_FIELDS:
            clean[field] = None
        if clean["national_id"]:
            clean["national_id"] = _digits(clean["national_id"])
            if not tckimlik.is_valid(clean["national_id"]):
                fail("national_id", _("A Turkish ID number has 11 digits and a valid checksum."))
    else:
        clean["national_id"] = None
        if clean["tax_number"]:
            number = clean["tax_number"] = _digits(clean["tax_number"])
            valid = vkn.is_valid(number) if len(number) == 10 else tckimlik.is_valid(number)
            if not valid:
                fail("tax_number", _(
                    "A tax number has 10 digits (or 11 for a sole proprietor's ID number) "
                    "and a valid checksum."
                ))

    if clean["language"] and not Language.has(clean["language"]):
        fail("language", _("Choose a language from the list."))

    if errors:
        raise ValidationFailed(errors)
    return clean


def register_customer(
    data: dict[str, Any], password: str | None, actor: audit.Actor | None = None
) -> Customer:
    """Create a customer account; nothing is saved unless every field is valid.

    `password=None` (an account made by an agent or the API) gets a random
    password nobody knows; the customer sets one through a password reset.
    """
    errors: dict[str, list[str]] = {}
    try:
        clean = validate_details(data)
    except ValidationFailed as exc:
        errors.update(exc.errors)
    if password is not None:
        password_problem = accounts.password_problem(password)
        if password_problem:
            errors.setdefault("password", []).append(password_problem)
    if errors:
        raise ValidationFailed(errors)
    customer = Customer(**clean)
    customer.set_password(password if password is not None else secrets.token_urlsafe(32))
    db.session.add(customer)
    db.session.flush()
    audit.record(actor or audit.Actor.of(customer), "customer.register", customer)
    notifications.welcome(customer, set_password=password is None)
    return customer


def sign_up(data: dict[str, Any], password: str, *, marketing_consent: bool = False,
            ip: str | None = None) -> Customer | None:
    """A visitor opens their own account. The answer does not tell whether the address has one: for a
    known address nothing is created, its owner is mailed (sign in, or reset the password) and the
    password is hashed all the same, so even the time taken is alike. Returns the new customer or None.
    `marketing_consent`: the optional box of the form, recorded with its moment and `ip` for a new account."""
    errors: dict[str, list[str]] = {}
    try:
        clean = validate_details(data, unique_email=False)
    except ValidationFailed as exc:
        errors.update(exc.errors)
    problem = accounts.password_problem(password)
    if problem:
        errors.setdefault("password", []).append(problem)
    if errors:
        raise ValidationFailed(errors)
    existing = db.session.scalar(select(Customer).where(func.lower(Customer.email) == clean["email"]))
    if existing is None:
        customer = register_customer(data, password)
        if marketing_consent:
            consents.set_marketing_consent(customer, True, audit.Actor.of(customer, ip))
        return customer
    hash_password_for_nobody(password)
    notifications.account_exists(existing)
    return None


def update_customer(customer: Customer, data: dict[str, Any], actor: audit.Actor) -> list[str]:
    """Apply new details after validation; returns the names of the changed fields.

    A customer changes their own address only through accounts.request_email_change (password and a
    link to the new address); when an agent changes it, the old address is told and the sessions end.
    """
    merged = {field: getattr(customer, field) for field in DETAIL_FIELDS}
    merged.update({k: v for k, v in data.items() if k in DETAIL_FIELDS})
    clean = validate_details(merged, customer=customer)
    changed = [field for field, value in clean.items() if getattr(customer, field) != value]
    if "email" in changed and actor.type == "customer":
        raise ValidationFailed({"email": [_("Change your e-mail address with your password, in its own form.")]})
    old_email = customer.email
    for field in changed:
        setattr(customer, field, clean[field])
    if changed:
        audit.record(actor, "customer.update", customer, fields=changed)
    if "email" in changed:
        customer.email_verified_at = None  # the new address is confirmed by the link sent to it
        customer.end_sessions()
        notifications.email_change_notice(customer, old_email, customer.email)
        notifications.email_verification(customer)
    return changed


def set_low_credit_threshold(customer: Customer, threshold: int | None, actor: audit.Actor) -> None:
    """The customer's own "credits running low" threshold; None follows the global setting, 0 sends none."""
    if threshold is not None and not 0 <= threshold <= 1_000_000:
        raise ValidationFailed({"low_credit_threshold": [_("Enter a whole number from 0 to 1,000,000.")]})
    if customer.low_credit_threshold != threshold:
        customer.low_credit_threshold = threshold
        audit.record(actor, "customer.low_credit_threshold", customer, threshold=threshold)


def search(query: str | None = None):
    """A select of customers matching name, company, e-mail or phone, newest first."""
    statement = select(Customer).order_by(Customer.id.desc())
    if query and query.strip():
        statement = statement.where(matching(query))
    return statement


def matching(query: str):
    """The condition "name, company, e-mail or phone contains the query", case-folded as PostgreSQL does.

    On PostgreSQL each of these expressions has a trigram index (models/accounts.py
    `CUSTOMER_SEARCH_SQL`), so a search stays fast at millions of customers.
    """
    text = fold_case(query.strip())
    searched = {key: literal_column(sql) for key, sql in CUSTOMER_SEARCH_SQL.items()}
    return or_(
        contains(searched["name"], text),
        contains(searched["company"], text),
        contains(searched["email"], text),
        contains(searched["phone"], text.replace(" ", "")),
    )


def department_state(customer: Customer) -> list[tuple[Department, CustomerDepartment | None]]:
    """Every department with the card's row for it (None when off), for the card page."""
    rows = {row.department_id: row for row in customer.departments}
    departments = db.session.scalars(select(Department).order_by(Department.name))
    return [(department, rows.get(department.id)) for department in departments]


def set_department(customer: Customer, department: Department, enabled: bool, actor: audit.Actor) -> None:
    """An agent switches a department on (source `manual`: free to use) or off on the card."""
    row = next((r for r in customer.departments if r.department_id == department.id), None)
    if enabled:
        if row is None:
            customer.departments.append(CustomerDepartment(department=department, source="manual"))
        elif row.source != "manual":
            row.source = "manual"
        else:
            return
    else:
        if row is None:
            return
        customer.departments.remove(row)
    audit.record(actor, "customer.department", customer, department=department.name, enabled=enabled)


def add_note(customer: Customer, body: str, actor: audit.Actor) -> CustomerNote:
    body = (body or "").strip()
    if not body:
        raise ValidationFailed({"body": [_("Write the note first.")]})
    note = CustomerNote(customer=customer, agent_id=actor.id if actor.type == "agent" else None, body=body)
    db.session.add(note)
    audit.record(actor, "customer.note", customer)
    return note


def set_identity_verified(customer: Customer, verified: bool, actor: audit.Actor, **details) -> bool:
    """Mark (or unmark) the customer identity-verified, on the locked row: the same mark twice at once is one
    change and one audit row. True when it changed."""
    customer = ledger.lock_customer(customer.id)
    if customer.identity_verified == verified:
        return False
    customer.identity_verified = verified
    customer.identity_verified_at = now() if verified else None
    audit.record(actor, "customer.identity_verified", customer, verified=verified, **details)
    return True
