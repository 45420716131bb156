"""The lifecycle on the agent's order page and in the API: payments and refunds shown, partial refunds, a
free grant with its reason, payment_required, and the ledger history kept across transitions (issue 14)."""
import pytest

from limonbilling.extensions import db
from limonbilling.models import Order
from limonbilling.services import api_tokens, audit, balance, card_payments, placement

from ..factories import make_customer, make_department, make_package
from ..payment_support import BANK, bank_answer, card_order


@pytest.fixture
def auth(app):
    _token, plain = api_tokens.create_token("help desk", ["read", "write"], audit.Actor.system("test"))
    db.session.commit()
    return {"Authorization": f"Bearer {plain}"}


@pytest.fixture
def paid_order(gateway):
    customer = make_customer(first_name="Zeynep")
    order, attempt = card_order(customer, make_package("credit", [make_department("Support")], credits=10,
                                                       price="100.00"))
    card_payments.apply_card_callback(gateway, bank_answer(attempt), BANK)
    db.session.commit()
    return order


def _page(client, order) -> str:
    return client.get(f"/admin/billing/orders/{order.number}").data.decode()


def test_the_order_page_keeps_its_ledger_entries_through_fraud_pending_and_accept(billing_client, paid_order):
    """Issue 14, defect 4: after Back to Pending the page showed none of the order's ledger entries."""
    url = f"/admin/billing/orders/{paid_order.number}"
    billing_client.post(f"{url}/fraud")
    billing_client.post(f"{url}/pending")
    billing_client.post(f"{url}/accept")
    page = _page(billing_client, paid_order)
    assert page.count("Purchase ·") == 2 and "Taken back" in page
    assert "Paid" in page and db.session.get(Order, paid_order.id).invoice.status == "paid"


def test_a_partial_refund_from_the_page_then_the_rest(billing_client, paid_order):
    url = f"/admin/billing/orders/{paid_order.number}"
    page = billing_client.post(f"{url}/refund", data={"to": "balance", "amount": "25,00"},
                               follow_redirects=True).data.decode()
    assert "The refund of order" in page and "Partly refunded" in page
    assert "can still be refunded TRY\xa075.00" in page
    page = billing_client.post(f"{url}/refund", data={"to": "balance", "amount": "75.01"}).data.decode()
    assert "Refund an amount from 0.01 to 75.00." in page
    billing_client.post(f"{url}/refund", data={"to": "balance"})
    db.session.expire_all()
    order = db.session.get(Order, paid_order.id)
    assert (order.status, order.payment_status, balance.amount(order.customer, "TRY")) == (
        "cancelled", "refunded", 10000)
    assert "Cancel &amp; refund" not in _page(billing_client, order)


def test_a_card_order_without_its_payment_is_accepted_only_with_a_reason(billing_client, gateway):
    customer = make_customer()
    order, _attempt = card_order(customer, make_package("credit", [make_department()], credits=5))
    page = billing_client.post(f"/admin/billing/orders/{order.number}/accept", follow_redirects=True).data.decode()
    assert "The card payment has not arrived" in page
    assert "Ask the bank" in page  # the attempt is still waiting for its answer
    db.session.expire_all()
    assert db.session.get(Order, order.id).status == "pending"


def test_an_unsent_checkout_offers_the_free_grant(billing_client, gateway):
    customer = make_customer()
    order = placement.place_customer_order(customer, make_package("credit", [make_department()], credits=5),
                                payment_method="card", actor=audit.Actor.of(customer), contracts_accepted=True)
    db.session.commit()
    assert "Accept without payment" in _page(billing_client, order)
    page = billing_client.post(f"/admin/billing/orders/{order.number}/accept",
                               data={"free_reason": "Compensation for ticket HD-77"},
                               follow_redirects=True).data.decode()
    assert "is accepted" in page and "Compensation for ticket HD-77" in page and "Given without payment" in page
    db.session.expire_all()
    assert (db.session.get(Order, order.id).status, customer.credits) == ("active", 5)


def test_the_api_shows_payments_refunds_and_the_invoice(client, auth, paid_order):
    body = client.get(f"/api/v1/orders/{paid_order.number}", headers=auth).json
    assert body["invoice"] == {"number": "2026-000001", "status": "paid"}
    [payment] = body["payments"]
    assert payment == {"reference": f"{paid_order.number}-1", "method": "card", "state": "confirmed",
                       "amount": "100.00", "refunded": "0.00", "created_at": "2026-03-01T09:00:00Z"}
    partial = client.post(f"/api/v1/orders/{paid_order.number}/refund", headers=auth,
                          json={"to": "balance", "amount": "40.00"})
    assert partial.status_code == 200
    assert (partial.json["status"], partial.json["payment_status"], partial.json["invoice"]["status"]) == (
        "pending", "partly_refunded", "partly_refunded")
    assert [(r["to"], r["state"], r["amount"], r["automatic"]) for r in partial.json["refunds"]] == [
        ("balance", "done", "40.00", False)]
    assert partial.json["payments"][0]["refunded"] == "40.00"


@pytest.mark.parametrize("body, field", [({"amount": "-1"}, "amount"), ({"amount": 5}, "amount"),
                                         ({"to": "cash"}, "to"), ({"amount": "0.001"}, "amount")])
def test_the_api_refuses_bad_refund_requests(client, auth, paid_order, body, field):
    answer = client.post(f"/api/v1/orders/{paid_order.number}/refund", headers=auth, json={"to": "balance", **body})
    assert answer.status_code == 422 and field in answer.json["error"]["fields"]


def test_the_api_accept_needs_the_card_payment(client, auth, gateway):
    customer = make_customer()
    order, _attempt = card_order(customer, make_package("credit", [make_department()], credits=5))
    refused = client.post(f"/api/v1/orders/{order.number}/accept", headers=auth)
    assert refused.status_code == 409 and refused.json["error"]["code"] == "payment_required"
    bad = client.post(f"/api/v1/orders/{order.number}/accept", headers=auth, json={"received_on": "yesterday"})
    assert bad.status_code == 422 and "received_on" in bad.json["error"]["fields"]
    free = client.post(f"/api/v1/orders/{order.number}/accept", headers=auth, json={"free_reason": "Goodwill"})
    assert free.status_code == 200 and free.json["status"] == "active"
    assert [p["method"] for p in free.json["payments"]] == ["card", "free"]
