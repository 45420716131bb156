"""KVKK in a real headless Chromium: a customer downloads their data, asks for erasure, the agent approves it, and
the customer is signed out and can no longer sign in."""
import io
import json
import zipfile

from playwright.sync_api import expect
from sqlalchemy import select

from limonbilling.extensions import db
from limonbilling.models import Customer, ErasureRequest

from ..factories import PASSWORD, make_customer
from .conftest import screenshot
from .test_journeys import agent_signs_in, customer_signs_in


def test_a_customer_downloads_their_data_asks_for_erasure_and_cannot_sign_in_once_approved(shop, new_page):
    with shop.app.app_context():
        make_customer(first_name="Elif", last_name="Şahin", email="elif@example.com")
        db.session.remove()
    page = new_page()
    customer_signs_in(page, shop, "elif@example.com")
    page.goto(f"{shop.url}/profile")
    page.get_by_role("link", name="Download your data or ask for its erasure").click()
    page.fill("#export-password", PASSWORD)
    with page.expect_download() as download:
        page.get_by_role("button", name="Download my data").click()
    with zipfile.ZipFile(io.BytesIO(open(download.value.path(), "rb").read())) as archive:
        assert json.loads(archive.read("profile.json"))[0]["last_name"] == "Şahin"

    page.fill("#erasure-reason", "Hesabımı kapatıyorum")
    page.fill("#erasure-password", PASSWORD)
    page.get_by_role("button", name="Ask to erase my data").click()
    expect(page.locator(".alert-success")).to_contain_text("Your erasure request is recorded")
    screenshot(page, "portal-privacy")

    agent = new_page()
    agent_signs_in(agent, shop)
    agent.goto(f"{shop.url}/admin/customers/erasure-requests")
    card = agent.locator(".erasure-request", has_text="Elif Şahin")
    assert "Hesabımı kapatıyorum" in card.inner_text()
    screenshot(agent, "admin-erasure-requests")
    card.get_by_role("button", name="Approve and erase").click()
    expect(agent.locator(".alert-success")).to_contain_text("personal data is erased")

    (state,), = shop.query(select(ErasureRequest.state))
    assert state == "approved"
    (email,), = shop.query(select(Customer.email))
    assert email.startswith("erased-") and email.endswith("@invalid")
    page.goto(f"{shop.url}/profile")
    assert page.url.startswith(f"{shop.url}/login")  # the session ended
    page.fill("#email", "elif@example.com")
    page.fill("#password", PASSWORD)
    page.locator("form button.btn-primary").click()
    expect(page.locator("body")).to_contain_text("The e-mail address or the password is wrong.")
