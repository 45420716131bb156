"""Billing → Orders pages through the test client: list, filters, CSV, detail, actions, delete, bulk."""
import pytest

from limonbilling.extensions import db
from limonbilling.models import Order
from limonbilling.services import card_payments, order_actions, placement

from ..factories import make_corporate_customer, make_customer, make_department, make_package, make_transfer_account
from ..payment_support import AGENT, BANK, bank_answer, card_order


@pytest.fixture
def paid_order(gateway):
    customer = make_corporate_customer(first_name="Zeynep")
    order, attempt = card_order(customer, make_package("credit", [make_department("Support")], credits=10))
    card_payments.apply_card_callback(gateway, bank_answer(attempt), BANK)
    db.session.commit()
    return order


def test_list_filters_search_and_csv(billing_client, paid_order, gateway):
    other = make_customer(first_name="Ömer", email="omer@example.com")
    unpaid, _attempt = card_order(other, make_package("credit", [make_department("Sales")]))
    order_actions.cancel_unpaid_order(unpaid, AGENT)
    db.session.commit()
    page = billing_client.get("/admin/billing/orders").data.decode()
    assert paid_order.number in page and unpaid.number in page
    page = billing_client.get("/admin/billing/orders?status=pending").data.decode()
    assert paid_order.number in page and unpaid.number not in page
    assert billing_client.get(f"/admin/billing/orders?q={unpaid.number}").data.decode().count(unpaid.number) >= 1
    page = billing_client.get("/admin/billing/orders?q=omer@example").data.decode()
    assert unpaid.number in page and paid_order.number not in page
    assert "No orders match" in billing_client.get("/admin/billing/orders?from=2030-01-01").data.decode()
    csv_text = billing_client.get("/admin/billing/orders.csv?status=cancelled").data.decode("utf-8-sig")
    assert csv_text.splitlines()[0].startswith("number,") and unpaid.number in csv_text
    assert paid_order.number not in csv_text and "Ömer" in csv_text


def test_detail_shows_the_banks_answer_and_actions_work(billing_client, paid_order):
    url = f"/admin/billing/orders/{paid_order.number}"
    page = billing_client.get(url).data.decode()
    assert "435508***4358" in page and "AuthCode 123456" in page and "Zeynep" in page
    response = billing_client.post(f"{url}/accept", follow_redirects=True)
    assert f"Order {paid_order.number} is accepted." in response.data.decode()
    assert db.session.get(Order, paid_order.id).status == "active"
    response = billing_client.post(f"{url}/pending", follow_redirects=True)
    assert "Only a cancelled or fraud order can go back to pending." in response.data.decode()
    billing_client.post(f"{url}/cancel")
    db.session.expire_all()
    assert db.session.get(Order, paid_order.id).status == "cancelled"


def test_delete_asks_for_the_number(billing_client, paid_order):
    url = f"/admin/billing/orders/{paid_order.number}"
    billing_client.post(f"{url}/cancel")
    refused = billing_client.post(f"{url}/delete", data={"confirm": paid_order.number}, follow_redirects=True)
    assert "refund its money first" in refused.data.decode()  # the payment is still held
    billing_client.post(f"{url}/refund", data={"to": "balance"})
    refused = billing_client.post(f"{url}/delete", data={"confirm": paid_order.number}, follow_redirects=True)
    assert "payments and refunds stay on record" in refused.data.decode()  # money went through it: kept
    assert db.session.get(Order, paid_order.id) is not None


def test_delete_of_an_order_no_money_touched_asks_for_the_number(billing_client, app):
    make_transfer_account()
    order = placement.place_agent_order(make_customer(), make_package("credit"), payment_method="bank_transfer",
                                actor=AGENT)
    order_actions.cancel_order(order, AGENT)
    db.session.commit()
    url = f"/admin/billing/orders/{order.number}"
    page = billing_client.post(f"{url}/delete", data={"confirm": "wrong"}).data.decode()
    assert "Type the order number" in page
    assert db.session.get(Order, order.id) is not None
    response = billing_client.post(f"{url}/delete", data={"confirm": order.number}, follow_redirects=True)
    assert "is deleted" in response.data.decode()
    db.session.expire_all()
    assert db.session.scalar(db.select(Order)) is None


def test_bulk_status(billing_client, paid_order):
    response = billing_client.post("/admin/billing/orders/bulk", data={"numbers": [paid_order.number],
                                                                        "status": "fraud"}, follow_redirects=True)
    assert "1 order set to Fraud." in response.data.decode()
    db.session.expire_all()
    order = db.session.get(Order, paid_order.id)
    assert order.status == "fraud" and order.customer.credits == 10
