"""An affiliate's referral in a real browser: a visitor arrives through /?ref=CODE, registers, buys by bank
transfer; the agent sees the affiliate on the order and, once the money is accepted, in Billing → Affiliates."""
import re

from playwright.sync_api import expect
from sqlalchemy import select

from limonbilling.extensions import db
from limonbilling.models import Affiliate, Order
from limonbilling.services import affiliates, audit

from .conftest import screenshot
from .test_journeys import agent_signs_in, register


def test_a_referred_visitor_buys_by_bank_transfer_and_the_agent_sees_the_affiliate(shop, new_page):
    with shop.app.app_context():
        affiliates.create({"name": "Tech Blog", "code": "TECHBLOG", "commission_percent": 10},
                          audit.Actor.system("e2e"))
        db.session.commit()
        db.session.remove()

    page = new_page()
    page.goto(f"{shop.url}/?ref=techblog")  # any letter case; the sign-in page it leads to remembers it
    register(page, shop, "referred@example.com", first_name="Deniz")
    page.goto(f"{shop.url}/packages")
    page.get_by_role("link", name=re.compile("10 Kredi$")).click()
    page.locator("#accept-contracts-transfer").check()
    page.get_by_role("button", name="Order and pay by bank transfer").click()
    page.wait_for_url(re.compile(r"/orders/\d{10}$"))
    number = page.url.rsplit("/", 1)[1]
    (affiliate_code,), = shop.query(select(Affiliate.code).join(Order, Order.affiliate_id == Affiliate.id)
                                    .where(Order.number == number))
    assert affiliate_code == "TECHBLOG"

    agent = new_page()
    agent_signs_in(agent, shop)
    agent.goto(f"{shop.url}/admin/billing/orders/{number}")
    expect(agent.get_by_role("link", name="Tech Blog")).to_be_visible()
    agent.get_by_role("button", name="Accept").click()
    expect(agent.locator(".alert-success")).to_contain_text("is accepted")
    agent.get_by_role("button", name="Billing").click()
    agent.get_by_role("link", name="Affiliates").click()
    row = agent.get_by_role("row", name=re.compile("Tech Blog"))
    assert re.search(r"TECHBLOG\s+10%\s+1\s+TRY\xa0150\.00\s+TRY\xa015\.00", row.inner_text())
    screenshot(agent, "admin-affiliates")
    agent.get_by_role("link", name="Tech Blog").click()
    expect(agent.get_by_role("link", name=number)).to_be_visible()
