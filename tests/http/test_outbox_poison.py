"""One message that cannot be built or sent fails alone (issue 15, item 4), through the real loopback SMTP server.

A row the mail classes refuse, or a row whose retry would be computed at a
huge attempt count, gets its error recorded and is shown to agents; the
other messages go out and the `billing outbox run` worker keeps running.
A name with CR/LF in a header is folded onto one line and its mail goes out.
"""
import os
import signal
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

from markupsafe import escape
from sqlalchemy import select

from limonbilling.extensions import db
from limonbilling.models import Notification, Setting
from limonbilling.services import notifications, outbox, placement, settings

from ..factories import make_agent, make_customer, make_package, sign_in
from ..payment_support import AGENT

ROOT = Path(__file__).resolve().parents[2]
INJECTED = "customer@example.com\r\nBcc: attacker@evil.example"


def queue_raw(recipient: str, attempts: int = 0, key: str = "poison") -> Notification:
    """A row as a sender finds it (written straight to the outbox, as old or imported data could be)."""
    from limonbilling.clock import now

    row = Notification(event="welcome", event_key=key, channel="email", recipient=recipient, cc=[], language="en",
                       subject="Welcome", body_text="Hello", state="pending", attempts=attempts,
                       next_attempt_at=now(), created_at=now())
    db.session.add(row)
    db.session.commit()
    return row


def reread(row_id: int) -> Notification:
    row = db.session.get(Notification, row_id, populate_existing=True)
    db.session.expunge(row)  # keep what was read: touching an expired row would read again, and hold on
    db.session.rollback()  # end the read at once: on SQLite it would hold the worker back
    return row


def start_worker(database_url: str, stderr=subprocess.PIPE) -> subprocess.Popen:
    environment = {**os.environ, "LIMONBILLING_CONFIG": "testing", "TEST_DATABASE_URL": database_url}
    return subprocess.Popen(
        [sys.executable, "-m", "flask", "--app", "wsgi", "billing", "outbox", "run", "--interval", "0.2"],
        cwd=ROOT, env=environment, stdout=subprocess.PIPE, stderr=stderr, text=True)


def test_a_poisoned_row_among_twenty_fails_alone_and_the_worker_runs_on(app, database_url, smtp_server, client):
    poisoned = queue_raw(INJECTED).id  # first in line, so it is in the worker's first batch
    good = [make_customer(email=f"good{number}@example.com").email for number in range(20)]  # a welcome mail each
    db.session.close()  # reading the last address began a transaction: on SQLite the worker would wait for it
    worker = start_worker(database_url)
    try:
        deadline = time.monotonic() + 60
        while (len(smtp_server.received) < 20 or not reread(poisoned).attempts) and worker.poll() is None \
                and time.monotonic() < deadline:
            time.sleep(0.1)
        assert worker.poll() is None, "the worker stopped"
        make_customer(email="later@example.com")  # queued after the poisoned row was met
        while not smtp_server.to("later@example.com") and time.monotonic() < deadline:
            time.sleep(0.1)
        assert worker.poll() is None, "the worker stopped"
    finally:
        worker.send_signal(signal.SIGTERM)
        _output, errors = worker.communicate(timeout=30)
    assert worker.returncode == 0, errors
    assert sorted(address for mail in smtp_server.received for address in mail.rcpt_tos) == sorted(
        [*good, "later@example.com"])
    row = reread(poisoned)
    assert row.state == "pending" and row.attempts == 1 and "CR or LF" in row.last_error
    assert f"notification {poisoned} cannot be sent" in errors  # logged with its traceback

    sign_in(client, make_agent("settings"))
    listed = client.get("/admin/notifications?state=pending").get_data(as_text=True)
    detail = client.get(f"/admin/notifications/{poisoned}").get_data(as_text=True)
    assert str(escape(row.last_error)) in listed and str(escape(row.last_error)) in detail


def test_the_worker_outlives_a_failing_delivery_run(app, database_url, smtp_server, tmp_path):
    """A run that fails as a whole (here a stored setting that is not JSON) is logged; the next runs go on."""
    stored = db.session.get(Setting, "smtp_host")
    working, stored.value = stored.value, "{broken"
    db.session.commit()
    make_customer(email="waiting@example.com")
    log = tmp_path / "worker.log"
    with log.open("w") as stderr:
        worker = start_worker(database_url, stderr)
        try:
            deadline = time.monotonic() + 60
            while log.read_text().count("outbox: delivery run failed") < 2 and worker.poll() is None \
                    and time.monotonic() < deadline:
                time.sleep(0.1)
            assert worker.poll() is None, "the worker stopped"
            db.session.get(Setting, "smtp_host").value = working
            db.session.commit()
            while not smtp_server.to("waiting@example.com") and time.monotonic() < deadline:
                time.sleep(0.1)
        finally:
            worker.send_signal(signal.SIGTERM)
            worker.communicate(timeout=30)
    errors = log.read_text()
    assert worker.returncode == 0, errors
    assert len(smtp_server.to("waiting@example.com")) == 1
    assert errors.count("outbox: delivery run failed") >= 2 and "JSONDecodeError" in errors


def test_a_customer_name_with_cr_lf_is_folded_and_the_mail_goes_out(app, smtp_server):
    settings.update({"notification_email": "billing@limon.example", "smtp_from_name": "Limon\r\nBcc: x@evil.example"},
                    AGENT)
    customer = make_customer(first_name="Evil\r\nBcc: attacker@evil.example\r\n", last_name="Name")
    order = placement.place_agent_order(customer, make_package("credit"), payment_method="manual", actor=AGENT)
    notifications.activation_requested(order)
    db.session.commit()
    report = outbox.send_due()
    assert report.failed == report.retrying == 0 and report.sent >= 2
    [mail] = [mail.message for mail in smtp_server.to("billing@limon.example")
              if "Activation request" in mail.subject]
    subject = f"Activation request: order {order.number} by Evil Bcc: attacker@evil.example Name"
    assert mail["Subject"].strip() == subject  # strip(): the library folds a long subject onto its second line
    assert mail["From"] == '"Limon Bcc: x@evil.example" <billing@limon.example>'
    assert mail["Bcc"] is None and {address for mail in smtp_server.received for address in mail.rcpt_tos} == {
        customer.email, "billing@limon.example"}


def test_huge_attempt_counts_retry_or_fail_without_overflow(app, smtp_server, clock):
    settings.update({"notification_max_attempts": 50}, AGENT)
    db.session.commit()
    smtp_server.refuse.update({"retry@example.com", "gone@example.com"})
    retrying = queue_raw("retry@example.com", attempts=41, key="retry").id  # this failure is its 42nd attempt
    gone = queue_raw("gone@example.com", attempts=1000, key="gone").id
    make_customer(email="fine@example.com")
    report = outbox.send_due()
    assert (report.sent, report.retrying, report.failed) == (1, 1, 1)
    row = reread(retrying)
    assert row.state == "pending" and row.attempts == 42 and row.next_attempt_at == clock.now() + timedelta(hours=6)
    assert "550 5.1.1" in row.last_error
    row = reread(gone)
    assert row.state == "failed" and row.attempts == 1001 and "550 5.1.1" in row.last_error
    assert {row.state for row in db.session.scalars(select(Notification))} == {"sent", "pending", "failed"}
