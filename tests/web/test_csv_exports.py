"""CSV exports through the test client (issue 15, item 5): a customer's name cannot become a spreadsheet formula,
ordinary values and amounts come out as they are, and times carry their zone."""
import csv
import io
from datetime import UTC
from zoneinfo import ZoneInfo

from limonbilling.extensions import db
from limonbilling.services import placement

from ..factories import make_customer, make_package
from ..payment_support import AGENT

FORMULAS = ['=HYPERLINK("http://x","y")', "+1", "-2", "@SUM(A1)", "\tx", "\rx"]


def export(client) -> tuple[str, list[dict]]:
    response = client.get("/admin/billing/orders.csv")
    assert response.status_code == 200 and response.mimetype == "text/csv"
    text = response.data.decode("utf-8-sig")
    return text, list(csv.DictReader(io.StringIO(text, newline="")))


def order_for(first_name: str):
    customer = make_customer()
    customer.first_name = first_name  # set as stored: the forms strip a leading tab or CR, older data may not
    order = placement.place_agent_order(customer, make_package("credit", price="150.00"), payment_method="manual",
                                actor=AGENT)
    db.session.commit()
    return order


def test_names_that_start_a_formula_are_exported_as_text(billing_client):
    dangerous = {order_for(name).number: name for name in FORMULAS}
    _text, rows = export(billing_client)
    by_number = {row["number"]: row for row in rows}
    assert {number: by_number[number]["customer"] for number in dangerous} == {
        number: f"'{name} Yılmaz" for number, name in dangerous.items()}


def test_ordinary_values_and_amounts_are_unchanged(billing_client):
    plain = order_for("Ayşe")
    hyphenated = order_for("Ayşe-Nur")  # a formula character inside a value is no formula
    text, rows = export(billing_client)
    by_number = {row["number"]: row for row in rows}
    assert by_number[plain.number]["customer"] == "Ayşe Yılmaz"
    assert by_number[hyphenated.number]["customer"] == "Ayşe-Nur Yılmaz"
    assert by_number[plain.number]["amount"] == "150.00" and by_number[plain.number]["currency"] == "TRY"
    assert f'"{plain.number}",' in text and ",150.00," in text  # text quoted, the amount a bare number
    assert text.splitlines()[0].startswith("number,created_at,customer,")


def test_times_state_their_zone(billing_client, app):
    order = order_for("Ayşe")
    _text, rows = export(billing_client)
    local = order.created_at.replace(tzinfo=UTC).astimezone(ZoneInfo(app.config["BABEL_DEFAULT_TIMEZONE"]))
    assert rows[0]["created_at"] == local.isoformat(timespec="seconds")
    assert rows[0]["created_at"].endswith("+03:00")  # Europe/Istanbul, as the pages show it
