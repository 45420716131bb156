"""Amounts typed by agents (prices, refunds, balance adjustments): exact, or refused when unclear.

An attack pass refunded `12,500.00` as 12.50, `1.250` as 1.25, `1e2` as 100.00 and Arabic-Indic `١٠` as
10.00: wrong money with no message. A grouped amount counts only when its grouping cannot be misread.
"""
import pytest
from hypothesis import given
from hypothesis import strategies as st

from limonbilling.services.packages import MAX_MONEY_MINOR, parse_price


@pytest.mark.parametrize("typed, minor", [
    ("150", 15000), ("150.5", 15050), ("150,50", 15050), ("0.01", 1),
    ("1.250,50", 125050), ("12,500.00", 1250000), ("1.250.000", 125000000), ("1,250,000", 125000000),
    (" 1 250,50 ", 125050),
])
def test_clear_amounts_are_read_exactly(typed, minor):
    assert parse_price(typed) == minor


@pytest.mark.parametrize("typed", [
    "1.250", "12,500",  # one group of three and nothing else: 1250 or 1.25? refused, not guessed
    "1e2", "1E2", "١٠", "１０", "+5", "0x10", "1,2,3", "1.25.5", "12,50.00", "1.250,5,0", "", ".", ",50",
])
def test_unclear_amounts_are_refused(typed):
    with pytest.raises(ValueError):
        parse_price(typed)


@pytest.mark.parametrize("typed, message", [
    ("0.001", "Use at most 2 decimals."), ("0,001", "Use at most 2 decimals."), ("10.555", "for thousands"),
    ("0.001.000", "Enter a price like"), ("-1", "more than 0"), ("-1.250,00", "more than 0"),
])
def test_the_refusal_says_what_to_change(typed, message):
    with pytest.raises(ValueError, match=message):
        parse_price(typed)


@given(st.integers(min_value=1, max_value=MAX_MONEY_MINOR))
def test_every_amount_written_in_either_style_reads_back_exactly(minor):
    whole, cents = divmod(minor, 100)
    english, turkish = f"{whole:,}.{cents:02d}", f"{whole:,}".replace(",", ".") + f",{cents:02d}"
    for typed in (f"{whole}.{cents:02d}", f"{whole},{cents:02d}", english, turkish):
        assert parse_price(typed) == minor, typed
