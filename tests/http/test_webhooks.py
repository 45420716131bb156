"""Webhooks delivered over real HTTP to a receiver on loopback: signed, retried, once, never redirected, never
to a private address in production; and Settings → Webhooks (secret shown once, test event, permissions)."""
import hashlib
import hmac
import json
import re
import threading
import time
from collections import Counter
from pathlib import Path

import pytest
from sqlalchemy import select
from werkzeug.wrappers import Request, Response

from limonbilling.clock import SystemClock
from limonbilling.extensions import db
from limonbilling.models import Notification, Webhook
from limonbilling.services import ValidationFailed, charging, ledger, outbox, webhooks

from ..factories import activate, make_agent, make_customer, make_department, make_package, sign_in
from ..payment_support import AGENT, paid_by_card
from .servers import LiveServer, send_due_in

README = Path(__file__).resolve().parents[2] / "README.md"
START_UNIX = 1772355600  # 2026-03-01 09:00:00 UTC, the tests' clock


class Receiver:
    """A help desk's endpoint: records every request; answers the statuses queued in `answers`, then 200."""

    def __init__(self):
        self.requests: list[dict] = []
        self.answers: list[int] = []
        self.delay = 0.0
        self.url = ""
        self._lock = threading.Lock()

    def __call__(self, environ, start_response):
        request = Request(environ)
        with self._lock:
            self.requests.append({"path": request.path, "headers": dict(request.headers),
                                  "body": request.get_data()})
            status = self.answers.pop(0) if self.answers else 200
        time.sleep(self.delay)
        headers = {"Location": f"{self.url}/elsewhere"} if 300 <= status < 400 else {}
        text = "received" if status == 200 else "x" * 500 if status == 500 else "moved"
        return Response(text, status=status, headers=headers)(environ, start_response)

    def events(self, path: str = "/hook") -> list[dict]:
        return [json.loads(request["body"]) for request in self.requests if request["path"] == path]


@pytest.fixture
def receiver(app):
    endpoint = Receiver()
    with LiveServer(endpoint) as server:
        endpoint.url = server.url
        yield endpoint


def hook(receiver: Receiver, *events: str) -> tuple[Webhook, str]:
    webhook, secret = webhooks.create(f"{receiver.url}/hook", list(events or webhooks.DATA), AGENT)
    db.session.commit()
    return webhook, secret


def deliveries() -> list[Notification]:
    return list(db.session.scalars(select(Notification).where(Notification.channel == "webhook")
                                   .order_by(Notification.id)))


def verify(request: dict, secret: str) -> int:
    """The signature recomputed here from the raw body; returns its time."""
    timestamp, signature = re.fullmatch(r"t=(\d+),v1=([0-9a-f]{64})",
                                        request["headers"]["Limonbilling-Signature"]).groups()
    expected = hmac.new(secret.encode(), timestamp.encode() + b"." + request["body"], hashlib.sha256).hexdigest()
    assert hmac.compare_digest(signature, expected)
    return int(timestamp)


def test_a_card_purchase_reaches_the_receiver_signed_with_its_fields(app, receiver, clock):
    _webhook, secret = hook(receiver)
    customer = make_customer()
    order = paid_by_card(customer, make_package("credit", credits=10, price="150.00"))
    assert outbox.send_due().sent == 2
    assert [event["type"] for event in receiver.events()] == ["order.paid", "entitlement.changed"]
    paid = receiver.requests[0]
    assert paid["headers"]["Content-Type"] == "application/json"
    assert verify(paid, secret) == START_UNIX
    event = json.loads(paid["body"])
    assert event["id"].startswith("evt_") and event["created_at"] == "2026-03-01T09:00:00Z"
    assert event["data"] == {
        "order": {"number": order.number, "status": "pending", "payment_status": "paid", "payment_method": "card",
                  "package_name": order.package_name, "amount_minor": 15000, "refunded_minor": 0,
                  "currency": "TRY"},
        "customer": {"id": customer.id, "email": customer.email}}
    assert all(row.state == "sent" and row.response_code == 200 and row.response_excerpt == "received"
               for row in deliveries())
    assert outbox.send_due().handled == 0

    tampered = dict(paid, body=paid["body"].replace(b"15000", b"1"))
    with pytest.raises(AssertionError):
        verify(tampered, secret)
    with pytest.raises(AssertionError):
        verify(paid, "whsec_another")


def test_the_readme_receiver_accepts_a_delivery_and_refuses_changes_and_old_ones(app, receiver):
    """The receiver README shows, run as it is written, against a real delivery."""
    app.extensions["clock"] = SystemClock()  # the example compares with the real time
    section = README.read_text().split("## Webhooks", 1)[1]
    namespace: dict = {}
    exec(re.search(r"```python\n(.*?)```", section, re.S).group(1), namespace)  # noqa: S102
    webhook, secret = hook(receiver, "credits.low")
    namespace["SECRET"] = secret.encode()
    webhooks.send_test(webhook, AGENT)
    db.session.commit()
    outbox.send_due()
    request = receiver.requests[0]
    header = request["headers"]["Limonbilling-Signature"]
    event = namespace["verified_event"](request["body"], header)
    assert event["type"] == "webhook.test" and event["data"] == {"webhook_id": webhook.id}
    with pytest.raises(ValueError, match="wrong signature"):
        namespace["verified_event"](request["body"] + b" ", header)
    old = int(header[2:12]) - 301
    namespace["SECRET"] = b"whsec_x"
    resigned = webhooks.signature("whsec_x", old, request["body"])
    with pytest.raises(ValueError, match="too old"):
        namespace["verified_event"](request["body"], resigned)
    assert namespace["verified_event"](request["body"], webhooks.signature("whsec_x", old + 2, request["body"]))


def test_a_500_is_retried_a_minute_later_with_the_same_event_signed_anew(app, receiver, clock):
    _webhook, secret = hook(receiver, "entitlement.changed")
    receiver.answers = [500]
    activate(make_customer(), make_package("credit"))
    report = outbox.send_due()
    assert (report.sent, report.retrying) == (0, 1)
    row = deliveries()[0]
    assert (row.state, row.attempts, row.response_code) == ("pending", 1, 500)
    assert row.response_excerpt == "x" * 200 and row.last_error == "HTTP 500: " + "x" * 200
    assert row.next_attempt_at == clock.now().replace(minute=1)

    clock.advance(seconds=59)
    assert outbox.send_due().handled == 0 and len(receiver.requests) == 1
    clock.advance(seconds=1)
    assert outbox.send_due().sent == 1
    first, second = receiver.requests
    assert first["body"] == second["body"]
    assert verify(second, secret) - verify(first, secret) == 60
    db.session.refresh(row)
    assert (row.state, row.attempts, row.response_code, row.response_excerpt, row.last_error) == (
        "sent", 2, 200, "received", None)


def test_an_unreachable_receiver_is_retried_and_its_old_answer_forgotten(app, receiver, clock):
    webhook, _secret = hook(receiver, "credits.low")
    webhooks.send_test(webhook, AGENT)
    receiver.answers = [503]
    db.session.commit()
    outbox.send_due()
    assert deliveries()[0].response_code == 503
    webhook.url = "http://127.0.0.1:9/hook"  # nothing listens on the discard port
    db.session.commit()
    clock.advance(minutes=1)
    outbox.send_due()
    row = deliveries()[0]
    assert row.state == "pending" and row.attempts == 2 and row.response_code is None
    assert "ConnectionError: the receiver is not reachable" in row.last_error


def test_two_senders_racing_deliver_each_event_once(app, make_app, receiver):
    webhook, _secret = hook(receiver, "usage.charged")
    department = make_department(credit_per_request=0)
    customer = make_customer()
    activate(customer, make_package("credit", [department]))
    for number in range(40):
        charging.charge_usage(customer.id, department.id, "ticket", f"T-{number}")
    db.session.commit()
    receiver.delay = 0.01
    results = []
    senders = [threading.Thread(target=send_due_in, args=(make_app(), results)) for _ in range(2)]
    for sender in senders:
        sender.start()
    for sender in senders:
        sender.join(60)
    assert sum(results) == 40 and all(results), results  # both took part
    ids = Counter(event["id"] for event in receiver.events())
    assert len(ids) == 40 and set(ids.values()) == {1}
    assert {row.state for row in deliveries()} == {"sent"}


def test_a_redirect_is_not_followed(app, receiver):
    webhook, _secret = hook(receiver, "credits.low")
    receiver.answers = [302]
    webhooks.send_test(webhook, AGENT)
    db.session.commit()
    assert outbox.send_due().retrying == 1
    assert [request["path"] for request in receiver.requests] == ["/hook"]  # never /elsewhere
    row = deliveries()[0]
    assert row.response_code == 302 and row.last_error == "HTTP 302 (redirects are not followed): moved"


def test_a_private_address_is_refused_in_production_at_saving_and_at_delivery(app, make_app, receiver, clock):
    webhook, _secret = hook(receiver, "entitlement.changed")  # testing allows loopback
    activate(make_customer(), make_package("credit"))
    production = make_app(TESTING=False)
    with production.app_context():
        with pytest.raises(ValidationFailed) as refused:
            webhooks.create(f"{receiver.url}/hook", ["order.paid"], AGENT)
        assert "leads to 127.0.0.1, an address of a private or local network" in refused.value.errors["url"][0]
        db.session.rollback()
        assert outbox.send_due().retrying == 1  # the address is checked again before each delivery
        db.session.remove()
    row = deliveries()[0]
    assert receiver.requests == [] and row.state == "pending" and row.response_code is None
    assert "leads to 127.0.0.1, an address of a private or local network" in row.last_error
    db.session.rollback()  # end this read: on SQLite it would hold the other app's sender back

    clock.advance(minutes=1)
    with make_app(TESTING=False, WEBHOOKS_ALLOW_PRIVATE=True).app_context():
        assert outbox.send_due().sent == 1
        db.session.remove()
    assert len(receiver.events()) == 1
    assert db.session.scalar(select(Webhook.id)) == webhook.id  # nothing was saved in production


def test_a_rolled_back_change_sends_nothing(app, receiver):
    hook(receiver, "credits.low", "entitlement.changed")
    customer = make_customer()
    activate(customer, make_package("credit", credits=10))
    outbox.send_due()
    ledger.adjust_credits(customer, -8, "Correction", AGENT)  # 10 → 2: below the threshold of 5
    db.session.rollback()
    assert outbox.send_due().handled == 0
    assert [event["type"] for event in receiver.events()] == ["entitlement.changed"]
    ledger.adjust_credits(customer, -8, "Correction", AGENT)
    db.session.commit()
    outbox.send_due()
    assert [event["type"] for event in receiver.events()] == ["entitlement.changed", "credits.low"]


# --- Settings → Webhooks -----------------------------------------------------------------------------

def test_the_secret_is_shown_once_and_the_test_event_button_delivers(app, receiver):
    client = app.test_client()
    sign_in(client, make_agent("settings"))
    response = client.post("/admin/settings/webhooks", data={"url": f"{receiver.url}/hook",
                                                             "events": ["order.paid", "credits.low"]})
    page = response.get_data(as_text=True)
    secret = re.search(r'id="new-secret" readonly value="(whsec_[0-9a-f]{48})"', page).group(1)
    assert response.status_code == 200 and response.headers["Cache-Control"] == "no-store"
    webhook = db.session.scalars(select(Webhook)).one()
    assert webhook.events == ["order.paid", "credits.low"] and webhook.active
    assert secret not in client.get("/admin/settings/webhooks").get_data(as_text=True)
    detail = f"/admin/settings/webhooks/{webhook.id}"
    assert secret not in client.get(detail).get_data(as_text=True)

    response = client.post(f"{detail}/test", follow_redirects=True)
    assert "A test event is on its way" in response.get_data(as_text=True)
    outbox.send_due()
    assert verify(receiver.requests[0], secret) and receiver.events()[0]["type"] == "webhook.test"
    page = client.get(detail).get_data(as_text=True)
    assert "webhook.test" in page and "HTTP 200" in page and "received" in page

    response = client.post(detail, data={"events": ["usage.charged"]}, follow_redirects=True)
    assert "The webhook is saved." in response.get_data(as_text=True)
    db.session.refresh(webhook)
    assert webhook.events == ["usage.charged"] and not webhook.active
    response = client.post(detail, data={"events": [], "active": "y"})
    assert "Choose at least one event." in response.get_data(as_text=True)

    client.post(f"{detail}/delete")
    assert db.session.scalars(select(Webhook)).all() == [] and deliveries() == []


def test_a_refused_address_is_said_next_to_the_field(app):
    client = app.test_client()
    sign_in(client, make_agent("settings"))
    page = client.post("/admin/settings/webhooks", data={"url": "http://10.0.0.5/hook", "events": ["order.paid"]}
                       ).get_data(as_text=True)
    assert "leads to 10.0.0.5, an address of a private or local network" in page and "new-secret" not in page
    assert db.session.scalars(select(Webhook)).all() == []


@pytest.mark.parametrize("permissions", [(), ("billing", "customers", "support")])
def test_the_pages_need_the_settings_permission(app, receiver, permissions):
    webhook, _secret = hook(receiver, "order.paid")
    client = app.test_client()
    sign_in(client, make_agent(*permissions))
    base = f"/admin/settings/webhooks/{webhook.id}"
    for method, path in (("GET", "/admin/settings/webhooks"), ("POST", "/admin/settings/webhooks"),
                         ("GET", base), ("POST", base), ("POST", f"{base}/test"), ("POST", f"{base}/delete")):
        assert client.open(path, method=method, data={"url": f"{receiver.url}/x", "events": ["order.paid"]}
                           ).status_code == 403, (method, path)
    db.session.expire_all()
    assert [row.id for row in db.session.scalars(select(Webhook))] == [webhook.id] and deliveries() == []
