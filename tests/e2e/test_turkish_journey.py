"""The same journey in Turkish: the language chosen on the first page sticks, texts come from the
Turkish catalogue, money is written the Turkish way (₺150,00)."""
import re

from flask_babel import force_locale, ngettext
from flask_babel import gettext as translate
from playwright.sync_api import expect

from ..factories import PASSWORD
from .conftest import screenshot
from .test_journeys import CARD, agent_signs_in, customer_signs_in


def turkish(shop, text: str, **values) -> str:
    with shop.app.test_request_context(), force_locale("tr"):
        return translate(text, **values)


def turkish_count(shop, singular: str, plural: str, num: int) -> str:
    with shop.app.test_request_context(), force_locale("tr"):
        return ngettext(singular, plural, num)


def test_a_turkish_customer_buys_credits_and_an_agent_accepts_in_turkish(shop, new_page):
    page = new_page(width=390, height=844)
    page.goto(f"{shop.url}/register")
    page.locator(".navbar-toggler").click()  # on a phone the language switch is in the menu
    page.locator("button[lang=tr]").first.click()
    page.wait_for_url(f"{shop.url}/register")
    assert page.locator("html").get_attribute("lang") == "tr"
    heading = turkish(shop, "Create an account")
    assert heading != "Create an account" and heading in page.content()
    page.fill("#first_name", "Gökçe")
    page.fill("#last_name", "Şahin")
    page.fill("#email", "gokce@example.com")
    page.fill("#phone", "0532 123 45 67")
    page.fill("#password", PASSWORD)
    page.fill("#password_again", PASSWORD)
    assert page.get_by_role("link", name=turkish(shop, "Privacy notice")).get_attribute("href") == "/privacy"
    page.locator("#marketing_consent").check()
    page.locator("form button.btn-primary").click()
    page.wait_for_url(f"{shop.url}/register/check-your-mail")
    assert turkish(shop, "Check your mail") in page.content()
    customer_signs_in(page, shop, "gokce@example.com")

    page.goto(f"{shop.url}/packages")
    assert "₺150,00" in page.content()
    screenshot(page, "tr-portal-packages-phone")
    page.get_by_role("link", name=re.compile("10 Kredi$")).click()
    # the distance-sale contracts in Turkish, filled in for this purchase, must be accepted before paying
    assert "ÖN BİLGİLENDİRME FORMU" in page.get_by_test_id("pre-information").inner_text()
    assert "Gökçe Şahin" in page.get_by_test_id("distance-sales").inner_text()
    page.fill("#card_number", CARD)
    page.fill("#card_expiry", "12/30")
    page.fill("#card_cvv", "000")
    page.locator("form:has(#card_number) button.btn-primary").click()
    refusal = turkish(shop, "Tick the box to confirm that you read and accept the pre-information form and the "
                            "distance sales contract; we cannot take your order without it.")
    expect(page.locator("form:has(#card_number) .invalid-feedback")).to_have_text(refusal, use_inner_text=True)
    screenshot(page, "tr-portal-checkout-contracts-refused")
    page.locator("#accept-contracts-card").check()
    page.fill("#card_number", CARD)
    page.fill("#card_expiry", "12/30")
    page.fill("#card_cvv", "000")
    page.locator("form:has(#card_number) button.btn-primary").click()
    page.get_by_role("button", name="Approve").click()  # the simulator's page is the bank's, in English
    page.wait_for_url(re.compile(r"/orders/\d{10}$"))
    number = page.url.rsplit("/", 1)[1]
    assert turkish(shop, "Paid — being reviewed") in page.content()
    page.get_by_text(turkish(shop, "Distance sales contract"), exact=True).click()
    assert f"Sipariş numarası: {number}" in page.get_by_test_id("order-distance-sales").inner_text()
    screenshot(page, "tr-portal-order-paid")
    page.goto(f"{shop.url}/packages")
    assert turkish_count(shop, "You have %(num)d credit.", "You have %(num)d credits.", 10) in page.content()

    agent = new_page()
    agent_signs_in(agent, shop, in_turkish=True)
    assert turkish(shop, "Pending orders") in agent.content()
    agent.goto(f"{shop.url}/admin/billing/orders/{number}")
    agent.get_by_role("button", name=turkish(shop, "Accept"), exact=True).click()
    expect(agent.locator(".alert-success")).to_contain_text(
        turkish(shop, "Order %(number)s is accepted.", number=number))
    screenshot(agent, "tr-admin-order-accepted")
    assert "MESAFELİ SATIŞ SÖZLEŞMESİ" in agent.get_by_test_id("order-contract").text_content()
