"""What a customer sees of an order under review (status Fraud), and that agent-only texts never reach customer
pages (issue 14, defect 10): the order page says what happens next, the invoice is on hold rather than
cancelled, and the usage page describes a taken-back order in the customer's words."""
import pytest

from limonbilling.extensions import db
from limonbilling.services import audit, entitlements, ledger

from ..factories import make_agent, make_customer, make_package, sign_in
from ..order_records import add_card_payment, add_invoice, grant_from, make_order

AGENT = audit.Actor("agent", None, "agent@example.com")
INTERNAL_NOTE = "Agent only: same card as the chargeback last week, watch this one"
FRAUD_DETAIL = "3 failed card payments by this customer in the last hour."


@pytest.fixture
def customer(app, client):
    customer = make_customer(first_name="Elif")
    sign_in(client, customer)
    return customer


def under_review(customer, *, paid: bool = False, **overrides):
    """The customer's card order, set aside as fraud with the internal texts agents write on such orders."""
    order = make_order(customer, make_package("credit", credits=10), status="fraud", fraud_score=80,
                       fraud_checks=[{"rule": "failed_cards", "points": 40, "detail": FRAUD_DETAIL}],
                       notes=INTERNAL_NOTE, **overrides)
    if paid:
        add_card_payment(order, "confirmed")
        order.payment_status = "paid"
        db.session.commit()
    add_invoice(order, "cancelled")
    return order


def test_an_unpaid_order_under_review_says_what_happens_next(client, customer):
    order = under_review(customer)

    page = client.get(f"/orders/{order.number}").get_data(as_text=True)

    assert "Under review" in page and "Your order is under review" in page
    assert "usually within one business day" in page and "send you an e-mail when it is done" in page
    assert "Nothing was charged for this order." in page
    assert f"mention order {order.number}" in page and 'href="/tickets/new"' in page
    assert "Pay now" not in page and "Try again" not in page
    assert "fraud" not in page.lower()
    assert INTERNAL_NOTE not in page and FRAUD_DETAIL not in page


def test_a_paid_order_under_review_does_not_say_nothing_was_charged(client, customer):
    order = under_review(customer, paid=True)

    page = client.get(f"/orders/{order.number}").get_data(as_text=True)

    assert "Your order is under review" in page and "Nothing was charged" not in page
    assert "Your payment of TRY\xa0150.00 stays with this order until the review is done" in page


def test_an_order_not_under_review_has_no_review_notice(client, customer):
    order = make_order(customer, make_package(), notes=INTERNAL_NOTE)
    page = client.get(f"/orders/{order.number}").get_data(as_text=True)
    assert "under review" not in page.lower() and INTERNAL_NOTE not in page


def test_the_invoice_of_an_order_under_review_is_on_hold_for_the_customer_not_cancelled(app, client, customer):
    order = under_review(customer)

    page = client.get(f"/orders/{order.number}/invoice").get_data(as_text=True)

    assert "On hold" in page and "Cancelled" not in page
    assert INTERNAL_NOTE not in page

    agent_client = app.test_client()  # agents still see the invoice's stored status
    sign_in(agent_client, make_agent("billing"))
    admin_page = agent_client.get(f"/admin/billing/orders/{order.number}/invoice").get_data(as_text=True)
    assert "Cancelled" in admin_page


def test_a_cancelled_orders_invoice_still_says_cancelled(client, customer):
    order = make_order(customer, make_package(), status="cancelled")
    add_invoice(order, "cancelled")
    page = client.get(f"/orders/{order.number}/invoice").get_data(as_text=True)
    assert "Cancelled" in page and "On hold" not in page


def test_the_order_list_shows_under_review_and_no_internal_text(client, customer):
    order = under_review(customer)
    page = client.get("/orders").get_data(as_text=True)
    assert order.number in page and "Under review" in page
    assert INTERNAL_NOTE not in page and "fraud" not in page.lower()


def test_the_usage_page_describes_credits_taken_back_without_the_agents_reason(client, customer):
    order = make_order(customer, make_package("credit", credits=10), payment_status="paid", notes=INTERNAL_NOTE)
    grant = grant_from(order)
    internal_reason = f"Order {order.number} marked as fraud."
    entitlements.revoke_grant(grant, AGENT, {"reason": internal_reason})
    order.status = "fraud"
    db.session.commit()

    page = client.get("/usage").get_data(as_text=True)

    assert "marked as fraud" not in page and internal_reason not in page and INTERNAL_NOTE not in page
    assert "Taken back" in page and "-10" in page
    assert "Held while our team reviews the order." in page
    assert page.count(f'href="/orders/{order.number}"') == 2  # the purchase and the reversal


def test_the_usage_page_never_shows_a_reversal_reason_even_without_its_order(client, customer):
    """A grant whose order is gone (deleted) still shows a neutral description, not the stored reason."""
    order = make_order(customer, make_package("credit", credits=10), payment_status="paid")
    grant = grant_from(order)
    entitlements.revoke_grant(grant, AGENT, {"reason": "Chargeback suspected, agent Mert, ticket #4411"})
    grant.order_id = None
    db.session.commit()

    page = client.get("/usage").get_data(as_text=True)

    assert "Chargeback suspected" not in page
    assert "The credits of this order are taken back." in page


def test_the_usage_page_keeps_what_is_written_for_the_customer(client, customer):
    order = make_order(customer, make_package("credit", credits=10), payment_status="paid")
    grant = grant_from(order)
    ledger.adjust_credits(customer, 5, "Goodwill credits for the outage on 3 March", AGENT)  # for the customer
    customer_credits = customer.credits
    entitlements.revoke_grant(grant, AGENT, {"reason": f"Order {order.number} cancelled by agent"})
    order.status = "cancelled"
    db.session.commit()

    page = client.get("/usage").get_data(as_text=True)

    assert "Goodwill credits for the outage on 3 March" in page
    assert "cancelled by agent" not in page and "The order is cancelled." in page
    assert customer_credits == 15


def test_a_turkish_customer_reads_under_review_and_on_hold_in_turkish(app, client):
    customer = make_customer(language="tr")
    sign_in(client, customer)
    order = under_review(customer)

    page = client.get(f"/orders/{order.number}").get_data(as_text=True)
    assert "İnceleniyor" in page and "Siparişiniz inceleniyor" in page
    assert "Bu sipariş için sizden hiçbir ücret alınmadı." in page

    invoice = client.get(f"/orders/{order.number}/invoice").get_data(as_text=True)
    assert "Beklemede" in invoice and "İptal edildi" not in invoice
