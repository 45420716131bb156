"""Orders agents place, through the test client (issue 17): Billing → Orders → Add new order with its customer
search, n × a package, a forced promo code, the payment link a card order mails, and the customer's note."""
import re

import pytest
from sqlalchemy import select

from limonbilling.extensions import db
from limonbilling.models import Notification, Order
from limonbilling.services import audit, bank_transfer, card_payments, order_actions, placement, promo_codes

from ..factories import make_agent, make_customer, make_department, make_package, sign_in

ACTOR = audit.Actor.system("test")


@pytest.fixture
def support(app):
    return make_department("Support", credit_per_request=1)


def mailed_link(order_number: str) -> str:
    mail = db.session.scalars(select(Notification).where(
        Notification.order_number == order_number, Notification.event == "payment_link")).one()
    return re.search(r"http://[^/\s]+(/pay/[^\s]+)", mail.body_text).group(1)


def test_add_new_order_finds_a_customer_who_never_bought(billing_client, support):
    newcomer = make_customer(first_name="Selin", last_name="Kaya", email="selin@example.com")
    make_customer(first_name="Mehmet", email="mehmet@example.com")
    orders_page = billing_client.get("/admin/billing/orders").data.decode()
    assert 'href="/admin/billing/orders/new"' in orders_page
    assert "Find the customer" in billing_client.get("/admin/billing/orders/new").data.decode()
    page = billing_client.get("/admin/billing/orders/new?q=selin").data.decode()
    assert f'href="/admin/billing/customers/{newcomer.id}/orders/new"' in page and "never bought" in page
    assert "mehmet@example.com" not in page
    assert 'No customer matches "nobody"' in billing_client.get("/admin/billing/orders/new?q=nobody").data.decode()


def test_the_customer_card_links_to_a_new_order_for_billing_agents_only(app, billing_client):
    customer = make_customer()
    card = billing_client.get(f"/admin/customers/{customer.id}").data.decode()
    assert f'href="/admin/billing/customers/{customer.id}/orders/new"' in card
    other = app.test_client()
    sign_in(other, make_agent("customers"))
    assert "/orders/new" not in other.get(f"/admin/customers/{customer.id}").data.decode()
    assert other.get("/admin/billing/orders/new").status_code in (403, 404)


def test_an_agent_places_two_subscription_periods_with_a_forced_code_and_a_payment_link(billing_client, support,
                                                                                          clock):
    customer = make_customer(language="tr")
    package = make_package("subscription", [support], days=30, price="900.00", name="Monthly VIP")
    promo_codes.create({"code": "OLD", "kind": "percent", "value": "10", "valid_until": clock.now().date().replace(
        year=2025)}, ACTOR)
    db.session.commit()
    form = billing_client.get(f"/admin/billing/customers/{customer.id}/orders/new").data.decode()
    assert 'name="quantity"' in form and 'value="card"' in form
    response = billing_client.post(f"/admin/billing/customers/{customer.id}/orders/new", data={
        "package_id": package.id, "quantity": "2", "payment_method": "card", "promo_code": "old",
        "create_invoice": "y"}, follow_redirects=True)
    page = response.data.decode()
    order = db.session.scalar(select(Order))
    assert (order.quantity, order.discount_minor, order.promo_forced) == (2, 18000, True)
    assert "2 × Monthly VIP" in page and "forced by the agent" in page and "Payment link" in page
    assert mailed_link(order.number).startswith("/pay/")
    refused = billing_client.post(f"/admin/billing/customers/{customer.id}/orders/new", data={
        "package_id": package.id, "quantity": "13", "payment_method": "manual"}).data.decode()
    assert "Enter a number from 1 to 100." not in refused and "Order from 1 to 12 of this package." in refused
    assert db.session.scalar(select(db.func.count()).select_from(Order)) == 1


def test_the_form_refuses_a_quantity_out_of_range(billing_client, support):
    customer = make_customer()
    package = make_package("credit", [support])
    for quantity in ("0", "101"):
        page = billing_client.post(f"/admin/billing/customers/{customer.id}/orders/new", data={
            "package_id": package.id, "quantity": quantity, "payment_method": "manual"}).data.decode()
        assert "Enter a number from 1 to 100." in page
    assert db.session.scalar(select(Order)) is None


def test_a_free_card_order_is_refused_on_the_form_with_what_to_do(billing_client, support):
    customer = make_customer()
    package = make_package("credit", [support], price="100.00")
    page = billing_client.post(f"/admin/billing/customers/{customer.id}/orders/new", data={
        "package_id": package.id, "quantity": "1", "payment_method": "card", "price_override": "0"}).data.decode()
    assert "A free order has nothing to pay by card or bank transfer; place it as paid manually." in page
    assert db.session.scalar(select(Order)) is None
    billing_client.post(f"/admin/billing/customers/{customer.id}/orders/new", data={
        "package_id": package.id, "quantity": "1", "payment_method": "manual", "price_override": "0"})
    assert db.session.scalar(select(Order)).status == "active"


def test_the_payment_link_signs_in_then_opens_the_card_checkout_of_that_order(app, billing_client, support,
                                                                             gateway):
    customer = make_customer()
    package = make_package("credit", [support], credits=10, price="100.00", name="Ten")
    order = placement.place_agent_order(customer, package, payment_method="card", actor=ACTOR, quantity=3)
    db.session.commit()
    link = mailed_link(order.number)
    browser = app.test_client()
    signed_out = browser.get(link)
    assert signed_out.status_code == 302 and "/login?next=" in signed_out.location
    sign_in(browser, customer)
    opened = browser.get(link)
    assert opened.location.endswith(f"/orders/{order.number}/pay")
    checkout = browser.get(opened.location).data.decode()
    assert f"Pay order {order.number}" in checkout and 'name="card_number"' in checkout
    order_page = browser.get(f"/orders/{order.number}").data.decode()
    assert "3 × Ten" in order_page

    stranger = app.test_client()
    sign_in(stranger, make_customer())
    refused = stranger.get(link, follow_redirects=True).data.decode()
    assert "sent to another account" in refused and order.number not in refused


def test_an_expired_link_says_so(app, support, clock):
    customer = make_customer()
    order = placement.place_agent_order(customer, make_package("credit", [support]), payment_method="card",
                                        actor=ACTOR)
    db.session.commit()
    clock.advance(days=7)
    browser = app.test_client()
    sign_in(browser, customer)
    page = browser.get(mailed_link(order.number), follow_redirects=True).data.decode()
    assert "has expired" in page


def test_the_order_page_sends_the_link_again_until_the_order_is_cancelled(billing_client, support, clock):
    order = placement.place_agent_order(make_customer(), make_package("credit", [support]), payment_method="card",
                                        actor=ACTOR)
    db.session.commit()
    page = billing_client.get(f"/admin/billing/orders/{order.number}").data.decode()
    assert f'action="/admin/billing/orders/{order.number}/payment-link"' in page and "Send it again" in page
    clock.advance(days=6)
    page = billing_client.post(f"/admin/billing/orders/{order.number}/payment-link",
                               follow_redirects=True).data.decode()
    assert "The payment link is mailed to the customer again." in page
    assert db.session.scalar(select(db.func.count()).select_from(Notification).where(
        Notification.event == "payment_link")) == 2
    again = billing_client.post(f"/admin/billing/orders/{order.number}/payment-link",
                                follow_redirects=True).data.decode()
    assert "less than a minute ago" in again
    db.session.refresh(order)
    assert order.expires_at == clock.now() + card_payments.PAYMENT_LINK_LIFETIME
    order_actions.cancel_order(order, ACTOR)
    db.session.commit()
    page = billing_client.get(f"/admin/billing/orders/{order.number}").data.decode()
    assert "Send it again" not in page
    refused = billing_client.post(f"/admin/billing/orders/{order.number}/payment-link",
                                  follow_redirects=True).data.decode()
    assert "cannot be sent again" in refused


def test_the_customers_checkout_note_shows_on_both_order_pages(app, billing_client, support):
    bank_transfer.add_account(bank_name="Ziraat", account_holder="Limon A.Ş.", iban="TR330006100519786457841326",
                              currency="TRY", actor=ACTOR)
    customer = make_customer()
    package = make_package("credit", [support])
    shopper = app.test_client()
    sign_in(shopper, customer)
    assert 'name="note"' in shopper.get(f"/checkout/{package.id}").data.decode()
    too_long = shopper.post(f"/checkout/{package.id}/transfer", data={"note": "x" * 501, "accept_contracts": "y"})
    assert too_long.status_code == 422 and "Write at most 500 characters." in too_long.data.decode()
    assert db.session.scalar(select(Order)) is None
    shopper.post(f"/checkout/{package.id}/transfer", data={"note": "For the <Ankara> office", "accept_contracts": "y"})
    order = db.session.scalar(select(Order))
    assert order.customer_note == "For the <Ankara> office"
    for page in (shopper.get(f"/orders/{order.number}"), billing_client.get(f"/admin/billing/orders/{order.number}")):
        assert "For the &lt;Ankara&gt; office" in page.data.decode()
