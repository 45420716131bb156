"""Cancel & Refund against the NestPay simulator over HTTP: void, credit, and a bank that does not answer."""
import http.server
import threading
import time

import pytest
import requests

from limonbilling.extensions import db
from limonbilling.models import Payment, RefundDestination
from limonbilling.payments import nestpay
from limonbilling.payments.nestpay_gateway import NestPayGateway
from limonbilling.sandbox import TEST_CARD
from limonbilling.services import ServiceError, card_payments, refunds, settings

from ..factories import make_customer, make_department, make_package
from ..payment_support import (
    AGENT,
    BANK,
    approved_at_the_simulator,
    bank_answer,
    card_order,
    configure_gateway,
    refund_to_card,
)
from .servers import POLL_SECONDS, form_with_field, forms_of


@pytest.fixture
def paid(app, simulator):
    """An order paid at the simulator: its gate took the card, its post-back went through our callback code."""
    configure_gateway(simulator.url)
    customer = make_customer()
    order, attempt = card_order(customer, make_package("credit", [make_department("Support")], credits=10))
    gateway = NestPayGateway()
    url, fields = gateway.payment_form(
        reference=attempt.oid, amount_minor=attempt.amount_minor, currency=attempt.currency, ok_url="http://127.0.0.1:9/ok",
        fail_url="http://127.0.0.1:9/fail", lang="tr", card=nestpay.Card(TEST_CARD, 12, 30, "000", "visa"),
        email=None, name=None,
    )
    browser = requests.Session()
    choice = forms_of(browser.post(url, data=fields))[0]
    callback = form_with_field(browser.post(choice["action"], data={**choice["fields"], "outcome": "approve"}), "HASH")
    card_payments.apply_card_callback(gateway, callback["fields"], BANK)
    db.session.commit()
    assert order.payment_status == "paid" and customer.credits == 10
    return order, customer


def test_same_day_refund_is_a_void(paid, simulator):
    order, customer = paid
    assert refunds.card_plan(order) == "void"
    assert refund_to_card(order, NestPayGateway(), AGENT) == "refunded"
    db.session.commit()
    assert (order.payment_status, order.status, customer.credits) == ("refunded", "cancelled", 0)
    status = NestPayGateway().sale_status(order.payments[0].oid)
    assert status.state == "voided" and status.answer["TRANS_STAT"] == "V"


def test_later_refund_is_a_credit(paid, simulator, clock):
    order, _customer = paid
    requests.post(f"{simulator.url}/sandbox/settle")
    clock.advance(days=1)
    assert refunds.card_plan(order) == "credit"
    assert refund_to_card(order, NestPayGateway(), AGENT) == "refunded"
    db.session.commit()
    status = NestPayGateway().sale_status(order.payments[0].oid).answer
    assert status["TRANS_STAT"] == "S" and status["CAPTURE_AMT"] == "0"


def test_a_void_after_settlement_falls_back_to_a_credit(paid, simulator):
    order, _customer = paid
    requests.post(f"{simulator.url}/sandbox/settle")  # the bank closed its day, our calendar did not move
    assert refund_to_card(order, NestPayGateway(), AGENT) == "refunded"


def test_a_refund_the_bank_refuses_changes_nothing(paid, simulator):
    order, customer = paid
    part = order.amount_minor // 3  # a partial Credit of a sale not settled yet: the bank refuses it
    assert refund_to_card(order, NestPayGateway(), AGENT, amount_minor=part) == "failed"
    db.session.commit()
    [refund] = order.refunds
    assert refund.state == "failed" and refund.answer
    assert order.payment_status == "paid" and customer.credits == 10 and order.refundable_minor == order.amount_minor


def test_a_sale_voided_behind_our_back_is_found_refunded_when_the_bank_is_asked(paid, simulator):
    """Someone voided the sale in the bank's panel: the refund asks the bank first and records what it did,
    instead of sending a void the bank refuses and leaving the money shown as ours."""
    order, customer = paid
    NestPayGateway().void(order.payments[0].oid)
    db.session.commit()
    assert refund_to_card(order, NestPayGateway(), AGENT) == "refunded"
    db.session.commit()
    [refund] = order.refunds
    assert (refund.state, refund.answer) == ("done", "Found refunded when the bank was asked.")
    assert (order.status, order.payment_status, customer.credits) == ("cancelled", "refunded", 0)


def test_a_refund_the_bank_made_but_we_never_recorded_is_not_sent_again(paid, simulator):
    """The bank made a partial Credit, but the database failed before its answer was committed: the refund is
    still "created". Sent again, it asks the bank first and finds it made; the customer is refunded once."""
    order, _customer = paid
    requests.post(f"{simulator.url}/sandbox/settle")  # after the bank's day: partial Credits are taken
    sale = simulator.server.app.extensions["nestpay_simulator"].payments[order.payments[0].oid]
    part = order.amount_minor // 3
    refunds.start(order, to=RefundDestination.CARD, actor=AGENT, amount_minor=part)
    db.session.commit()
    assert NestPayGateway().refund(order.payments[0].oid, part, "TRY", operation="credit", whole=False).succeeded
    assert refunds.send(order, NestPayGateway(), AGENT) == "refunded"  # its first answer never reached us
    db.session.commit()
    assert sale.refunded_minor == part and [r.state for r in order.refunds] == ["done"]


class _SlowBank(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        time.sleep(1.5)
        self.send_response(200)
        self.end_headers()

    def log_message(self, *_args):
        pass


@pytest.fixture
def slow_bank():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _SlowBank)
    threading.Thread(target=server.serve_forever, args=(POLL_SECONDS,), daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}/fim/api"
    server.shutdown()


def test_a_bank_timeout_leaves_the_refund_unknown_and_the_retry_asks_first(app, paid, simulator, slow_bank):
    order, customer = paid
    app.config["NESTPAY_API_TIMEOUT"] = (0.5, 0.5)
    settings.update({"nestpay_api_url": slow_bank}, AGENT)
    assert refund_to_card(order, NestPayGateway(), AGENT) == "unknown"
    db.session.commit()
    attempt = order.payments[0]
    [refund] = order.refunds
    assert refund.state == "unknown" and order.payment_status == "paid" and customer.credits == 10
    with pytest.raises(ServiceError) as refused:  # no second refund while the first one's fate is unknown
        refund_to_card(order, NestPayGateway(), AGENT)
    db.session.rollback()
    assert refused.value.code == "refund_in_flight"

    # Meanwhile the void did go through at the bank; the answer was lost.
    settings.update({"nestpay_api_url": f"{simulator.url}/fim/api"}, AGENT)
    assert NestPayGateway().void(attempt.oid).succeeded
    assert card_payments.ask_bank(order, NestPayGateway(), AGENT) == [f"order {order.number}: refund refunded"]
    db.session.commit()
    assert refund.state == "done" and refund.answer == "Found refunded when the bank was asked."
    assert (order.payment_status, order.status, customer.credits) == ("refunded", "cancelled", 0)


def test_after_an_unknown_refund_that_did_not_happen_the_retry_refunds(app, paid, simulator, slow_bank):
    order, _customer = paid
    app.config["NESTPAY_API_TIMEOUT"] = (0.5, 0.5)
    settings.update({"nestpay_api_url": slow_bank}, AGENT)
    assert refund_to_card(order, NestPayGateway(), AGENT) == "unknown"
    db.session.commit()
    settings.update({"nestpay_api_url": f"{simulator.url}/fim/api"}, AGENT)
    assert card_payments.ask_bank(order, NestPayGateway(), AGENT) == [f"order {order.number}: refund refunded"]
    db.session.commit()
    assert NestPayGateway().sale_status(order.payments[0].oid).answer["TRANS_STAT"] == "V"
    assert [(r.state, r.operation) for r in order.refunds] == [("done", "void")]


def test_a_refused_return_stays_flagged_when_another_return_is_made(app, simulator):
    """Three approved attempts of one order: the first pays it, the bank refuses to return the second's money
    (flagged), the third's comes back. That third return cleared the flag, and the second's money, which we
    did not accept, stayed with us with nobody told."""
    configure_gateway(simulator.url)
    order, first = card_order(make_customer(), make_package("credit", [make_department("Support")], credits=10))
    second = card_payments.start_card_payment(order, "nestpay")
    third = card_payments.start_card_payment(order, "nestpay")
    db.session.commit()
    third_answer = approved_at_the_simulator(third)
    gateway = NestPayGateway()
    for answer in (approved_at_the_simulator(first), bank_answer(second), third_answer):
        # the second is not on the simulator's books: its Void and its Credit are refused
        order = card_payments.apply_card_callback(gateway, answer, BANK)
        db.session.commit()
        refunds.send(order, gateway, BANK)
        db.session.commit()
    assert [(r.payment_id, r.state) for r in order.refunds] == [(second.id, "failed"), (third.id, "done")]
    assert order.attention and "refused" in order.attention
    assert db.session.get(Payment, second.id).refundable_minor == second.amount_minor
