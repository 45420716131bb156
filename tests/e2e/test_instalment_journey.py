"""In Turkish (issue 16): an agent offers instalments, a customer accepts the distance-sale contracts and buys 10
credits in 3 instalments through the simulator's 3-D page; the order keeps the contracts as accepted, and the
invoice, on its page and as the PDF the customer downloads, shows the count and the surcharge (vade farkı).
Then the customer tops up the account balance by card and pays the next purchase from it at checkout."""
import re

from playwright.sync_api import expect
from sqlalchemy import select

from limonbilling.models import Order

from .conftest import screenshot
from .test_invoice_pdf_journey import pdf_text
from .test_journeys import CARD, agent_signs_in, register
from .test_turkish_journey import turkish


def test_a_turkish_customer_buys_in_three_instalments(shop, new_page):
    agent = new_page()
    agent_signs_in(agent, shop, in_turkish=True)
    agent.goto(f"{shop.url}/admin/settings/payments")
    agent.locator("#instalments-card_instalments_enabled").check()
    agent.fill("#instalments-card_instalment_plans", "3; 100,00; 2,5\n6; 500,00; 5")
    agent.get_by_role("button", name=turkish(shop, "Save instalments")).click()
    expect(agent.locator(".alert-success")).to_contain_text(turkish(shop, "Instalment settings are saved."))

    page = new_page()
    page.goto(f"{shop.url}/register")
    page.locator("button[lang=tr]").first.click()
    page.wait_for_url(f"{shop.url}/register")
    register(page, shop, "taksit@example.com", first_name="Gökçe")
    page.goto(f"{shop.url}/packages")
    page.get_by_role("link", name=re.compile("10 Kredi$")).click()
    choice = page.get_by_test_id("instalments")
    # ₺150,00 + %2,5 = ₺153,75 in 3 × ₺51,25; 6 instalments start at ₺500,00, so they are not offered here.
    assert "₺150,00" in choice.inner_text() and "₺51,25" in choice.inner_text() and "₺153,75" in choice.inner_text()
    assert page.locator("#instalments-6").count() == 0
    screenshot(page, "tr-portal-checkout-instalments")
    page.locator("#instalments-3").check()
    page.fill("#card_number", CARD)
    page.fill("#card_expiry", "12/30")
    page.fill("#card_cvv", "000")
    page.locator("#accept-contracts-card").check()
    page.locator("form:has(#card_number) button.btn-primary").click()
    expect(page.get_by_test_id("instalments")).to_have_text("3 (taksit)", use_inner_text=True)  # the bank's 3-D page
    page.get_by_role("button", name="Approve").click()
    page.wait_for_url(re.compile(r"/orders/\d{10}$"))
    number = page.url.rsplit("/", 1)[1]
    shown = page.get_by_test_id("instalments").inner_text()
    assert shown == turkish(shop, "%(count)d instalments, surcharge %(surcharge)s included", count=3,
                            surcharge="₺3,75")
    contract = page.get_by_test_id("order-distance-sales").text_content()
    assert "Gökçe" in contract and number in contract and "₺153,75" in contract  # filled in for this order
    with page.expect_download() as downloaded:
        page.get_by_role("link", name="PDF", exact=True).click()
    pdf = pdf_text(downloaded.value)
    assert turkish(shop, "Instalment surcharge (%(count)d instalments)", count=3) in pdf and "₺153,75" in pdf
    page.goto(f"{shop.url}/orders/{number}/invoice")
    assert turkish(shop, "Instalment surcharge (%(count)d instalments)", count=3) in page.content()
    screenshot(page, "tr-portal-invoice-instalments")
    [(amount, count, surcharge, status)] = shop.query(select(
        Order.amount_minor, Order.instalments, Order.surcharge_minor, Order.payment_status))
    assert (amount, count, surcharge, status) == (15375, 3, 375, "paid")

    # A top-up of the account balance by card (a single payment), then a purchase paid from it at checkout.
    page.goto(f"{shop.url}/balance")
    page.fill("#amount", "200,00")
    page.get_by_role("button", name=turkish(shop, "Top up by card")).click()
    page.wait_for_url(re.compile(r"/orders/\d{10}/pay$"))
    assert page.get_by_test_id("instalments").count() == 0  # a top-up is paid at once, never in instalments
    page.fill("#card_number", CARD)
    page.fill("#card_expiry", "12/30")
    page.fill("#card_cvv", "000")
    page.locator("form:has(#card_number) button.btn-primary").click()
    page.get_by_role("button", name="Approve").click()
    page.wait_for_url(re.compile(r"/orders/\d{10}$"))
    page.goto(f"{shop.url}/balance")
    assert "₺200,00" in page.get_by_test_id("balance-now").inner_text()
    page.goto(f"{shop.url}/packages")
    page.get_by_role("link", name=re.compile("10 Kredi$")).click()
    page.locator("#accept-contracts-balance").check()
    page.get_by_role("button", name=turkish(shop, "Pay %(total)s from my balance", total="₺150,00")).click()
    page.wait_for_url(re.compile(r"/orders/\d{10}$"))
    screenshot(page, "tr-portal-order-paid-from-balance")
    page.goto(f"{shop.url}/balance")
    assert "₺50,00" in page.get_by_test_id("balance-now").inner_text()
    paid = shop.query(select(Order.payment_method, Order.payment_status).where(Order.kind != "balance")
                      .order_by(Order.id.desc()).limit(1))
    assert paid == [("account_balance", "paid")]
