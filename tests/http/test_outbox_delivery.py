"""The outbox delivering through a real SMTP server (aiosmtpd) and a real HTTP SMS provider on loopback.

A purchase sends exactly the expected mails; a mail server that is down loses
no purchase and no mail; senders racing (threads, processes, the web process
right after commit) deliver each mail once; reminders run day by day go once.
"""
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

from sqlalchemy import select

from limonbilling.extensions import db
from limonbilling.models import Notification
from limonbilling.services import outbox, placement, settings
from limonbilling.transports import SmtpConnection

from ..factories import activate, make_customer, make_package
from ..payment_support import AGENT, paid_by_card
from .servers import send_due_in

ROOT = Path(__file__).resolve().parents[2]


def rows(**filters) -> list[Notification]:
    statement = select(Notification).order_by(Notification.id)
    for name, value in filters.items():
        statement = statement.where(getattr(Notification, name) == value)
    return list(db.session.scalars(statement))


def agents_addresses():
    settings.update({"notification_email": "billing@limon.example",
                     "notification_email_cc": ["boss@limon.example", "accounts@limon.example"]}, AGENT)
    db.session.commit()




def test_a_purchase_sends_exactly_the_expected_mails(app, smtp_server):
    agents_addresses()
    customer = make_customer(first_name="Şule", language="tr")
    order = paid_by_card(customer, make_package("credit", credits=10, name="Öncelikli Destek"))
    outbox.send_due()

    purchase = {f"<limonbilling-notification-{row.id}@limon.example>" for row in rows(event="purchase_activated")}
    mails = [mail for mail in smtp_server.received if mail.message["Message-ID"] in purchase]
    assert len(smtp_server.received) == len(mails) + 1  # and the welcome mail of the registration
    assert sorted(tuple(sorted(mail.rcpt_tos)) for mail in mails) == [
        ("accounts@limon.example", "billing@limon.example", "boss@limon.example"),
        (customer.email,),
    ]
    agents_mail = next(mail for mail in mails if "billing@limon.example" in mail.rcpt_tos)
    assert agents_mail.message["To"] == "billing@limon.example"
    assert agents_mail.message["Cc"] == "boss@limon.example, accounts@limon.example"
    assert order.number in agents_mail.subject and customer.email in agents_mail.text()
    customer_mail = smtp_server.to(customer.email)[-1]
    assert "Öncelikli Destek" in customer_mail.subject and "Şule" in customer_mail.text()
    assert order.number in customer_mail.html() and f"/orders/{order.number}/invoice" in customer_mail.html()
    assert customer_mail.message["From"].endswith("<billing@limon.example>")
    assert all(row.state == "sent" and row.attempts == 1 for row in rows())
    assert outbox.send_due().handled == 0  # nothing twice


def test_with_the_mail_server_down_purchases_succeed_and_mails_wait_then_go_once(app, smtp_server, clock):
    agents_addresses()
    smtp_server.stop()
    customers = [make_customer() for _ in range(3)]
    package = make_package("credit")
    bought = [paid_by_card(customer, package) for customer in customers]
    assert all(order.payment_status == "paid" and order.activated for order in bought)

    report = outbox.send_due()
    waiting = rows()
    assert report.retrying == len(waiting) == 3 + 3 + 3  # welcome + purchase to each, one agents' mail each
    assert all(row.state == "pending" and row.attempts == 1 and "Connection refused" in row.last_error
               for row in waiting)

    smtp_server.start()
    assert outbox.send_due().handled == 0  # the retry is not due yet (1 minute)
    clock.advance(minutes=1)
    assert outbox.send_due().sent == 9
    assert outbox.send_due().handled == 0
    ids = Counter(mail.message["Message-ID"] for mail in smtp_server.received)
    assert len(ids) == 9 and set(ids.values()) == {1}


def test_retries_grow_and_end_in_failed_then_an_agent_retries(app, smtp_server, clock):
    settings.update({"notification_max_attempts": 3}, AGENT)
    db.session.commit()
    smtp_server.stop()
    make_customer()
    delays = []
    for _attempt in range(3):
        outbox.send_due()
        row = rows()[0]
        if row.state == "pending":
            delays.append(row.next_attempt_at - clock.now())
            clock.set(row.next_attempt_at)
    assert [delay.total_seconds() for delay in delays] == [60, 120]
    failed = rows()[0]
    assert failed.state == "failed" and failed.attempts == 3 and failed.last_error
    clock.advance(days=1)
    assert outbox.send_due().handled == 0  # failed for good stays failed

    smtp_server.start()
    outbox.retry(failed, AGENT)
    db.session.commit()
    assert outbox.send_due().sent == 1 and len(smtp_server.received) == 1


def test_a_refused_recipient_is_an_error_agents_can_read(app, smtp_server):
    smtp_server.refuse.add("gone@example.com")
    make_customer(email="gone@example.com")
    make_customer(email="here@example.com")
    assert outbox.send_due().sent == 1
    refused = rows(recipient="gone@example.com")[0]
    assert refused.state == "pending" and "gone@example.com (550 5.1.1 Mailbox unavailable)" in refused.last_error


def test_two_senders_racing_deliver_each_mail_once(app, make_app, smtp_server):
    smtp_server.delay = 0.01
    for _ in range(40):
        make_customer()  # each queues a welcome mail
    results = []
    senders = [threading.Thread(target=send_due_in, args=(make_app(), results)) for _ in range(2)]
    for sender in senders:
        sender.start()
    for sender in senders:
        sender.join(60)
    assert sum(results) == 40 and all(results), results  # both took part
    ids = Counter(mail.message["Message-ID"] for mail in smtp_server.received)
    assert len(ids) == 40 and set(ids.values()) == {1}
    assert {row.state for row in rows()} == {"sent"}


def test_worker_processes_racing_deliver_each_mail_once(app, database_url, smtp_server):
    """Two `billing outbox send-due` processes and this test's own sender, at the same time."""
    from limonbilling.clock import SystemClock

    # The worker processes read the system clock; on the tests' frozen clock (months back) this sender's
    # claims would look long expired to them, and they would rightly take them over and send again.
    app.extensions["clock"] = SystemClock()
    smtp_server.delay = 0.01
    for _ in range(30):
        make_customer()
    environment = {**os.environ, "LIMONBILLING_CONFIG": "testing", "TEST_DATABASE_URL": database_url}
    command = [sys.executable, "-m", "flask", "--app", "wsgi", "billing", "outbox", "send-due"]
    workers = [subprocess.Popen(command, cwd=ROOT, env=environment, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True) for _ in range(2)]
    mine = outbox.send_due().sent
    outputs = [worker.communicate(timeout=60) for worker in workers]
    assert all(worker.returncode == 0 for worker in workers), outputs
    theirs = sum(int(out.split(" sent")[0]) for out, _err in outputs)
    assert mine + theirs == 30
    ids = Counter(mail.message["Message-ID"] for mail in smtp_server.received)
    assert len(ids) == 30 and set(ids.values()) == {1}


def test_a_killed_sender_leaves_its_claim_to_another_after_the_claim_time(app, smtp_server, clock):
    make_customer()
    claimed = outbox.claim(10, ["email"])  # a sender claims, then dies before sending
    assert len(claimed) == 1 and [row.state for row in rows()] == ["sending"]
    assert outbox.send_due().handled == 0  # another sender leaves a live claim alone
    clock.advance(seconds=app.config["OUTBOX_CLAIM_SECONDS"] + 1)
    assert outbox.send_due().sent == 1
    assert len(smtp_server.received) == 1


def test_the_web_process_sends_right_after_commit(app, make_app, smtp_server):
    web = make_app(OUTBOX_SEND_AFTER_COMMIT=True)
    client = web.test_client()
    response = client.post("/register", data={
        "account_type": "individual", "first_name": "Deniz", "last_name": "Kaya", "email": "deniz@example.com",
        "phone": "0532 123 45 67", "password": "secret-pass-1", "password_again": "secret-pass-1", "language": "",
    })
    assert response.status_code == 302, response.data
    deadline = time.monotonic() + 15
    while not smtp_server.to("deniz@example.com") and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(smtp_server.to("deniz@example.com")) == 1


def test_a_commit_wakes_the_sender_only_when_its_mail_can_be_delivered(app, make_app, smtp_server, monkeypatch):
    """With no SMTP server configured the mail waits for the worker: the web process's sender is not woken for
    nothing after every commit (it cost each bank callback a settings read and a claim query)."""
    from limonbilling.services.outbox import AfterCommitSender

    woken = []
    monkeypatch.setattr(AfterCommitSender, "wake", lambda self: woken.append(1))
    web = make_app(OUTBOX_SEND_AFTER_COMMIT=True)
    form = {"account_type": "individual", "first_name": "Deniz", "last_name": "Kaya", "phone": "0532 123 45 67",
            "password": "secret-pass-1", "password_again": "secret-pass-1", "language": ""}
    assert web.test_client().post("/register", data={**form, "email": "one@example.com"}).status_code == 302
    assert len(woken) == 1
    settings.update({"smtp_host": ""}, AGENT)
    db.session.commit()
    assert web.test_client().post("/register", data={**form, "email": "two@example.com"}).status_code == 302
    assert len(woken) == 1 and [row.recipient for row in rows()][-1] == "two@example.com"


def test_a_mail_server_down_does_not_fail_or_slow_the_request(app, make_app, smtp_server):
    smtp_server.stop()
    web = make_app(OUTBOX_SEND_AFTER_COMMIT=True)
    started = time.monotonic()
    response = web.test_client().post("/register", data={
        "account_type": "individual", "first_name": "Deniz", "last_name": "Kaya", "email": "deniz@example.com",
        "phone": "0532 123 45 67", "password": "secret-pass-1", "password_again": "secret-pass-1", "language": "",
    })
    assert response.status_code == 302 and time.monotonic() - started < 5
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        attempts = rows()[0].attempts
        db.session.rollback()  # end the read at once: on SQLite it holds the background sender back
        if attempts:
            break
        time.sleep(0.05)
    assert rows()[0].state == "pending" and "Connection refused" in rows()[0].last_error


def test_sms_through_the_http_provider(app, smtp_server, sms_provider, clock):
    settings.update({"sms_agent_phone": "+905551112233"}, AGENT)
    db.session.commit()
    customer = make_customer(phone="0532 765 43 21")
    order = placement.place_agent_order(customer, make_package("credit", credits=5), payment_method="manual",
                                        actor=AGENT)
    db.session.commit()
    outbox.send_due()
    assert [(request["to"], request["sender"]) for request in sms_provider.requests] == [("905327654321", "LIMON")]
    assert order.number in sms_provider.requests[0]["message"]

    sms_provider.status = 500
    second = placement.place_agent_order(make_customer(phone="0533 000 11 22"), make_package("credit"),
                                 payment_method="manual", actor=AGENT)
    db.session.commit()
    outbox.send_due()
    failing = rows(channel="sms", order_number=second.number)[0]
    assert failing.state == "pending" and "HTTP 500" in failing.last_error
    sms_provider.status = 200
    clock.advance(minutes=1)
    outbox.send_due()
    assert len(sms_provider.requests) == 3 and sms_provider.requests[-1]["to"] == "905330001122"


def test_the_reminder_command_on_simulated_days_sends_each_reminder_once(app, smtp_server, clock):
    customer = make_customer(language="tr")
    activate(customer, make_package("subscription", days=45))
    runner = app.test_cli_runner()
    for _day in range(50):
        for command in (["billing", "remind"], ["billing", "remind"], ["billing", "outbox", "send-due"]):
            result = runner.invoke(args=command)
            assert result.exit_code == 0, result.output
        clock.advance(days=1)
    subjects = [mail.subject for mail in smtp_server.to(customer.email)][1:]  # after the welcome
    assert subjects == ["Aboneliğinizin bitmesine 30 gün kaldı", "Aboneliğinizin bitmesine 7 gün kaldı",
                        "Aboneliğiniz yarın bitiyor", "Aboneliğiniz sona erdi"]


def test_the_worker_delivers_until_it_is_stopped(app, database_url, smtp_server):
    environment = {**os.environ, "LIMONBILLING_CONFIG": "testing", "TEST_DATABASE_URL": database_url}
    worker = subprocess.Popen(
        [sys.executable, "-m", "flask", "--app", "wsgi", "billing", "outbox", "run", "--interval", "0.2"],
        cwd=ROOT, env=environment, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        make_customer(email="first@example.com")
        deadline = time.monotonic() + 30
        while not smtp_server.to("first@example.com") and time.monotonic() < deadline:
            time.sleep(0.1)
        make_customer(email="second@example.com")  # queued while the worker idles
        while not smtp_server.to("second@example.com") and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        worker.send_signal(signal.SIGTERM)
        output, errors = worker.communicate(timeout=30)
    assert worker.returncode == 0, errors
    assert len(smtp_server.received) == 2
    assert "Outbox worker stopped." in output


def test_a_sender_slower_than_its_claim_does_not_send_what_another_sender_took_over(app, smtp_server, clock):
    """A sender claims a batch, and its first mail takes longer than the claim (a slow mail server: each send
    may take SMTP_TIMEOUT, a batch of twenty far more than OUTBOX_CLAIM_SECONDS). Another sender rightly takes
    over the rest of the batch and sends it; the first one then must not send those mails a second time."""
    make_customer()
    make_customer()  # two welcome mails
    values = settings.get_all()
    db.session.commit()
    first, second = outbox.claim(20, ["email"])
    report = outbox.SendReport()
    with SmtpConnection(values) as connection:
        outbox.deliver(first, values, connection, report)
        clock.advance(seconds=app.config["OUTBOX_CLAIM_SECONDS"] + 1)  # the first mail took that long
        assert outbox.send_due().sent == 1  # another sender: the second mail's claim ran out, it sends it
        outbox.deliver(second, values, connection, report)
    ids = Counter(mail.message["Message-ID"] for mail in smtp_server.received)
    assert len(ids) == 2 and set(ids.values()) == {1}, ids
    assert [row.state for row in rows()] == ["sent", "sent"] and [row.attempts for row in rows()] == [1, 1]
    assert report.sent == 1
