"""Card instalments on the pages: the checkout choice, the order and invoice pages, and Settings → Payment
Systems."""
import re

import pytest

from limonbilling.extensions import db
from limonbilling.models import Order
from limonbilling.services import api_tokens, audit, settings

from ..factories import make_agent, make_customer, make_department, make_package, sign_in
from ..payment_support import configure_gateway, offer_instalments


@pytest.fixture
def shopper(app):
    configure_gateway()
    package = make_package("credit", [make_department("Support")], credits=10, price="100.00")
    customer = make_customer()
    db.session.commit()
    client = app.test_client()
    sign_in(client, customer)
    return client, package, customer


def radio_values(page: str) -> list[str]:
    return re.findall(r'name="instalments" id="instalments-\d+" value="(\d+)"', page)


def test_checkout_shows_each_count_with_its_monthly_amount_and_total(shopper):
    client, package, _customer = shopper
    offer_instalments((3, 0, 250), (6, 0, 0), (9, 10001, 0))  # 9 from 100.01: one kuruş more than this total
    db.session.commit()
    page = client.get(f"/checkout/{package.id}").data.decode()
    assert radio_values(page) == ["1", "3", "6"]
    assert "Single payment: TRY\xa0100.00" in page
    # 100.00 + 2.50 % = 102.50 → 34.17, 34.17, 34.16: the first instalments take the odd kuruş.
    assert "3 instalments of TRY\xa034.17 to TRY\xa034.16" in page and "total TRY\xa0102.50" in page
    assert "surcharge TRY\xa02.50" in page
    assert "6 instalments of TRY\xa016.67 to TRY\xa016.66" in page and "total TRY\xa0100.00" in page
    assert "rounded half up to the kuruş" in page and "first instalments are one kuruş more" in page


def test_no_choice_while_instalments_are_off_or_for_another_currency(shopper):
    client, package, _customer = shopper
    assert radio_values(client.get(f"/checkout/{package.id}").data.decode()) == []
    offer_instalments((3, 0, 0))
    usd = make_package("credit", [make_department("Other")], credits=10, price="100.00", currency="USD")
    db.session.commit()
    assert radio_values(client.get(f"/checkout/{usd.id}").data.decode()) == []
    assert radio_values(client.get(f"/checkout/{package.id}").data.decode()) == ["1", "3"]


def test_choosing_three_instalments_sends_the_count_to_the_bank_and_shows_it_on_the_order(shopper):
    client, package, customer = shopper
    offer_instalments((3, 0, 250))
    db.session.commit()
    page = client.post(f"/checkout/{package.id}", data={
        "card_number": "4355084355084358", "card_expiry": "12/30", "card_cvv": "000", "instalments": "3",
        "accept_contracts": "y"})
    assert page.status_code == 200
    html = page.data.decode()
    assert 'name="Instalment" value="3"' in html and 'name="amount" value="102.50"' in html
    order = db.session.scalars(db.select(Order).where(Order.customer_id == customer.id)).one()
    assert (order.instalments, order.surcharge_minor) == (3, 250)
    order_page = client.get(f"/orders/{order.number}").data.decode()
    assert "3 instalments, surcharge TRY\xa02.50 included" in order_page


def test_a_count_not_offered_is_refused_on_the_page(shopper):
    client, package, customer = shopper
    offer_instalments((3, 10001, 0))  # from 100.01: this 100.00 order is one kuruş short
    db.session.commit()
    page = client.post(f"/checkout/{package.id}", data={
        "card_number": "4355084355084358", "card_expiry": "12/30", "card_cvv": "000", "instalments": "3",
        "accept_contracts": "y"})
    assert page.status_code == 422
    assert "3 instalments are offered from TRY\xa0100.01" in page.data.decode()
    assert db.session.scalars(db.select(Order).where(Order.customer_id == customer.id)).all() == []


def test_the_invoice_shows_the_surcharge_line_and_the_count(app, shopper):
    client, package, customer = shopper
    offer_instalments((3, 0, 250))
    db.session.commit()
    client.post(f"/checkout/{package.id}", data={
        "card_number": "4355084355084358", "card_expiry": "12/30", "card_cvv": "000", "instalments": "3",
        "accept_contracts": "y"})
    order = db.session.scalars(db.select(Order).where(Order.customer_id == customer.id)).one()
    page = client.get(f"/orders/{order.number}/invoice").data.decode()
    assert "Instalment surcharge (3 instalments)" in page and "Paid by card in 3 instalments." in page


def test_settings_save_the_counts_and_refuse_a_bad_line(app):
    client = app.test_client()
    sign_in(client, make_agent("settings"))
    page = client.get("/admin/settings/payments").data.decode()
    assert "Card instalments (taksit)" in page and 'name="instalments-card_instalment_plans"' in page
    response = client.post("/admin/settings/payments/instalments", data={
        "instalments-card_instalments_enabled": "y",
        "instalments-card_instalment_plans": "3; 300.00; 2.5\n6; 600; 4,75"}, follow_redirects=True)
    assert "Instalment settings are saved" in response.data.decode()
    assert "3; 300.00; 2.50\n6; 600.00; 4.75" in response.data.decode()
    assert settings.get("card_instalments_enabled") is True
    refused = client.post("/admin/settings/payments/instalments", data={
        "instalments-card_instalments_enabled": "y", "instalments-card_instalment_plans": "13; 1; 1"})
    assert refused.status_code == 422 and "Line 1: the count must be from 2 to 12." in refused.data.decode()
    assert len(settings.get("card_instalment_plans")) == 2


def test_the_api_tells_the_count_and_the_surcharge(app, shopper):
    client, package, customer = shopper
    offer_instalments((3, 0, 250))
    db.session.commit()
    client.post(f"/checkout/{package.id}", data={
        "card_number": "4355084355084358", "card_expiry": "12/30", "card_cvv": "000", "instalments": "3",
        "accept_contracts": "y"})
    order = db.session.scalars(db.select(Order).where(Order.customer_id == customer.id)).one()
    _record, token = api_tokens.create_token("Help desk", ["read"], audit.Actor.system("t"))
    db.session.commit()
    answer = app.test_client().get(f"/api/v1/orders/{order.number}", headers={"Authorization": f"Bearer {token}"})
    assert (answer.json["instalments"], answer.json["surcharge"], answer.json["amount"]) == (3, "2.50", "102.50")
