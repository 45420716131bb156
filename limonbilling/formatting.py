"""Money as people read it (a leaf: pages, e-mails and CSV-free reports all format through it)."""
import re
from datetime import UTC, datetime
from decimal import Decimal

from flask_babel import format_currency

CODE_AGAINST_DIGITS = re.compile(r"\b([A-Z]{3})(?=\d)")


def format_money(minor: int, currency: str) -> str:
    """Integer minor units shown in the page's locale: ₺1.250,00 in Turkish, TRY 1,250.00 in English.

    Babel writes a currency code against the digits (TRY1,250.00); CLDR's
    spacing rule puts a (non-breaking) space between a code and a number.
    """
    return CODE_AGAINST_DIGITS.sub("\\1\xa0", format_currency(Decimal(minor) / 100, currency))


def plain_amount(minor: int) -> str:
    """Minor units as the plain decimal string the API, forms and messages to agents use: 15000 → '150.00'."""
    sign = "-" if minor < 0 else ""
    return f"{sign}{abs(minor) // 100}.{abs(minor) % 100:02d}"


def utc_timestamp(moment: datetime | None) -> str | None:
    """A moment as machines read it (the API, webhooks): RFC 3339 in UTC, to the second, e.g. 2026-03-01T09:00:00Z."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ") if moment else None
