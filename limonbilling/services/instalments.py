"""Card instalments (taksit): the counts offered, their minimum amounts and surcharges, and the arithmetic.

Settings → Payment Systems switches instalments on and lists, for each count offered (2–12), the minimum order
amount (what a single payment would cost) and the surcharge (vade farkı) in percent, 0 allowed; TRY orders only.
The surcharge is part of what the customer pays and, like the package price, includes VAT at the order's rate:
the invoice shows it as a line of its own. The count and the surcharge are fixed when the order is placed.

Rounding: the surcharge is the single-payment total × the percent, rounded half up to the kuruş; the total with
it is split into equal instalments, and when it does not split evenly the first instalments are one kuruş more,
so every instalment is within a kuruş of the others and they add up to the total exactly. (The card's issuer
makes the monthly charges; these are what the customer is shown.)
"""
import re
from dataclasses import asdict, dataclass
from decimal import ROUND_HALF_UP, Decimal

from flask_babel import gettext as _

from ..formatting import format_money, plain_amount
from ..models import Currency, PaymentMethod
from . import ServiceError, ValidationFailed, audit, settings
from .packages import parse_price

MIN_COUNT, MAX_COUNT = 2, 12
MAX_SURCHARGE_BASIS_POINTS = 10_000  # 100 %
CURRENCY = Currency.TRY


@dataclass(frozen=True)
class Plan:
    """One count offered: from `minimum_minor` (a single payment's total), at `surcharge_basis_points`
    hundredths of a percent (250 = 2.50 %)."""

    count: int
    minimum_minor: int
    surcharge_basis_points: int

    @property
    def surcharge_percent(self) -> str:
        return plain_amount(self.surcharge_basis_points)


@dataclass(frozen=True)
class Split:
    """A total in `count` instalments: `price_minor` is the single payment's total, `total_minor` adds the
    surcharge, `parts` are the instalments (the first ones a kuruş more when it does not split evenly)."""

    count: int
    price_minor: int
    surcharge_minor: int
    parts: tuple[int, ...]

    @property
    def total_minor(self) -> int:
        return self.price_minor + self.surcharge_minor

    @property
    def monthly_minor(self) -> int:
        return self.parts[0]

    @property
    def even(self) -> bool:
        return self.parts[0] == self.parts[-1]


def surcharge(price_minor: int, basis_points: int) -> int:
    """The surcharge on a total: price × basis points / 10 000, rounded half up to the kuruş."""
    return int((Decimal(price_minor) * basis_points / 10_000).quantize(Decimal(1), ROUND_HALF_UP))


def split(price_minor: int, count: int, basis_points: int = 0) -> Split:
    """`price_minor` with its surcharge in `count` instalments (1: a single payment without surcharge)."""
    extra = surcharge(price_minor, basis_points) if count > 1 else 0
    base, left = divmod(price_minor + extra, count)
    return Split(count, price_minor, extra, tuple(base + 1 if i < left else base for i in range(count)))


def plans() -> list[Plan]:
    """The counts offered by the settings, by count (whatever the switch says)."""
    return sorted((Plan(**plan) for plan in settings.get("card_instalment_plans")), key=lambda plan: plan.count)


def offered(price_minor: int, currency: str) -> list[Split]:
    """The instalment choices for a card payment of this total: none when instalments are off or the currency
    is not TRY; each count whose minimum the total reaches."""
    if not settings.get("card_instalments_enabled") or currency != CURRENCY:
        return []
    return [split(price_minor, plan.count, plan.surcharge_basis_points)
            for plan in plans() if price_minor >= plan.minimum_minor]


def choose(price_minor: int, currency: str, count: int, payment_method: str) -> Split:
    """The split the customer chose at checkout (1: a single payment), if it is offered for this order."""
    if count == 1:
        return split(price_minor, 1)
    if payment_method != PaymentMethod.CARD:
        raise ServiceError("instalments_card_only", _("Instalments are for card payments only."))
    if not settings.get("card_instalments_enabled") or currency != CURRENCY:
        raise ServiceError("instalments_off", _("Instalments are not available for this order; choose a single "
                                                "payment."))
    plan = next((plan for plan in plans() if plan.count == count), None)
    if plan is None:
        raise ServiceError("instalments_count", _("%(count)d instalments are not offered; choose another number "
                                                  "of instalments or a single payment.", count=count))
    if price_minor < plan.minimum_minor:
        raise ServiceError("instalments_minimum", _(
            "%(count)d instalments are offered from %(minimum)s; choose fewer instalments or a single payment.",
            count=count, minimum=format_money(plan.minimum_minor, currency)))
    return split(price_minor, count, plan.surcharge_basis_points)


# --- Settings → Payment Systems -------------------------------------------------------------------------------

def plans_text(values: list[Plan] | None = None) -> str:
    """The plans as the settings page shows them: one line per count, "count; minimum; surcharge %"."""
    return "\n".join(f"{plan.count}; {plain_amount(plan.minimum_minor)}; {plan.surcharge_percent}"
                     for plan in (plans() if values is None else values))


def parse_plans(text: str) -> list[Plan]:
    """Lines of "count; minimum amount; surcharge %" (e.g. "3; 300.00; 2.50"): counts 2 to 12, once each; the
    minimum 0 or more; the surcharge from 0 to 100 % with at most 2 decimals."""
    found: dict[int, Plan] = {}
    errors: list[str] = []
    for number, line in enumerate((text or "").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            found_plan = _parse_line(line)
        except ValueError as error:
            errors.append(_("Line %(line)d: %(problem)s", line=number, problem=str(error)))
            continue
        if found_plan.count in found:
            errors.append(_("Line %(line)d: %(count)d instalments are listed twice.", line=number,
                            count=found_plan.count))
        found[found_plan.count] = found_plan
    if errors:
        raise ValidationFailed({"card_instalment_plans": errors})
    return sorted(found.values(), key=lambda plan: plan.count)


def _parse_line(line: str) -> Plan:
    parts = [part.strip() for part in line.split(";")]
    if len(parts) != 3:
        raise ValueError(_("write the count, the minimum amount and the surcharge, separated by semicolons."))
    count_text, minimum_text, percent_text = parts
    if not count_text.isascii() or not count_text.isdigit() or not MIN_COUNT <= int(count_text) <= MAX_COUNT:
        raise ValueError(_("the count must be from %(min)d to %(max)d.", min=MIN_COUNT, max=MAX_COUNT))
    minimum = 0 if minimum_text.replace(",", ".").strip("0.") == "" and minimum_text[:1].isdigit() \
        else parse_price(minimum_text)
    if not re.fullmatch(r"[0-9]{1,3}(?:[.,][0-9]{1,2})?", percent_text) \
            or not 0 <= (points := int(Decimal(percent_text.replace(",", ".")) * 100)) <= MAX_SURCHARGE_BASIS_POINTS:
        raise ValueError(_("the surcharge must be a percent from 0 to 100 with at most 2 decimals."))
    return Plan(int(count_text), minimum, points)


def save_settings(enabled: bool, plans_text_value: str, actor: audit.Actor) -> list[str]:
    """Settings → Payment Systems, card instalments: switched on, it needs at least one count."""
    parsed = parse_plans(plans_text_value)
    if enabled and not parsed:
        raise ValidationFailed({"card_instalment_plans": [_("List at least one count to offer instalments.")]})
    return settings.update({"card_instalments_enabled": bool(enabled),
                            "card_instalment_plans": [asdict(plan) for plan in parsed]}, actor)
