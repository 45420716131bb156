"""Account verification in a real browser: a customer with no department and no credits sends a PNG of their
identity document through the free channel; the agent opens it, downloads it and marks the identity verified."""
import re

from playwright.sync_api import expect
from sqlalchemy import select

from limonbilling.models import AuditEntry, Customer

from .conftest import screenshot
from .test_journeys import agent_signs_in, register

PNG = (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00\x1f\x15\xc4\x89"
       b"\x00\x00\x00\rIDATx\x9cc\xf8\xff\xff?\x00\x05\xfe\x02\xfe\xa7\x35\x81\x84\x00\x00\x00\x00IEND\xaeB`\x82")


def test_a_customer_sends_an_id_photo_and_the_agent_verifies_them(shop, new_page, tmp_path):
    page = new_page()
    register(page, shop, "kimlik@example.com")
    page.get_by_role("link", name="Account verification").first.click()
    page.wait_for_url(f"{shop.url}/verification/new")
    page.fill("#body", "Kimlik kartımın ön yüzü ektedir.")
    page.set_input_files("#attachments", files=[{"name": "kimlik.png", "mimeType": "image/png", "buffer": PNG}])
    page.get_by_role("button", name="Send for verification").click()
    page.wait_for_url(re.compile(r"/tickets/\d+$"))
    expect(page.get_by_role("link", name="kimlik.png")).to_be_visible()
    expect(page.get_by_text("Account verification").first).to_be_visible()
    assert "0 credits" not in page.content()
    screenshot(page, "verification-customer")

    agent = new_page()
    agent_signs_in(agent, shop)
    agent.goto(f"{shop.url}/admin/tickets?channel=verification")
    agent.get_by_role("link", name="Identity verification").click()
    thumbnail = agent.locator("img.attachment-thumbnail")
    thumbnail.wait_for()
    assert agent.evaluate("image => image.complete && image.naturalWidth === 1", thumbnail.element_handle())
    href = agent.get_by_role("link", name="kimlik.png").get_attribute("href")
    answer = agent.request.get(f"{shop.url}{href}")  # the download, with the agent's session
    assert answer.status == 200 and answer.body() == PNG
    assert answer.headers["content-type"] == "image/png" and answer.headers["x-content-type-options"] == "nosniff"
    refused = page.request.get(f"{shop.url}{href}")  # the customer's session is not an agent's
    assert "/admin/login" in refused.url and refused.body() != PNG
    agent.get_by_role("button", name="Mark identity verified").click()
    agent.get_by_text("Identity marked as verified.").wait_for()
    screenshot(agent, "verification-agent")

    (verified,), = shop.query(select(Customer.identity_verified).where(Customer.email == "kimlik@example.com"))
    assert verified
    assert len(shop.query(select(AuditEntry.id).where(AuditEntry.action == "customer.identity_verified"))) == 1
    page.reload()
    expect(page.get_by_text("Your identity is verified.")).to_be_visible()
