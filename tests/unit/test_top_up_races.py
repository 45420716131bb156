"""Races on a balance top-up (issue 16), on PostgreSQL with 16 callers at the same instant (the harness of
test_lifecycle_races): every action that moves its money has one effect on the account balance."""
import threading
import time

import pytest
from sqlalchemy import select

from limonbilling.extensions import db
from limonbilling.models import BalanceEntry, Order, RefundDestination
from limonbilling.services import bank_transfer, card_payments, order_actions, placement, refunds

from ..factories import make_customer, make_package
from ..payment_support import AGENT, BANK, as_customer, bank_answer
from . import test_lifecycle_races as races
from .test_lifecycle_races import (
    HALF,
    THREADS,
    audits,
    balance_of,
    call,
    done,
    exactly_one,
    no_errors,
    on_order,
    race,
    refusals,
)

# The harness's fixtures: PostgreSQL only, the callers' app, a department.
_postgresql_only, worker, support = races._postgresql_only, races.worker, races.support

IBAN = "TR330006100519786457841326"


def _entries(customer_id: int) -> list[tuple[str, int]]:
    return [(e.kind, e.amount_minor) for e in db.session.scalars(
        select(BalanceEntry).where(BalanceEntry.customer_id == customer_id).order_by(BalanceEntry.id))]


def _card_top_up(amount="250,00"):
    customer = make_customer()
    order = placement.place_top_up(customer, amount, payment_method="card", actor=as_customer(customer))
    attempt = card_payments.start_card_payment(order, "nestpay")
    db.session.commit()
    return order.id, customer.id, attempt


def test_sixteen_copies_of_a_top_up_approval_credit_the_balance_once(worker, gateway):
    order_id, customer_id, attempt = _card_top_up()
    approval = bank_answer(attempt)
    outcomes = race(worker, [call(lambda: card_payments.apply_card_callback(gateway, approval, BANK))] * THREADS)

    no_errors(outcomes)
    assert len(done(outcomes)) == THREADS  # a replay is not refused, it changes nothing
    order = db.session.get(Order, order_id)
    assert (order.status, order.payment_status, order.refunds) == ("active", "paid", [])
    assert _entries(customer_id) == [("top_up", 25_000)] and balance_of(customer_id) == 25_000
    assert audits("balance.top_up", order_id) == 1 and audits("order.paid", order_id) == 1


def test_sixteen_accepts_of_a_transfer_top_up_credit_it_once(worker, support):
    bank_transfer.add_account(bank_name="Ziraat", account_holder="Limon", iban=IBAN, currency="TRY", actor=AGENT)
    customer = make_customer()
    order = placement.place_top_up(customer, "1000", payment_method="bank_transfer", actor=as_customer(customer))
    db.session.commit()
    order_id, customer_id = order.id, customer.id
    outcomes = race(worker, [on_order(order_id, lambda o: order_actions.accept_order(o, AGENT))] * THREADS)

    exactly_one(outcomes, "already_active")
    order = db.session.get(Order, order_id)
    assert [(p.method, p.amount_minor) for p in order.payments] == [("bank_transfer", 100_000)]
    assert _entries(customer_id) == [("top_up", 100_000)] and balance_of(customer_id) == 100_000


def test_sixteen_refunds_of_a_top_up_take_it_from_the_balance_once(worker, gateway):
    order_id, customer_id, attempt = _card_top_up()
    card_payments.apply_card_callback(gateway, bank_answer(attempt), BANK)
    db.session.commit()
    outcomes = race(worker, [on_order(
        order_id, lambda o: refunds.start(o, to=RefundDestination.CARD, actor=AGENT))] * THREADS)

    exactly_one(outcomes, "nothing_to_refund", "refund_in_flight")
    order = db.session.get(Order, order_id)
    [refund] = order.refunds
    assert (refund.amount_minor, refund.destination, refund.state) == (25_000, "card", "created")
    assert _entries(customer_id) == [("top_up", 25_000), ("top_up_back", -25_000)] and balance_of(customer_id) == 0


def test_refunds_of_a_top_up_racing_purchases_from_the_balance_never_take_more_than_is_there(worker, gateway,
                                                                                            support):
    """Half the callers refund the whole top-up to the card, half buy a package with the balance: either the
    refund wins (and every purchase is refused) or a purchase does (and the refund is refused as spent)."""
    order_id, customer_id, attempt = _card_top_up("100")
    card_payments.apply_card_callback(gateway, bank_answer(attempt), BANK)
    package = make_package("credit", [support], credits=10, price="100.00")
    from limonbilling.services import settings
    settings.update({"vat_rate_percent": 0}, AGENT)
    db.session.commit()
    package_id = package.id

    def buy():
        from limonbilling.models import Customer, Package
        customer, bought = db.session.get(Customer, customer_id), db.session.get(Package, package_id)
        return lambda: placement.place_customer_order(customer, bought, payment_method="account_balance",
                                                      actor=as_customer(customer), contracts_accepted=True)

    buy.label = "buy"
    jobs = [on_order(order_id, lambda o: refunds.start(o, to=RefundDestination.CARD, actor=AGENT), "refund"),
            buy] * HALF
    outcomes = race(worker, jobs)

    no_errors(outcomes)
    assert len(done(outcomes)) == 1, outcomes
    assert set(refusals(outcomes)) <= {"insufficient_balance", "top_up_spent", "refund_in_flight", "rule_7"}, \
        refusals(outcomes)
    assert balance_of(customer_id) == 0
    entries = _entries(customer_id)
    assert entries[0] == ("top_up", 10_000) and len(entries) == 2
    assert entries[1] in (("top_up_back", -10_000), ("payment", -10_000))


@pytest.mark.parametrize("fraud_late", [0, 0.3])  # Fraud pressed with the approvals, or just after them
def test_an_approval_racing_set_as_fraud_never_leaves_a_fraud_top_up_credited(worker, gateway, fraud_late):
    """Half the callers bring the bank's approval of a top-up, half press Set as Fraud: either Fraud comes first and
    the approval is returned by itself (nothing credited), or the approval does and every Fraud is refused (the
    money is in the balance: refund it). Before, the second order ended Fraud with 250.00 spendable in the
    balance."""
    order_id, customer_id, attempt = _card_top_up()
    approval = bank_answer(attempt)

    def fraud(order):
        time.sleep(fraud_late)
        return order_actions.set_fraud(order, AGENT)

    jobs = [call(lambda: card_payments.apply_card_callback(gateway, approval, BANK), "callback"),
            on_order(order_id, fraud, "fraud")] * HALF
    outcomes = race(worker, jobs)

    no_errors(outcomes)
    assert len(done(outcomes, "callback")) == HALF
    order = db.session.get(Order, order_id)
    if order.status == "fraud":
        assert len(done(outcomes, "fraud")) == 1 and set(refusals(outcomes)) <= {"already_fraud"}
        [refund] = order.refunds
        assert (refund.automatic, refund.amount_minor) == (True, 25_000)
        assert _entries(customer_id) == [] and balance_of(customer_id) == 0
    else:
        assert refusals(outcomes) == {"top_up_paid": HALF}, refusals(outcomes)
        assert (order.status, order.payment_status, order.refunds) == ("active", "paid", [])
        assert _entries(customer_id) == [("top_up", 25_000)] and balance_of(customer_id) == 25_000


def test_top_ups_placed_while_the_invoicing_way_changes_are_all_invoiced_the_final_way(app, worker):
    """Half the callers place a top-up, half switch the invoicing way to "invoice the top-up": a switch that
    comes first is seen by every top-up after it; a top-up that comes first makes every switch wait and then
    refuse. Never a top-up placed under one way while the way changes under it."""
    from limonbilling.models import Invoice
    from limonbilling.services import settings, top_ups

    customer_ids = [make_customer().id for _ in range(HALF)]

    def place(customer_id):
        def job():
            from limonbilling.models import Customer
            customer = db.session.get(Customer, customer_id)
            return lambda: placement.place_top_up(customer, "100,00", payment_method="card",
                                                  actor=AGENT).number
        job.label = "place"
        return job

    switch = call(lambda: top_ups.save_settings("100.00", "50000.00", "top_up", AGENT), "switch")
    outcomes = race(worker, [place(customer_id) for customer_id in customer_ids] + [switch] * HALF)

    no_errors(outcomes)
    assert len(done(outcomes, "place")) == HALF
    assert set(refusals(outcomes)) <= {"validation_failed"}
    final = settings.get("top_up_invoicing")
    invoiced = [db.session.scalar(select(Invoice.id).where(Invoice.order_id == order.id)) is not None
                for order in db.session.scalars(select(Order).where(Order.kind == "balance"))]
    assert invoiced == [final == "top_up"] * HALF, (final, invoiced)


def test_a_top_up_that_read_the_settings_before_a_switch_committed_is_invoiced_the_new_way(app, worker, monkeypatch):
    """The placement reads the settings (its limits) before it takes the invoicing way's row shared; a switch
    that commits in between was waited for by nobody, and the placement went on with the way it had read, so a
    top-up placed after "invoice the top-up" was saved had no invoice. Forced here: the placement stops after
    reading its limits until the switch has committed."""
    from limonbilling.models import Invoice
    from limonbilling.services import top_ups

    customer_id = make_customer().id
    switched = threading.Event()
    real_limits = top_ups.limits

    def limits_then_wait():
        found = real_limits()
        if not switched.wait(timeout=30):
            raise RuntimeError("the other caller did not commit within 30 s")
        return found

    monkeypatch.setattr(top_ups, "limits", limits_then_wait)

    def place():
        from limonbilling.models import Customer
        customer = db.session.get(Customer, customer_id)
        return lambda: placement.place_top_up(customer, "100,00", payment_method="card", actor=AGENT).number

    def switch():
        def action():
            top_ups.save_settings("100.00", "50000.00", "top_up", AGENT)
            db.session.commit()
            switched.set()
        return action

    outcomes = race(worker, [place, switch])

    no_errors(outcomes)
    assert [outcome.kind for outcome in outcomes] == ["done", "done"]
    order = db.session.scalar(select(Order).where(Order.kind == "balance"))
    assert db.session.scalar(select(Invoice.id).where(Invoice.order_id == order.id)) is not None
