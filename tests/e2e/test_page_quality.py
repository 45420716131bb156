"""Every main page in a real browser at phone width (360 px) and on a desktop: no sideways scrolling,
a label for every field, a name for every button and link, no script errors."""
import pytest
from playwright.sync_api import expect

from limonbilling.extensions import db

from ..factories import PASSWORD, make_customer, make_package
from ..order_records import add_card_payment, make_order
from .conftest import screenshot
from .test_journeys import agent_signs_in, register

UNLABELLED = """() => [...document.querySelectorAll('input, select, textarea')]
  .filter(el => el.type !== 'hidden' && el.offsetParent !== null)
  .filter(el => !(el.labels && el.labels.length) && !el.getAttribute('aria-label')
                && !el.getAttribute('aria-labelledby'))
  .map(el => el.name || el.id || el.outerHTML.slice(0, 80))"""
NAMELESS = """() => [...document.querySelectorAll('button, a[href]')]
  .filter(el => el.offsetParent !== null)
  .filter(el => !(el.innerText || '').trim() && !el.getAttribute('aria-label') && !el.getAttribute('title'))
  .map(el => el.outerHTML.slice(0, 80))"""

CUSTOMER_PAGES = ["/", "/packages", "/orders", "/usage", "/tickets", "/tickets/new", "/profile",
                  "/subscription/cancel", "/activate", "/profile/privacy"]
AGENT_PAGES = ["/admin/", "/admin/billing/orders", "/admin/billing/packages", "/admin/billing/subscriptions",
               "/admin/billing/promo-codes", "/admin/billing/cancellations", "/admin/billing/activation-requests",
               "/admin/customers", "/admin/customers/erasure-requests", "/admin/departments",
               "/admin/settings/general", "/admin/settings/payments", "/admin/settings/notifications",
               "/admin/settings/orders", "/admin/notifications", "/admin/audit", "/admin/settings/agents"]


def check(page, url: str, width: int) -> list[str]:
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(f"script error: {error}"))
    page.on("console", lambda message: errors.append(f"console: {message.text}")
            if message.type == "error" else None)
    response = page.goto(url)
    problems = [f"HTTP {response.status}"] if response.status != 200 else []
    overflow = page.evaluate("() => document.documentElement.scrollWidth") - width
    if overflow > 0:
        problems.append(f"{overflow}px wider than the screen")
    problems += [f"field without a label: {name}" for name in page.evaluate(UNLABELLED)]
    problems += [f"control without a name: {html}" for html in page.evaluate(NAMELESS)]
    return problems + errors


@pytest.mark.parametrize("width", [360, 1280])
def test_customer_pages(shop, new_page, width):
    page = new_page(width=width, height=800)
    register(page, shop, "ayse@example.com")
    pages = [*CUSTOMER_PAGES, "/checkout/1"]
    problems = {path: check(page, shop.url + path, width) for path in pages}
    if width == 360:
        screenshot(page, "portal-checkout-phone")
    assert {path: found for path, found in problems.items() if found} == {}


@pytest.mark.parametrize("width", [360, 1280])
def test_agent_pages(shop, new_page, width):
    page = new_page(width=width, height=800)
    agent_signs_in(page, shop)
    problems = {path: check(page, shop.url + path, width) for path in AGENT_PAGES}
    assert {path: found for path, found in problems.items() if found} == {}


def test_keyboard_only_sign_in_shows_where_the_focus_is(shop, new_page):
    page = new_page()
    page.goto(f"{shop.url}/login")
    page.keyboard.press("Tab")
    focused = []
    for _ in range(12):
        focused.append(page.evaluate("() => document.activeElement.id || document.activeElement.tagName"))
        if focused[-1] == "email":
            break
        page.keyboard.press("Tab")
    assert "email" in focused
    outline = page.evaluate("() => getComputedStyle(document.activeElement).boxShadow + "
                            "getComputedStyle(document.activeElement).outlineStyle")
    assert outline not in ("nonenone", "none")  # a visible focus ring
    page.keyboard.type("nobody@example.com")
    page.keyboard.press("Tab")
    page.keyboard.type(PASSWORD)
    page.keyboard.press("Enter")
    expect(page.locator(".alert-danger")).to_contain_text("wrong")


def test_the_orders_by_status_doughnut_has_no_axes(shop, new_page):
    """The revenue bar chart is drawn first; its x/y scales must not end up on the doughnut."""
    with shop.app.app_context():
        order = make_order(make_customer(), make_package(), payment_status="paid", status="active")
        add_card_payment(order, "confirmed")
        db.session.remove()
    page = new_page()
    agent_signs_in(page, shop)
    scales = page.evaluate("""() => Object.fromEntries(['revenue-chart', 'status-chart'].map(
        id => [id, Object.keys(Chart.getChart(id).scales).sort()]))""")
    assert scales == {"revenue-chart": ["x", "y"], "status-chart": []}
