"""Bank-transfer orders nobody paid: one reminder after `transfer_reminder_days`, cancelled after
`transfer_cancel_days`, each once, to the second; never an order whose customer said the money is sent, nor
one an agent accepted. The races run on PostgreSQL: parallel cron runs, and the customer's activation request
at the instant of the deadline."""
import threading
from datetime import timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.engine import make_url

from limonbilling.extensions import db
from limonbilling.models import AuditEntry, Notification, Order, PromoCode
from limonbilling.services import (
    ValidationFailed,
    audit,
    bank_transfer,
    order_actions,
    placement,
    promo_codes,
    settings,
)
from limonbilling.services import transfer_deadlines as deadlines

from ..factories import make_customer, make_department, make_package, make_transfer_account
from ..payment_support import AGENT, as_customer
from .test_lifecycle_races import THREADS, call, done, no_errors, on_order, race, worker  # noqa: F401 (a fixture)

DAY = timedelta(days=1)
TICK = timedelta(seconds=1)
CRON = audit.Actor.system("transfer-deadline")


@pytest.fixture
def transfer_order(app):
    settings.update({"transfer_reminder_days": 3, "transfer_cancel_days": 7}, AGENT)
    bank_transfer.add_account(bank_name="Limon Bank", account_holder="Limon Ltd", iban="TR330006100519786457841326",
                              currency="TRY", actor=AGENT)
    customer = make_customer()
    make_transfer_account()
    order = placement.place_customer_order(customer, make_package("credit", [make_department()]),
                                payment_method="bank_transfer", actor=as_customer(customer), contracts_accepted=True)
    db.session.commit()
    return order


def mails(order: Order | str, event: str) -> list[Notification]:
    number = order if isinstance(order, str) else order.number
    return list(db.session.scalars(select(Notification).where(Notification.order_number == number,
                                                              Notification.event == event)))


def run_cancellations() -> int:
    cancelled = sum(deadlines.cancel_overdue(order_id, CRON) for order_id in deadlines.overdue_orders())
    db.session.commit()
    return cancelled


def test_one_reminder_from_the_third_day_to_the_second_with_the_accounts(transfer_order, clock):
    placed = transfer_order.created_at
    clock.set(placed + 3 * DAY - TICK)
    assert deadlines.queue_reminders() == 0
    clock.set(placed + 3 * DAY)
    assert deadlines.queue_reminders() == 1
    db.session.commit()
    clock.set(placed + 5 * DAY)
    assert deadlines.queue_reminders() == 0  # once per order
    [reminder] = mails(transfer_order, "transfer_reminder")
    assert "TR33 0006 1005 1978 6457 8413 26" in reminder.body_text and transfer_order.number in reminder.body_text
    assert "cancelled 7 days after it was placed" in reminder.body_text


def test_cancelled_on_the_seventh_day_to_the_second_once_with_a_mail_and_the_promo_use_back(app, clock):
    settings.update({"transfer_reminder_days": 3, "transfer_cancel_days": 7}, AGENT)
    promo_codes.create({"code": "ONCE", "kind": "percent", "value": "10", "max_uses": 1}, AGENT)
    customer = make_customer()
    make_transfer_account()
    order = placement.place_customer_order(customer, make_package("credit", [make_department()]),
                                           payment_method="bank_transfer",
                                actor=as_customer(customer), promo_code="ONCE", contracts_accepted=True)
    db.session.commit()
    clock.set(order.created_at + 7 * DAY - TICK)
    assert run_cancellations() == 0 and order.status == "pending"
    clock.set(order.created_at + 7 * DAY)
    assert run_cancellations() == 1
    assert run_cancellations() == 0
    order = db.session.get(Order, order.id)
    assert (order.status, order.payment_status) == ("cancelled", "unpaid")
    assert db.session.scalar(select(PromoCode.uses).where(PromoCode.code == "ONCE")) == 0
    [notice] = mails(order, "transfer_cancelled")
    assert "within 7 days" in notice.body_text and "Nothing was charged" in notice.body_text
    assert db.session.scalar(select(AuditEntry.actor_label).where(AuditEntry.action == "order.cancel_unpaid")) \
        == "transfer-deadline"


def test_an_order_whose_customer_says_it_is_paid_is_neither_reminded_nor_cancelled(transfer_order, clock):
    bank_transfer.request_activation(transfer_order, email="zeynep@example.com", phone="0532 123 45 67", note="",
                                     actor=as_customer(transfer_order.customer))
    db.session.commit()
    clock.set(transfer_order.created_at + 30 * DAY)
    assert deadlines.queue_reminders() == 0 and run_cancellations() == 0
    assert db.session.get(Order, transfer_order.id).status == "pending"


def test_an_accepted_order_is_not_cancelled(transfer_order, clock):
    order_actions.accept_order(transfer_order, AGENT)
    db.session.commit()
    clock.set(transfer_order.created_at + 30 * DAY)
    assert deadlines.queue_reminders() == 0 and run_cancellations() == 0
    assert db.session.get(Order, transfer_order.id).status == "active"


def test_zero_switches_each_off(transfer_order, clock):
    settings.update({"transfer_reminder_days": 0, "transfer_cancel_days": 0}, AGENT)
    clock.set(transfer_order.created_at + 90 * DAY)
    assert deadlines.queue_reminders() == 0 and run_cancellations() == 0


@pytest.mark.parametrize(("remind", "cancel", "refused"), [(3, 3, True), (3, 2, True), (3, 4, False), (0, 1, False),
                                                           (3, 0, False)])
def test_the_cancellation_comes_after_the_reminder(app, remind, cancel, refused):
    if refused:
        with pytest.raises(ValidationFailed) as failed:
            settings.update({"transfer_reminder_days": remind, "transfer_cancel_days": cancel}, AGENT)
        assert list(failed.value.errors) == ["transfer_cancel_days"]
    else:
        settings.update({"transfer_reminder_days": remind, "transfer_cancel_days": cancel}, AGENT)


def test_the_commands_remind_and_cancel(app, transfer_order, clock):
    runner = app.test_cli_runner()
    clock.set(transfer_order.created_at + 3 * DAY)
    assert "1 reminder(s) queued." in runner.invoke(args=["billing", "remind"]).output
    clock.set(transfer_order.created_at + 7 * DAY)
    assert "1 bank-transfer order(s) past their deadline cancelled," in runner.invoke(args=["billing", "expire"]).output
    assert db.session.get(Order, transfer_order.id).status == "cancelled"


def test_the_settings_page_sets_and_explains_the_deadlines(app):
    from ..factories import make_agent, sign_in

    client = app.test_client()
    sign_in(client, make_agent("settings"))
    page = client.get("/admin/settings/orders").get_data(as_text=True)
    assert "Unpaid bank transfers" in page and 'name="transfer_cancel_days"' in page
    form = {key: value for key, value in settings.get_all().items() if key.startswith("fraud_")}
    form = {key: ("y" if value is True else value) for key, value in form.items() if value is not False}
    answer = client.post("/admin/settings/orders", data={**form, "transfer_reminder_days": "5",
                                                          "transfer_cancel_days": "5"})
    assert "Cancel later than the reminder goes out" in answer.get_data(as_text=True)
    assert settings.get("transfer_cancel_days") == 0
    answer = client.post("/admin/settings/orders", data={**form, "transfer_reminder_days": "5",
                                                          "transfer_cancel_days": "14"}, follow_redirects=True)
    assert "Order settings are saved" in answer.get_data(as_text=True)
    assert (settings.get("transfer_reminder_days"), settings.get("transfer_cancel_days")) == (5, 14)


# --- races (PostgreSQL) ----------------------------------------------------------------------------------------

@pytest.fixture
def postgresql_only(database_url):
    if make_url(database_url).get_backend_name() != "postgresql":
        pytest.skip("SQLite serialises writers and would hide these races; they run on PostgreSQL only")


def test_sixteen_cron_runs_at_once_cancel_once_and_mail_once(
        postgresql_only, worker, transfer_order, clock):  # noqa: F811
    order_id, number = transfer_order.id, transfer_order.number
    clock.set(transfer_order.created_at + 7 * DAY)
    outcomes = race(worker, [call(lambda: deadlines.cancel_overdue(order_id, CRON))] * THREADS)
    no_errors(outcomes)
    assert sorted(o.value for o in done(outcomes)) == [False] * (THREADS - 1) + [True]
    assert db.session.get(Order, order_id).status == "cancelled"
    assert len(mails(number, "transfer_cancelled")) == 1
    cancelled = select(db.func.count(AuditEntry.id)).where(AuditEntry.action == "order.cancel_unpaid")
    assert db.session.scalar(cancelled) == 1


def test_sixteen_reminder_runs_at_once_queue_one_mail(postgresql_only, worker, transfer_order, clock):  # noqa: F811
    number = transfer_order.number
    clock.set(transfer_order.created_at + 3 * DAY)
    no_errors(race(worker, [call(deadlines.queue_reminders)] * THREADS))
    assert len(mails(number, "transfer_reminder")) == 1


def test_the_customer_saying_paid_at_the_deadline_either_keeps_the_order_or_is_told_it_is_cancelled(
        postgresql_only, worker, transfer_order, clock):  # noqa: F811
    """Eight cron runs and eight activation requests at one instant: the order ends either cancelled with no
    request recorded, or pending with the request; never cancelled after the customer was told it waits."""
    order_id = transfer_order.id
    clock.set(transfer_order.created_at + 7 * DAY)
    customer = as_customer(transfer_order.customer)

    def tell(order):
        bank_transfer.request_activation(order, email="zeynep@example.com", phone="0532 123 45 67", note="",
                                         actor=customer)

    half = THREADS // 2
    outcomes = race(worker, [call(lambda: deadlines.cancel_overdue(order_id, CRON))] * half
                    + [on_order(order_id, tell)] * half)
    no_errors(outcomes)
    order = db.session.get(Order, order_id)
    requests = db.session.scalar(select(db.func.count(AuditEntry.id)).where(
        AuditEntry.action == "order.activation_request"))
    if order.status == "cancelled":
        assert order.activation_requested_at is None and requests == 0
        assert {o.value for o in outcomes if o.kind == "refused"} == {"not_awaiting_transfer"}
    else:
        assert order.status == "pending" and order.activation_requested_at is not None and requests == 1
        assert {o.value for o in outcomes if o.kind == "refused"} == {"already_requested"}
        assert not any(o.value is True for o in done(outcomes))


def test_sixteen_activation_requests_at_once_are_taken_once(postgresql_only, worker, transfer_order):  # noqa: F811
    """The customer's "I have paid" from many tabs at one instant: one request is recorded, audited and sent to
    the team; every other one is told it was sent already."""
    settings.update({"notification_email": "team@example.com"}, AGENT)
    order_id, number = transfer_order.id, transfer_order.number
    customer = as_customer(transfer_order.customer)

    def tell(order):
        bank_transfer.request_activation(order, email="zeynep@example.com", phone="0532 123 45 67", note="",
                                         actor=customer)

    outcomes = race(worker, [on_order(order_id, tell)] * THREADS)
    no_errors(outcomes)
    assert len(done(outcomes)) == 1
    assert {o.value for o in outcomes if o.kind == "refused"} == {"already_requested"}
    requests = select(db.func.count(AuditEntry.id)).where(AuditEntry.action == "order.activation_request")
    assert db.session.scalar(requests) == 1
    assert len(mails(number, "activation_requested")) == 1


def test_no_reminder_to_transfer_the_money_goes_after_the_agent_accepted_the_transfer(
        postgresql_only, worker, transfer_order, clock, monkeypatch):  # noqa: F811
    """Forced: the hourly `remind` run found the order waiting for its transfer, and just then an agent accepted
    it (the money had arrived); the run then queued "Order … waits for your bank transfer", with the accounts,
    after the customer was told the package is active: a customer who pays again sends us money for nothing."""
    order_id, number = transfer_order.id, transfer_order.number
    clock.set(transfer_order.created_at + 3 * DAY)
    checked, accepted = threading.Event(), threading.Event()
    real_check = deadlines._waiting_for_transfer

    def check_then_let_the_agent_act(order):
        waiting = real_check(order)
        checked.set()
        accepted.wait(3)  # with the order locked, the agent waits for this run instead
        return waiting

    monkeypatch.setattr(deadlines, "_waiting_for_transfer", check_then_let_the_agent_act)

    def accept(order):
        if not checked.wait(10):
            raise AssertionError("the reminder run never checked the order")
        order_actions.accept_order(order, AGENT)
        db.session.commit()
        accepted.set()

    outcomes = race(worker, [call(deadlines.queue_reminders, "remind"), on_order(order_id, accept, "accept")])

    no_errors(outcomes)
    assert db.session.get(Order, order_id).status == "active"
    told_active = max(row.id for row in mails(number, "purchase_activated"))
    assert all(row.id < told_active for row in mails(number, "transfer_reminder"))
