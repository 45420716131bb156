"""A balance top-up by card end to end over real HTTP: the balance page, the order's payment page, the NestPay
simulator's 3-D page and post-back, a replay of it, and Cancel & Refund voiding the sale at the simulator."""
import requests

from limonbilling.extensions import db
from limonbilling.models import AccountBalance, BalanceEntry, Order
from limonbilling.payments.nestpay_gateway import NestPayGateway
from limonbilling.sandbox import TEST_CARD

from ..payment_support import AGENT, refund_to_card
from .servers import form_with_field, forms_of
from .test_card_payments import _signed_in, _through_3d


def _balance(customer_id):
    db.session.expire_all()
    amount = db.session.scalar(db.select(AccountBalance.amount_minor).where(
        AccountBalance.customer_id == customer_id)) or 0
    db.session.close()  # SQLite: the test's transaction must not hold the writer's lock while the servers work
    return amount


def _top_up_to_the_bank(browser: requests.Session, shop_url: str, amount: str):
    page = browser.get(f"{shop_url}/balance")
    form = form_with_field(page, "amount")
    pay_page = browser.post(f"{shop_url}/balance/top-up/card", data={**form["fields"], "amount": amount})
    assert "/pay" in pay_page.url, pay_page.text
    checkout = form_with_field(pay_page, "card_number")
    to_bank = browser.post(pay_page.url, data={**checkout["fields"], "card_number": TEST_CARD,
                                                "card_expiry": "12/30", "card_cvv": "000"})
    return form_with_field(to_bank, "hash")


def test_a_card_top_up_through_the_simulator_credits_once_and_refunds_from_the_balance(shop):
    server, ids = shop
    browser = _signed_in(server.url, ids["email"])
    bank_form = _top_up_to_the_bank(browser, server.url, "250,00")
    assert bank_form["fields"]["amount"] == "250.00" and not bank_form["fields"].get("Instalment")
    callback = _through_3d(browser, bank_form, "approve")
    order_page = browser.post(callback["action"], data=callback["fields"])
    assert "is added to your account balance" in order_page.text
    browser.post(callback["action"], data=callback["fields"])  # the post-back replayed
    assert _balance(ids["customer"]) == 25_000
    history = browser.get(f"{server.url}/balance").text
    assert "Top-up order" in history and "250.00" in history

    order = db.session.scalars(db.select(Order).where(Order.customer_id == ids["customer"])).one()
    assert (order.kind, order.status, order.payment_status) == ("balance", "active", "paid")
    assert refund_to_card(order, NestPayGateway(), AGENT) == "refunded"
    db.session.commit()
    oid = order.payments[0].oid
    assert _balance(ids["customer"]) == 0
    status = NestPayGateway().sale_status(oid)
    assert status.state == "voided"
    kinds = list(db.session.scalars(db.select(BalanceEntry.kind).order_by(BalanceEntry.id)))
    assert kinds == ["top_up", "top_up_back"]
    db.session.close()


def test_a_declined_top_up_adds_nothing(shop):
    server, ids = shop
    browser = _signed_in(server.url, ids["email"])
    bank_form = _top_up_to_the_bank(browser, server.url, "100")
    callback = _through_3d(browser, bank_form, "decline")
    order_page = browser.post(callback["action"], data=callback["fields"])
    assert "did not go through" in order_page.text and forms_of(order_page) is not None
    assert _balance(ids["customer"]) == 0
    db.session.close()
