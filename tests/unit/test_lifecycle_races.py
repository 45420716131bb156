"""Races on one order (domain.md §6a): every action fired by 8–16 callers at the same instant has one effect.

Each caller is a thread with its own app context, session and database
connection. Before a barrier it loads what it acts on, as a request does;
after the barrier it acts, commits, or rolls back on a refusal. The tests
count the effects (grants, ledger and balance entries, payments, refunds,
audit entries, notifications, promo code uses) and check that every caller
that lost got a ServiceError, never a database error.

PostgreSQL only (`lock_order` is SELECT … FOR UPDATE there): SQLite
serialises every writer and would hide the races. The callers run on a second
app on the same database whose pool has a connection for each of them and
whose lock waits end in an error after 20 s instead of a hung test.

Three tests force the interleaving that used to deadlock (actions taking the
same locks in opposite orders) by holding each caller after its first lock
until the other holds its own: bulk changes lock orders by id, a
cancellation approval locks the renewal orders before the customer, and
every balance movement locks the customer before the balance row.
"""
import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import pytest
from sqlalchemy import func, select
from sqlalchemy.engine import make_url

from limonbilling.extensions import db
from limonbilling.models import (
    AccountBalance,
    AuditEntry,
    BalanceEntry,
    Customer,
    Department,
    Grant,
    Invoice,
    LedgerEntry,
    Notification,
    Order,
    Package,
    Payment,
    PromoCode,
    RefundDestination,
)
from limonbilling.payments.nestpay_gateway import NestPayGateway
from limonbilling.sandbox import Payment as BankPayment
from limonbilling.sandbox import create_simulator
from limonbilling.services import (
    ServiceError,
    balance,
    card_payments,
    ledger,
    order_actions,
    placement,
    promo_codes,
    refunds,
    settings,
    tokens,
    webhooks,
)

from ..factories import make_customer, make_department, make_package, make_transfer_account
from ..http.servers import LiveServer
from ..payment_support import AGENT, BANK, as_customer, bank_answer, card_order, configure_gateway, offer_instalments

THREADS = 16
HALF = THREADS // 2
TEAM = "team@example.com"


@pytest.fixture(autouse=True)
def _postgresql_only(database_url):
    if make_url(database_url).get_backend_name() != "postgresql":
        pytest.skip("SQLite serialises writers and would hide these races; they run on PostgreSQL only")


@pytest.fixture
def worker(make_app):
    """The app the callers run in: same database, a pool with a connection for every caller at once (the
    default 5 + 10 would make the 16th wait), and lock waits that fail after 20 s rather than hang."""
    other = make_app(SQLALCHEMY_ENGINE_OPTIONS={
        "pool_pre_ping": True, "pool_size": THREADS + 4, "max_overflow": 0,
        "connect_args": {"options": "-c lock_timeout=20000"},
    })
    yield other
    with other.app_context():
        db.engine.dispose()


@pytest.fixture
def support(app):
    settings.update({"notification_email": TEAM}, AGENT)  # the team's mails are queued too, and counted
    db.session.commit()
    return make_department("Support", credit_per_request=3)


@pytest.fixture
def bank(app):
    """The NestPay simulator over HTTP, with the gateway settings pointing at it; yields its record of sales."""
    with LiveServer(create_simulator()) as server:
        configure_gateway(server.url)
        db.session.commit()
        yield server.server.app.extensions["nestpay_simulator"]


# --- running callers at one instant --------------------------------------------------------------------

@dataclass(frozen=True)
class Outcome:
    kind: str  # done, refused (a ServiceError), error (anything else: a database error, a crash)
    value: object = None  # what the action returned, the refusal's code, or the error
    name: str = ""


def race(worker, jobs, timeout=60) -> list[Outcome]:
    """Run every job in its own thread, app context and session. A job runs before the barrier (loading what
    it acts on) and returns the action, which runs when every caller is ready; then commit, or rollback."""
    db.session.commit()
    db.session.close()
    barrier = threading.Barrier(len(jobs), timeout=timeout)

    def run(job):
        name = getattr(job, "label", "")
        with worker.app_context():
            try:
                try:
                    action = job()
                finally:
                    barrier.wait()
                result = action()
                db.session.commit()
                return Outcome("done", result, name)
            except ServiceError as error:
                db.session.rollback()
                return Outcome("refused", error.code, name)
            except Exception as error:  # anything else (a database error, a crash) is what we look for
                db.session.rollback()
                return Outcome("error", f"{type(error).__name__}: {error}".splitlines()[0], name)
            finally:
                db.session.remove()

    with ThreadPoolExecutor(max_workers=len(jobs)) as pool:
        outcomes = list(pool.map(run, jobs, timeout=timeout + 30))
    db.session.expire_all()
    return outcomes


def labelled(job, label: str):
    job.label = label
    return job


def on_order(order_id: int, act, label: str = ""):
    """A caller that loads the order (as a view does) and then acts on it."""
    def job():
        order = db.session.get(Order, order_id)
        return lambda: act(order)
    return labelled(job, label)


def call(act, label: str = ""):
    """A caller that loads nothing first (a bank callback, a reconciliation by id)."""
    return labelled(lambda: act, label)


def no_errors(outcomes: list[Outcome]) -> None:
    errors = [(o.name, o.value) for o in outcomes if o.kind == "error"]
    assert not errors, f"callers failed with something other than a ServiceError: {errors}"


def done(outcomes: list[Outcome], name: str | None = None) -> list[Outcome]:
    return [o for o in outcomes if o.kind == "done" and (name is None or o.name == name)]


def refusals(outcomes: list[Outcome]) -> Counter:
    return Counter(o.value for o in outcomes if o.kind == "refused")


def exactly_one(outcomes: list[Outcome], *codes: str) -> Outcome:
    """One caller acted; every other one was refused with one of `codes`."""
    no_errors(outcomes)
    winners = done(outcomes)
    assert len(winners) == 1, f"{len(winners)} callers acted: {outcomes}"
    assert set(refusals(outcomes)) <= set(codes), refusals(outcomes)
    return winners[0]


# --- counting effects ---------------------------------------------------------------------------------

def count(model, *conditions) -> int:
    return db.session.scalar(select(func.count()).select_from(model).where(*conditions))


def audits(action: str, order_id: int | None = None) -> int:
    conditions = [AuditEntry.action == action]
    if order_id is not None:
        conditions += [AuditEntry.target_type == "orders", AuditEntry.target_id == str(order_id)]
    return count(AuditEntry, *conditions)


def mails(number: str, event: str, recipient: str | None = None) -> int:
    conditions = [Notification.order_number == number, Notification.event == event]
    if recipient is not None:
        conditions.append(Notification.recipient == recipient)
    return count(Notification, *conditions)


def ledger_rows(customer_id: int, kind: str) -> list[int]:
    return list(db.session.scalars(select(LedgerEntry.amount).where(
        LedgerEntry.customer_id == customer_id, LedgerEntry.kind == kind).order_by(LedgerEntry.id)))


def balance_of(customer_id: int) -> int:
    return db.session.scalar(select(AccountBalance.amount_minor).where(
        AccountBalance.customer_id == customer_id, AccountBalance.currency == "TRY")) or 0


def credits_consistent(customer_id: int) -> int:
    credits = db.session.get(Customer, customer_id).credits
    assert credits == ledger.ledger_sum(customer_id)
    return credits


# --- the orders raced on ------------------------------------------------------------------------------

@dataclass(frozen=True)
class Case:
    order_id: int
    number: str
    customer_id: int
    email: str
    amount_minor: int
    payment_id: int | None = None
    oid: str | None = None


def case_of(order: Order, customer: Customer, attempt: Payment | None = None) -> Case:
    return Case(order.id, order.number, customer.id, customer.email, order.amount_minor,
                attempt.id if attempt else None, attempt.oid if attempt else None)


def unpaid_card_order(support) -> tuple[Case, dict]:
    """A card checkout sent to the bank, and the bank's signed approval of it."""
    customer = make_customer()
    order, attempt = card_order(customer, make_package("credit", [support], credits=10))
    return case_of(order, customer, attempt), bank_answer(attempt)


def paid_card_order(gateway, support, *, auto_activate: bool = True) -> Case:
    settings.update({"auto_activate_card": auto_activate}, AGENT)
    customer = make_customer()
    order, attempt = card_order(customer, make_package("credit", [support], credits=10))
    card_payments.apply_card_callback(gateway, bank_answer(attempt), BANK)
    db.session.commit()
    assert order.payment_status == "paid" and order.activated is auto_activate
    return case_of(order, customer, attempt)


def bank_transfer_order(support, **kwargs) -> Case:
    customer = make_customer()
    make_transfer_account()
    order = placement.place_customer_order(customer, make_package("credit", [support], credits=10),
                                payment_method="bank_transfer", actor=as_customer(customer), **kwargs,
                                contracts_accepted=True)
    db.session.commit()
    return case_of(order, customer)


def bank_holds(state, case: Case) -> None:
    """The simulator has the approved sale of the attempt (as after its 3-D page)."""
    state.payments[case.oid] = BankPayment(oid=case.oid, amount_minor=case.amount_minor, currency="949",
                                           auth_code="123456", trans_id="T1", host_ref_num="H1")


# --- 1, 2: Accept ---------------------------------------------------------------------------------------

def test_1_sixteen_accepts_of_a_paid_card_order_grant_once(worker, gateway, support):
    case = paid_card_order(gateway, support, auto_activate=False)
    outcomes = race(worker, [on_order(case.order_id, lambda o: order_actions.accept_order(o, AGENT))] * THREADS)

    exactly_one(outcomes, "already_active")
    order = db.session.get(Order, case.order_id)
    assert (order.status, order.payment_status, order.activated) == ("active", "paid", True)
    assert count(Grant, Grant.order_id == case.order_id) == 1
    assert ledger_rows(case.customer_id, "purchase") == [10] and credits_consistent(case.customer_id) == 10
    assert count(Payment, Payment.order_id == case.order_id) == 1
    assert audits("order.accept", case.order_id) == 1 and audits("entitlement.activate") == 1
    assert mails(case.number, "purchase_activated", case.email) == 1
    assert mails(case.number, "order_accepted") == 0  # the activation mail says it all


def test_2_sixteen_accepts_of_an_unpaid_bank_transfer_record_one_payment(worker, support):
    case = bank_transfer_order(support)
    outcomes = race(worker, [on_order(case.order_id, lambda o: order_actions.accept_order(o, AGENT))] * THREADS)

    exactly_one(outcomes, "already_active")
    order = db.session.get(Order, case.order_id)
    assert (order.status, order.payment_status, order.activated) == ("active", "paid", True)
    [payment] = db.session.scalars(select(Payment).where(Payment.order_id == case.order_id)).all()
    assert (payment.method, payment.state, payment.amount_minor) == ("bank_transfer", "confirmed", case.amount_minor)
    assert count(Grant, Grant.order_id == case.order_id) == 1
    assert ledger_rows(case.customer_id, "purchase") == [10] and credits_consistent(case.customer_id) == 10
    assert audits("payment.record", case.order_id) == 1 and audits("order.accept", case.order_id) == 1
    assert order.invoice.status == "paid" and order.invoice.number is not None
    assert count(Invoice, Invoice.number.is_not(None)) == 1
    assert mails(case.number, "purchase_activated", case.email) == 1


def test_2_sixteen_accepts_of_a_reopened_balance_order_take_the_balance_once(worker, support):
    """Back to Pending after a refund needs a new payment: for a balance order, Accept takes it again, once."""
    customer = make_customer()
    package = make_package("credit", [support], credits=10)
    balance.move(customer.id, "TRY", 2 * package.price_minor, "adjustment", reason="top-up")
    order = placement.place_customer_order(customer, package, payment_method="account_balance",
                                           actor=as_customer(customer), contracts_accepted=True)
    db.session.commit()
    refunds.start(order, to=RefundDestination.BALANCE, actor=AGENT)
    order_actions.back_to_pending(order, AGENT)
    db.session.commit()
    case = case_of(order, customer)
    assert balance_of(case.customer_id) == 2 * case.amount_minor and not order.holds_money

    outcomes = race(worker, [on_order(case.order_id, lambda o: order_actions.accept_order(o, AGENT))] * THREADS)

    exactly_one(outcomes, "already_active")
    order = db.session.get(Order, case.order_id)
    assert (order.status, order.payment_status, order.activated) == ("active", "paid", True)
    assert balance_of(case.customer_id) == case.amount_minor
    assert [e.amount_minor for e in db.session.scalars(select(BalanceEntry).where(
        BalanceEntry.customer_id == case.customer_id).order_by(BalanceEntry.id))] == [
        2 * case.amount_minor, -case.amount_minor, case.amount_minor, -case.amount_minor]
    assert [p.state for p in order.payments] == ["refunded", "confirmed"]
    assert ledger_rows(case.customer_id, "purchase") == [10, 10] and ledger_rows(case.customer_id, "reversal") == [-10]
    assert credits_consistent(case.customer_id) == 10 and count(Grant, Grant.order_id == case.order_id) == 2


def test_2_sixteen_accepts_of_a_cancelled_order_with_its_money_give_back_what_was_taken_once(worker, gateway):
    """10 credits paid, 6 used, Cancel took back 4, Back to Pending: sixteen Accepts restore the 4 once."""
    from limonbilling.services import charging

    department = make_department("One a ticket", credit_per_request=1)
    customer, order = _paid_customer_order(gateway, department)
    case = case_of(order, customer)
    for k in range(6):
        charging.charge_usage(case.customer_id, department.id, "ticket", f"t{k}")
    order = db.session.get(Order, case.order_id)
    order_actions.cancel_order(order, AGENT)
    order_actions.back_to_pending(order, AGENT)
    db.session.commit()

    outcomes = race(worker, [on_order(case.order_id, lambda o: order_actions.accept_order(o, AGENT))] * THREADS)

    exactly_one(outcomes, "already_active")
    assert ledger_rows(case.customer_id, "purchase") == [10, 4] and credits_consistent(case.customer_id) == 4
    assert audits("order.restored", case.order_id) == 1 and audits("order.accept", case.order_id) == 1


def _paid_customer_order(gateway, department):
    customer = make_customer()
    order, attempt = card_order(customer, make_package("credit", [department], credits=10))
    card_payments.apply_card_callback(gateway, bank_answer(attempt), BANK)
    db.session.commit()
    return customer, order


# --- 3, 4: refunds ------------------------------------------------------------------------------------

def test_3_sixteen_refunds_to_the_balance_credit_it_once(worker, gateway, support):
    case = paid_card_order(gateway, support)
    outcomes = race(worker, [on_order(
        case.order_id, lambda o: refunds.start(o, to=RefundDestination.BALANCE, actor=AGENT))] * THREADS)

    exactly_one(outcomes, "nothing_to_refund", "refund_in_flight")
    order = db.session.get(Order, case.order_id)
    assert (order.status, order.payment_status, order.activated) == ("cancelled", "refunded", False)
    assert balance_of(case.customer_id) == case.amount_minor
    assert [e.amount_minor for e in db.session.scalars(
        select(BalanceEntry).where(BalanceEntry.customer_id == case.customer_id))] == [case.amount_minor]
    [refund] = order.refunds
    assert (refund.destination, refund.state, refund.amount_minor) == ("balance", "done", case.amount_minor)
    assert ledger_rows(case.customer_id, "reversal") == [-10] and credits_consistent(case.customer_id) == 0
    assert audits("order.refund_start", case.order_id) == 1 and audits("order.refund", case.order_id) == 1
    assert audits("entitlement.revoke") == 1
    assert mails(case.number, "order_refunded", case.email) == 1


def test_3_sixteen_partial_refunds_never_return_more_than_was_paid(worker, gateway, support):
    case = paid_card_order(gateway, support)
    part = case.amount_minor // 10
    assert part * 10 == case.amount_minor
    outcomes = race(worker, [on_order(case.order_id, lambda o: refunds.start(
        o, to=RefundDestination.BALANCE, actor=AGENT, amount_minor=part))] * THREADS)

    no_errors(outcomes)
    assert len(done(outcomes)) == 10 and set(refusals(outcomes)) <= {"nothing_to_refund", "refund_amount"}
    order = db.session.get(Order, case.order_id)
    assert [r.amount_minor for r in order.refunds] == [part] * 10
    assert balance_of(case.customer_id) == case.amount_minor == count(BalanceEntry) * part
    assert (order.status, order.payment_status, order.activated) == ("cancelled", "refunded", False)
    assert ledger_rows(case.customer_id, "reversal") == [-10] and credits_consistent(case.customer_id) == 0


def test_3_cancel_and_refund_pressed_at_once_revoke_and_return_once(worker, gateway, support):
    case = paid_card_order(gateway, support)
    jobs = [on_order(case.order_id, lambda o: order_actions.cancel_order(o, AGENT), "cancel"),
            on_order(case.order_id, lambda o: refunds.start(o, to=RefundDestination.BALANCE, actor=AGENT),
                     "refund")] * HALF
    outcomes = race(worker, jobs)

    no_errors(outcomes)
    assert len(done(outcomes, "refund")) == 1 and len(done(outcomes, "cancel")) <= 1
    assert set(refusals(outcomes)) <= {"already_cancelled", "nothing_to_refund"}
    order = db.session.get(Order, case.order_id)
    assert (order.status, order.payment_status, order.activated) == ("cancelled", "refunded", False)
    assert balance_of(case.customer_id) == case.amount_minor and count(BalanceEntry) == 1 and len(order.refunds) == 1
    assert ledger_rows(case.customer_id, "reversal") == [-10] and credits_consistent(case.customer_id) == 0
    assert audits("entitlement.revoke") == 1


def test_4_refunds_to_the_card_and_to_the_balance_at_once_return_the_money_once(worker, bank, support):
    customer = make_customer()
    order, attempt = card_order(customer, make_package("credit", [support], credits=10))
    case = case_of(order, customer, attempt)
    bank_holds(bank, case)
    gateway = NestPayGateway()
    card_payments.apply_card_callback(gateway, bank_answer(attempt), BANK)
    db.session.commit()

    def to_card(order):
        refunds.start(order, to=RefundDestination.CARD, actor=AGENT)
        db.session.commit()  # as the order page does: recorded first, then sent
        return refunds.send(order, gateway, AGENT)

    def to_balance(order):
        refunds.start(order, to=RefundDestination.BALANCE, actor=AGENT)
        return "refunded"

    jobs = [on_order(case.order_id, to_card, "card"), on_order(case.order_id, to_balance, "balance")] * HALF
    outcomes = race(worker, jobs)

    winner = exactly_one(outcomes, "nothing_to_refund", "refund_in_flight")
    assert winner.value == "refunded"
    order = db.session.get(Order, case.order_id)
    [refund] = order.refunds
    assert (refund.destination, refund.state, refund.amount_minor) == (winner.name, "done", case.amount_minor)
    sale = bank.payments[case.oid]
    if winner.name == "card":
        assert (sale.status, sale.refunded_minor) == ("V", 0) and refund.operation == "void"
        assert balance_of(case.customer_id) == 0 and count(BalanceEntry) == 0
    else:
        assert (sale.status, sale.refunded_minor) == ("S", 0)
        assert balance_of(case.customer_id) == case.amount_minor and count(BalanceEntry) == 1
    assert (order.status, order.payment_status, order.activated) == ("cancelled", "refunded", False)
    assert ledger_rows(case.customer_id, "reversal") == [-10] and credits_consistent(case.customer_id) == 0
    assert audits("order.refund", case.order_id) == 1 and audits("order.refund_start", case.order_id) == 1


# --- 5: Cancel, Set as Fraud, Back to Pending ---------------------------------------------------------------

@pytest.mark.parametrize(("action", "state", "event"), [
    (order_actions.cancel_order, "cancelled", "order_cancelled"),
    (order_actions.set_fraud, "fraud", "order_set_to_fraud"),
], ids=["cancel", "fraud"])
def test_5_sixteen_cancels_or_frauds_revoke_once(worker, gateway, support, action, state, event):
    case = paid_card_order(gateway, support)
    outcomes = race(worker, [on_order(case.order_id, lambda o: action(o, AGENT))] * THREADS)

    exactly_one(outcomes, f"already_{state}")
    order = db.session.get(Order, case.order_id)
    assert (order.status, order.payment_status, order.activated) == (state, "paid", False)
    [grant] = order.grants
    assert grant.end_reason == "revoked"
    assert ledger_rows(case.customer_id, "reversal") == [-10] and credits_consistent(case.customer_id) == 0
    assert audits(f"order.{state}", case.order_id) == 1 and audits("entitlement.revoke") == 1
    assert mails(case.number, event) == 1


@pytest.mark.parametrize("set_aside", [order_actions.cancel_order, order_actions.set_fraud], ids=["from_cancelled",
                                                                                                  "from_fraud"])
def test_5_sixteen_back_to_pendings_move_once_and_hold_one_promo_use(worker, support, set_aside):
    code_id = promo_codes.create({"code": "AGAIN", "kind": "percent", "value": "10", "max_uses": 5}, AGENT).id
    db.session.commit()
    case = bank_transfer_order(support, promo_code="AGAIN")
    set_aside(db.session.get(Order, case.order_id), AGENT)  # unpaid: its use goes back
    db.session.commit()
    assert db.session.get(PromoCode, code_id).uses == 0

    outcomes = race(worker, [on_order(case.order_id, lambda o: order_actions.back_to_pending(o, AGENT))] * THREADS)

    exactly_one(outcomes, "already_pending")
    order = db.session.get(Order, case.order_id)
    assert (order.status, order.promo_use_held) == ("pending", True)
    assert db.session.get(PromoCode, code_id).uses == 1
    assert audits("order.pending", case.order_id) == 1
    assert count(Grant, Grant.order_id == case.order_id) == 0  # no payment, nothing given


# --- 6: Accept ∥ Cancel -----------------------------------------------------------------------------------

@pytest.mark.parametrize("round_", range(2))
def test_6_accepts_and_cancels_at_once_end_consistent(worker, gateway, support, round_):
    case = paid_card_order(gateway, support, auto_activate=False)
    jobs = [on_order(case.order_id, lambda o: order_actions.accept_order(o, AGENT), "accept"),
            on_order(case.order_id, lambda o: order_actions.cancel_order(o, AGENT), "cancel")] * HALF
    outcomes = race(worker, jobs)

    no_errors(outcomes)
    accepted, cancelled = len(done(outcomes, "accept")), len(done(outcomes, "cancel"))
    assert accepted <= 1 and cancelled == 1  # a cancel is always possible once, from pending or active
    assert set(refusals(outcomes)) <= {"already_active", "already_cancelled", "not_allowed"}
    order = db.session.get(Order, case.order_id)
    grants = order.grants
    assert len(grants) == accepted
    if order.status == "active":
        assert order.live_grant is not None and credits_consistent(case.customer_id) == 10
    else:
        assert order.status == "cancelled" and order.live_grant is None
        assert all(grant.end_reason == "revoked" for grant in grants)
        assert ledger_rows(case.customer_id, "reversal") == [-10] * accepted
        assert credits_consistent(case.customer_id) == 0
    assert audits("order.accept", case.order_id) == accepted and audits("order.cancelled", case.order_id) == 1
    assert audits("entitlement.activate") == accepted and audits("entitlement.revoke") == accepted


# --- 7, 8: the bank's callback ------------------------------------------------------------------------------

def test_7_sixteen_copies_of_one_approved_callback_pay_once(worker, gateway, support):
    case, approval = unpaid_card_order(support)
    outcomes = race(worker, [call(lambda: card_payments.apply_card_callback(gateway, approval, BANK))] * THREADS)

    no_errors(outcomes)
    assert len(done(outcomes)) == THREADS  # a replay is not refused, it changes nothing
    order = db.session.get(Order, case.order_id)
    [payment] = order.payments
    assert (payment.state, order.payment_status, order.status, order.activated) == (
        "confirmed", "paid", "pending", True)
    assert count(Grant, Grant.order_id == case.order_id) == 1 and order.refunds == []
    assert ledger_rows(case.customer_id, "purchase") == [10] and credits_consistent(case.customer_id) == 10
    assert audits("order.paid", case.order_id) == 1 and audits("entitlement.activate") == 1
    assert mails(case.number, "purchase_activated", case.email) == 1
    assert order.invoice.number is not None and count(Invoice, Invoice.number.is_not(None)) == 1


def as_the_callback_view(gateway, fields):
    """What the bank's callback view does: apply it, commit, then send back at once money we did not accept."""
    def act():
        order = card_payments.apply_card_callback(gateway, fields, BANK)
        db.session.commit()
        if order is not None and order.refund_in_flight:
            return refunds.send(order, gateway, BANK)
        return "applied"
    return act


@pytest.mark.parametrize("round_", range(3))
def test_7_approval_and_set_fraud_at_once_never_leave_a_fraud_order_giving_or_keeping_unaccepted_money(
        worker, bank, support, round_):
    case, approval = unpaid_card_order(support)
    bank_holds(bank, case)
    gateway = NestPayGateway()
    jobs = [call(as_the_callback_view(gateway, approval), "callback"),
            on_order(case.order_id, lambda o: order_actions.set_fraud(o, AGENT), "fraud")] * HALF
    outcomes = race(worker, jobs)

    no_errors(outcomes)
    assert len(done(outcomes, "callback")) == HALF and len(done(outcomes, "fraud")) == 1
    assert set(refusals(outcomes)) <= {"already_fraud"}
    order = db.session.get(Order, case.order_id)
    [payment] = order.payments
    assert (order.status, order.activated) == ("fraud", False)
    assert credits_consistent(case.customer_id) == 0
    sale = bank.payments[case.oid]
    if audits("order.paid", case.order_id):  # the approval came first: paid, activated, then set aside
        assert audits("order.paid", case.order_id) == 1 and order.refunds == []
        assert (payment.state, order.payment_status, sale.status) == ("confirmed", "paid", "S")
        [grant] = order.grants
        assert grant.end_reason == "revoked" and ledger_rows(case.customer_id, "reversal") == [-10]
    else:  # Fraud came first: the money was not accepted and went back by itself, once
        assert order.grants == []
        [refund] = order.refunds
        assert (refund.automatic, refund.destination, refund.payment_id, refund.amount_minor) == (
            True, "card", payment.id, case.amount_minor)
        assert (refund.state, refund.operation, sale.status) == ("done", "void", "V")
        assert (payment.state, order.payment_status) == ("refunded", "refunded")
        assert audits("payment.returned", case.order_id) == 1 and audits("order.refund", case.order_id) == 1
    assert audits("order.fraud", case.order_id) == 1


def test_8_two_approved_attempts_at_once_take_one_and_return_the_other(worker, bank, support):
    case, first = unpaid_card_order(support)
    second_attempt = card_payments.start_card_payment(db.session.get(Order, case.order_id), "nestpay")
    second = bank_answer(second_attempt)
    other = Case(case.order_id, case.number, case.customer_id, case.email, case.amount_minor, second_attempt.id,
                 second_attempt.oid)
    db.session.commit()
    bank_holds(bank, case)
    bank_holds(bank, other)
    gateway = NestPayGateway()
    outcomes = race(worker, [call(as_the_callback_view(gateway, first)),
                             call(as_the_callback_view(gateway, second))] * HALF)

    no_errors(outcomes)
    order = db.session.get(Order, case.order_id)
    [refund] = order.refunds
    assert (refund.automatic, refund.destination, refund.amount_minor) == (True, "card", case.amount_minor)
    assert (refund.state, refund.operation) == ("done", "void")
    kept = next(p for p in order.payments if p.id != refund.payment_id)
    assert (kept.state, refund.payment.state, kept.refunds) == ("confirmed", "refunded", [])
    assert (bank.payments[kept.oid].status, bank.payments[refund.payment.oid].status) == ("S", "V")
    assert (order.payment_status, order.status, order.activated) == ("paid", "pending", True)
    assert count(Grant, Grant.order_id == case.order_id) == 1
    assert ledger_rows(case.customer_id, "purchase") == [10] and credits_consistent(case.customer_id) == 10
    assert audits("order.paid", case.order_id) == 1 and audits("payment.returned", case.order_id) == 1
    assert audits("order.refund", case.order_id) == 1
    assert mails(case.number, "purchase_activated", case.email) == 1


def test_8_cancel_and_refund_to_the_card_and_a_second_attempts_late_approval_at_once_return_both_once(
        worker, bank, support):
    """Attack pass 12: the order was paid by its first attempt; eight agents press Cancel & Refund to the card
    while eight copies of the second attempt's late approval arrive. Both sales go back once (the order's by
    the agent's refund, the second by itself), the order ends cancelled and gives nothing."""
    case, first = unpaid_card_order(support)
    second_attempt = card_payments.start_card_payment(db.session.get(Order, case.order_id), "nestpay")
    second = bank_answer(second_attempt)
    other = Case(case.order_id, case.number, case.customer_id, case.email, case.amount_minor, second_attempt.id,
                 second_attempt.oid)
    db.session.commit()
    bank_holds(bank, case)
    bank_holds(bank, other)
    gateway = NestPayGateway()
    card_payments.apply_card_callback(gateway, first, BANK)
    db.session.commit()

    def cancel_and_refund(order):
        refunds.start(order, to=RefundDestination.CARD, actor=AGENT)
        db.session.commit()  # as the order page does: recorded first, then sent
        return refunds.send(order, gateway, AGENT)

    outcomes = race(worker, [on_order(case.order_id, cancel_and_refund, "refund"),
                             call(as_the_callback_view(gateway, second), "callback")] * HALF)

    no_errors(outcomes)
    assert len(done(outcomes, "refund")) == 1 and set(refusals(outcomes)) <= {"refund_in_flight", "nothing_to_refund"}
    order = db.session.get(Order, case.order_id)
    assert sorted((r.payment.oid, r.automatic, r.state, r.amount_minor) for r in order.refunds) == [
        (case.oid, False, "done", case.amount_minor), (other.oid, True, "done", case.amount_minor)]
    assert (bank.payments[case.oid].status, bank.payments[other.oid].status) == ("V", "V")
    assert (order.status, order.payment_status, order.activated) == ("cancelled", "refunded", False)
    assert credits_consistent(case.customer_id) == 0 and audits("order.refund", case.order_id) == 2


# --- 9: promo code uses -------------------------------------------------------------------------------------

@pytest.mark.parametrize("max_uses", [1, 2])
def test_9_sixteen_cancels_of_an_unpaid_order_give_back_one_promo_use(worker, support, max_uses):
    code_id = promo_codes.create({"code": "ONCE", "kind": "percent", "value": "10", "max_uses": max_uses},
                                 AGENT).id
    db.session.commit()
    package = make_package("credit", [support], credits=10)
    if max_uses == 2:  # another order holds the other use: a second give-back would show
        other = make_customer()
        make_transfer_account()
        placement.place_customer_order(other, package, payment_method="bank_transfer", actor=as_customer(other),
                            promo_code="ONCE", contracts_accepted=True)
    customer = make_customer()
    order = placement.place_customer_order(customer, package, payment_method="card", actor=as_customer(customer),
                                promo_code="ONCE", contracts_accepted=True)
    db.session.commit()
    case, customer_actor = case_of(order, customer), as_customer(customer)
    assert db.session.get(PromoCode, code_id).uses == max_uses

    jobs = [on_order(case.order_id, lambda o: order_actions.cancel_unpaid_order(o, customer_actor)),
            on_order(case.order_id, lambda o: order_actions.cancel_order(o, AGENT))] * HALF
    outcomes = race(worker, jobs)

    exactly_one(outcomes, "not_cancellable", "already_cancelled")
    order = db.session.get(Order, case.order_id)
    assert (order.status, order.promo_use_held) == ("cancelled", False)
    assert db.session.get(PromoCode, code_id).uses == max_uses - 1
    assert audits("order.cancel_unpaid", case.order_id) + audits("order.cancelled", case.order_id) == 1


# --- 10, 11: Delete and bulk status ---------------------------------------------------------------------------

def test_10_sixteen_deletes_delete_once_and_the_others_are_told_it_is_gone(worker, support):
    case = bank_transfer_order(support)
    order_actions.cancel_order(db.session.get(Order, case.order_id), AGENT)
    db.session.commit()
    outcomes = race(worker, [on_order(case.order_id, lambda o: order_actions.delete_order(o, AGENT))] * THREADS)

    exactly_one(outcomes, "not_found")
    assert refusals(outcomes) == Counter({"not_found": THREADS - 1})
    assert db.session.get(Order, case.order_id) is None
    assert audits("order.delete", case.order_id) == 1
    assert count(Invoice) == 0  # never issued: it went with the order


def _bulk(order_ids, status, *, reverse=False, label=""):
    def job():
        selected = list(db.session.scalars(select(Order).where(Order.id.in_(order_ids)).order_by(Order.id)))
        selected = selected[::-1] if reverse else selected
        return lambda: order_actions.bulk_set_status(selected, status, AGENT)
    return labelled(job, label)


def test_11_ten_bulk_status_changes_move_each_order_once(worker, support):
    cases = [bank_transfer_order(support) for _ in range(4)]
    ids, numbers = [c.order_id for c in cases], {c.number for c in cases}
    outcomes = race(worker, [_bulk(ids, "cancelled")] * 10)

    no_errors(outcomes)
    assert sorted(o.value[0] for o in outcomes) == [0] * 9 + [4]
    entries = db.session.scalars(select(AuditEntry).where(AuditEntry.action == "order.bulk_status")).all()
    assert len(entries) == 10
    changed = Counter(number for entry in entries for number in entry.details["numbers"])
    assert changed == Counter(numbers)  # each order moved by exactly one caller
    for entry in entries:
        assert set(entry.details["numbers"]) | set(entry.details["skipped"]) == numbers
    assert {db.session.get(Order, i).status for i in ids} == {"cancelled"}


class Interleaving:
    """Makes callers hold the first lock they take until every other caller holds its own (or 3 s passed): the
    moment at which two actions that take the same two locks in opposite orders deadlock."""

    def __init__(self, monkeypatch, parties: int = 2):
        self.monkeypatch, self.local = monkeypatch, threading.local()
        self.barrier = threading.Barrier(parties, timeout=3)

    def pause_after(self, module, name: str, role: str | None = None) -> None:
        real = getattr(module, name)

        def wrapper(*args, **kwargs):
            result = real(*args, **kwargs)
            if (role is None or getattr(self.local, "role", None) == role) and not getattr(self.local, "paused", 0):
                self.local.paused = True
                try:
                    self.barrier.wait()
                except threading.BrokenBarrierError:
                    pass  # the other caller is waiting for a lock this one holds: go on
            return result

        self.monkeypatch.setattr(module, name, wrapper)

    def as_role(self, job, role: str):
        def prepare():
            self.local.role = role
            return job()
        return labelled(prepare, role)


def test_11_bulk_status_changes_over_the_same_orders_in_another_order_do_not_deadlock(worker, support, monkeypatch):
    first, second = bank_transfer_order(support), bank_transfer_order(support)
    Interleaving(monkeypatch).pause_after(order_actions, "lock_order")
    ids = [first.order_id, second.order_id]
    outcomes = race(worker, [_bulk(ids, "cancelled", label="forward"),
                             _bulk(ids, "cancelled", reverse=True, label="backward")])

    no_errors(outcomes)
    assert sorted(o.value[0] for o in outcomes) == [0, 2]


def test_11_a_bulk_cancel_and_a_cancel_of_one_of_its_orders_sharing_a_promo_code_do_not_deadlock(
        worker, support, monkeypatch):
    """Two unpaid orders with the same promo code. The bulk Cancel gave back the first order's use (locking the
    code's row) and then waited for the second order, which an agent's Cancel held while it waited to give back
    its own use on that row: PostgreSQL aborted one of them. The bulk action locks all its orders first."""
    promo_codes.create({"code": "SPRING", "kind": "percent", "value": "10"}, AGENT)
    make_transfer_account()
    package = make_package("credit", [support], credits=10)
    cases = []
    for _ in range(2):
        customer = make_customer()
        cases.append(case_of(placement.place_customer_order(
            customer, package, payment_method="bank_transfer", actor=as_customer(customer), promo_code="SPRING",
            contracts_accepted=True), customer))
    db.session.commit()
    ids = [case.order_id for case in cases]

    interleaving = Interleaving(monkeypatch)
    interleaving.pause_after(promo_codes, "release_use", role="bulk")
    interleaving.pause_after(order_actions, "lock_order", role="single")
    outcomes = race(worker, [interleaving.as_role(_bulk(ids, "cancelled"), "bulk"), interleaving.as_role(
        on_order(ids[1], lambda o: order_actions.cancel_order(o, AGENT)), "single")])

    no_errors(outcomes)
    assert {db.session.get(Order, i).status for i in ids} == {"cancelled"}
    assert db.session.scalar(select(PromoCode.uses).where(PromoCode.code == "SPRING")) == 0


def test_11_what_a_custom_status_counts_as_does_not_change_under_a_bulk_change_to_it(worker, support,
                                                                                    monkeypatch):
    """A bulk change to a custom status read what it counts as (pending), and an edit counted no order carrying it
    and made it count as cancelled meanwhile: the orders carried a status that says cancelled while they were
    pending. Forced: the bulk change waits, after reading the status, for the edit to commit. The bulk change
    holds the status row shared and the edit takes it exclusively, so the edit waits and then sees the orders."""
    import threading

    from limonbilling.models import OrderStatus
    from limonbilling.services import order_statuses

    first, second = bank_transfer_order(support), bank_transfer_order(support)
    order_actions.cancel_order(db.session.get(Order, second.order_id), AGENT)  # pending again by the bulk change
    status = order_statuses.save(None, name="Waiting for the bank", colour="#1a7f37", counts_as="pending",
                                 actor=AGENT)
    db.session.commit()
    status_id, edited, real_lock_order = status.id, threading.Event(), order_actions.lock_order

    def wait_then_lock_order(*args, **kwargs):
        if getattr(threading.current_thread(), "bulk", False):  # once, before its first order
            threading.current_thread().bulk = False
            edited.wait(timeout=3)  # with the row held shared, the edit cannot commit: go on after 3 s
        return real_lock_order(*args, **kwargs)

    monkeypatch.setattr(order_actions, "lock_order", wait_then_lock_order)

    def bulk():
        selected = list(db.session.scalars(select(Order).where(Order.id.in_([first.order_id, second.order_id]))))

        def action():
            threading.current_thread().bulk = True
            return order_actions.bulk_set_status(selected, f"custom:{status_id}", AGENT)
        return action

    def edit():
        def action():
            order_statuses.save(db.session.get(OrderStatus, status_id), name="Waiting for the bank",
                                colour="#1a7f37", counts_as="cancelled", actor=AGENT)
            db.session.commit()
            edited.set()
        return action

    outcomes = race(worker, [labelled(bulk, "bulk"), labelled(edit, "edit")])

    no_errors(outcomes)
    counts_as = db.session.get(OrderStatus, status_id).counts_as
    carried = db.session.scalars(select(Order).where(Order.custom_status_id == status_id)).all()
    assert carried and {order.status for order in carried} == {counts_as}


def test_approving_a_cancellation_with_refunds_while_the_renewal_is_cancelled_does_not_deadlock(
        worker, support, clock, monkeypatch):
    from limonbilling.models import CancellationRequest
    from limonbilling.services import cancellations

    customer = make_customer()
    package = make_package("subscription", [support], days=30)
    placement.place_agent_order(customer, package, payment_method="manual", actor=AGENT)
    clock.advance(days=10)
    renewal = placement.place_agent_order(customer, package, payment_method="manual", actor=AGENT)  # days 30–60
    request_id = cancellations.request_cancellation(customer, timing="period_end", reason="Too expensive",
                                                    actor=as_customer(customer)).id
    db.session.commit()
    assert renewal.kind == "renewal" and renewal.status == "active"
    case = case_of(renewal, customer)

    interleaving = Interleaving(monkeypatch)
    interleaving.pause_after(ledger, "lock_customer", role="approve")
    interleaving.pause_after(order_actions, "lock_order", role="cancel")

    def approve():
        request = db.session.get(CancellationRequest, request_id)
        return lambda: cancellations.approve(request, AGENT, refund_renewals=RefundDestination.BALANCE)

    outcomes = race(worker, [interleaving.as_role(approve, "approve"),
                             interleaving.as_role(on_order(case.order_id, lambda o: order_actions.cancel_order(o,
                                                                                                               AGENT)),
                                                  "cancel")])

    no_errors(outcomes)
    order = db.session.get(Order, case.order_id)
    assert (order.status, order.activated) == ("cancelled", False) and audits("entitlement.revoke") == 1
    # Approved first: the renewal is refunded. Cancelled first: its period is gone, so it is no renewal ahead
    # any more and keeps its money for the agent to refund from the order page.
    assert len(order.refunds) <= 1 and balance_of(case.customer_id) == sum(r.amount_minor for r in order.refunds)
    assert order.payment_status == ("refunded" if order.refunds else "paid")


def test_approving_a_cancellation_that_refunds_two_renewals_while_the_second_is_refunded_does_not_deadlock(
        worker, support, clock, monkeypatch):
    """Two renewals bought ahead, refunded to the balance by the approval: the first refund locks the customer,
    and the approval then locked the second renewal's order, while an agent's refund of that order held it and
    waited for the customer (order, then customer). The approval locks every renewal order first."""
    from limonbilling.models import CancellationRequest
    from limonbilling.services import cancellations, refunds

    settings.update({"renewal_window_days": 90}, AGENT)
    customer = make_customer()
    package = make_package("subscription", [support], days=30)
    placement.place_agent_order(customer, package, payment_method="manual", actor=AGENT)
    clock.advance(days=10)
    placement.place_agent_order(customer, package, payment_method="manual", actor=AGENT)  # days 30–60
    second = placement.place_agent_order(customer, package, payment_method="manual", actor=AGENT)  # days 60–90
    request_id = cancellations.request_cancellation(customer, timing="period_end", reason="Too expensive",
                                                    actor=as_customer(customer)).id
    db.session.commit()
    case = case_of(second, customer)

    interleaving = Interleaving(monkeypatch)
    interleaving.pause_after(ledger, "lock_customer", role="approve")
    interleaving.pause_after(refunds, "lock_order", role="refund")

    def approve():
        request = db.session.get(CancellationRequest, request_id)
        return lambda: cancellations.approve(request, AGENT, refund_renewals=RefundDestination.BALANCE)

    outcomes = race(worker, [interleaving.as_role(approve, "approve"), interleaving.as_role(on_order(
        case.order_id, lambda o: refunds.start(o, to=RefundDestination.BALANCE, actor=AGENT)), "refund")])

    no_errors(outcomes)
    order = db.session.get(Order, case.order_id)
    assert len(order.refunds) == 1 and order.payment_status == "refunded"


# --- 12: reconciliation, and expiry, against the bank's callback --------------------------------------------

@pytest.mark.parametrize("asker", ["attempt", "order_page"])
def test_12_asking_the_bank_and_its_callback_at_once_pay_once(worker, bank, support, asker):
    case, approval = unpaid_card_order(support)
    bank_holds(bank, case)
    gateway = NestPayGateway()
    if asker == "attempt":  # the cron and the worker, by attempt
        ask = call(lambda: card_payments.ask_bank_about_attempt(case.payment_id, gateway, BANK), "ask")
    else:  # the order page's "Ask the bank"
        ask = on_order(case.order_id, lambda o: card_payments.ask_bank(o, gateway, AGENT), "ask")
    jobs = [ask, call(lambda: card_payments.apply_card_callback(gateway, approval, BANK), "callback")] * HALF
    outcomes = race(worker, jobs)

    no_errors(outcomes)
    assert len(done(outcomes)) == THREADS
    order = db.session.get(Order, case.order_id)
    [payment] = order.payments
    assert (payment.state, order.payment_status, order.status, order.activated) == (
        "confirmed", "paid", "pending", True)
    assert order.refunds == [] and count(Grant, Grant.order_id == case.order_id) == 1
    assert ledger_rows(case.customer_id, "purchase") == [10] and credits_consistent(case.customer_id) == 10
    assert audits("order.paid", case.order_id) == 1 and audits("payment.reconciled", case.order_id) <= 1
    assert mails(case.number, "purchase_activated", case.email) == 1
    assert (bank.payments[case.oid].status, bank.payments[case.oid].refunded_minor) == ("S", 0)


def test_12_expiry_and_the_approval_at_once_never_cancel_a_paid_checkout(worker, bank, support, clock):
    case, approval = unpaid_card_order(support)
    bank_holds(bank, case)
    gateway = NestPayGateway()
    clock.advance(minutes=31)  # past the checkout time: the cron would expire it
    jobs = [call(lambda: card_payments.expire_checkout(case.order_id, gateway, BANK), "expire"),
            call(lambda: card_payments.apply_card_callback(gateway, approval, BANK), "callback")] * HALF
    outcomes = race(worker, jobs)

    no_errors(outcomes)
    assert [o.value for o in done(outcomes, "expire")] == [False] * HALF
    order = db.session.get(Order, case.order_id)
    [payment] = order.payments
    assert (payment.state, order.payment_status, order.status, order.activated) == (
        "confirmed", "paid", "pending", True)
    assert order.refunds == [] and count(Grant, Grant.order_id == case.order_id) == 1
    assert credits_consistent(case.customer_id) == 10
    assert audits("order.paid", case.order_id) == 1 and audits("order.expired", case.order_id) == 0


def test_12_sixteen_expiries_of_a_checkout_the_bank_never_paid_cancel_once(worker, bank, support, clock):
    code_id = promo_codes.create({"code": "LATE", "kind": "percent", "value": "10", "max_uses": 3}, AGENT).id
    db.session.commit()
    customer = make_customer()
    order = placement.place_customer_order(customer, make_package("credit", [support], credits=10),
                                           payment_method="card",
                                actor=as_customer(customer), promo_code="LATE", contracts_accepted=True)
    attempt = card_payments.start_card_payment(order, "nestpay")
    db.session.commit()
    case = case_of(order, customer, attempt)  # the bank has no sale for it: ORDERSTATUS says ERR
    gateway = NestPayGateway()
    clock.advance(minutes=31)
    outcomes = race(worker, [call(lambda: card_payments.expire_checkout(case.order_id, gateway, BANK))] * THREADS)

    no_errors(outcomes)
    assert sorted(o.value for o in outcomes) == [False] * (THREADS - 1) + [True]
    order = db.session.get(Order, case.order_id)
    assert (order.status, order.payments[0].state, order.promo_use_held) == ("cancelled", "failed", False)
    assert db.session.get(PromoCode, code_id).uses == 0
    assert audits("order.expired", case.order_id) == 1 and audits("payment.failed", case.order_id) == 1
    assert audits("payment.reconciled", case.order_id) == 1


# --- 13: a half 3-D post-back heard after the bank's status, and settling a flagged order -------------------

def test_13_sixteen_copies_of_a_late_half_3d_post_back_flag_the_order_once(worker, bank, support):
    case, _approval = unpaid_card_order(support)
    bank_holds(bank, case)
    gateway = NestPayGateway()
    card_payments.ask_bank_about_attempt(case.payment_id, gateway, BANK)  # the post-back was lost: asked
    db.session.commit()
    half_3d = bank_answer(db.session.get(Payment, case.payment_id), mdStatus="2")
    outcomes = race(worker, [call(lambda: card_payments.apply_card_callback(gateway, half_3d, BANK))] * THREADS)

    no_errors(outcomes)
    order = db.session.get(Order, case.order_id)
    assert "half 3-D" in order.attention and order.payments[0].md_status == "2"
    assert audits("payment.half_3d_after_status", case.order_id) == 1
    assert mails(case.number, "money_needs_attention", TEAM) == 1
    assert count(Grant, Grant.order_id == case.order_id) == 1  # nothing taken back by itself


def test_13_sixteen_agents_settling_one_flag_settle_it_once(worker, gateway, support):
    case = paid_card_order(gateway, support)
    db.session.get(Order, case.order_id).attention = "The bank refused the Void."
    db.session.commit()
    outcomes = race(worker, [on_order(case.order_id, lambda o: order_actions.settle_attention(o, "kept",
                                                                                              AGENT))] * THREADS)

    exactly_one(outcomes, "nothing_flagged")
    assert db.session.get(Order, case.order_id).attention is None
    assert audits("order.attention_settled", case.order_id) == 1


# --- 14: an agent's card order paid through its mailed link -------------------------------------------------

def test_14_sixteen_payers_of_one_payment_link_pay_and_activate_once(worker, gateway, support):
    """Sixteen tabs open the mailed link of a 2 × 10 credits order and pay at once (each card attempt approved
    at once): one payment is taken and activates 20 credits; the others find the order paid."""
    customer = make_customer()
    order = placement.place_agent_order(customer, make_package("credit", [support], credits=10), quantity=2,
                                        payment_method="card", actor=AGENT)
    db.session.commit()
    case, token = case_of(order, customer), tokens.payment_link_token(order)

    def payer():
        payer_customer = db.session.get(Customer, case.customer_id)

        def pay():
            linked = card_payments.payment_link_order(token, payer_customer)
            attempt = card_payments.start_card_payment(linked, "nestpay")
            db.session.flush()
            return card_payments.apply_card_callback(gateway, bank_answer(attempt), BANK).number
        return pay

    outcomes = race(worker, [labelled(payer, "payer")] * THREADS)
    exactly_one(outcomes, "not_payable", "link_paid")
    order = db.session.get(Order, case.order_id)
    [payment] = order.payments
    assert (payment.state, order.payment_status, order.activated, order.quantity) == ("confirmed", "paid", True, 2)
    assert count(Grant, Grant.order_id == case.order_id) == 1 and order.refunds == []
    assert ledger_rows(case.customer_id, "purchase") == [20] and credits_consistent(case.customer_id) == 20
    assert audits("order.paid", case.order_id) == 1 and audits("entitlement.activate") == 1
    assert mails(case.number, "payment_link", case.email) == 1
    assert mails(case.number, "purchase_activated", case.email) == 1


def test_14_sixteen_agents_sending_the_link_again_send_it_once_and_half_paying_meanwhile_stops_it(worker, gateway,
                                                                                                   support, clock):
    """Sixteen agents press "Send it again" in the same minute: one mail, one audit entry. Then half press it
    while the customer pays through the link: the payment is taken once and no link is sent after it."""
    customer = make_customer()
    order = placement.place_agent_order(customer, make_package("credit", [support], credits=10),
                                        payment_method="card", actor=AGENT)
    db.session.commit()
    case, token = case_of(order, customer), tokens.payment_link_token(order)
    clock.advance(days=1)

    outcomes = race(worker, [on_order(case.order_id, lambda o: card_payments.resend_payment_link(o, AGENT))]
                    * THREADS)
    no_errors(outcomes)
    assert sorted(o.value for o in done(outcomes)) == [False] * (THREADS - 1) + [True]
    assert mails(case.number, "payment_link", case.email) == 2 and audits("order.payment_link_resent") == 1

    clock.advance(minutes=1)

    def payer():
        payer_customer = db.session.get(Customer, case.customer_id)

        def pay():
            attempt = card_payments.start_card_payment(card_payments.payment_link_order(token, payer_customer),
                                                       "nestpay")
            db.session.flush()
            return card_payments.apply_card_callback(gateway, bank_answer(attempt), BANK).number
        return pay

    outcomes = race(worker, [labelled(payer, "payer"), on_order(
        case.order_id, lambda o: card_payments.resend_payment_link(o, AGENT), "resend")] * HALF)
    no_errors(outcomes)
    assert len(done(outcomes, "payer")) == 1
    assert set(refusals(outcomes)) <= {"not_payable", "link_paid"}
    order = db.session.get(Order, case.order_id)
    assert (order.payment_status, order.activated, len(order.payments)) == ("paid", True, 1)
    resent = [o for o in done(outcomes, "resend") if o.value]
    assert len(resent) <= 1 and mails(case.number, "payment_link", case.email) == 2 + len(resent)
    assert credits_consistent(case.customer_id) == 10


# --- 15: a card sale in instalments -----------------------------------------------------------------------------

def instalment_card_order(support, count: int = 3) -> tuple[Case, Payment]:
    offer_instalments((count, 0, 250))
    customer = make_customer()
    order, attempt = card_order(customer, make_package("credit", [support], credits=10), instalment_count=count)
    return case_of(order, customer, attempt), attempt


def test_15_sixteen_copies_of_an_approval_in_instalments_pay_once(worker, gateway, support):
    case, attempt = instalment_card_order(support, 6)
    approval = bank_answer(attempt)
    outcomes = race(worker, [call(lambda: card_payments.apply_card_callback(gateway, approval, BANK))] * THREADS)
    no_errors(outcomes)
    order = db.session.get(Order, case.order_id)
    [payment] = order.payments
    assert (payment.state, payment.instalments, order.payment_status, order.refunds) == ("confirmed", 6, "paid", [])
    assert count(Grant, Grant.order_id == case.order_id) == 1 and audits("order.paid", case.order_id) == 1
    assert credits_consistent(case.customer_id) == 10


def test_15_sixteen_copies_of_an_approval_with_another_count_return_the_money_once(worker, bank, support):
    case, attempt = instalment_card_order(support, 3)
    tampered = bank_answer(attempt, Instalment="6")  # signed: the bank took the money, in another split
    bank_holds(bank, case)
    outcomes = race(worker, [call(as_the_callback_view(NestPayGateway(), tampered))] * THREADS)
    no_errors(outcomes)
    order = db.session.get(Order, case.order_id)
    [payment] = order.payments
    [refund] = order.refunds
    assert (payment.failure_code, order.activated, order.grants) == ("instalment_mismatch", False, [])
    assert (refund.automatic, refund.state, refund.operation, refund.amount_minor) == (
        True, "done", "void", case.amount_minor)
    assert (payment.state, order.payment_status, bank.payments[case.oid].status) == ("refunded", "refunded", "V")
    assert audits("payment.returned", case.order_id) == 1 and audits("order.refund", case.order_id) == 1


def test_15_sixteen_refunds_of_an_instalment_sale_return_it_whole_once(worker, gateway, support):
    case, attempt = instalment_card_order(support, 3)
    card_payments.apply_card_callback(gateway, bank_answer(attempt), BANK)
    db.session.commit()

    def whole(order):
        return refunds.start(order, to=RefundDestination.CARD, actor=AGENT)

    def part(order):
        return refunds.start(order, to=RefundDestination.CARD, actor=AGENT, amount_minor=100)

    outcomes = race(worker, [on_order(case.order_id, whole, "whole"), on_order(case.order_id, part, "part")] * HALF)
    winner = exactly_one(outcomes, "nothing_to_refund", "refund_in_flight", "instalments_whole_refund",
                         "refund_amount")
    assert winner.name == "whole"
    order = db.session.get(Order, case.order_id)
    [refund] = order.refunds
    assert (refund.amount_minor, refund.destination, refund.closes_order) == (case.amount_minor, "card", True)


def balance_buyer(customer_id: int, package_id: int):
    """A caller that loads the customer and the package, then buys the package from the account balance."""
    def job():
        customer, package = db.session.get(Customer, customer_id), db.session.get(Package, package_id)
        return lambda: placement.place_customer_order(customer, package, payment_method="account_balance",
                                                      actor=as_customer(customer), contracts_accepted=True)
    return job


def test_a_refund_to_the_balance_while_the_customer_buys_from_the_balance_does_not_deadlock(worker, gateway, support,
                                                                                          monkeypatch):
    """A refund to the balance locks the order, moves the balance, then locks the customer to revoke what the
    order gave; a purchase from the balance locks the customer, then moves the balance. Held after their first
    lock until the other holds its own, they deadlocked (PostgreSQL aborted the refund) until every balance
    movement took the customer's lock first."""
    case = paid_card_order(gateway, support)
    package_id = make_package("credit", [support], credits=5, price="1.00").id
    balance.move(case.customer_id, "TRY", 100, "adjustment", reason="for the purchase")
    db.session.commit()

    buy = balance_buyer(case.customer_id, package_id)
    interleaving = Interleaving(monkeypatch)
    interleaving.pause_after(balance, "move", role="refund")
    interleaving.pause_after(ledger, "lock_customer", role="buy")
    refund = on_order(case.order_id, lambda o: refunds.start(o, to=RefundDestination.BALANCE, actor=AGENT))
    outcomes = race(worker, [interleaving.as_role(refund, "refund"), interleaving.as_role(buy, "buy")])

    no_errors(outcomes)
    assert len(done(outcomes)) == 2, outcomes
    assert balance_of(case.customer_id) == case.amount_minor  # 1.00 in and out again, and the refund
    assert db.session.get(Order, case.order_id).status == "cancelled"


def test_sixteen_refunds_to_the_balance_and_purchases_from_it_at_once_move_it_exactly(worker, gateway, support):
    """Half the callers refund a paid order to the balance, half buy a small package from the balance: one
    refund, each purchase paid from money that was there, and the balance is the sum of its entries."""
    case = paid_card_order(gateway, support)
    package_id = make_package("credit", [support], credits=5, price="1.00").id
    balance.move(case.customer_id, "TRY", 300, "adjustment", reason="three purchases")
    db.session.commit()

    buy = balance_buyer(case.customer_id, package_id)
    refund = on_order(case.order_id, lambda o: refunds.start(o, to=RefundDestination.BALANCE, actor=AGENT),
                      "refund")
    outcomes = race(worker, [refund, labelled(buy, "buy")] * HALF)

    no_errors(outcomes)
    assert len(done(outcomes, "refund")) == 1
    assert set(refusals(outcomes)) <= {"nothing_to_refund", "refund_in_flight", "insufficient_balance"}
    bought = len(done(outcomes, "buy"))
    assert 3 <= bought <= HALF
    entries = [e.amount_minor for e in db.session.scalars(
        select(BalanceEntry).where(BalanceEntry.customer_id == case.customer_id))]
    assert sorted(entries) == sorted([300, case.amount_minor] + [-100] * bought)
    assert balance_of(case.customer_id) == sum(entries) == 300 + case.amount_minor - 100 * bought
    assert count(Order, Order.customer_id == case.customer_id, Order.payment_status == "paid") == bought


# --- 16: the bank's answers out of order (attack pass 6) ---------------------------------------------------------

def test_16_an_approval_and_a_decline_of_one_attempt_at_once_take_the_money_once(worker, gateway, support):
    """The bank's OK and FAIL post-backs of the same attempt (the customer retried on its 3-D page), eight copies
    of each at once, in whatever order: the approval counts, once; a decline after it changes nothing."""
    case, approval = unpaid_card_order(support)
    decline = bank_answer(db.session.get(Payment, case.payment_id), approved=False)
    jobs = [call(lambda: card_payments.apply_card_callback(gateway, approval, BANK), "ok"),
            call(lambda: card_payments.apply_card_callback(gateway, decline, BANK), "fail")] * HALF
    outcomes = race(worker, jobs)

    no_errors(outcomes)
    order = db.session.get(Order, case.order_id)
    [payment] = order.payments
    assert (payment.state, payment.proc_return_code, order.payment_status, order.refunds) == (
        "confirmed", "00", "paid", [])
    assert count(Grant, Grant.order_id == case.order_id) == 1 and credits_consistent(case.customer_id) == 10
    assert audits("order.paid", case.order_id) == 1


def test_16_reconciliations_and_the_late_approval_of_a_declined_attempt_at_once_take_the_money_once(
        worker, bank, support):
    """The attempt was declined (its FAIL post-back heard); the customer sent the bank's form again and paid on
    the same oid. Eight reconciliations asking about the declined attempt and eight copies of the approval's
    post-back at once: the money is taken once, nothing is returned."""
    case, approval = unpaid_card_order(support)
    gateway = NestPayGateway()
    decline = bank_answer(db.session.get(Payment, case.payment_id), approved=False)
    card_payments.apply_card_callback(gateway, decline, BANK)
    db.session.commit()
    bank_holds(bank, case)
    jobs = [call(lambda: card_payments.ask_bank_about_attempt(case.payment_id, gateway, BANK), "ask"),
            call(lambda: card_payments.apply_card_callback(gateway, approval, BANK), "callback")] * HALF
    outcomes = race(worker, jobs)

    no_errors(outcomes)
    order = db.session.get(Order, case.order_id)
    [payment] = order.payments
    assert (payment.state, order.payment_status, order.activated, order.refunds) == ("confirmed", "paid", True, [])
    assert count(Grant, Grant.order_id == case.order_id) == 1 and credits_consistent(case.customer_id) == 10
    assert audits("order.paid", case.order_id) == 1
    assert (bank.payments[case.oid].status, bank.payments[case.oid].refunded_minor) == ("S", 0)


def test_16_expiry_finding_no_sale_then_the_approval_copies_return_the_money_once(worker, bank, support, clock,
                                                                                  monkeypatch):
    """Expiry asks the bank, which has no sale yet (the customer is still on its 3-D page), and cancels the
    checkout; the approval arrives just then, fifteen copies of it (its POST and GET, retried): the order stays
    cancelled, gives nothing, and the money goes back to the card once."""
    case, approval = unpaid_card_order(support)
    gateway = NestPayGateway()
    clock.advance(minutes=31)
    asked, real_ask = threading.Event(), card_payments.ask_bank_about_attempt

    def ask_then_the_customer_pays(*args, **kwargs):
        line = real_ask(*args, **kwargs)  # "no sale": the attempt failed, the order's lock is still held
        bank_holds(bank, case)
        asked.set()
        return line

    monkeypatch.setattr(card_payments, "ask_bank_about_attempt", ask_then_the_customer_pays)

    def callback():
        view = as_the_callback_view(gateway, approval)

        def act():
            assert asked.wait(10)
            return view()
        return act

    outcomes = race(worker, [call(lambda: card_payments.expire_checkout(case.order_id, gateway, BANK), "expire")]
                    + [labelled(callback, "callback")] * (THREADS - 1))

    no_errors(outcomes)
    assert [o.value for o in done(outcomes, "expire")] == [True]
    order = db.session.get(Order, case.order_id)
    [payment] = order.payments
    [refund] = order.refunds
    assert (order.status, order.activated, count(Grant, Grant.order_id == case.order_id)) == ("cancelled", False, 0)
    assert (refund.automatic, refund.amount_minor, refund.state, payment.state) == (
        True, case.amount_minor, "done", "refunded")
    assert (bank.payments[case.oid].status, order.payment_status) == ("V", "refunded")
    assert audits("order.expired", case.order_id) == 1 and audits("payment.returned", case.order_id) == 1
    assert audits("order.refund", case.order_id) == 1 and audits("order.paid", case.order_id) == 0


def test_17_sixteen_copies_of_an_approval_then_sixteen_refunds_send_each_webhook_once(worker, gateway, support):
    """Webhooks are queued under the order's lock with the change: sixteen copies of the bank's approval tell
    order.paid once, sixteen Cancel & Refunds to the balance tell order.refunded and the move to cancelled once."""
    webhooks.create("http://127.0.0.1:9/hook", list(webhooks.DATA), AGENT)
    db.session.commit()
    case, approval = unpaid_card_order(support)
    no_errors(race(worker, [call(lambda: card_payments.apply_card_callback(gateway, approval, BANK))] * THREADS))
    exactly_one(race(worker, [on_order(
        case.order_id, lambda o: refunds.start(o, to=RefundDestination.BALANCE, actor=AGENT))] * THREADS),
        "nothing_to_refund", "refund_in_flight")

    sent = Counter(db.session.scalars(select(Notification.event).where(Notification.channel == "webhook",
                                                                       Notification.event != "credits.low")))
    assert sent == {"order.paid": 1, "order.refunded": 1, "order.status_changed": 1, "entitlement.changed": 2}


# --- 18: help-desk charges while an agent takes back, gives back or replaces the credits ------------------------

CHARGES = 12
CHARGE_REFUSALS = {"insufficient_credits", "department_not_enabled"}


def charge(customer_id: int, department_id: int, reference: str):
    from limonbilling.services import charging

    return call(lambda: charging.charge_usage(customer_id, department_id, "ticket", reference), "charge")


def charges_backed(outcomes: list[Outcome], customer_id: int, prefix: str = "a") -> int:
    """Every accepted charge (references `prefix`…) has exactly one usage and, for a cost, one usage ledger row
    of that cost; refused charges left nothing; the ledger equals the balance, never below zero. Returns the
    credits charged."""
    from limonbilling.models import Usage

    accepted = [o.value for o in done(outcomes, "charge") if not o.value.repeated]
    assert {o.value for o in outcomes if o.kind == "refused" and o.name == "charge"} <= CHARGE_REFUSALS
    usages = {usage.id: usage for usage in db.session.scalars(select(Usage).where(
        Usage.customer_id == customer_id, Usage.reference.startswith(prefix)))}
    assert sorted(usages) == sorted(result.usage_id for result in accepted)
    for result in accepted:
        rows = ledger_rows_of_usage(result.usage_id)
        assert rows == ([-result.charged] if result.charged else []), (result, rows)
        assert usages[result.usage_id].cost == result.charged
    assert credits_consistent(customer_id) >= 0
    return sum(result.charged for result in accepted)


def ledger_rows_of_usage(usage_id: int) -> list[int]:
    return list(db.session.scalars(select(LedgerEntry.amount).where(LedgerEntry.usage_id == usage_id)))


def test_18_charges_while_the_customer_switches_to_a_subscription_never_use_forfeited_credits(worker, gateway):
    """Rule 4 forfeits the credits left when the switch locks the customer: twelve charges and four purchases of
    a subscription at once forfeit exactly what the charges left, once; charges after it are the
    subscription's, free."""
    from limonbilling.services import entitlements

    department_id = make_department("One a ticket", credit_per_request=1).id
    customer, order = _paid_customer_order(gateway, db.session.get(Department, department_id))
    package_id = make_package("subscription", [db.session.get(Department, department_id)]).id
    customer_id = customer.id
    db.session.commit()

    def switch():
        entitlements.activate_package(db.session.get(Customer, customer_id), db.session.get(Package, package_id),
                                      source="test", actor=AGENT)

    outcomes = race(worker, [charge(customer_id, department_id, f"a{k}") for k in range(CHARGES)]
                    + [call(switch, "switch")] * (THREADS - CHARGES))
    no_errors(outcomes)
    assert len(done(outcomes, "switch")) >= 1
    used = charges_backed(outcomes, customer_id)
    forfeited = ledger_rows(customer_id, "forfeit")
    assert len(forfeited) <= 1 and used - sum(forfeited) == 10
    assert credits_consistent(customer_id) == 0
    assert db.session.get(Customer, customer_id).package_type == "subscription"


def test_18_charges_landing_while_a_cancel_holds_the_customer_wait_for_it(worker, gateway, monkeypatch):
    """Forced: the Cancel has read the balance (10) under the customer's lock when fifteen charges arrive. They
    wait for it and then find nothing left; were the balance read unlocked, they would spend it and the Cancel
    would try to take back 10 credits that are no longer there."""
    import time

    from limonbilling.services import charging

    department_id = make_department("One a ticket", credit_per_request=1).id
    customer, order = _paid_customer_order(gateway, db.session.get(Department, department_id))
    case = case_of(order, customer)
    locked, real_post = threading.Event(), ledger.post

    def hold_then_post(*args, **kwargs):  # the Cancel has read the balance it takes back
        locked.set()
        time.sleep(1)  # the charges run now
        return real_post(*args, **kwargs)

    monkeypatch.setattr(ledger, "post", hold_then_post)

    def late_charge(k):
        def act():
            locked.wait(10)
            return charging.charge_usage(case.customer_id, department_id, "ticket", f"a{k}")
        return call(act, "charge")

    outcomes = race(worker, [on_order(case.order_id, lambda o: order_actions.cancel_order(o, AGENT), "cancel")]
                    + [late_charge(k) for k in range(THREADS - 1)])
    no_errors(outcomes)
    assert len(done(outcomes, "cancel")) == 1, outcomes
    assert charges_backed(outcomes, case.customer_id) == 0
    assert ledger_rows(case.customer_id, "reversal") == [-10] and credits_consistent(case.customer_id) == 0


def test_19_a_cancel_that_loaded_the_grant_before_a_switch_forfeited_it_takes_back_no_time(worker, support,
                                                                                          monkeypatch):
    """The Cancel of a subscription order loads the order's grant (and here its period), then locks the customer
    to revoke it; a purchase of credits that commits in between forfeits the subscription. Revoking the copies
    loaded before the lock kept the period's whole remainder in the reversal note, as if the Cancel had taken it,
    so an Accept of the same money could give back time the switch had already forfeited (attack pass 9). Forced:
    the revocation waits for the switch's commit."""
    import threading

    from limonbilling.models import Customer, Package
    from limonbilling.services import entitlements

    customer = make_customer()
    order = placement.place_agent_order(customer, make_package("subscription", [support], days=30),
                                        payment_method="manual", actor=AGENT)
    db.session.commit()
    order_id, customer_id = order.id, customer.id
    credits_id = make_package("credit", [support], credits=5).id
    switched, real_revoke = threading.Event(), entitlements.revoke_grant

    def revoke_after_the_switch(grant, *args, **kwargs):
        assert grant.period is not None  # loaded before the lock, as a caller showing or checking it would have
        if not switched.wait(timeout=30):
            raise RuntimeError("the switch did not commit within 30 s")
        return real_revoke(grant, *args, **kwargs)

    monkeypatch.setattr(entitlements, "revoke_grant", revoke_after_the_switch)

    def switch():
        def action():
            placement.place_agent_order(db.session.get(Customer, customer_id), db.session.get(Package, credits_id),
                                        payment_method="manual", actor=AGENT)
            db.session.commit()
            switched.set()
        return action

    outcomes = race(worker, [on_order(order_id, lambda o: order_actions.cancel_order(o, AGENT), "cancel"),
                             labelled(switch, "switch")])

    no_errors(outcomes)
    [grant] = db.session.get(Order, order_id).grants
    notes = db.session.scalars(select(LedgerEntry).where(LedgerEntry.grant_id == grant.id,
                                                         LedgerEntry.kind == "reversal")).all()
    assert [(entry.reason_args or {}).get("left_seconds") for entry in notes] in ([], [0])


def test_20_the_expiry_run_and_a_renewal_at_once_leave_the_renewed_subscription_its_departments(
        worker, support, clock, monkeypatch):
    """Forced: the cron's `expire` found the ended subscription covers nothing now, and then the customer's
    renewal committed (its department was still on, so the renewal added none); the run went on and switched the
    department off. The customer paid for thirty days and every ticket was refused, and no later run switched it
    back on (it looks only at customers with a package department)."""
    from limonbilling.services import charging, entitlements

    customer = make_customer()
    package = make_package("subscription", [support], days=30)
    customer_id, package_id, department_id = customer.id, package.id, support.id
    entitlements.activate_package(customer, package, source="test", actor=AGENT)
    db.session.commit()
    clock.advance(days=30, minutes=5)  # ended five minutes ago; the cron has not run since
    Interleaving(monkeypatch).pause_after(entitlements, "_entitled_department_ids")

    def renew():
        entitlements.activate_package(db.session.get(Customer, customer_id), db.session.get(Package, package_id),
                                      source="test", actor=AGENT)

    outcomes = race(worker, [call(lambda: entitlements.expire_subscriber(customer_id), "expire"), call(renew, "renew")])

    no_errors(outcomes)
    assert len(done(outcomes)) == 2
    customer = db.session.get(Customer, customer_id)
    assert [(row.department_id, row.source) for row in customer.departments] == [(department_id, "package")]
    charged = charging.charge_usage(customer_id, department_id, "ticket", "after-renewal")
    assert (charged.covered_by, charged.charged) == ("subscription", 0)
