"""The card as the customer typed it at checkout, checked before anything goes to the bank."""
import re

from flask_babel import gettext as _

from ..clock import local_today
from ..services import ValidationFailed
from .base import Card, luhn_valid


def parse_card(number: str, expiry: str, cvv: str) -> Card:
    """The card as the customer typed it; errors name the field, never the value (nothing to leak)."""
    digits = "".join(ch for ch in (number or "") if ch in "0123456789")  # ASCII: "²".isdigit() is true
    errors: dict[str, list[str]] = {}
    if not 12 <= len(digits) <= 19 or not luhn_valid(digits):
        errors["card_number"] = [_("Check the card number.")]
    month, _sep, year = (expiry or "").replace(" ", "").partition("/")
    if not (re.fullmatch(r"[0-9]{1,2}", month) and re.fullmatch(r"[0-9]{2}|[0-9]{4}", year) and 1 <= int(month) <= 12):
        errors["card_expiry"] = [_("Write the expiry as MM/YY, e.g. 12/30.")]
    elif _expired(int(month), int(year)):
        errors["card_expiry"] = [_("This card has expired. Check the expiry date or use another card.")]
    if not re.fullmatch(r"[0-9]{3,4}", cvv or ""):
        errors["card_cvv"] = [_("The security code has 3 or 4 digits.")]
    if errors:
        raise ValidationFailed(errors)
    card_type = "mastercard" if digits[0] in "25" else "visa"
    return Card(pan=digits, exp_month=int(month), exp_year=int(year[-2:]), cvv=cvv, card_type=card_type)


def _expired(month: int, year: int) -> bool:
    """A card is valid through the last day of its expiry month, by the bank's (Istanbul) calendar."""
    today = local_today()
    return (year if year >= 100 else 2000 + year, month) < (today.year, today.month)
