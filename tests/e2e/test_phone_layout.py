"""My account, My orders and My usage on a 390 px phone in a real browser: the balance is on the home page, and
no status, credit or balance is cut off or hidden in a table that scrolls sideways (rows stack instead)."""
from limonbilling.extensions import db
from limonbilling.services import audit, balance

from ..factories import make_customer, make_package
from ..order_records import add_card_payment, grant_from, make_order
from .conftest import screenshot
from .test_journeys import customer_signs_in

WIDTH = 390
# What a customer must see whole: every cell of the tables, every badge, the balance; and nothing that scrolls
# sideways, neither the page nor a box inside it (a .table-responsive hides columns off to the side).
CUT_OFF = """() => {
  const width = document.documentElement.clientWidth;
  const problems = [];
  for (const el of document.querySelectorAll('main td, main .badge, main .alert')) {
    const box = el.getBoundingClientRect();
    if (box.width && (box.left < 0 || box.right > width)) {
      const text = el.innerText.trim().slice(0, 30);
      problems.push(`${el.tagName} "${text}" at ${Math.round(box.left)}-${Math.round(box.right)}px`);
    }
  }
  for (const el of document.querySelectorAll('main *')) {
    if (['auto', 'scroll'].includes(getComputedStyle(el).overflowX) && el.scrollWidth > el.clientWidth + 1) {
      problems.push(`${el.tagName}.${el.className} scrolls sideways`);
    }
  }
  if (document.documentElement.scrollWidth > width) { problems.push('the page scrolls sideways'); }
  return problems;
}"""


def test_home_orders_and_usage_fit_a_phone(shop, new_page):
    with shop.app.app_context():
        customer = make_customer(email="elif@example.com", first_name="Elif")
        paid = make_order(customer, make_package("credit", credits=10, name="10 Kredi Paketi"), payment_status="paid")
        add_card_payment(paid, "confirmed")
        grant_from(paid)
        balance.adjust(customer, "25.00", "TRY", "Goodwill", audit.Actor.system("e2e"))
        db.session.commit()
        make_order(customer, make_package("subscription", days=30, name="Aylık VIP Destek"),
                   payment_method="bank_transfer")
        db.session.remove()

    page = new_page(width=WIDTH, height=844)
    customer_signs_in(page, shop, "elif@example.com")
    problems = {}
    for path, name, must_see in (("/", "home", ["You have 10 credits.", "Account balance: TRY"]),
                                 ("/orders", "orders", ["Paid — being reviewed", "Pending", "Unpaid"]),
                                 ("/usage", "usage", ["Purchase", "+10"])):
        page.goto(shop.url + path)
        screenshot(page, f"portal-{name}-phone")
        problems[path] = page.evaluate(CUT_OFF) + [
            f"{text!r} not visible" for text in must_see if not page.get_by_text(text).first.is_visible()]
    assert {path: found for path, found in problems.items() if found} == {}
