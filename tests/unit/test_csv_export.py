"""The CSV helper (issue 15, item 5): OWASP's formula neutralising for text cells, numbers kept as numbers,
times in the display zone with their offset, and every CSV of the app written by it."""
import csv
import io
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from limonbilling.csv_export import cell, csv_response

PACKAGE = Path(__file__).resolve().parents[2] / "limonbilling"


@pytest.mark.parametrize("value", ['=HYPERLINK("http://x","y")', "+1", "-2", "-12.50", "@SUM(A1)", "\tx", "\rx",
                                   "=", "\r"])
def test_text_that_starts_a_formula_gets_a_single_quote(value):
    assert cell(value) == "'" + value


@pytest.mark.parametrize("value", ["Ayşe Yılmaz", "a=1", "x-2", " =1", "", "'quoted", "4028578950"])
def test_other_text_is_unchanged(value):
    assert cell(value) == value


@pytest.mark.parametrize("value", [Decimal("-12.50"), -3, 0, 2.5, Decimal("150.00")])
def test_numbers_stay_numbers_even_when_negative(value):
    assert cell(value) is value


def test_none_is_empty_and_dates_are_iso(app_without_database):
    assert cell(None) == "" and cell(date(2025, 3, 1)) == "2025-03-01"
    with app_without_database.test_request_context():
        assert cell(datetime(2025, 1, 15, 21, 30, tzinfo=UTC)) == "2025-01-16T00:30:00+03:00"


def test_the_response_quotes_text_and_leaves_numbers_bare(app_without_database):
    with app_without_database.test_request_context():
        response = csv_response("things.csv", ["name", "amount", "at"],
                                [["-2", Decimal("-12.50"), datetime(2025, 6, 1, 9, 0, tzinfo=UTC)], ["a,b", 3, None]])
    assert response.content_type == "text/csv; charset=utf-8"
    assert response.headers["Content-Disposition"] == "attachment; filename=things.csv"
    text = response.get_data(as_text=True)
    assert text == '\ufeffname,amount,at\r\n"\'-2",-12.50,"2025-06-01T12:00:00+03:00"\r\n"a,b",3,""\r\n'
    assert list(csv.reader(io.StringIO(text[1:], newline="")))[1:] == [
        ["'-2", "-12.50", "2025-06-01T12:00:00+03:00"], ["a,b", "3", ""]]


def test_every_csv_of_the_app_is_written_by_the_helper():
    """So a future export neutralises its cells too: nothing else in the package writes CSV or serves text/csv."""
    writers = {path.relative_to(PACKAGE).as_posix() for path in PACKAGE.rglob("*.py")
               if "csv.writer" in (source := path.read_text()) or "text/csv" in source}
    assert writers == {"csv_export.py"}
