"""The card attempt limits seen by the customer (checkout, paying an order again) and set by an agent
(Settings → Payment systems): a refusal says why and what next, and no trip to the bank's 3-D page follows."""
import pytest
from sqlalchemy import func, select

from limonbilling.extensions import db
from limonbilling.models import Order, Payment
from limonbilling.sandbox import TEST_CARD
from limonbilling.services import audit, bank_transfer, card_payments, order_actions, settings

from ..factories import make_agent, make_customer, make_department, make_package, sign_in
from ..payment_support import as_customer, card_order
from .test_payment_settings import COMPLETE

CARD = {"card_number": TEST_CARD, "card_expiry": "12/30", "card_cvv": "000", "accept_contracts": "y"}


@pytest.fixture
def shop(app, gateway):
    """A signed-in customer, a credit package, and both card payment and bank transfer offered."""
    settings.update({"fraud_check_enabled": False}, audit.Actor.system("test"))
    bank_transfer.add_account(bank_name="Ziraat", account_holder="Limon", iban="TR330006100519786457841326",
                              currency="TRY", actor=audit.Actor.system("test"))
    package = make_package("credit", [make_department("Support")], credits=10)
    customer = make_customer()
    client = app.test_client()
    sign_in(client, customer)
    return client, customer, package


def _card_attempts() -> int:
    return db.session.scalar(select(func.count(Payment.id)))


def _to_the_bank(page: str) -> bool:
    return 'id="bank-form"' in page or 'name="hash"' in page


def test_paying_an_order_again_past_the_limit_shows_why_and_does_not_go_to_the_bank(shop):
    client, customer, package = shop
    order, _first = card_order(customer, package)
    for _ in range(3):
        card_payments.start_card_payment(order, "nestpay")
    db.session.commit()
    fifth = client.post(f"/orders/{order.number}/pay", data=CARD).data.decode()
    assert _to_the_bank(fifth) and _card_attempts() == 5
    response = client.post(f"/orders/{order.number}/pay", data=CARD)
    page = response.data.decode()
    assert "Too many card attempts for this order" in page and "bank transfer" in page
    assert not _to_the_bank(page) and TEST_CARD not in page
    assert _card_attempts() == 5


def test_checkout_past_the_hourly_limit_offers_bank_transfer_and_places_nothing(shop, clock):
    client, customer, package = shop
    for _ in range(2):  # 2 orders × 5 attempts at 09:00 UTC, each given up
        order, _first = card_order(customer, package)
        for _ in range(4):
            card_payments.start_card_payment(order, "nestpay")
        order_actions.cancel_unpaid_order(order, as_customer(customer))
        db.session.commit()
    clock.advance(minutes=20)
    response = client.post(f"/checkout/{package.id}", data=CARD)
    page = response.data.decode()
    assert response.status_code == 422
    assert "Too many card attempts in the last hour; try again after 13:00 or choose bank transfer" in page
    assert "Order and pay by bank transfer" in page and not _to_the_bank(page) and TEST_CARD not in page
    assert _card_attempts() == 10
    assert db.session.scalar(select(func.count(Order.id))) == 2  # the refused checkout placed no order


def test_an_agent_sets_the_limits_within_their_bounds(app):
    client = app.test_client()
    sign_in(client, make_agent("settings"))
    page = client.post("/admin/settings/payments", data={
        **COMPLETE, "card_attempts_per_order": "0", "card_attempts_per_customer_hour": "201"}).data.decode()
    assert page.count("Enter a number from 1 to") == 2 and "Payment settings are saved" not in page
    assert (settings.get("card_attempts_per_order"), settings.get("card_attempts_per_customer_hour")) == (5, 10)
    page = client.post("/admin/settings/payments", follow_redirects=True, data={
        **COMPLETE, "card_attempts_per_order": "3", "card_attempts_per_customer_hour": "200"}).data.decode()
    assert "Payment settings are saved" in page
    assert 'name="card_attempts_per_order" type="number" value="3"' in page
    assert (settings.get("card_attempts_per_order"), settings.get("card_attempts_per_customer_hour")) == (3, 200)
