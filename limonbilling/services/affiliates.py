"""Affiliates (WHMCS): who referred a customer, recorded on the order, and the commission they earn.

A visitor arriving with `?ref=CODE` (an active affiliate's code, any letter case) gets a signed cookie with
the code and the moment of the visit; the last valid code wins, an unknown one is ignored. A customer's order
records the affiliate when the cookie is at most REFERRAL_DAYS old to the second (checked here by the signed
moment, whatever the browser keeps), and the affiliate is still active. Agents may assign, change or clear it
on the order page, under the order's lock.

Commission (`commission_minor`): the money kept from the affiliate's orders — received less refunded, the
dashboard's revenue formula (reports.kept_minor) — per currency, times the percent, rounded half up to the
minor unit once per currency. Refunded money earns nothing, nor money we refused and return by itself; as on
the dashboard, a balance top-up (an agent may set its affiliate) earns nothing either: its money earns when the
balance pays for an order, never twice.
"""
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal

from flask_babel import gettext as _
from sqlalchemy import func, select
from sqlalchemy.orm import joinedload, selectinload

from ..extensions import db
from ..models import Affiliate, Order, OrderKind, Payment
from . import ServiceError, ValidationFailed, audit, reports, tokens
from .lifecycle import lock_order

REFERRAL_COOKIE = "referral"
REFERRAL_DAYS = 30
REFERRAL_MAX_AGE = REFERRAL_DAYS * 24 * 60 * 60  # seconds: the cookie's Max-Age and the signed moment's limit
CODE_LENGTH = 40
NAME_LENGTH = 120


def normal_code(code: str | None) -> str:
    return (code or "").strip().upper()


def find(code: str | None) -> Affiliate | None:
    """The affiliate with this code in any letter case (codes are kept in capitals)."""
    code = normal_code(code)
    return db.session.scalar(select(Affiliate).where(Affiliate.code == code)) if code else None


def all_affiliates() -> list[Affiliate]:
    return list(db.session.scalars(select(Affiliate).order_by(Affiliate.name, Affiliate.id)))


# --- the referral cookie -------------------------------------------------------------------------------

def referral_cookie(code: str | None) -> str | None:
    """The cookie value to remember a visit through `?ref=code`, or None for a code that is not an active
    affiliate's (ignored without a word)."""
    affiliate = find(code)
    return tokens.referral_token(affiliate.code) if affiliate is not None and affiliate.active else None


def referrer(cookie: str | None) -> Affiliate | None:
    """The affiliate a referral cookie names, if it is ours, at most REFERRAL_MAX_AGE seconds old (30 days
    after the visit still counts, a second more does not) and the affiliate is still active."""
    if not cookie:
        return None
    try:
        data = tokens.load(cookie, "referral", REFERRAL_MAX_AGE)
    except ServiceError:
        return None
    affiliate = find(data.get("code"))
    return affiliate if affiliate is not None and affiliate.active else None


# --- agents define affiliates ----------------------------------------------------------------------------

def _checked(values: dict, affiliate: Affiliate | None) -> tuple[str, str, int]:
    errors: dict[str, list[str]] = {}
    name = (values.get("name") or "").strip()
    if not name or len(name) > NAME_LENGTH:
        errors["name"] = [_("Enter a name of at most %(max)d characters.", max=NAME_LENGTH)]
    code = normal_code(values.get("code"))
    if not code or len(code) > CODE_LENGTH or not code.replace("-", "").replace("_", "").isalnum() \
            or not code.isascii():
        errors["code"] = [_("Use letters, digits, - and _ (at most 40).")]
    elif (same := find(code)) is not None and same is not affiliate:
        errors["code"] = [_("Another affiliate has this code (letter case does not matter).")]
    percent = values.get("commission_percent")
    if not isinstance(percent, int) or isinstance(percent, bool) or not 0 <= percent <= 100:
        errors["commission_percent"] = [_("A whole percentage from 0 to 100.")]
    if errors:
        raise ValidationFailed(errors)
    return name, code, percent


def create(values: dict, actor: audit.Actor) -> Affiliate:
    name, code, percent = _checked(values, None)
    affiliate = Affiliate(name=name, code=code, commission_percent=percent, active=bool(values.get("active", True)))
    db.session.add(affiliate)
    db.session.flush()
    audit.record(actor, "affiliate.create", affiliate, code=code, percent=percent)
    return affiliate


def update(affiliate: Affiliate, values: dict, actor: audit.Actor) -> Affiliate:
    """Change the name, code or percent. A changed code ends the old links: cookies name the code."""
    name, code, percent = _checked(values, affiliate)
    changes = {key: [getattr(affiliate, key), new] for key, new in
               (("name", name), ("code", code), ("commission_percent", percent)) if getattr(affiliate, key) != new}
    affiliate.name, affiliate.code, affiliate.commission_percent = name, code, percent
    if changes:
        audit.record(actor, "affiliate.update", affiliate, **changes)
    return affiliate


def set_active(affiliate: Affiliate, active: bool, actor: audit.Actor) -> None:
    """An inactive affiliate's code is no longer remembered and its cookies attribute nothing."""
    affiliate.active = active
    audit.record(actor, "affiliate.active", affiliate, code=affiliate.code, active=active)


# --- the order's affiliate -------------------------------------------------------------------------------

def assign(order: Order, affiliate_id: int | None, actor: audit.Actor) -> bool:
    """Set (or clear, with None) the affiliate of the order, under the order's lock; one audit entry per
    actual change. Returns whether it changed (the same affiliate again changes nothing)."""
    order = lock_order(order)
    affiliate = None
    if affiliate_id is not None:
        affiliate = db.session.get(Affiliate, affiliate_id)
        if affiliate is None:
            raise ServiceError("affiliate_unknown", _("This affiliate no longer exists."))
    if order.affiliate_id == affiliate_id:
        return False
    previous = order.affiliate.code if order.affiliate is not None else None
    order.affiliate_id = affiliate_id
    audit.record(actor, "order.affiliate", order, number=order.number, previous=previous,
                 affiliate=affiliate.code if affiliate is not None else None)
    return True


# --- what affiliates earned ------------------------------------------------------------------------------

def commission_minor(kept_minor: int, percent: int) -> int:
    """`percent` of the money kept, rounded half up to the minor unit (0.5 kuruş is 1 kuruş)."""
    return int((Decimal(kept_minor) * percent / 100).quantize(Decimal(1), ROUND_HALF_UP))


@dataclass
class Earnings:
    """An affiliate's orders, the money kept from them and the commission due, per currency."""

    affiliate: Affiliate
    orders: int = 0
    paid: dict[str, int] = field(default_factory=dict)

    @property
    def commission(self) -> dict[str, int]:
        return {currency: commission_minor(kept, self.affiliate.commission_percent)
                for currency, kept in self.paid.items()}


def earnings(affiliate_id: int | None = None) -> list[Earnings]:
    """Every affiliate's earnings (or one's), by name; two grouped queries whatever the number of orders."""
    statement = select(Affiliate).order_by(Affiliate.name, Affiliate.id)
    if affiliate_id is not None:
        statement = statement.where(Affiliate.id == affiliate_id)
    found = {affiliate.id: Earnings(affiliate) for affiliate in db.session.scalars(statement)}
    scope = Order.affiliate_id.in_(found)
    for affiliate, count in db.session.execute(
            select(Order.affiliate_id, func.count(Order.id)).where(scope).group_by(Order.affiliate_id)):
        found[affiliate].orders = count
    for affiliate, currency, kept in db.session.execute(
            select(Order.affiliate_id, Payment.currency, func.sum(reports.kept_minor()))
            .join(Order, Order.id == Payment.order_id)
            .where(scope, reports.accepted_payment(), Order.kind != OrderKind.BALANCE)
            .group_by(Order.affiliate_id, Payment.currency).order_by(Payment.currency)):
        found[affiliate].paid[currency] = int(kept)
    return list(found.values())


def orders_of(affiliate: Affiliate):
    """The affiliate's orders, with their customers and money rows loaded in a few queries per page."""
    return select(Order).where(Order.affiliate_id == affiliate.id).options(
        joinedload(Order.customer), selectinload(Order.payments), selectinload(Order.refunds))
