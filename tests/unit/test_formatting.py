"""Money and dates in the page's language (issue 6): ₺1.250,00 in Turkish, TRY 1,250.00 in English."""
from datetime import UTC, datetime

import pytest
from flask_babel import force_locale

from limonbilling.formatting import format_money, plain_amount

NBSP = "\xa0"


@pytest.mark.parametrize(("language", "minor", "currency", "shown"), [
    ("en", 125000, "TRY", f"TRY{NBSP}1,250.00"),
    ("en", -125000, "TRY", f"-TRY{NBSP}1,250.00"),
    ("en", 99, "USD", "$0.99"),
    ("en", 4000, "EUR", "€40.00"),
    ("tr", 125000, "TRY", "₺1.250,00"),
    ("tr", 123456789, "TRY", "₺1.234.567,89"),
    ("tr", 4000, "EUR", "€40,00"),
])
def test_money_in_each_language(app_without_database, language, minor, currency, shown):
    with app_without_database.test_request_context(), force_locale(language):
        assert format_money(minor, currency) == shown


def test_dates_in_each_language_and_in_istanbul_time(app_without_database):
    moment = datetime(2026, 3, 12, 21, 30, tzinfo=UTC)  # UTC: already the 13th in Istanbul (UTC+3)
    render = app_without_database.jinja_env.from_string("{{ moment | date('long') }}")
    with app_without_database.test_request_context():
        with force_locale("en"):
            assert render.render(moment=moment) == "March 13, 2026"
        with force_locale("tr"):
            assert render.render(moment=moment) == "13 Mart 2026"


@pytest.mark.parametrize(("minor", "shown"), [(0, "0.00"), (5, "0.05"), (99, "0.99"), (100, "1.00"), (15000, "150.00"),
                                             (-5, "-0.05"), (2**63 - 1, "92233720368547758.07")])
def test_a_plain_amount_is_exact_to_the_kurus(minor, shown):
    """The one plain form of an amount (API fields, form values, messages to agents); no float on the way."""
    assert plain_amount(minor) == shown
