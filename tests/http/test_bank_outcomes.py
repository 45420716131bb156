"""What the bank did, whatever reaches us, over real HTTP with the NestPay simulator (issue 14, defects 1, 5, 6, 7):
a forged ver1 callback, half 3-D money returned by itself, a lost callback settled by `billing reconcile` and
by expiry, a late approval on a Fraud order, and two approved attempts of one order."""
import requests

from limonbilling.extensions import db
from limonbilling.models import Customer, Notification, Order, Payment
from limonbilling.payments import nestpay
from limonbilling.payments.nestpay_gateway import NestPayGateway
from limonbilling.sandbox import TEST_MERCHANT
from limonbilling.services import audit, order_actions, settings

from .servers import checkout_fields, form_with_field
from .test_card_payments import _signed_in, _through_3d, _to_the_bank

AGENT = audit.Actor("agent", None, "agent@example.com")


def _order(ids) -> Order:
    db.session.expire_all()
    return db.session.scalars(db.select(Order).where(Order.customer_id == ids["customer"])).one()


def _bank_status(oid: str) -> dict:
    return NestPayGateway().sale_status(oid).answer


def test_a_forged_ver1_callback_from_the_request_hash_is_refused(shop):
    """Defect 1: with ver1, the request hash the browser carries verifies over the request fields; posted back
    with an unsigned Approved outcome it must not pay the order."""
    settings.update({"nestpay_store_type": "3d_pay_hosting", "nestpay_hash_version": "ver1"}, AGENT)
    db.session.commit()
    db.session.close()
    server, ids = shop
    browser = _signed_in(server.url, ids["email"])
    page = browser.get(f"{server.url}/checkout/{ids['package']}")
    bank_form = form_with_field(browser.post(page.url, data=checkout_fields(page)), "hash")
    request_fields = bank_form["fields"]
    names = "clientid:oid:amount:okUrl:failUrl:islemtipi:taksit:rnd:"
    forged = {name: value for name, value in request_fields.items() if name != "hash"} | {
        "HASHPARAMS": names, "HASHPARAMSVAL": "".join(request_fields.get(n, "") for n in names.split(":")),
        "HASH": request_fields["hash"], "Response": "Approved", "ProcReturnCode": "00", "mdStatus": "1",
    }
    assert nestpay.v1_hash_matches(forged, TEST_MERCHANT["store_key"])  # the old check let it through
    requests.post(request_fields["okUrl"], data=forged, allow_redirects=False)
    order = _order(ids)
    assert (order.payment_status, order.activated, order.payments[0].state) == ("unpaid", False, "pending")
    db.session.close()


def test_half_3d_money_is_voided_by_itself(shop):
    """Defect 5: the store refuses half 3-D (the default); the bank took the money, so it goes back."""
    server, ids = shop
    browser = _signed_in(server.url, ids["email"])
    callback = _through_3d(browser, _to_the_bank(browser, server.url, ids["package"]), "half_3d")
    page = browser.post(callback["action"], data=callback["fields"])
    assert "we could not accept it, so it went back to your card" in page.text and "Try again" in page.text
    order = _order(ids)
    [refund] = order.refunds
    assert (refund.automatic, refund.state, refund.operation) == (True, "done", "void")
    assert _bank_status(order.payments[0].oid)["TRANS_STAT"] == "V"
    assert (order.status, order.payment_status, order.activated) == ("pending", "refunded", False)
    db.session.close()


def _approved_but_lost(shop, browser=None, keep=None):
    """The bank approves, but its callback never reaches us (the customer closed the tab)."""
    server, ids = shop
    browser = browser or _signed_in(server.url, ids["email"])
    callback = _through_3d(browser, _to_the_bank(browser, server.url, ids["package"]), "approve")  # dropped
    if keep is not None:
        keep.append(callback)
    return ids


def test_an_approval_for_a_sale_voided_at_the_bank_takes_nothing(shop, app, clock):
    """The bank's status says the sale was voided (someone cancelled it at the bank): the attempt is cancelled,
    and the original approval delivered afterwards must not activate anything."""
    saved = []
    ids = _approved_but_lost(shop, keep=saved)
    oid = _order(ids).payments[0].oid
    db.session.close()
    assert NestPayGateway().void(oid).succeeded
    clock.advance(minutes=15)
    assert f"{oid}: canceled" in app.test_cli_runner().invoke(args=["billing", "reconcile"]).output
    db.session.close()  # the command ran in this session: its last read would hold the server back on SQLite
    requests.post(saved[0]["action"], data=saved[0]["fields"], allow_redirects=False)
    order = _order(ids)
    assert (order.payments[0].state, order.payment_status, order.activated, order.refunds) == (
        "canceled", "unpaid", False, [])
    db.session.close()


def test_a_lost_callback_is_settled_by_billing_reconcile(shop, app, clock):
    """Defect 6: nothing arrives; `billing reconcile` asks the bank and applies its answer as a callback would."""
    ids = _approved_but_lost(shop)
    runner = app.test_cli_runner()
    early = runner.invoke(args=["billing", "reconcile"])
    assert "0 item(s) checked" in early.output  # younger than 15 minutes: the callback may still come
    clock.advance(minutes=15)
    result = runner.invoke(args=["billing", "reconcile"])
    number = _order(ids).number
    assert f"{number}-1: confirmed" in result.output and "1 item(s) checked" in result.output
    order = _order(ids)
    customer = db.session.get(Customer, ids["customer"])
    assert (order.payment_status, order.activated, customer.credits) == ("paid", True, 10)
    again = runner.invoke(args=["billing", "reconcile"])
    assert "0 item(s) checked" in again.output and db.session.get(Customer, ids["customer"]).credits == 10
    db.session.close()


def test_expiry_asks_the_bank_before_it_cancels(shop, app, clock):
    """Defect 6: `billing expire` used to cancel an approved-but-unheard checkout after 30 minutes."""
    ids = _approved_but_lost(shop)
    clock.advance(minutes=31)
    output = app.test_cli_runner().invoke(args=["billing", "expire"]).output
    assert "0 unpaid card checkout(s) cancelled" in output
    order = _order(ids)
    assert (order.status, order.payment_status, order.activated) == ("pending", "paid", True)
    db.session.close()


def test_an_abandoned_checkout_the_bank_never_approved_is_cancelled_after_asking(shop, app, clock):
    server, ids = shop
    browser = _signed_in(server.url, ids["email"])
    _to_the_bank(browser, server.url, ids["package"])  # never authenticated at the bank
    clock.advance(minutes=31)
    output = app.test_cli_runner().invoke(args=["billing", "expire"]).output
    assert "1 unpaid card checkout(s) cancelled" in output
    order = _order(ids)
    assert (order.status, order.payments[0].state, order.payments[0].failure_code) == (
        "cancelled", "failed", "bank_status")
    db.session.close()


def test_ask_the_bank_button_settles_a_lost_callback(shop, app):
    from ..factories import make_agent, sign_in

    ids = _approved_but_lost(shop)
    agent_client = app.test_client()
    sign_in(agent_client, make_agent("billing"))
    number = _order(ids).number
    page = agent_client.post(f"/admin/billing/orders/{number}/ask-bank", follow_redirects=True).data.decode()
    assert f"{number}-1: confirmed" in page
    assert _order(ids).payment_status == "paid"
    db.session.close()


def test_a_late_approval_on_a_fraud_order_is_voided(shop):
    """Defect 7: an agent set the order to Fraud while the customer was at the bank; the approval is returned."""
    server, ids = shop
    browser = _signed_in(server.url, ids["email"])
    bank_form = _to_the_bank(browser, server.url, ids["package"])
    order_actions.set_fraud(_order(ids), AGENT)
    db.session.commit()
    db.session.close()
    callback = _through_3d(browser, bank_form, "approve")
    browser.post(callback["action"], data=callback["fields"])
    order = _order(ids)
    assert (order.status, order.activated, [(r.automatic, r.state) for r in order.refunds]) == (
        "fraud", False, [(True, "done")])
    assert _bank_status(order.payments[0].oid)["TRANS_STAT"] == "V"
    assert db.session.get(Customer, ids["customer"]).credits == 0
    db.session.close()


def test_two_approved_attempts_of_one_order_the_second_is_voided(shop):
    """Defect 7: the customer paid in two tabs; the order keeps one payment, the other goes back."""
    server, ids = shop
    browser = _signed_in(server.url, ids["email"])
    first_form = _to_the_bank(browser, server.url, ids["package"])
    number = _order(ids).number
    db.session.close()
    pay_page = browser.get(f"{server.url}/orders/{number}/pay")
    form = form_with_field(pay_page, "csrf_token")
    second_form = form_with_field(browser.post(pay_page.url, data={
        **form["fields"], "card_number": "4355084355084358", "card_expiry": "12/30", "card_cvv": "000"}), "hash")
    first = _through_3d(browser, first_form, "approve")
    second = _through_3d(browser, second_form, "approve")
    browser.post(first["action"], data=first["fields"])
    browser.post(second["action"], data=second["fields"])
    order = _order(ids)
    payments = db.session.scalars(db.select(Payment).where(Payment.order_id == order.id).order_by(Payment.id)).all()
    assert [p.state for p in payments] == ["confirmed", "refunded"]
    assert _bank_status(payments[1].oid)["TRANS_STAT"] == "V" and _bank_status(payments[0].oid)["TRANS_STAT"] == "S"
    assert (order.payment_status, db.session.get(Customer, ids["customer"]).credits) == ("paid", 10)
    db.session.close()


def test_money_paid_after_the_bank_said_no_sale_is_found_and_the_order_cannot_be_deleted_meanwhile(shop, app, clock):
    """Found by the lifecycle state machine: an attempt the bank had no sale for when asked was failed for good,
    so money the customer paid on the 3-D page after that, its post-back lost, was never found; and the order
    could be deleted, so even the post-back was ignored."""
    server, ids = shop
    browser = _signed_in(server.url, ids["email"])
    bank_form = _to_the_bank(browser, server.url, ids["package"])
    clock.advance(minutes=15)
    runner = app.test_cli_runner()
    order = _order(ids)
    oid = order.payments[0].oid
    assert f"{oid}: failed" in runner.invoke(args=["billing", "reconcile"]).output  # no sale at the bank yet
    order_actions.cancel_order(order, AGENT)
    db.session.commit()
    order = _order(ids)
    assert not order.can_delete  # the bank may still take money for it
    db.session.close()
    _through_3d(browser, bank_form, "approve")  # the customer pays after all; the post-back is lost
    result = runner.invoke(args=["billing", "reconcile"]).output
    assert f"{oid}: confirmed (returned)" in result and f"order {order.number}: refund refunded" in result
    order = _order(ids)
    assert (order.status, order.activated, [(r.automatic, r.state) for r in order.refunds]) == (
        "cancelled", False, [(True, "done")])
    assert _bank_status(oid)["TRANS_STAT"] == "V"
    db.session.close()


def test_money_paid_on_the_same_attempt_after_its_decline_is_found(shop, app, clock):
    """Attack pass 12: the bank declined the attempt and said so (its FAIL post-back arrived); the customer went
    back in the browser, sent the bank's form again with the same oid, and paid; that post-back is lost. The
    declined attempt was never asked about again, so the bank kept the money and the order stayed unpaid."""
    server, ids = shop
    browser = _signed_in(server.url, ids["email"])
    bank_form = _to_the_bank(browser, server.url, ids["package"])
    declined = _through_3d(browser, bank_form, "decline")
    browser.post(declined["action"], data=declined["fields"])
    order = _order(ids)
    oid = order.payments[0].oid
    assert (order.payments[0].state, order.payments[0].failure_code) == ("failed", "declined")
    db.session.close()
    approved = _through_3d(browser, bank_form, "approve")  # the same form again: the same oid, paid this time
    assert approved["fields"]["oid"] == oid  # its post-back is lost
    clock.advance(minutes=15)
    result = app.test_cli_runner().invoke(args=["billing", "reconcile"]).output
    assert f"{oid}: confirmed" in result
    order = _order(ids)
    assert (order.payment_status, order.activated, db.session.get(Customer, ids["customer"]).credits) == (
        "paid", True, 10)
    assert _bank_status(oid)["TRANS_STAT"] == "S"
    db.session.close()


def test_a_declined_attempt_paid_again_before_its_checkout_ran_out_is_asked_about_before_the_expiry(
        shop, app, clock):
    """The bank declined the attempt; the customer sent the bank's form again and paid 150.00 on the same oid
    within the checkout's time, its post-back lost. The expiry run (every 10 minutes, before reconciliation asks
    about attempts older than 15) asked the bank only about pending attempts: it cancelled the order, and
    reconciliation then returned the customer's 150.00 instead of activating what they paid for."""
    server, ids = shop
    browser = _signed_in(server.url, ids["email"])
    bank_form = _to_the_bank(browser, server.url, ids["package"])
    declined = _through_3d(browser, bank_form, "decline")
    browser.post(declined["action"], data=declined["fields"])
    db.session.close()
    _through_3d(browser, bank_form, "approve")  # the same form again: the same oid, paid; its post-back is lost
    clock.advance(minutes=31)
    app.test_cli_runner().invoke(args=["billing", "expire"])
    app.test_cli_runner().invoke(args=["billing", "reconcile"])
    order = _order(ids)
    assert (order.status, order.payment_status, order.activated) == ("pending", "paid", True)
    assert db.session.get(Customer, ids["customer"]).credits == 10
    db.session.close()


def test_a_declined_attempt_paid_after_a_newer_one_paid_the_order_goes_back(shop, app, clock):
    """The first attempt was declined, the second paid the order; then the customer went back to the first
    attempt's bank form and paid it too, its post-back lost. Reconciliation finds that second sale and returns it."""
    server, ids = shop
    browser = _signed_in(server.url, ids["email"])
    first_form = _to_the_bank(browser, server.url, ids["package"])
    declined = _through_3d(browser, first_form, "decline")
    browser.post(declined["action"], data=declined["fields"])
    number = _order(ids).number
    db.session.close()
    pay_page = browser.get(f"{server.url}/orders/{number}/pay")
    form = form_with_field(pay_page, "csrf_token")
    second_form = form_with_field(browser.post(pay_page.url, data={
        **form["fields"], "card_number": "4355084355084358", "card_expiry": "12/30", "card_cvv": "000"}), "hash")
    second = _through_3d(browser, second_form, "approve")
    browser.post(second["action"], data=second["fields"])
    _through_3d(browser, first_form, "approve")  # the first attempt's oid, paid now; its post-back is lost
    clock.advance(minutes=15)
    result = app.test_cli_runner().invoke(args=["billing", "reconcile"]).output
    first_oid, second_oid = f"{number}-1", f"{number}-2"
    assert f"{first_oid}: confirmed (returned)" in result
    order = _order(ids)
    assert (order.payment_status, order.activated, db.session.get(Customer, ids["customer"]).credits) == (
        "paid", True, 10)
    assert [(r.payment.oid, r.automatic, r.state) for r in order.refunds] == [(first_oid, True, "done")]
    assert _bank_status(first_oid)["TRANS_STAT"] == "V" and _bank_status(second_oid)["TRANS_STAT"] == "S"
    db.session.close()


def test_a_declined_attempt_is_asked_about_every_run_for_an_hour_then_hourly_for_its_day(shop, app, clock):
    """Attack pass 12: failed attempts are asked about again for a day, and the worker reconciles every 5
    minutes: 288 questions to the bank a day for each decline, however many a card tester makes. Every run in
    the first hour (when a customer goes back to the bank's form), then once an hour: at most 35 a day."""
    server, ids = shop
    browser = _signed_in(server.url, ids["email"])
    declined = _through_3d(browser, _to_the_bank(browser, server.url, ids["package"]), "decline")
    browser.post(declined["action"], data=declined["fields"])
    db.session.close()
    runner = app.test_cli_runner()
    asked = []
    for _ in range(24 * 12):  # a day of the worker's runs
        clock.advance(minutes=5)
        asked.append("1 item(s) checked" in runner.invoke(args=["billing", "reconcile"]).output)
    assert asked[:2] == [False, False] and all(asked[2:11])  # from 15 minutes on, like an unanswered attempt
    assert 22 <= sum(asked[11:]) <= 24 and sum(asked) <= 35
    clock.advance(minutes=5)
    assert "0 item(s) checked" in runner.invoke(args=["billing", "reconcile"]).output  # its day is over
    db.session.close()


def test_a_half_3d_post_back_after_a_declined_attempt_was_found_paid_is_flagged(shop, app, clock):
    """Attack pass 12: the attempt was declined (its post-back said mdStatus 1), then paid on the bank's form
    again with half 3-D Secure, which the store does not accept; reconciliation took it from the bank's status,
    which does not tell the 3-D level. Its post-back, arriving after, is flagged for agents when the attempt was
    pending before; here the declined try's mdStatus was still on the payment, so the half 3-D sale was kept
    silently (a chargeback risk the store refuses)."""
    server, ids = shop
    browser = _signed_in(server.url, ids["email"])
    bank_form = _to_the_bank(browser, server.url, ids["package"])
    declined = _through_3d(browser, bank_form, "decline")
    browser.post(declined["action"], data=declined["fields"])
    db.session.close()
    half_3d = _through_3d(browser, bank_form, "half_3d")  # paid again, its post-back late
    clock.advance(minutes=15)
    oid = half_3d["fields"]["oid"]
    assert f"{oid}: confirmed" in app.test_cli_runner().invoke(args=["billing", "reconcile"]).output
    db.session.close()
    requests.post(half_3d["action"], data=half_3d["fields"], allow_redirects=False)
    order = _order(ids)
    [payment] = order.payments
    assert order.attention and "half 3-D" in order.attention and payment.md_status == "2"
    assert payment.proc_return_code != "05" and payment.failure_code is None  # the declined try's words are gone
    db.session.close()


def test_a_3d_failure_post_back_after_the_sale_was_found_flags_nothing(shop, app, clock):
    """Attack pass 12: 3-D Secure failed on the first try (mdStatus 0, its post-back not delivered yet), the
    customer paid on the same oid (full 3-D) and that post-back was lost; reconciliation took the sale from the
    bank's status. The first try's post-back, delivered late or replayed from the browser's history, was taken
    for a late half 3-D answer of the sale: agents were told to keep the money or Cancel & Refund a good sale."""
    server, ids = shop
    browser = _signed_in(server.url, ids["email"])
    bank_form = _to_the_bank(browser, server.url, ids["package"])
    failed = _through_3d(browser, bank_form, "3d_failure")
    _through_3d(browser, bank_form, "approve")  # paid on the same oid; both post-backs held back
    clock.advance(minutes=15)
    oid = failed["fields"]["oid"]
    assert f"{oid}: confirmed" in app.test_cli_runner().invoke(args=["billing", "reconcile"]).output
    db.session.close()
    requests.post(failed["action"], data=failed["fields"], allow_redirects=False)
    order = _order(ids)
    [payment] = order.payments
    assert (order.attention, payment.state, order.payment_status, order.activated) == (
        None, "confirmed", "paid", True)
    assert db.session.scalar(db.select(db.func.count()).select_from(Notification).where(
        Notification.event == "money_needs_attention")) == 0
    db.session.close()
