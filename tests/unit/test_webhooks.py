"""Webhooks without the network: which events queue what, in which transaction, and which addresses may be
called (the deliveries over real HTTP are tests/http/test_webhooks.py)."""
import hashlib
import hmac
import json

import pytest
from sqlalchemy import select

from limonbilling.extensions import db
from limonbilling.models import Notification, RefundDestination, Webhook, WebhookEvent
from limonbilling.services import ValidationFailed, charging, entitlements, ledger, placement, refunds, webhooks

from ..factories import activate, make_customer, make_department, make_package, make_transfer_account
from ..payment_support import AGENT

ALL = list(webhooks.DATA)


def hook(*events: str, url: str = "http://127.0.0.1:9/hook") -> Webhook:
    webhook, _secret = webhooks.create(url, list(events or ALL), AGENT)
    db.session.commit()
    return webhook


def deliveries(webhook: Webhook | None = None) -> list[Notification]:
    statement = select(Notification).where(Notification.channel == "webhook").order_by(Notification.id)
    if webhook is not None:
        statement = statement.where(Notification.webhook_id == webhook.id)
    return list(db.session.scalars(statement))


def events(webhook: Webhook | None = None) -> list[dict]:
    return [json.loads(row.body_text) for row in deliveries(webhook)]


def of_type(kind: str) -> list[dict]:
    return [event for event in events() if event["type"] == kind]


def test_every_event_has_its_data_and_its_choice_on_the_page():
    from limonbilling.admin.webhooks import WebhookForm

    on_the_page = tuple(choice.value for choice in WebhookForm.events.kwargs["choices"])
    assert tuple(webhooks.DATA) == tuple(WebhookEvent) == on_the_page


def test_the_signature_is_hmac_sha256_of_time_dot_body():
    body = b'{"id":"evt_1"}'
    expected = hmac.new(b"whsec_abc", b"1767225600." + body, hashlib.sha256).hexdigest()
    assert webhooks.signature("whsec_abc", 1767225600, body) == f"t=1767225600,v1={expected}"


def test_a_manual_order_tells_paid_and_status_and_entitlement_once_each(app, clock):
    hook()
    customer = make_customer()
    order = placement.place_agent_order(customer, make_package("credit", credits=10, price="150.00"),
                                payment_method="manual", actor=AGENT)
    db.session.commit()
    assert sorted(event["type"] for event in events()) == ["entitlement.changed", "order.paid",
                                                            "order.status_changed"]
    paid = of_type("order.paid")[0]
    assert paid["id"].startswith("evt_") and len(paid["id"]) == 28
    assert paid["created_at"] == "2026-03-01T09:00:00Z"
    assert paid["data"]["customer"] == {"id": customer.id, "email": customer.email}
    assert paid["data"]["order"] | {"status": None} == {
        "number": order.number, "status": None, "payment_status": "paid", "payment_method": "manual",
        "package_name": order.package_name, "amount_minor": 15000, "refunded_minor": 0, "currency": "TRY"}
    moved = of_type("order.status_changed")[0]["data"]
    assert (moved["previous_status"], moved["order"]["status"]) == ("pending", "active")
    granted = of_type("entitlement.changed")[0]["data"]
    assert granted["change"] == "granted" and granted["entitlement"] == {
        "package_type": "credit", "credits": 10, "subscription_expires_at": None}
    row = deliveries()[0]
    assert (row.state, row.recipient, row.customer_id) == ("pending", "http://127.0.0.1:9/hook", customer.id)
    assert {row.subject: row.order_number for row in deliveries()} == {
        "order.paid": order.number, "order.status_changed": order.number, "entitlement.changed": None}


def test_cancel_and_refund_to_the_balance(app):
    hook("order.refunded", "order.status_changed", "entitlement.changed")
    order = placement.place_agent_order(make_customer(), make_package("subscription", days=30, price="100.00"),
                                payment_method="manual", actor=AGENT)
    db.session.commit()
    before = len(deliveries())
    refunds.start(order, to=RefundDestination.BALANCE, actor=AGENT, amount_minor=4000)
    db.session.commit()
    partial = of_type("order.refunded")
    assert len(deliveries()) == before + 1 and len(partial) == 1
    assert partial[0]["data"]["refund"] | {"id": None} == {"id": None, "amount_minor": 4000, "currency": "TRY",
                                                         "to": "balance", "automatic": False}
    assert partial[0]["data"]["order"]["payment_status"] == "partly_refunded"
    assert partial[0]["data"]["order"]["refunded_minor"] == 4000

    refunds.start(order, to=RefundDestination.BALANCE, actor=AGENT)  # the rest: the order is cancelled
    db.session.commit()
    assert of_type("order.refunded")[-1]["data"]["order"]["refunded_minor"] == 10000
    assert of_type("order.status_changed")[-1]["data"]["order"]["status"] == "cancelled"
    revoked = of_type("entitlement.changed")[-1]["data"]
    assert revoked["change"] == "revoked" and revoked["entitlement"]["subscription_expires_at"] is None


@pytest.mark.parametrize("case", ["half_3d", "after_cancel"])
def test_money_the_bank_took_that_we_refuse_tells_no_one_the_order_is_paid(gateway, case):
    """A half 3-D approval, or an approval for an order cancelled meanwhile, goes back to the card by itself: a
    help desk hearing order.paid would give the customer what they never paid for."""
    from limonbilling.services import card_payments, order_actions

    from ..payment_support import BANK, bank_answer, card_order

    hook("order.paid")
    customer = make_customer()
    order, attempt = card_order(customer, make_package("credit", credits=10, price="100.00"))
    if case == "after_cancel":
        order_actions.cancel_order(order, AGENT)
    db.session.commit()
    card_payments.apply_card_callback(gateway, bank_answer(attempt, **({"mdStatus": "2"} if case == "half_3d"
                                                                       else {})), BANK)
    db.session.commit()
    assert [refund.automatic for refund in order.refunds] == [True] and not order.activated
    assert (of_type("order.paid"), order.paid_at) == ([], None)


def test_a_return_of_money_we_refused_says_it_is_one(gateway):
    """The store refused a half 3-D approval and the bank took it back: order.refunded goes out, and says the
    money was returned by itself, never a payment for the order, so a help desk revokes nothing for it."""
    from limonbilling.payments.base import RefundAnswer, SaleStatus
    from limonbilling.services import card_payments

    from ..payment_support import BANK, bank_answer, card_order

    class Bank:
        def sale_status(self, oid):
            return SaleStatus(state=None)

        def refund(self, oid, amount_minor, currency, *, operation, whole):
            return RefundAnswer(succeeded=True, operation=operation, return_code="00", transaction_id="R1")

    hook("order.refunded")
    order, attempt = card_order(make_customer(), make_package("credit", credits=10, price="100.00"))
    card_payments.apply_card_callback(gateway, bank_answer(attempt, mdStatus="2"), BANK)
    db.session.commit()
    assert refunds.send(order, Bank(), BANK) == "refunded"
    db.session.commit()
    [returned] = of_type("order.refunded")
    assert returned["data"]["refund"] | {"id": None} == {
        "id": None, "amount_minor": attempt.amount_minor, "currency": "TRY", "to": "card", "automatic": True}


def test_a_subscription_grant_says_when_it_ends(app, clock):
    hook("entitlement.changed")
    activate(make_customer(), make_package("subscription", days=30))
    assert of_type("entitlement.changed")[0]["data"]["entitlement"] == {
        "package_type": "subscription", "credits": 0, "subscription_expires_at": "2026-03-31T09:00:00Z"}


def test_usage_charged_once_per_reference_and_credits_low_when_crossing_the_threshold(app):
    hook("usage.charged", "credits.low")
    department = make_department(credit_per_request=2)
    customer = make_customer()
    activate(customer, make_package("credit", [department], credits=10))
    for reference in ("T-1", "T-2", "T-2"):  # 10 → 8 → 6, the repeat charges nothing
        charging.charge_usage(customer.id, department.id, "ticket", reference)
    db.session.commit()
    charged = of_type("usage.charged")
    assert [event["data"]["usage"]["reference"] for event in charged] == ["T-1", "T-2"]
    assert charged[-1]["data"]["usage"] | {"id": None} == {
        "id": None, "kind": "ticket", "reference": "T-2", "department_id": department.id, "cost": 2,
        "covered_by": "credits"}
    assert charged[-1]["data"]["credits"] == 6 and of_type("credits.low") == []  # 6 is not below 5

    charging.charge_usage(customer.id, department.id, "ticket", "T-3")  # 6 → 4: below 5
    charging.charge_usage(customer.id, department.id, "ticket", "T-4")  # 4 → 2: already below
    db.session.commit()
    low = of_type("credits.low")
    assert len(low) == 1 and low[0]["data"] == {"customer": {"id": customer.id, "email": customer.email},
                                                "credits": 4, "threshold": 5}

    ledger.adjust_credits(customer, 10, "Goodwill", AGENT)  # 2 → 12, then an agent takes 8: 12 → 4
    ledger.adjust_credits(customer, -8, "Correction", AGENT)
    db.session.commit()
    assert [event["data"]["credits"] for event in of_type("credits.low")] == [4, 4]


def test_only_active_endpoints_listening_to_the_event_hear_it_with_one_event_id(app):
    first, second = hook("entitlement.changed"), hook("entitlement.changed", url="http://127.0.0.1:9/other")
    deaf, off = hook("order.paid"), hook("entitlement.changed")
    webhooks.update(off, ["entitlement.changed"], False, AGENT)
    db.session.commit()
    activate(make_customer(), make_package("credit"))
    assert events(deaf) == events(off) == []
    assert len(events(first)) == len(events(second)) == 1
    assert events(first)[0] == events(second)[0]
    assert deliveries(first)[0].event_key != deliveries(second)[0].event_key


def test_without_endpoints_nothing_is_queued(app):
    activate(make_customer(), make_package("credit"))
    assert webhooks.emit("credits.low") == 0 and deliveries() == []


def test_a_rolled_back_change_queues_nothing(app):
    hook("entitlement.changed")
    customer, package = make_customer(), make_package("credit")
    entitlements.activate_package(customer, package, source="test", actor=AGENT)
    db.session.rollback()
    assert deliveries() == []
    activate(customer, package)
    assert len(deliveries()) == 1


def test_a_process_hears_of_every_change_of_the_endpoints_at_its_next_event(app):
    """Each process keeps the active endpoints while their version, read with the settings, stays the same;
    every change through the service gives them a new one (another gunicorn worker reads it the same way)."""
    customer = make_customer()

    def heard() -> int:
        count = webhooks.emit("entitlement.changed", customer=customer, change="granted")
        db.session.rollback()
        return count

    assert heard() == 0
    endpoint = hook("entitlement.changed")
    assert heard() == 1
    webhooks.update(endpoint, ["order.paid"], True, AGENT)
    db.session.commit()
    assert heard() == 0
    webhooks.update(endpoint, ["entitlement.changed"], False, AGENT)
    db.session.commit()
    assert heard() == 0
    webhooks.update(endpoint, ["entitlement.changed"], True, AGENT)
    db.session.commit()
    assert heard() == 1
    webhooks.remove(endpoint, AGENT)
    db.session.commit()
    assert heard() == 0


def test_what_a_changing_or_rolled_back_transaction_saw_of_the_endpoints_is_not_kept(app):
    customer = make_customer()
    webhooks.create("http://127.0.0.1:9/hook", ["entitlement.changed"], AGENT)
    assert webhooks.emit("entitlement.changed", customer=customer, change="granted") == 1
    db.session.rollback()
    assert webhooks.emit("entitlement.changed", customer=customer, change="granted") == 0
    endpoint = hook("entitlement.changed")
    webhooks.update(endpoint, ["entitlement.changed"], False, AGENT)
    assert webhooks.emit("entitlement.changed", customer=customer, change="granted") == 0
    db.session.commit()
    assert webhooks.emit("entitlement.changed", customer=customer, change="granted") == 0
    webhooks.update(endpoint, ["entitlement.changed"], True, AGENT)
    db.session.commit()
    webhooks.remove(endpoint, AGENT)
    assert webhooks.emit("entitlement.changed", customer=customer, change="granted") == 0
    db.session.commit()
    assert deliveries() == []


def test_deleting_an_endpoint_drops_its_waiting_deliveries(app):
    kept, dropped = hook(), hook()
    activate(make_customer(), make_package("credit"))
    webhooks.remove(dropped, AGENT)
    db.session.commit()
    assert deliveries(kept) and deliveries() == deliveries(kept)
    assert db.session.get(Webhook, dropped.id) is None


def test_a_new_endpoint_needs_an_event_and_gets_a_secret(app):
    with pytest.raises(ValidationFailed) as refused:
        webhooks.create("http://127.0.0.1/hook", ["no.such_event"], AGENT)
    assert list(refused.value.errors) == ["events"]
    webhook, secret = webhooks.create(" http://127.0.0.1/hook ", ["credits.low", "order.paid"], AGENT)
    assert webhook.url == "http://127.0.0.1/hook" and webhook.events == ["order.paid", "credits.low"]
    assert secret.startswith("whsec_") and len(secret) == 54 and webhook.secret == secret
    assert webhooks.create("http://127.0.0.1/hook", ["order.paid"], AGENT)[1] != secret


@pytest.mark.parametrize(("url", "testing", "production"), [
    ("http://127.0.0.1:8000/hook", None, "127.0.0.1"),
    ("http://localhost/hook", None, "127.0.0.1"),
    ("http://[::1]/hook", None, "::1"),
    ("http://[::ffff:127.0.0.1]/hook", None, "::ffff:127.0.0.1"),
    ("http://10.0.0.5/hook", "10.0.0.5", "10.0.0.5"),
    ("http://172.16.0.1/hook", "172.16.0.1", "172.16.0.1"),
    ("http://192.168.1.1/hook", "192.168.1.1", "192.168.1.1"),
    ("http://169.254.169.254/latest/meta-data", "169.254.169.254", "169.254.169.254"),
    ("http://[fe80::1]/hook", "fe80::1", "fe80::1"),
    ("http://[fd00::1]/hook", "fd00::1", "fd00::1"),
    ("http://100.64.0.1/hook", "100.64.0.1", "100.64.0.1"),
    ("http://224.0.0.1/hook", "224.0.0.1", "224.0.0.1"),
    ("http://240.0.0.1/hook", "240.0.0.1", "240.0.0.1"),
    ("http://0.0.0.0/hook", "0.0.0.0", "0.0.0.0"),
    ("https://8.8.8.8/hook", None, None),
    ("http://[2001:4860:4860::8888]:8443/hook", None, None),
])
def test_addresses_inside_our_networks_are_refused(app, make_app, url, testing, production):
    """Testing (like development) allows loopback only; production refuses every non-public address."""
    refusal = webhooks.url_refusal(url)
    assert (refusal is None) if testing is None else (f"leads to {testing}," in refusal)
    db.session.rollback()  # the message's language was read: on SQLite that read would hold the other apps back
    with make_app(TESTING=False).app_context():
        refusal = webhooks.url_refusal(url)
        assert (refusal is None) if production is None else (f"leads to {production}," in refusal)
    with make_app(TESTING=False, WEBHOOKS_ALLOW_PRIVATE=True).app_context():
        assert webhooks.url_refusal(url) is None


@pytest.mark.parametrize("url", ["ftp://8.8.8.8/hook", "file:///etc/passwd", "8.8.8.8/hook", "http:///hook",
                                 "http://8.8.8.8:99999/hook", "javascript:alert(1)", ""])
def test_only_http_and_https_addresses_with_a_host(app, url):
    assert "https://" in webhooks.url_refusal(url)


def test_an_unknown_host_is_refused(app):
    assert "cannot be found" in webhooks.url_refusal("https://no-such-host.invalid/hook")


def test_the_url_length_edge(app):
    base = "https://8.8.8.8/"
    webhooks.create(base + "a" * (webhooks.MAX_URL_LENGTH - len(base)), ["order.paid"], AGENT)
    with pytest.raises(ValidationFailed) as refused:
        webhooks.create(base + "a" * (webhooks.MAX_URL_LENGTH - len(base) + 1), ["order.paid"], AGENT)
    assert list(refused.value.errors) == ["url"]


def test_the_outbox_pages_name_a_webhook_delivery_as_one(app):
    """Webhook rows share the outbox with e-mail and SMS: the pages called every non-e-mail row "SMS"."""
    from ..factories import make_agent, sign_in

    webhooks.send_test(hook("order.paid"), AGENT)
    db.session.commit()
    [row] = deliveries()
    client = app.test_client()
    sign_in(client, make_agent("settings"))
    detail = client.get(f"/admin/notifications/{row.id}").data.decode()
    assert "(Webhook, " in detail and "(SMS, " not in detail
    listing = client.get("/admin/notifications?channel=webhook").data.decode()
    assert '<option value="webhook" selected>Webhook</option>' in listing and f"Webhook {row.recipient}" in listing


def test_paid_again_after_a_full_refund_the_order_says_when_and_tells_it_once_more(app, clock):
    """A transfer accepted, all of it refunded to the balance (the order is cancelled), Back to Pending, and a new
    transfer accepted ten days later: order.paid goes out again, for new money, and the order's "paid at" (on its
    page) is that moment, not the first payment's."""
    from limonbilling.services import order_actions

    hook("order.paid")
    make_transfer_account()
    order = placement.place_agent_order(make_customer(), make_package("credit", credits=10, price="100.00"),
                                        payment_method="bank_transfer", actor=AGENT)
    order_actions.accept_order(order, AGENT)
    db.session.commit()
    refunds.start(order, to=RefundDestination.BALANCE, actor=AGENT)
    db.session.commit()
    assert (order.status, order.payment_status) == ("cancelled", "refunded")
    clock.advance(days=10)
    order_actions.back_to_pending(order, AGENT)
    order_actions.accept_order(order, AGENT)
    db.session.commit()
    paid = of_type("order.paid")
    assert [event["created_at"] for event in paid] == ["2026-03-01T09:00:00Z", "2026-03-11T09:00:00Z"]
    assert order.paid_at == clock.now()
