"""The activation form in a real headless Chromium: a visitor who paid by bank transfer fills the public form
from the seller's link (package chosen), the agent approves with that package, the customer gets the package
details by mail, chooses a password with the welcome mail's link and finds the credits."""
import re
from datetime import datetime
from zoneinfo import ZoneInfo

from playwright.sync_api import expect
from sqlalchemy import select

from limonbilling.models import ActivationRequest, Customer, Notification, Order, Package

from ..factories import PASSWORD
from .conftest import screenshot
from .test_journeys import agent_signs_in, customer_signs_in


def test_a_visitor_sends_the_form_the_agent_approves_and_the_customer_has_the_package(shop, new_page):
    (package_id,), = shop.query(select(Package.id).where(Package.name == "10 Kredi"))
    today = datetime.now(ZoneInfo("Europe/Istanbul")).date().isoformat()
    visitor = new_page(width=390, height=844)  # a phone, not signed in
    visitor.goto(f"{shop.url}/activate?package={package_id}")
    assert visitor.locator("#package_id").input_value() == str(package_id)
    visitor.fill("#first_name", "Deniz")
    visitor.fill("#last_name", "Kaya")
    visitor.fill("#email", "deniz@example.com")
    visitor.fill("#phone", "0532 765 43 21")
    visitor.fill("#amount", "150,00")
    visitor.fill("#paid_on", today)
    visitor.fill("#note", "Garanti BBVA, sender Deniz Kaya")
    screenshot(visitor, "portal-activation-form-phone")
    visitor.get_by_role("button", name="Send the activation request").click()
    visitor.wait_for_url(f"{shop.url}/activate/sent")
    assert "deniz@example.com" in visitor.content()

    agent = new_page()
    agent_signs_in(agent, shop)
    agent.goto(f"{shop.url}/admin/billing/activation-requests")
    card = agent.locator(".card", has_text="Deniz Kaya")
    assert card.locator("select[name=package_id]").input_value() == str(package_id)  # the visitor's choice
    screenshot(agent, "admin-activation-requests")
    card.get_by_role("button", name="Approve and activate").click()
    expect(agent.locator(".alert-success")).to_contain_text("is placed, paid by bank transfer and active")

    (number, status, payment), = shop.query(select(Order.number, Order.status, Order.payment_status))
    assert (status, payment) == ("active", "paid")
    (state,), = shop.query(select(ActivationRequest.state))
    assert state == "approved"
    (credits,), = shop.query(select(Customer.credits).where(Customer.email == "deniz@example.com"))
    assert credits == 10
    (approved,), = shop.query(select(Notification.body_text).where(
        Notification.event == "activation_approved", Notification.channel == "email",
        Notification.recipient == "deniz@example.com"))
    assert "10 Kredi" in approved and number in approved and "Credits added: 10." in approved

    (welcome,), = shop.query(select(Notification.body_text).where(Notification.event == "welcome"))
    set_password = re.search(r"http\S+/reset-password/\S+", welcome).group(0)
    visitor.goto(set_password.replace("http://localhost", shop.url))
    visitor.fill("#password", PASSWORD)
    visitor.fill("#confirm", PASSWORD)
    visitor.locator("form button.btn-primary").click()
    customer_signs_in(visitor, shop, "deniz@example.com")
    visitor.goto(f"{shop.url}/packages")
    assert "You have 10 credits." in visitor.content()
