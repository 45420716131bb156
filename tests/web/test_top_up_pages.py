"""The balance page (history and top-ups), the top-up orders' pages and Settings → Payment Systems → top-ups."""
import re

import pytest

from limonbilling.extensions import db
from limonbilling.models import Order
from limonbilling.services import audit, balance, bank_transfer, order_actions, placement, refunds, settings

from ..factories import make_agent, make_customer, make_department, make_package, sign_in
from ..payment_support import AGENT, configure_gateway

ACTOR = audit.Actor.system("test")


@pytest.fixture
def customer_client(app):
    bank_transfer.add_account(bank_name="Ziraat Bankası", account_holder="Limon Yazılım A.Ş.",
                              iban="TR330006100519786457841326", currency="TRY", actor=ACTOR)
    configure_gateway()
    db.session.commit()
    customer = make_customer(phone="0532 123 45 67")
    client = app.test_client()
    sign_in(client, customer)
    return client, customer


def test_the_balance_page_offers_both_ways_with_the_limits(customer_client):
    client, _customer = customer_client
    page = client.get("/balance").data.decode()
    assert "Top up by card" in page and "Top up by bank transfer" in page
    assert "100.00" in page and "50,000.00" in page  # the default least and most
    assert "Nothing yet" in page
    assert 'href="/balance"' in client.get("/profile").data.decode()


def test_an_amount_outside_the_limits_is_refused_next_to_the_field(customer_client):
    client, _customer = customer_client
    response = client.post("/balance/top-up/card", data={"amount": "99,99"})
    assert response.status_code == 422 and "Top up from" in response.data.decode()
    assert db.session.scalar(db.select(Order)) is None
    assert client.post("/balance/top-up/card", data={"amount": "50000,01"}).status_code == 422


def test_a_card_top_up_goes_to_the_order_payment_page(customer_client):
    client, _customer = customer_client
    response = client.post("/balance/top-up/card", data={"amount": "100,00"})
    order = db.session.scalar(db.select(Order))
    assert response.status_code == 302 and response.location.endswith(f"/orders/{order.number}/pay")
    assert (order.kind, order.amount_minor, order.payment_method) == ("balance", 10_000, "card")
    page = client.get(response.location).data.decode()
    assert "Account balance top-up" in page and "Card number" in page


def test_a_card_top_up_the_fraud_check_holds_goes_to_its_order_page_not_the_bank(customer_client):
    client, _customer = customer_client
    settings.update({"fraud_unverified_email_points": 60, "fraud_threshold": 60}, AGENT)
    db.session.commit()
    response = client.post("/balance/top-up/card", data={"amount": "100,00"}, follow_redirects=True)
    order = db.session.scalar(db.select(Order))
    assert order.status == "fraud" and response.request.path == f"/orders/{order.number}"
    assert "needs a review by our team" in response.data.decode()


def test_a_transfer_top_up_is_credited_after_the_agent_accepts_and_shows_in_the_history(customer_client):
    client, customer = customer_client
    response = client.post("/balance/top-up/transfer", data={"amount": "1.250,50"}, follow_redirects=True)
    page = response.data.decode()
    order = db.session.scalar(db.select(Order))
    assert "TR33 0006 1005 1978 6457 8413 26" in page and order.number in page
    response = client.post(f"/orders/{order.number}/activation-request",
                           data={"email": customer.email, "phone": "0532 123 45 67", "note": ""},
                           follow_redirects=True)
    assert "We add the money to your balance when we see the transfer" in response.data.decode()
    order_actions.accept_order(order, AGENT)
    db.session.commit()
    page = client.get(f"/orders/{order.number}").data.decode()
    assert "is added to your account balance" in page
    history = client.get("/balance").data.decode()
    assert f"Top-up order {order.number}" in history and "1,250.50" in history


def test_payments_and_refunds_to_the_balance_share_the_history(customer_client):
    client, customer = customer_client
    settings.update({"vat_rate_percent": 0}, AGENT)
    package = make_package("credit", [make_department()], credits=5, price="40.00")
    bought = placement.place_agent_order(customer, package, payment_method="manual", actor=AGENT)
    refunds.start(bought, to="balance", actor=AGENT, amount_minor=1_000)
    placement.place_customer_order(customer, package, payment_method="card", actor=AGENT, contracts_accepted=True)
    db.session.commit()
    history = client.get("/balance").data.decode()
    assert f"Refund of order {bought.number}" in history
    rows = re.findall(r'data-label="What">([^<]+)<', history)
    assert rows == ["Refund"]


def test_a_top_up_order_page_for_agents(app, customer_client):
    _client, customer = customer_client
    order = placement.place_top_up(customer, "200", payment_method="bank_transfer", actor=AGENT)
    db.session.commit()
    agent = app.test_client()
    sign_in(agent, make_agent("billing", "customers"))
    page = agent.get(f"/admin/billing/orders/{order.number}").data.decode()
    assert "Account balance top-up" in page and "Balance top-up" in page


def test_the_top_up_settings_pin_both_edges(app):
    agent = app.test_client()
    sign_in(agent, make_agent("settings"))
    assert "Account balance top-ups" in agent.get("/admin/settings/payments").data.decode()
    response = agent.post("/admin/settings/payments/top-ups", data={
        "top_ups-top_up_minimum": "1.00", "top_ups-top_up_maximum": "1000000.00",
        "top_ups-top_up_invoicing": "top_up"})
    assert response.status_code == 302
    assert (settings.get("top_up_minimum_minor"), settings.get("top_up_maximum_minor"),
            settings.get("top_up_invoicing")) == (100, 100_000_000, "top_up")
    for least, most in (("0.99", "100"), ("1.00", "1000000.01"), ("200", "100")):
        response = agent.post("/admin/settings/payments/top-ups", data={
            "top_ups-top_up_minimum": least, "top_ups-top_up_maximum": most, "top_ups-top_up_invoicing": "orders"})
        assert response.status_code == 422, (least, most)
    assert settings.get("top_up_invoicing") == "top_up"
    balance.move(make_customer().id, "TRY", 100, "adjustment", reason="held")
    db.session.commit()
    refused = agent.post("/admin/settings/payments/top-ups", data={
        "top_ups-top_up_minimum": "1.00", "top_ups-top_up_maximum": "100.00", "top_ups-top_up_invoicing": "orders"})
    assert refused.status_code == 422 and "1 customer holds money" in refused.data.decode()
    assert settings.get("top_up_invoicing") == "top_up"


def test_checkout_links_a_top_up_of_what_the_balance_lacks(customer_client):
    client, _customer = customer_client
    settings.update({"vat_rate_percent": 0}, AGENT)
    package = make_package("credit", [make_department()], credits=5, price="150.00")
    db.session.commit()
    page = client.get(f"/checkout/{package.id}").data.decode()
    assert 'data-testid="top-up-hint"' in page and "/balance?amount=150.00" in page
    assert 'value="150.00"' in client.get("/balance?amount=150.00").data.decode()
