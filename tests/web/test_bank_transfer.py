"""Paying by bank transfer: the accounts, the order, the activation request, and an agent's Accept."""
import pytest

from limonbilling.extensions import db
from limonbilling.models import Order
from limonbilling.services import ValidationFailed, audit, bank_transfer

from ..factories import make_agent, make_customer, make_department, make_package, sign_in

IBAN = "TR330006100519786457841326"
ACTOR = audit.Actor.system("test")


@pytest.fixture
def shop(app):
    bank_transfer.add_account(bank_name="Ziraat Bankası", account_holder="Limon Yazılım A.Ş.",
                              iban="tr33 0006 1005 1978 6457 8413 26", currency="TRY", actor=ACTOR)
    db.session.commit()
    package = make_package("credit", [make_department("Support")], credits=10, price="150.00")
    customer = make_customer(phone="0532 123 45 67")
    client = app.test_client()
    sign_in(client, customer)
    return {"package": package, "customer": customer, "client": client}


def test_iban_is_checked(app):
    with pytest.raises(ValidationFailed) as failed:
        bank_transfer.add_account(bank_name="", account_holder="X", iban="TR330006100519786457841327",
                                  currency="GBP", actor=ACTOR)
    assert set(failed.value.errors) == {"bank_name", "iban", "currency"}
    account = bank_transfer.add_account(bank_name="B", account_holder="H", iban=IBAN, currency="TRY", actor=ACTOR)
    assert account.iban_display == "TR33 0006 1005 1978 6457 8413 26"
    with pytest.raises(ValidationFailed):
        bank_transfer.add_account(bank_name="B", account_holder="H", iban=IBAN, currency="TRY", actor=ACTOR)


def test_transfer_is_offered_only_in_a_currency_with_an_account(app, shop):
    client = shop["client"]
    page = client.get(f"/checkout/{shop['package'].id}").data.decode()
    assert "Order and pay by bank transfer" in page
    dollars = make_package("credit", [make_department("Sales")], price="10.00", currency="USD")
    assert "Order and pay by bank transfer" not in client.get(f"/checkout/{dollars.id}").data.decode()


def test_order_activation_request_and_accept(app, shop):
    client, customer = shop["client"], shop["customer"]
    response = client.post(f"/checkout/{shop['package'].id}/transfer", data={"accept_contracts": "y"},
                           follow_redirects=True)
    page = response.data.decode()
    order = db.session.scalar(db.select(Order))
    assert (order.payment_method, order.status, order.payment_status, order.expires_at) == (
        "bank_transfer", "pending", "unpaid", None)
    assert "TR33 0006 1005 1978 6457 8413 26" in page and order.number in page
    assert f'value="{customer.email}"' in page and 'value="+905321234567"' in page

    # Rule 7: no second order while this one waits.
    assert "still awaiting payment or approval" in client.get(f"/checkout/{shop['package'].id}").data.decode()

    bad = client.post(f"/orders/{order.number}/activation-request", data={"email": "x", "phone": "1"})
    assert bad.status_code == 422 and "valid phone number" in bad.data.decode()
    client.post(f"/orders/{order.number}/activation-request",
                data={"email": customer.email, "phone": "0532 123 45 67", "note": "Havale: Ayşe Yılmaz"})
    db.session.refresh(order)
    assert order.activation_requested_at is not None and order.customer_note == "Havale: Ayşe Yılmaz"
    assert "Your activation request was sent" in client.get(f"/orders/{order.number}").data.decode()

    agent = app.test_client()
    sign_in(agent, make_agent("billing"))
    detail = agent.get(f"/admin/billing/orders/{order.number}").data.decode()
    assert "Havale: Ayşe Yılmaz" in detail
    agent.post(f"/admin/billing/orders/{order.number}/accept")
    db.session.expire_all()
    order = db.session.get(Order, order.id)
    assert (order.status, order.payment_status, order.activated) == ("active", "paid", True)
    assert order.invoice.number == "2026-000001" and order.customer.credits == 10


def test_settings_page_adds_and_removes_accounts(app):
    client = app.test_client()
    sign_in(client, make_agent("settings"))
    response = client.post("/admin/settings/payments/bank-accounts", follow_redirects=True, data={
        "account-bank_name": "Akbank", "account-account_holder": "Limon", "account-iban": "TR00 123",
        "account-currency": "TRY"})
    assert "This IBAN is not valid" in response.data.decode()
    response = client.post("/admin/settings/payments/bank-accounts", follow_redirects=True, data={
        "account-bank_name": "Akbank", "account-account_holder": "Limon", "account-iban": IBAN,
        "account-currency": "TRY"})
    assert "TR33 0006 1005" in response.data.decode()
    account = bank_transfer.all_accounts()[0]
    client.post(f"/admin/settings/payments/bank-accounts/{account.id}/remove")
    assert bank_transfer.all_accounts() == []
