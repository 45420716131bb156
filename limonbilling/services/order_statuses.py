"""Custom order statuses (WHMCS): a name and colour agents choose, counted as pending, active or cancelled."""
import re

from flask_babel import gettext as _
from flask_babel import ngettext
from sqlalchemy import func, select

from ..extensions import db
from ..models import MAX_RECORD_ID, Order, OrderStatus
from . import ServiceError, ValidationFailed, audit

COUNTS_AS = ("pending", "active", "cancelled")
COLOUR = re.compile(r"^#[0-9a-fA-F]{6}$")


def choice_id(choice: str) -> int | None:
    """The id in a "custom:<id>" status choice (the orders list's filter, a bulk action), None for any other text:
    what a visitor types must not reach the database as an id outside 1…MAX_RECORD_ID."""
    digits = choice.removeprefix("custom:")
    if digits != choice and len(digits) <= 10 and digits.isascii() and digits.isdigit():
        return int(digits) if 0 < int(digits) <= MAX_RECORD_ID else None
    return None


def lock(status_id: int, *, shared: bool = False) -> OrderStatus | None:
    """The status re-read with its row locked: shared by a bulk change moving orders to it, exclusively by an
    edit of what it counts as or a delete, which count the orders carrying it after the bulk changes commit."""
    return db.session.execute(select(OrderStatus).where(OrderStatus.id == status_id).with_for_update(read=shared)
                              .execution_options(populate_existing=True)).scalar_one_or_none()


def all_statuses() -> list[OrderStatus]:
    return list(db.session.scalars(select(OrderStatus).order_by(OrderStatus.name)))


def save(status: OrderStatus | None, *, name: str, colour: str, counts_as: str, actor: audit.Actor) -> OrderStatus:
    """Create (status None) or change a custom status. What it counts as changes only while no order carries it:
    an order's core state moves by an action, under its lock and by the lifecycle table (Accept needs the money,
    a paid top-up is never cancelled, a promo use is held or given back), never by relabelling a status."""
    errors: dict[str, list[str]] = {}
    name = (name or "").strip()
    if not name or len(name) > 40:
        errors["name"] = [_("Enter a name of at most 40 characters.")]
    elif db.session.scalar(select(OrderStatus.id).where(
            func.lower(OrderStatus.name) == name.lower(), OrderStatus.id != (status.id if status else None))):
        errors["name"] = [_("A status with this name exists already.")]
    elif name.lower() in ("pending", "active", "fraud", "cancelled"):
        errors["name"] = [_("This is the name of a built-in status.")]
    if not COLOUR.match(colour or ""):
        errors["colour"] = [_("Choose a colour like #1a7f37.")]
    if status is not None:
        status = lock(status.id) or status
    if counts_as not in COUNTS_AS:
        errors["counts_as"] = [_("Choose pending, active or cancelled.")]
    elif status is not None and counts_as != status.counts_as and (in_use := _orders_in(status)):
        errors["counts_as"] = [ngettext(
            "%(num)d order has this status, so what it counts as stays; move it to another status first.",
            "%(num)d orders have this status, so what it counts as stays; move them to another status first.",
            in_use)]
    if errors:
        raise ValidationFailed(errors)
    if status is None:
        status = OrderStatus()
        db.session.add(status)
    status.name, status.colour, status.counts_as = name, colour.lower(), counts_as
    db.session.flush()
    audit.record(actor, "order_status.save", status, name=name, counts_as=counts_as)
    return status


def _orders_in(status: OrderStatus) -> int:
    return db.session.scalar(select(func.count(Order.id)).where(Order.custom_status_id == status.id))


def delete(status: OrderStatus, actor: audit.Actor) -> None:
    status = lock(status.id) or status
    in_use = _orders_in(status)
    if in_use:
        raise ServiceError("in_use", ngettext("%(num)d order has this status; move it to another first.",
                                              "%(num)d orders have this status; move them to another first.",
                                              in_use))
    audit.record(actor, "order_status.delete", status, name=status.name)
    db.session.delete(status)
