"""CSV downloads. Every export writes through `csv_response`, so no exported value can become a spreadsheet formula.

Text cells follow OWASP's CSV Injection rule: a cell that begins with `=`, `+`,
`-`, `@`, a tab or a carriage return gets a single quote in front, and every
text cell is quoted (so a `;` inside it cannot start a new cell where a
spreadsheet splits on semicolons, as Excel does in Turkish). Numbers (int,
Decimal, float) are written as they are, unquoted: -12.50 passed as a Decimal
stays a negative amount, while the text "-12.50" is neutralised like any other
text, so exports pass amounts as numbers. Times are stored as naive UTC and
written in the display zone (BABEL_DEFAULT_TIMEZONE) as ISO 8601 with the
offset, e.g. 2025-01-16T00:30:00+03:00.
"""
import csv
import io
from collections.abc import Iterable, Sequence
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from flask import Response
from flask_babel import to_user_timezone

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def cell(value: Any) -> Any:
    """One value as written: numbers stay numbers, times carry their zone, text cannot start a formula."""
    if value is None:
        return ""
    if isinstance(value, int | float | Decimal):
        return value
    if isinstance(value, datetime):
        return to_user_timezone(value).isoformat(timespec="seconds")
    if isinstance(value, date):
        return value.isoformat()
    text = str(value)
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def csv_response(filename: str, header: Sequence[str], rows: Iterable[Iterable[Any]]) -> Response:
    """A CSV attachment in UTF-8 with a BOM (so spreadsheet programs read Turkish letters)."""
    buffer = io.StringIO()
    buffer.write("\ufeff")
    csv.writer(buffer).writerow(header)  # the column names are ours, not data
    writer = csv.writer(buffer, quoting=csv.QUOTE_NONNUMERIC)
    writer.writerows([cell(value) for value in row] for row in rows)
    return Response(buffer.getvalue(), mimetype="text/csv",
                    headers={"Content-Disposition": f"attachment; filename={filename}"})
