"""An agent's order in a real headless Chromium (issue 17): the agent finds a customer who never bought, orders
2 × a subscription paid by card through a payment link; the customer opens the mailed link, signs in and pays
on the simulator's 3-D page."""
import re
from datetime import timedelta

from sqlalchemy import select

from limonbilling.extensions import db
from limonbilling.models import Notification, Order, SubscriptionPeriod

from ..factories import PASSWORD, make_customer
from .conftest import screenshot
from .test_journeys import CARD, agent_signs_in


def test_an_agent_orders_two_periods_and_the_customer_pays_through_the_mailed_link(shop, new_page):
    with shop.app.app_context():
        make_customer(first_name="Selin", last_name="Kaya", email="selin@example.com")
        db.session.remove()

    agent = new_page()
    agent_signs_in(agent, shop)
    agent.goto(f"{shop.url}/admin/billing/orders")
    agent.get_by_role("link", name="Add new order").click()
    agent.fill("#q", "selin")
    agent.get_by_role("button", name="Search").click()
    screenshot(agent, "admin-order-new-search")
    agent.get_by_role("link", name="Order for this customer").click()
    agent.select_option("#package_id", agent.locator("#package_id option", has_text="Aylık VIP").get_attribute("value"))
    agent.fill("#quantity", "2")
    agent.select_option("#payment_method", "card")
    agent.get_by_role("button", name="Place order").click()
    agent.wait_for_url(re.compile(r"/admin/billing/orders/\d{10}$"))
    assert agent.get_by_test_id("order-item").inner_text().startswith("2 × Aylık VIP")
    screenshot(agent, "admin-order-payment-link")

    [(body,)] = shop.query(select(Notification.body_text).where(Notification.event == "payment_link"))
    link = re.search(r"https?://\S+/pay/\S+", body).group(0)
    link = shop.url + link[link.index("/pay/"):]  # the mail names the configured host; the test server's port

    customer = new_page()
    customer.goto(link)
    customer.wait_for_url(re.compile(r"/login\?next="))  # signed out: sign in first, then back to the link
    customer.fill("#email", "selin@example.com")
    customer.fill("#password", PASSWORD)
    customer.locator("form button.btn-primary").click()
    customer.wait_for_url(re.compile(r"/orders/\d{10}/pay$"))
    assert "1,800.00" in customer.content()
    customer.fill("#card_number", CARD)
    customer.fill("#card_expiry", "12/30")
    customer.fill("#card_cvv", "000")
    customer.locator("form:has(#card_number) button.btn-primary").click()
    customer.get_by_role("button", name="Approve").click()  # the bank's 3-D Secure page
    customer.wait_for_url(re.compile(r"/orders/\d{10}$"))
    assert "Payment received. Your package is active." in customer.content()
    assert "2 × Aylık VIP" in customer.content()
    screenshot(customer, "portal-order-paid-through-link")

    [(status, quantity, created_at)] = shop.query(select(Order.payment_status, Order.quantity, Order.created_at))
    assert (status, quantity) == ("paid", 2)
    [(starts_at, ends_at)] = shop.query(select(SubscriptionPeriod.starts_at, SubscriptionPeriod.ends_at))
    assert ends_at - starts_at == timedelta(days=60)

    customer.goto(link)  # paid: the link no longer opens a checkout
    assert "already paid" in customer.content()
