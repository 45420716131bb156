"""Two-factor sign-in in a real browser: an agent sets it up with a code made by pyotp from the secret the
page shows, signs out, signs in with a code, then with a recovery code, which works only once."""
import time

import pyotp
from playwright.sync_api import expect
from sqlalchemy import select

from limonbilling.models import AuditEntry

from ..factories import PASSWORD
from .conftest import screenshot
from .test_journeys import agent_signs_in
from .test_page_quality import check


def sign_out(page) -> None:
    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url("**/admin/login")


def password_step(page, shop) -> None:
    page.goto(f"{shop.url}/admin/login?next=/admin/customers")
    page.fill("#email", shop.agent_email)
    page.fill("#password", PASSWORD)
    page.locator("form button.btn-dark").click()
    page.wait_for_url(f"{shop.url}/admin/login/two-factor?next=/admin/customers")


def test_an_agent_sets_up_two_factor_and_signs_in_with_a_code_and_a_recovery_code(shop, new_page):
    page = new_page()
    agent_signs_in(page, shop)
    page.goto(f"{shop.url}/admin/profile")
    page.get_by_role("link", name="Two-factor sign-in").click()
    page.wait_for_url(f"{shop.url}/admin/profile/two-factor")
    qr = page.get_by_role("img", name="QR code to add this account to an authenticator app")
    assert qr.evaluate("image => image.complete && image.naturalWidth > 0")  # the data: URI passed the CSP
    secret = page.locator("#totp-secret").inner_text()
    screenshot(page, "admin-two-factor-setup")
    totp = pyotp.TOTP(secret)
    page.fill("#enrol-code", totp.now())
    page.get_by_role("button", name="Turn on two-factor sign-in").click()
    expect(page.locator("#recovery-codes li")).to_have_count(10)
    codes = page.locator("#recovery-codes li").all_inner_texts()
    assert len(codes) == 10
    screenshot(page, "admin-two-factor-recovery-codes")
    page.get_by_role("link", name="I have saved them").click()
    expect(page.locator("body")).to_contain_text("Recovery codes left: 10.")
    assert check(page, f"{shop.url}/admin/profile/two-factor", 1280) == []

    sign_out(page)
    password_step(page, shop)
    assert page.goto(f"{shop.url}/admin/").url.startswith(f"{shop.url}/admin/login")  # not signed in yet
    page.go_back()
    page.fill("#code", totp.at(time.time() + 30))  # the next step: the enrolment spent the current one
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{shop.url}/admin/customers")

    sign_out(page)
    password_step(page, shop)
    page.fill("#code", codes[0])
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{shop.url}/admin/customers")
    page.goto(f"{shop.url}/admin/profile/two-factor")
    assert "Recovery codes left: 9." in page.content()

    sign_out(page)
    password_step(page, shop)
    page.fill("#code", codes[0])
    page.get_by_role("button", name="Sign in").click()
    assert page.locator(".invalid-feedback").inner_text().startswith("This code is not right.")
    screenshot(page, "admin-two-factor-wrong-code")
    actions = [row.action for row in shop.query(select(AuditEntry.action).order_by(AuditEntry.id))]
    mine = {"agent.sign_in", "agent.two_factor_enabled", "agent.recovery_code_used", "agent.two_factor_failed"}
    assert [action for action in actions if action in mine] == [
        "agent.sign_in", "agent.two_factor_enabled", "agent.sign_in", "agent.recovery_code_used", "agent.sign_in",
        "agent.two_factor_failed"]


def test_the_set_up_page_fits_a_phone(shop, new_page):
    page = new_page(width=360, height=800)
    agent_signs_in(page, shop)
    assert check(page, f"{shop.url}/admin/profile/two-factor", 360) == []
