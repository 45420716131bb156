"""Failing parts leave no money or mail lost or doubled: the database failing mid-activation, the bank
answering garbage, a half-delivered batch when the mail server dies."""
import http.server
import re
import threading

import pytest
import requests
from sqlalchemy import event, func, select
from sqlalchemy.exc import OperationalError

from limonbilling.cli import reconcile_with_bank
from limonbilling.extensions import db
from limonbilling.models import Grant, LedgerEntry, Notification, Order, Payment
from limonbilling.payments.nestpay_gateway import NestPayGateway
from limonbilling.services import card_payments, outbox, settings

from ..factories import make_customer, make_package
from ..payment_support import (
    AGENT,
    approved_at_the_simulator,
    bank_answer,
    card_order,
    configure_gateway,
    refund_to_card,
)
from .servers import POLL_SECONDS
from .test_refunds import paid  # noqa: F401  (a fixture)


class DatabaseFails:
    """Make the database fail on the first statement that writes to `table` (the connection's error)."""

    def __init__(self, table: str):
        self.table, self.engine, self.failures = table, db.engine, 0

    def _fail(self, _conn, _cursor, statement, _parameters, _context, _many):
        if statement.lstrip().upper().startswith("INSERT INTO") and f" {self.table} " in f"{statement} ".replace(
                '"', " ").replace("(", " "):
            self.failures += 1
            raise OperationalError(statement, {}, Exception("server closed the connection unexpectedly"))

    def __enter__(self):
        event.listen(self.engine, "before_cursor_execute", self._fail)
        return self

    def __exit__(self, *_exc):
        event.remove(self.engine, "before_cursor_execute", self._fail)


def count(model, **where) -> int:
    statement = select(func.count()).select_from(model)
    for name, value in where.items():
        statement = statement.where(getattr(model, name) == value)
    return db.session.scalar(statement)


@pytest.mark.parametrize("table", ["ledger_entries", "grants", "notifications", "audit_log"])
def test_the_database_failing_mid_activation_leaves_nothing_half_done(app, client, table):
    settings.update({"notification_email": "billing@limon.example"}, AGENT)
    configure_gateway()
    customer = make_customer()
    order, attempt = card_order(customer, make_package("credit", credits=10))
    callback = bank_answer(attempt)
    mails_before = count(Notification)

    with DatabaseFails(table) as failing:
        with pytest.raises(OperationalError):
            client.post("/payments/nestpay/ok", data=callback)
    assert failing.failures == 1
    db.session.rollback()
    db.session.expire_all()
    assert (order.payment_status, order.activated, customer.credits) == ("unpaid", False, 0)
    assert db.session.get(Payment, attempt.id).state != "confirmed"
    assert count(LedgerEntry, customer_id=customer.id) == 0 and count(Grant, customer_id=customer.id) == 0
    assert count(Notification) == mails_before

    # The bank (or the customer's browser) sends the same answer again: now it counts, once.
    for _ in range(2):
        assert client.post("/payments/nestpay/ok", data=callback).status_code == 303
    db.session.expire_all()
    assert (order.payment_status, customer.credits) == ("paid", 10)
    assert count(LedgerEntry, customer_id=customer.id) == 1
    assert count(Notification, event="purchase_activated") == 2  # the customer and the team, once each


class _GarbageBank(http.server.BaseHTTPRequestHandler):
    def do_POST(self):  # noqa: N802
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        body = b"<html><body>502 Bad Gateway</body></html>"
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_args):
        pass


@pytest.fixture
def garbage_bank():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _GarbageBank)
    threading.Thread(target=server.serve_forever, args=(POLL_SECONDS,), daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}/fim/api"
    server.shutdown()


def test_a_bank_answering_garbage_leaves_the_refund_unknown_and_money_in_place(app, paid, simulator,  # noqa: F811
                                                                               garbage_bank):
    order, customer = paid
    settings.update({"nestpay_api_url": garbage_bank}, AGENT)
    assert refund_to_card(order, NestPayGateway(), AGENT) == "unknown"
    db.session.commit()
    assert [refund.state for refund in order.refunds] == ["unknown"]
    assert (order.payment_status, order.status, customer.credits) == ("paid", "pending", 10)
    settings.update({"nestpay_api_url": f"{simulator.url}/fim/api"}, AGENT)
    assert card_payments.ask_bank(order, NestPayGateway(), AGENT) == [f"order {order.number}: refund refunded"]
    db.session.commit()  # the status said "not refunded", so the void was sent
    assert (order.payment_status, customer.credits) == ("refunded", 0)
    assert count(Order, payment_status="refunded") == 1


def test_the_mail_server_dying_mid_batch_sends_nothing_twice(app, smtp_server, clock):
    for _ in range(6):
        make_customer()  # six welcome mails
    values = settings.get_all()
    report = outbox.SendReport()
    with outbox.SmtpConnection(values) as connection:
        for message in outbox.claim(3, ["email"]):  # a sender delivers half of what is due…
            outbox.deliver(message, values, connection, report)
    smtp_server.stop()  # …and the server is gone before the rest
    later = outbox.send_due()
    assert (report.sent, later.sent, later.retrying) == (3, 0, 3)
    smtp_server.start()
    clock.advance(minutes=1)
    assert outbox.send_due().sent == 3
    assert len(smtp_server.received) == 6 and len({mail.message["Message-ID"] for mail in smtp_server.received}) == 6


class _ManglingBank(http.server.BaseHTTPRequestHandler):
    """The simulator's API behind a proxy that spoils the answer about one order (`mangle`: oid, how): an XML
    encoding nobody knows, a body sent as gzip that is not, or amounts in digits that are not ASCII. The
    simulator has done what was asked; only its answer is unreadable."""

    upstream, mangle = "", {}

    def do_POST(self):  # noqa: N802
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        answer = requests.post(self.upstream, data=body, headers={"Content-Type": self.headers["Content-Type"]})
        content, headers = answer.content, {"Content-Type": "text/xml"}
        how = self.mangle.get("how") if self.mangle.get("oid", "").encode() in body else None
        if how == "encoding":
            content = content.replace(b"ISO-8859-9", b"x-unheard-of")
        elif how == "gzip":
            headers["Content-Encoding"] = "gzip"
        elif how == "digits":
            content = re.sub(rb"<ORIG_TRANS_AMT>[0-9]+", "<ORIG_TRANS_AMT>²⁰⁰".encode(), content)
        self.send_response(200)
        for name, value in {**headers, "Content-Length": str(len(content))}.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(content)

    def log_message(self, *_args):
        pass


@pytest.fixture
def mangling_bank(simulator):
    handler = type("Handler", (_ManglingBank,), {"upstream": f"{simulator.url}/fim/api", "mangle": {}})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, args=(POLL_SECONDS,), daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}/fim/api", handler.mangle
    server.shutdown()


def _paid_at_the_bank_unheard(simulator, customer, package):
    """A card attempt the simulator approved whose callback never reached us."""
    order, attempt = card_order(customer, package)
    approved_at_the_simulator(attempt)  # its post-back is never sent to us
    return order, attempt


@pytest.mark.parametrize("how", ["encoding", "gzip"])
def test_a_refund_answered_in_garbage_is_unknown_and_never_sent_twice(app, paid, simulator, mangling_bank,  # noqa: F811
                                                                      how, clock):
    """An unreadable answer to a Credit the bank made: the refund is unknown (it was left `created` and the
    request failed, so the agent's next refund sent it again: 30 refunded twice), and asking settles it."""
    order, _customer = paid
    proxy, mangle = mangling_bank
    requests.post(f"{simulator.url}/sandbox/settle")
    clock.advance(days=1)
    oid = order.payments[0].oid
    mangle.update(oid=oid, how=how)
    settings.update({"nestpay_api_url": proxy}, AGENT)
    assert refund_to_card(order, NestPayGateway(), AGENT, amount_minor=3000) == "unknown"
    db.session.commit()
    assert [refund.state for refund in order.refunds] == ["unknown"]
    mangle.clear()
    assert card_payments.ask_bank(order, NestPayGateway(), AGENT) == [f"order {order.number}: refund refunded"]
    db.session.commit()
    assert refund_to_card(order, NestPayGateway(), AGENT, amount_minor=2000) == "refunded"
    db.session.commit()
    assert [refund.state for refund in order.refunds] == ["done", "done"]
    assert simulator.server.app.extensions["nestpay_simulator"].payments[oid].refunded_minor == 5000


@pytest.mark.parametrize("how", ["encoding", "gzip", "digits"])
def test_a_status_answered_in_garbage_leaves_the_attempt_waiting_and_reconciles_the_rest(app, simulator,
                                                                                          mangling_bank, how):
    """One attempt whose status the bank answers in garbage is left waiting; the reconciliation goes on with
    the others (it stopped at the first, every time, so no later callback that never came was ever settled)."""
    proxy, mangle = mangling_bank
    configure_gateway(simulator.url)
    package = make_package("credit", credits=10)
    first, first_attempt = _paid_at_the_bank_unheard(simulator, make_customer(), package)
    second, second_attempt = _paid_at_the_bank_unheard(simulator, make_customer(), package)
    settings.update({"nestpay_api_url": proxy}, AGENT)
    db.session.commit()
    mangle.update(oid=first_attempt.oid, how=how)
    lines = reconcile_with_bank(0)
    assert lines[0].startswith(f"{first_attempt.oid}: unknown, the bank did not answer")
    assert lines[1] == f"{second_attempt.oid}: confirmed"
    db.session.commit()
    assert (first.payment_status, second.payment_status) == ("unpaid", "paid")
    assert first_attempt.state == "pending"
