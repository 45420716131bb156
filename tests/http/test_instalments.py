"""Card instalments end to end over real HTTP: checkout with a count, the simulator's 3-D page showing it and
posting it back, the order paid in instalments, a count changed on the way refused with the money returned,
and the whole refund of an instalment sale."""
import pytest
import requests

from limonbilling.extensions import db
from limonbilling.models import Order, Refund
from limonbilling.payments import nestpay
from limonbilling.payments.nestpay_gateway import NestPayGateway
from limonbilling.sandbox import TEST_CARD, TEST_MERCHANT
from limonbilling.services import refunds

from ..payment_support import AGENT, offer_instalments, refund_to_card
from .servers import checkout_fields, form_with_field, forms_of
from .test_card_payments import _resign, _signed_in


@pytest.fixture
def instalment_shop(shop):
    """The shop (a 150.00 TRY package) offering 3 instalments at 2.50 % and 6 from 100.00 at 5.00 %."""
    offer_instalments((3, 0, 250), (6, 10000, 500))
    db.session.commit()
    db.session.close()
    return shop


def _to_the_bank_in(browser, shop_url, package_id, count):
    page = browser.get(f"{shop_url}/checkout/{package_id}")
    assert 'name="instalments"' in page.text
    to_bank = browser.post(page.url, data={**checkout_fields(page), "card_number": TEST_CARD, "card_expiry": "12/30",
                                           "card_cvv": "000", "instalments": str(count)})
    return form_with_field(to_bank, "hash")


def _approved_callback(browser, bank_form):
    three_d = browser.post(bank_form["action"], data=bank_form["fields"])
    assert three_d.status_code == 200, three_d.text
    choice = forms_of(three_d)[0]
    post_back = browser.post(choice["action"], data={**choice["fields"], "outcome": "approve"})
    return three_d, form_with_field(post_back, "HASH")


def _order(ids) -> Order:
    db.session.expire_all()
    return db.session.scalars(db.select(Order).where(Order.customer_id == ids["customer"])).one()


@pytest.mark.parametrize(("count", "amount", "monthly"), [(3, "153.75", "51.25"), (6, "157.50", "26.25")])
def test_buying_in_instalments_through_the_simulator(instalment_shop, count, amount, monthly):
    server, ids = instalment_shop
    browser = _signed_in(server.url, ids["email"])
    page = browser.get(f"{server.url}/checkout/{ids['package']}")
    assert monthly in page.text and amount in page.text  # each count with its monthly amount and total
    bank_form = _to_the_bank_in(browser, server.url, ids["package"], count)
    assert (bank_form["fields"]["Instalment"], bank_form["fields"]["amount"]) == (str(count), amount)
    three_d, callback = _approved_callback(browser, bank_form)
    assert f"{count} (taksit)" in three_d.text  # the bank's 3-D page shows the count
    assert callback["fields"]["Instalment"] == str(count)  # and posts it back, signed
    order_page = browser.post(callback["action"], data=callback["fields"])
    assert "Payment received. Your package is active." in order_page.text
    assert f"{count} instalments" in order_page.text
    order = _order(ids)
    [attempt] = order.payments
    assert (order.payment_status, order.instalments, attempt.instalments, attempt.state) == (
        "paid", count, count, "confirmed")
    assert order.amount_minor == int(amount.replace(".", "")) and order.invoice.instalments == count
    db.session.close()


def test_a_count_changed_on_the_way_is_refused_and_the_money_returned(instalment_shop, simulator):
    server, ids = instalment_shop
    browser = _signed_in(server.url, ids["email"])
    _three_d, callback = _approved_callback(browser, _to_the_bank_in(browser, server.url, ids["package"], 3))
    tampered = _resign({**callback["fields"], "Instalment": "6"})  # as if the bank had split it otherwise
    response = requests.post(callback["action"], data=tampered, allow_redirects=False)
    assert response.status_code == 303
    order = _order(ids)
    [attempt] = order.payments
    [refund] = order.refunds
    assert (attempt.failure_code, order.activated, order.payment_status) == ("instalment_mismatch", False,
                                                                           "refunded")
    assert (refund.automatic, refund.state, refund.operation, refund.amount_minor) == (
        True, "done", "void", order.amount_minor)
    assert simulator.server.app.extensions["nestpay_simulator"].payments[attempt.oid].status == "V"
    db.session.close()


def test_an_instalment_sale_is_voided_whole_the_same_day_and_credited_whole_after(instalment_shop, simulator):
    server, ids = instalment_shop
    browser = _signed_in(server.url, ids["email"])
    _three_d, callback = _approved_callback(browser, _to_the_bank_in(browser, server.url, ids["package"], 3))
    browser.post(callback["action"], data=callback["fields"])
    order = _order(ids)
    assert refunds.card_plan(order) == "void"
    assert refund_to_card(order, NestPayGateway(), AGENT) == "refunded"
    db.session.commit()
    [refund] = db.session.scalars(db.select(Refund)).all()
    assert (refund.operation, refund.amount_minor, order.payment_status, order.status) == (
        "void", 15375, "refunded", "cancelled")
    db.session.close()


def test_the_simulator_refuses_a_count_outside_2_to_12(simulator):
    fields = {"clientid": TEST_MERCHANT["client_id"], "storetype": "3d_pay", "amount": "1.00", "currency": "949",
              "oid": "1-1", "okUrl": "http://127.0.0.1:9/ok", "failUrl": "http://127.0.0.1:9/fail", "rnd": "r",
              "Instalment": "13", "pan": TEST_CARD, "hashAlgorithm": "ver3"}
    fields["hash"] = nestpay.hash_v3(fields, TEST_MERCHANT["store_key"])
    response = requests.post(f"{simulator.url}/fim/est3Dgate", data=fields)
    assert response.status_code == 400 and "taksit" in response.text
