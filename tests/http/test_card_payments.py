"""Card payments end to end over real HTTP: the app and the NestPay simulator on loopback ports.

A requests.Session plays the browser: checkout, the bank's 3-D page, its
post-back to okUrl/failUrl, and the 303 to the order page.
"""
import logging

import pytest
import requests

from limonbilling.extensions import db
from limonbilling.models import Customer, Grant, Order, Payment, Refund
from limonbilling.payments import nestpay
from limonbilling.sandbox import TEST_CARD, TEST_MERCHANT, create_simulator
from limonbilling.services import audit, settings

from ..factories import PASSWORD
from .servers import checkout_fields, form_with_field, forms_of


def _signed_in(shop_url: str, email: str) -> requests.Session:
    browser = requests.Session()
    page = browser.get(f"{shop_url}/login")
    form = form_with_field(page, "csrf_token")
    response = browser.post(page.url, data={**form["fields"], "email": email, "password": PASSWORD})
    assert response.url.rstrip("/") == shop_url, "sign-in failed"
    return browser


def _to_the_bank(browser, shop_url, package_id, card=TEST_CARD):
    page = browser.get(f"{shop_url}/checkout/{package_id}")
    to_bank = browser.post(page.url, data={
        **checkout_fields(page), "card_number": card, "card_expiry": "12/30", "card_cvv": "000",
    })
    assert to_bank.headers["Cache-Control"] == "no-store"
    return form_with_field(to_bank, "hash")


def _through_3d(browser, bank_form, outcome):
    three_d = browser.post(bank_form["action"], data=bank_form["fields"])
    assert three_d.status_code == 200, three_d.text
    choice = forms_of(three_d)[0]
    post_back = browser.post(choice["action"], data={**choice["fields"], "outcome": outcome})
    return form_with_field(post_back, "HASH")


def _state(ids):
    db.session.expire_all()
    customer = db.session.get(Customer, ids["customer"])
    order = db.session.scalars(db.select(Order).where(Order.customer_id == ids["customer"])).one()
    result = (customer.credits, order.payment_status, order.status, order.activated, order.number)
    db.session.close()
    return result


def test_approved_card_payment_activates_the_package(shop, caplog):
    caplog.set_level(logging.DEBUG)
    server, ids = shop
    browser = _signed_in(server.url, ids["email"])
    bank_form = _to_the_bank(browser, server.url, ids["package"])
    assert bank_form["fields"]["amount"] == "150.00" and bank_form["fields"]["currency"] == "949"
    callback = _through_3d(browser, bank_form, "approve")
    order_page = browser.post(callback["action"], data=callback["fields"])
    assert order_page.history[0].status_code == 303
    assert "Payment received. Your package is active." in order_page.text
    credits, paid, status, activated, number = _state(ids)
    assert (credits, paid, status, activated) == (10, "paid", "pending", True)
    assert f"/orders/{number}" in order_page.url
    logged = caplog.text
    secrets = {TEST_CARD, TEST_CARD.replace(" ", ""), TEST_MERCHANT["store_key"], TEST_MERCHANT["api_password"]}
    assert [secret for secret in secrets if secret in logged] == []  # no card number or key in any log line
    attempt = db.session.scalars(db.select(Payment)).one()
    assert attempt.masked_pan == "435508***4358" and TEST_CARD not in str(attempt.raw)
    db.session.close()


@pytest.mark.parametrize("store_type, hash_version", [("3d_pay_hosting", "ver3"), ("3d_pay", "ver1")])
def test_hosting_store_type_and_old_hash_version(shop, store_type, hash_version):
    settings.update({"nestpay_store_type": store_type, "nestpay_hash_version": hash_version},
                    audit.Actor.system("test"))
    db.session.commit()
    db.session.close()
    server, ids = shop
    browser = _signed_in(server.url, ids["email"])
    page = browser.get(f"{server.url}/checkout/{ids['package']}")
    if store_type == "3d_pay_hosting":
        assert "card_number" not in page.text and "Continue to the bank" in page.text
        data = checkout_fields(page)
    else:
        data = {**checkout_fields(page), "card_number": TEST_CARD, "card_expiry": "12/30", "card_cvv": "000"}
    bank_form = form_with_field(browser.post(page.url, data=data), "hash")
    three_d = browser.post(bank_form["action"], data=bank_form["fields"])
    choice = forms_of(three_d)[0]
    post_back = browser.post(choice["action"], data={**choice["fields"], "outcome": "approve", "pan": TEST_CARD})
    callback = form_with_field(post_back, "HASH")
    assert ("HASHPARAMS" in callback["fields"]) == (hash_version == "ver1")
    browser.post(callback["action"], data=callback["fields"])
    assert _state(ids)[:4] == (10, "paid", "pending", True)


@pytest.mark.parametrize(("outcome", "message"), [
    ("decline", "Your bank declined the payment."),  # the bank's own text is for agents (tests/web/test_polish.py)
    ("3d_failure", "3-D Secure check did not succeed"),
])
def test_declined_or_failed_payment_leaves_the_order_unpaid(shop, outcome, message):
    server, ids = shop
    browser = _signed_in(server.url, ids["email"])
    callback = _through_3d(browser, _to_the_bank(browser, server.url, ids["package"]), outcome)
    order_page = browser.post(callback["action"], data=callback["fields"])
    assert "The payment did not go through" in order_page.text and message in order_page.text
    assert "Try again" in order_page.text
    credits, paid, status, activated, _number = _state(ids)
    assert (credits, paid, status, activated) == (0, "unpaid", "pending", False)
    attempt = db.session.scalars(db.select(Payment)).one()
    assert attempt.state == "failed" and TEST_CARD not in str(attempt.raw)
    db.session.close()


def test_try_again_after_a_decline(shop):
    server, ids = shop
    browser = _signed_in(server.url, ids["email"])
    callback = _through_3d(browser, _to_the_bank(browser, server.url, ids["package"]), "decline")
    browser.post(callback["action"], data=callback["fields"])
    *_rest, number = _state(ids)
    page = browser.get(f"{server.url}/orders/{number}/pay")
    form = form_with_field(page, "csrf_token")
    to_bank = browser.post(page.url, data={**form["fields"], "card_number": TEST_CARD, "card_expiry": "12/30",
                                           "card_cvv": "000"})
    callback = _through_3d(browser, form_with_field(to_bank, "hash"), "approve")
    assert callback["fields"]["oid"] == f"{number}-2"
    browser.post(callback["action"], data=callback["fields"])
    assert _state(ids)[:4] == (10, "paid", "pending", True)


def _resign(fields):
    signed = {name: value for name, value in fields.items() if name != "HASH"}
    signed["HASH"] = nestpay.hash_v3(signed, TEST_MERCHANT["store_key"])
    return signed


@pytest.mark.parametrize("tampering", ["wrong_hash", "wrong_amount", "unknown_order", "other_currency"])
def test_tampered_callbacks_change_nothing(shop, tampering):
    server, ids = shop
    browser = _signed_in(server.url, ids["email"])
    callback = _through_3d(browser, _to_the_bank(browser, server.url, ids["package"]), "approve")
    fields = dict(callback["fields"])
    if tampering == "wrong_hash":
        fields["amount"] = "1.50"  # changed without the store key: the hash no longer matches
    elif tampering == "wrong_amount":
        fields = _resign({**fields, "amount": "1.50"})
    elif tampering == "unknown_order":
        fields = _resign({**fields, "oid": "9999999999-1", "ReturnOid": "9999999999-1"})
    else:
        fields = _resign({**fields, "currency": "840"})
    fresh = requests.Session()  # the bank's POST does not carry the customer's cookie
    response = fresh.post(callback["action"], data=fields, allow_redirects=False)
    assert response.status_code == 303
    credits, paid, _status, activated, _number = _state(ids)
    # A signed answer that the bank took another amount or currency is money we do not accept: it goes back.
    signed_by_the_bank = tampering in ("wrong_amount", "other_currency")
    assert (credits, paid, activated) == (0, "refunded" if signed_by_the_bank else "unpaid", False)
    refunds = db.session.scalars(db.select(Refund)).all()
    assert [(r.automatic, r.state) for r in refunds] == ([(True, "done")] if signed_by_the_bank else [])
    db.session.close()


def test_replayed_callback_activates_once(shop):
    server, ids = shop
    browser = _signed_in(server.url, ids["email"])
    callback = _through_3d(browser, _to_the_bank(browser, server.url, ids["package"]), "approve")
    for _ in range(2):
        requests.post(callback["action"], data=callback["fields"], allow_redirects=False)
    requests.get(callback["action"], params=callback["fields"], allow_redirects=False)
    assert _state(ids)[:4] == (10, "paid", "pending", True)
    assert db.session.scalar(db.select(db.func.count(Grant.id))) == 1
    db.session.close()


def test_a_bad_request_hash_gets_the_banks_error(simulator):
    fields = {"clientid": TEST_MERCHANT["client_id"], "storetype": "3d_pay", "amount": "1.00", "currency": "949",
              "oid": "X-1", "okUrl": "http://127.0.0.1/ok", "failUrl": "http://127.0.0.1/fail", "rnd": "r",
              "hashAlgorithm": "ver3", "pan": TEST_CARD, "hash": "not-the-hash"}
    response = requests.post(f"{simulator.url}/fim/est3Dgate", data=fields)
    assert response.status_code == 400 and "hash" in response.text


def test_simulator_api_void_credit_and_status(simulator):
    config = nestpay.MerchantConfig(
        client_id=TEST_MERCHANT["client_id"], store_key=TEST_MERCHANT["store_key"], store_type="3d_pay",
        gate_url=f"{simulator.url}/fim/est3Dgate", api_url=f"{simulator.url}/fim/api",
        api_user=TEST_MERCHANT["api_user"], api_password=TEST_MERCHANT["api_password"],
    )
    browser = requests.Session()
    for oid in ("A-1", "B-1"):
        _url, fields = nestpay.build_payment_form(
            config, oid=oid, amount_minor=15000, currency="TRY", ok_url="http://127.0.0.1:9/ok",
            fail_url="http://127.0.0.1:9/fail", lang="tr", card=nestpay.Card(TEST_CARD, 12, 30, "000", "visa"),
        )
        callback = _through_3d(browser, {"action": config.gate_url, "fields": fields}, "approve")
        assert callback["fields"]["Response"] == "Approved"
        assert nestpay.verify_callback(callback["fields"], config.store_key)
    client = nestpay.NestPayApiClient(config, timeout=5)
    assert client.order_status("A-1").extra["TRANS_STAT"] == "S"
    assert client.void("A-1").succeeded
    assert client.order_status("A-1").extra["TRANS_STAT"] == "V"
    same_day = client.refund("B-1", 15000, "TRY")
    assert same_day.proc_return_code == "99" and same_day.extra["ERRORCODE"] == "CORE-2508"
    requests.post(f"{simulator.url}/sandbox/settle")
    assert client.refund("B-1", 5000, "TRY").succeeded
    assert not client.void("B-1").succeeded
    wrong_password = nestpay.MerchantConfig(**{**config.__dict__, "api_password": "nope"})
    assert nestpay.NestPayApiClient(wrong_password, timeout=5).order_status("B-1").response == "Error"


def test_the_simulator_refuses_production(monkeypatch):
    monkeypatch.setenv("LIMONBILLING_CONFIG", "production")
    with pytest.raises(RuntimeError, match="development and tests only"):
        create_simulator()


def test_a_ver1_sale_in_a_cheaper_currency_does_not_pay_the_order(shop):
    """Attack pass 12: ver1 signs neither the request's currency nor the callback's, and the bank's status does
    not say it. The customer changed the form's currency of a 150.00 USD order to TRY on the way to the bank
    (which took 150.00 TRY) and the post-back's back to USD: 150 TRY paid the 150 USD order. A ver1 store takes
    card payments in TRY only now; a ver3 one signs the currency."""
    from ..factories import make_package

    settings.update({"nestpay_hash_version": "ver1"}, audit.Actor.system("test"))
    package = make_package("credit", credits=10, price="150.00", currency="USD")
    package_id = package.id
    db.session.commit()
    db.session.close()
    server, ids = shop
    browser = _signed_in(server.url, ids["email"])
    page = browser.get(f"{server.url}/checkout/{package_id}")
    to_bank = browser.post(page.url, data={
        **checkout_fields(page), "card_number": TEST_CARD, "card_expiry": "12/30", "card_cvv": "000"})
    bank_forms = [form for form in forms_of(to_bank) if "hash" in form["fields"]]
    if bank_forms:  # before: sent to the bank
        bank_form = bank_forms[0]
        bank_form["fields"]["currency"] = "949"  # the browser sends what it likes
        callback = _through_3d(browser, bank_form, "approve")
        assert "currency" not in callback["fields"]["HASHPARAMS"]
        browser.post(callback["action"], data={**callback["fields"], "currency": "840"})
    else:
        assert to_bank.status_code == 422 and "Card payments are taken only in TRY" in to_bank.text
    paid = db.session.scalars(db.select(Order).where(Order.payment_status == "paid")).all()
    assert (paid, db.session.get(Customer, ids["customer"]).credits) == ([], 0), "150 TRY paid a 150 USD order"
    db.session.close()


def test_a_ver1_sale_of_less_than_the_order_does_not_pay_it(shop):
    """Attack pass 12: the ver1 request hash joins clientid, oid, amount, okUrl... with no separator, so moving
    the amount's tail into okUrl ("1" and "50.00https://...") keeps it; the bank took 1.00 for the 150.00
    attempt. Its ver1 post-back signs no amount: sent to our okUrl with amount 150.00 written back, it paid the
    order. A ver1 approval now counts only when the bank's status shows the sale's amount."""
    settings.update({"nestpay_hash_version": "ver1"}, audit.Actor.system("test"))
    db.session.commit()
    db.session.close()
    server, ids = shop
    browser = _signed_in(server.url, ids["email"])
    bank_form = _to_the_bank(browser, server.url, ids["package"])
    fields = bank_form["fields"]
    assert fields["amount"] == "150.00"
    ok_url = fields["okUrl"]
    fields["amount"], fields["okUrl"] = "1", "50.00" + ok_url  # the hash's plaintext is the same
    callback = _through_3d(browser, bank_form, "approve")
    assert callback["fields"]["amount"] == "1"
    browser.post(ok_url, data={**callback["fields"], "amount": "150.00", "okUrl": ok_url})
    credits, paid, _status, activated, _number = _state(ids)
    assert (credits, activated) == (0, False) and paid != "paid", "1.00 paid a 150.00 order"
