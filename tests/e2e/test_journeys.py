"""The main journeys in a real headless Chromium: register, pay by card through the bank's 3-D page,
use credits, switch to a subscription, bank transfer, an agent's review; in English and in Turkish."""
import re

from playwright.sync_api import expect
from sqlalchemy import select

from limonbilling.models import Customer, Order

from ..factories import PASSWORD
from .conftest import screenshot

CARD = "4355 0843 5508 4358"


def register(page, shop, email: str, first_name: str = "Ayşe") -> None:
    page.goto(f"{shop.url}/register")
    page.fill("#first_name", first_name)
    page.fill("#last_name", "Yılmaz")
    page.fill("#email", email)
    page.fill("#phone", "0532 123 45 67")
    page.fill("#password", PASSWORD)
    page.fill("#password_again", PASSWORD)
    page.locator("form button.btn-primary").click()
    page.wait_for_url(f"{shop.url}/register/check-your-mail")  # the same page for a known address
    customer_signs_in(page, shop, email)


def customer_signs_in(page, shop, email: str) -> None:
    page.goto(f"{shop.url}/login")
    page.fill("#email", email)
    page.fill("#password", PASSWORD)
    page.locator("form button.btn-primary").click()
    page.wait_for_url(f"{shop.url}/")


def pay_by_card(page, package_name: str, *, accept_forfeit: bool = False) -> None:
    """From the packages page through the simulator's 3-D page back to the order page."""
    page.get_by_role("link", name=re.compile(f"{package_name}$")).click()
    if accept_forfeit:
        page.locator("#accept-forfeit-card").check()
    page.locator("#accept-contracts-card").check()
    page.fill("#card_number", CARD)
    page.fill("#card_expiry", "12/30")
    page.fill("#card_cvv", "000")
    page.locator("form:has(#card_number) button.btn-primary").click()
    page.get_by_role("button", name="Approve").click()  # the bank's 3-D Secure page
    page.wait_for_url(re.compile(r"/orders/\d{10}$"))


def agent_signs_in(page, shop, *, in_turkish: bool = False) -> None:
    page.goto(f"{shop.url}/admin/login")
    if in_turkish:
        page.locator("button[lang=tr]").first.click()
    page.fill("#email", shop.agent_email)
    page.fill("#password", PASSWORD)
    page.locator("form button.btn-dark").click()
    page.wait_for_url(f"{shop.url}/admin/")


def test_credits_by_card_a_ticket_then_a_subscription_and_the_agent_accepts(shop, new_page):
    page = new_page()
    register(page, shop, "ayse@example.com")
    page.goto(f"{shop.url}/packages")
    screenshot(page, "portal-packages")
    assert "You have no package yet" in page.content()
    pay_by_card(page, "10 Kredi")
    screenshot(page, "portal-order-paid")
    expect(page.get_by_text("Paid").first).to_be_visible()

    page.goto(f"{shop.url}/tickets/new")
    page.select_option("#department_id", page.locator("#department_id option", has_text="Teknik Destek")
                       .get_attribute("value"))
    page.fill("#subject", "Sunucum yanıt vermiyor")
    page.fill("#body", "Merhaba, web sitem açılmıyor.")
    page.locator("form button.btn-primary").click()
    page.wait_for_url(re.compile(r"/tickets/\d+$"))
    page.goto(f"{shop.url}/usage")
    assert "Ticket: Sunucum yanıt vermiyor" in page.content() and "-2" in page.content()
    screenshot(page, "portal-usage")
    page.goto(f"{shop.url}/packages")
    assert "You have 8 credits." in page.content()  # 10 bought, 2 for the ticket

    page.get_by_role("link", name=re.compile("Aylık VIP$")).click()
    expect(page.locator("body")).to_contain_text("You will lose your 8 remaining credits.")
    page.fill("#card_number", CARD)
    page.fill("#card_expiry", "12/30")
    page.fill("#card_cvv", "000")
    page.locator("form:has(#card_number) button.btn-primary").click()
    expect(page.locator(".invalid-feedback, .alert-danger").first).to_be_visible()  # the forfeit must be confirmed
    screenshot(page, "portal-checkout-forfeit")
    page.goto(f"{shop.url}/packages")
    pay_by_card(page, "Aylık VIP", accept_forfeit=True)
    page.goto(f"{shop.url}/packages")
    assert "Your subscription runs until" in page.content()

    agent = new_page()
    agent_signs_in(agent, shop)
    expect(agent.locator("#pending-orders")).to_have_text("2", use_inner_text=True)  # card orders wait for review
    screenshot(agent, "admin-dashboard")
    agent.goto(f"{shop.url}/admin/billing/orders?status=pending")
    screenshot(agent, "admin-orders-pending")
    agent.locator("table a").first.click()
    agent.get_by_role("button", name="Accept").click()
    expect(agent.locator(".alert-success")).to_contain_text("is accepted")
    screenshot(agent, "admin-order-accepted")
    agent.goto(f"{shop.url}/admin/")
    expect(agent.locator("#pending-orders")).to_have_text("1", use_inner_text=True)
    (credits, package_type), = shop.query(select(Customer.credits, Customer.package_type))
    assert (credits, package_type) == (0, "subscription")


def test_bank_transfer_request_and_acceptance(shop, new_page):
    page = new_page(width=390, height=844)  # a phone
    register(page, shop, "mehmet@example.com", first_name="Mehmet")
    page.goto(f"{shop.url}/packages")
    page.get_by_role("link", name=re.compile("10 Kredi$")).click()
    page.locator("#accept-contracts-transfer").check()
    page.get_by_role("button", name="Order and pay by bank transfer").click()
    page.wait_for_url(re.compile(r"/orders/\d{10}$"))
    number = page.url.rsplit("/", 1)[1]
    assert "TR33 0006 1005 1978 6457 8413 26" in page.content() and number in page.content()
    screenshot(page, "portal-bank-transfer-phone")
    page.get_by_role("button", name="Send the activation request").click()
    expect(page.get_by_text(re.compile("Your activation request was sent"))).to_be_visible()

    agent = new_page()
    agent_signs_in(agent, shop)
    agent.goto(f"{shop.url}/admin/billing/orders/{number}")
    agent.get_by_role("button", name="Accept").click()
    expect(agent.locator(".alert-success")).to_contain_text("is accepted")
    page.goto(f"{shop.url}/packages")
    assert "You have 10 credits." in page.content()
    (status, payment), = shop.query(select(Order.status, Order.payment_status).where(Order.number == number))
    assert (status, payment) == ("active", "paid")
