"""Promo codes (domain.md §6): checked at checkout with clear messages, their uses counted under a limit.

A code's use is taken with a conditional UPDATE when the order is placed, so
concurrent checkouts can never go over `max_uses`. The order holds the use
(`promo_use_held`); only an order that ends without any payment gives it back
(domain.md §6a), and an order that ever received money keeps it.
"""
from datetime import date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal

from flask_babel import format_decimal
from flask_babel import gettext as _
from sqlalchemy import select, update

from ..clock import day_start, local_day, now
from ..extensions import db
from ..models import Currency, Order, Package, PromoCode
from . import ServiceError, ValidationFailed, audit
from .packages import parse_price

MAX_USES = 1_000_000  # more is no limit at all; the counters are 32-bit integers


def find(code: str) -> PromoCode | None:
    code = (code or "").strip().upper()
    return db.session.scalar(select(PromoCode).where(PromoCode.code == code)) if code else None


def check(code: str, package: Package, price_minor: int | None = None, *, forced: bool = False
          ) -> tuple[PromoCode, int]:
    """The code and the discount it gives on the package (at `price_minor`, its price by default) now,
    or a refusal that says why. A code an agent picks (`forced`) applies whatever its dates, use limit or
    packages; it must still exist, be active, fit the currency and leave something to pay."""
    price_minor = package.price_minor if price_minor is None else price_minor
    promo = find(code)
    moment = now()
    if promo is None or not promo.active:
        raise ServiceError("promo_unknown", _("This promo code does not exist."))
    if not forced:
        _check_terms(promo, package, moment)
    if promo.kind == "fixed" and promo.currency != package.currency:
        raise ServiceError("promo_currency", _("This promo code is for prices in %(currency)s.",
                                               currency=promo.currency))
    amount = discount(promo, price_minor)
    if amount >= price_minor:
        raise ServiceError("promo_too_large", _("This promo code cannot be used on this package."))
    return promo, amount


def _check_terms(promo: PromoCode, package: Package, moment: datetime) -> None:
    """The code's dates, use limit and packages, which bind customers (not an agent who picks the code)."""
    if promo.valid_from and moment < promo.valid_from:
        raise ServiceError("promo_not_yet", _("This promo code is valid from %(date)s.",
                                              date=local_day(promo.valid_from).isoformat()))
    if promo.valid_until and moment > promo.valid_until:
        raise ServiceError("promo_expired", _("This promo code has expired."))
    if promo.max_uses is not None and promo.uses >= promo.max_uses:
        raise ServiceError("promo_used_up", _("This promo code has been used as many times as it may."))
    if promo.package_ids and package.id not in promo.package_ids:
        raise ServiceError("promo_not_for_package", _("This promo code does not apply to this package."))


def discount(promo: PromoCode, price_minor: int) -> int:
    if promo.kind == "percent":
        value = (Decimal(price_minor) * promo.value / 100).quantize(Decimal(1), ROUND_HALF_UP)
        return min(int(value), price_minor)
    return min(promo.value, price_minor)


def take_use(promo: PromoCode, *, forced: bool = False) -> None:
    """Count one use, never past the limit, even when checkouts race; a code an agent forces counts past it."""
    statement = update(PromoCode).where(PromoCode.id == promo.id)
    if promo.max_uses is not None and not forced:
        statement = statement.where(PromoCode.uses < PromoCode.max_uses)
    statement = statement.values(uses=PromoCode.uses + 1).execution_options(synchronize_session=False)
    if db.session.execute(statement).rowcount != 1:
        raise ServiceError("promo_used_up", _("This promo code has been used as many times as it may."))
    db.session.expire(promo, ["uses"])


def hold_use(order: Order) -> None:
    """An order reopened (Back to Pending) holds its code's use again, if one is left (an agent's forced code
    takes one whatever the limit). The order is locked."""
    if order.promo_code_id is None or order.promo_use_held:
        return
    promo = db.session.get(PromoCode, order.promo_code_id)
    if promo is not None:
        take_use(promo, forced=order.promo_forced)
    order.promo_use_held = True


def release_use(order: Order) -> None:
    """An order that ends (cancelled, fraud, expired) without any payment gives its use back, once: the flag
    changes under the order's lock, so parallel cancels give back one use. Money we refused and returned by
    itself (a half 3-D approval) was no payment: the order still gives its use back."""
    if order.promo_code_id is None or not order.promo_use_held or order.accepted_payments:
        return
    db.session.execute(update(PromoCode).where(PromoCode.id == order.promo_code_id, PromoCode.uses > 0)
                       .values(uses=PromoCode.uses - 1).execution_options(synchronize_session=False))
    order.promo_use_held = False


def create(values: dict, actor: audit.Actor) -> PromoCode:
    errors: dict[str, list[str]] = {}
    code = (values.get("code") or "").strip().upper()
    if not code or not code.replace("-", "").replace("_", "").isalnum() or len(code) > 40:
        errors["code"] = [_("Use letters, digits, - and _ (at most 40).")]
    elif find(code) is not None:
        errors["code"] = [_("This code already exists.")]
    kind = values.get("kind")
    value = 0
    if kind == "percent":
        try:
            value = int(str(values.get("value")).strip())
            if not 1 <= value <= 99:
                raise ValueError
        except ValueError:
            errors["value"] = [_("A percentage from 1 to 99.")]
    elif kind == "fixed":
        try:
            value = parse_price(values.get("value"))
        except ValueError as error:
            errors["value"] = [str(error)]
        if not Currency.has(values.get("currency")):
            errors["currency"] = [_("Choose TRY, USD or EUR.")]
    else:
        errors["kind"] = [_("Choose percent or fixed amount.")]
    valid_from, valid_until = values.get("valid_from"), values.get("valid_until")
    if valid_from and valid_until and valid_until < valid_from:
        errors["valid_until"] = [_("The end comes before the start.")]
    max_uses = values.get("max_uses")
    if max_uses is not None and not 1 <= max_uses <= MAX_USES:
        errors["max_uses"] = [_("From 1 to %(max)s, or leave it empty for no limit.", max=format_decimal(MAX_USES))]
    if errors:
        raise ValidationFailed(errors)
    promo = PromoCode(
        code=code, kind=kind, value=value, currency=values.get("currency") if kind == "fixed" else None,
        valid_from=_day_start(valid_from), valid_until=_day_end(valid_until), max_uses=max_uses, uses=0,
        package_ids=[int(i) for i in values.get("package_ids") or []], active=True, created_at=now(),
    )
    db.session.add(promo)
    db.session.flush()
    audit.record(actor, "promo_code.create", promo, code=code)
    return promo


def _day_start(day: date | None) -> datetime | None:
    """The first moment of a local day (the agent types days in Istanbul time, the database keeps UTC)."""
    return day_start(day) if day else None


def _day_end(day: date | None) -> datetime | None:
    """The last moment of a local day: the code works until the day ends where the agent is."""
    return day_start(day + timedelta(days=1)) - timedelta(microseconds=1) if day else None


def set_active(promo: PromoCode, active: bool, actor: audit.Actor) -> None:
    promo.active = active
    audit.record(actor, "promo_code.active", promo, active=active)


def all_codes() -> list[PromoCode]:
    return list(db.session.scalars(select(PromoCode).order_by(PromoCode.id.desc())))
