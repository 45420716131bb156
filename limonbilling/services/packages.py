"""Billing → Billing Packages (domain.md §4): create, edit, reorder, sell, archive."""
import re
from decimal import Decimal

from flask_babel import format_decimal
from flask_babel import gettext as _
from sqlalchemy import func, select
from sqlalchemy.orm import selectinload

from ..extensions import db
from ..models import MAX_RECORD_ID, Currency, Department, Grant, Package, PackageType
from . import ServiceError, ValidationFailed, audit

# The largest amount anyone may type (a price, discount, refund or balance adjustment): 10,000,000.00 in any
# currency, far beyond a support package and far within the 64-bit money columns, VAT on top included.
MAX_MONEY_MINOR = 1_000_000_000


# What an agent may type: plain (150, 150.5, 150,50), or grouped in thousands with the other mark as the decimal
# point (1.250,50 / 12,500.00 / 1.250.000). ASCII digits only. One group alone (1.250, 12,500) could be read
# either way: it is refused, never guessed.
_PLAIN = re.compile(r"([0-9]+)(?:[.,]([0-9]{1,2}))?")
_LONE_GROUP = re.compile(r"[1-9][0-9]{0,2}[.,][0-9]{3}")
_GROUPED = (re.compile(r"([1-9][0-9]{0,2}(?:\.[0-9]{3})+)(?:,([0-9]{1,2}))?"),
            re.compile(r"([1-9][0-9]{0,2}(?:,[0-9]{3})+)(?:\.([0-9]{1,2}))?"))


def _read_amount(raw: str) -> Decimal | None:
    if match := _PLAIN.fullmatch(raw):
        whole, cents = match.groups()
    else:
        match = next((pattern.fullmatch(raw) for pattern in _GROUPED if pattern.fullmatch(raw)), None)
        if match is None or (match.group(2) is None and _LONE_GROUP.fullmatch(raw)):
            return None
        whole, cents = re.sub("[.,]", "", match.group(1)), match.group(2)
    return Decimal(f"{whole}.{cents or '0'}")


def parse_price(text) -> int:
    """An amount as typed → minor units: '150', '150.5', '150,50', '1.250,50', '12,500.00'. Refused when ≤ 0,
    more than MAX_MONEY_MINOR, or unclear (exponents, other scripts' digits, a lone thousands group)."""
    raw = str(text or "").strip().replace(" ", "")
    value = _read_amount(raw.removeprefix("-"))
    if value is not None and raw.startswith("-"):
        raise ValueError(_("The price must be more than 0."))
    if value is None:
        if _LONE_GROUP.fullmatch(raw):
            raise ValueError(_("Use at most 2 decimals; for thousands write 1250 or 1.250,00."))
        if re.fullmatch(r"[0-9]+[.,][0-9]{3,}", raw):
            raise ValueError(_("Use at most 2 decimals."))
        raise ValueError(_("Enter a price like 150.00."))
    if value <= 0:
        raise ValueError(_("The price must be more than 0."))
    if value > Decimal(MAX_MONEY_MINOR) / 100:
        raise ValueError(_("At most %(max)s.", max=format_decimal(Decimal(MAX_MONEY_MINOR) / 100, "#,##0.00")))
    return int(value * 100)


def parse_price_override(text) -> int | None:
    """An agent's price for one order: empty keeps the package price (None), 0 makes it free."""
    raw = str(text if text is not None else "").strip()
    if not raw:
        return None
    if raw.replace(",", ".").strip("0.") == "" and raw[0].isdigit():
        return 0
    return parse_price(raw)


MAX_AMOUNT = {"credits": 1_000_000_000, "days": 36_500}  # far below the balance's limit; 100 years


def _positive_int(text, most: int) -> int:
    value = int(str(text).strip())
    if not 0 < value <= most:
        raise ValueError
    return value


def _validate(values: dict, package: Package | None) -> dict:
    errors: dict[str, list[str]] = {}
    clean: dict = {}
    clean["name"] = (values.get("name") or "").strip()
    if not clean["name"]:
        errors["name"] = [_("This field is required.")]
    elif len(clean["name"]) > 120:
        errors["name"] = [_("At most %(n)d characters.", n=120)]
    clean["description"] = (values.get("description") or "").strip()
    clean["type"] = values.get("type")
    if not PackageType.has(clean["type"]):
        errors["type"] = [_("Choose credit or subscription.")]
    if package is not None and _was_sold(package) and clean["type"] != package.type:
        errors["type"] = [_("A package that was sold keeps its type; create a new package instead.")]
    try:
        clean["price_minor"] = parse_price(values.get("price"))
    except ValueError as error:
        errors["price"] = [str(error)]
    clean["currency"] = values.get("currency") or "TRY"
    if not Currency.has(clean["currency"]):
        errors["currency"] = [_("Choose TRY, USD or EUR.")]
    clean["credits"] = clean["days"] = None
    amount_field = "credits" if clean["type"] == "credit" else "days"
    if PackageType.has(clean["type"]):
        try:
            clean[amount_field] = _positive_int(values.get(amount_field), MAX_AMOUNT[amount_field])
        except (TypeError, ValueError):
            errors[amount_field] = [_("Enter a whole number from 1 to %(max)s.",
                                      max=format_decimal(MAX_AMOUNT[amount_field]))]
    department_ids = [int(i) for i in values.get("department_ids") or []]
    departments = list(db.session.scalars(select(Department).where(
        Department.id.in_([i for i in department_ids if 0 < i <= MAX_RECORD_ID]))))
    if not departments or len(departments) != len(set(department_ids)):
        errors["department_ids"] = [_("Choose at least one department.")]
    clean["departments"] = departments
    clean["on_sale"] = bool(values.get("on_sale"))
    if errors:
        raise ValidationFailed(errors)
    return clean


def _was_sold(package: Package) -> bool:
    return db.session.scalar(select(Grant.id).where(Grant.package_id == package.id).limit(1)) is not None


def create_package(values: dict, actor: audit.Actor) -> Package:
    clean = _validate(values, None)
    last = db.session.scalar(select(func.max(Package.sort_order))) or 0
    package = Package(**clean, sort_order=last + 1)
    db.session.add(package)
    db.session.flush()
    audit.record(actor, "package.create", package, name=package.name)
    return package


def update_package(package: Package, values: dict, actor: audit.Actor) -> None:
    """Edit a package; what was sold keeps its own snapshot, so past sales do not change."""
    if package.archived:
        raise ServiceError("archived", _("An archived package cannot be edited."))
    clean = _validate(values, package)
    for key, value in clean.items():
        setattr(package, key, value)
    audit.record(actor, "package.update", package, name=package.name)


def set_on_sale(package: Package, on_sale: bool, actor: audit.Actor) -> None:
    if package.archived and on_sale:
        raise ServiceError("archived", _("An archived package cannot be put on sale."))
    package.on_sale = on_sale
    audit.record(actor, "package.on_sale", package, on_sale=on_sale)


def archive_or_delete(package: Package, actor: audit.Actor) -> str:
    """A package that was ever sold is archived, never deleted; an unsold one is deleted."""
    if _was_sold(package):
        package.archived = True
        package.on_sale = False
        audit.record(actor, "package.archive", package, name=package.name)
        return "archived"
    audit.record(actor, "package.delete", package, name=package.name)
    db.session.delete(package)
    return "deleted"


def move(package: Package, direction: int, actor: audit.Actor) -> None:
    """Swap the package with its neighbour in the sort order (-1 up, +1 down)."""
    ordered = list(db.session.scalars(
        select(Package).where(~Package.archived).order_by(Package.sort_order, Package.id)
    ))
    index = ordered.index(package)
    target = index + direction
    if not 0 <= target < len(ordered):
        return
    ordered[index], ordered[target] = ordered[target], ordered[index]
    for position, item in enumerate(ordered, start=1):
        item.sort_order = position
    audit.record(actor, "package.move", package, direction=direction)


def list_packages(include_archived: bool = False) -> list[Package]:
    statement = select(Package).order_by(Package.archived, Package.sort_order, Package.id).options(
        selectinload(Package.departments))
    if not include_archived:
        statement = statement.where(~Package.archived)
    return list(db.session.scalars(statement))


def on_sale() -> list[Package]:
    """With their departments, loaded in one more statement (each offer names them)."""
    return list(db.session.scalars(
        select(Package).where(Package.on_sale, ~Package.archived).order_by(Package.sort_order, Package.id)
        .options(selectinload(Package.departments))
    ))


def covering(department_id: int) -> list[Package]:
    """On-sale packages that include the department (for "buy a package that covers it" links)."""
    return [package for package in on_sale() if department_id in package.department_ids]
