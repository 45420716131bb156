"""Concurrent charges and top-ups at one customer never overdraw, lose an update or charge twice.

Runs on SQLite and on PostgreSQL (the `app` fixture), with real threads, each
with its own app context, session and database connection.
"""
import threading
from concurrent.futures import ThreadPoolExecutor

from limonbilling.extensions import db
from limonbilling.models import Customer, LedgerEntry, Package, Usage
from limonbilling.services import audit, charging, entitlements, ledger
from limonbilling.services.ledger import InsufficientCredits

from ..factories import activate, make_customer, make_department, make_package

THREADS = 32


def _run_concurrently(app, jobs):
    """Start every job at the same instant (a barrier), each in its own app context; return results."""
    barrier = threading.Barrier(len(jobs))
    db.session.close()  # the test's own transaction would hold SQLite's write lock

    def run(job):
        with app.app_context():
            barrier.wait()
            try:
                outcome = job()
                db.session.commit()
                return outcome
            except InsufficientCredits:
                db.session.rollback()
                return "refused"
            finally:
                db.session.remove()

    with ThreadPoolExecutor(max_workers=len(jobs)) as pool:
        return list(pool.map(run, jobs))


def _charge(customer_id, department_id, reference):
    def job():
        customer = db.session.get(Customer, customer_id)
        result = charging.charge_usage(customer.id, department_id, "ticket", reference)
        return "repeated" if result.repeated else result.charged

    return job


def test_32_concurrent_charges_never_overdraw(app):
    department = make_department(credit_per_request=3)
    customer = make_customer()
    activate(customer, make_package("credit", [department], credits=50))
    outcomes = _run_concurrently(app, [_charge(customer.id, department.id, f"T-{n}") for n in range(THREADS)])

    assert outcomes.count(3) == 16 and outcomes.count("refused") == 16
    db.session.expire_all()
    customer = db.session.get(Customer, customer.id)
    assert customer.credits == 2 == ledger.ledger_sum(customer.id)
    usage_entries = db.session.scalars(db.select(LedgerEntry).where(LedgerEntry.kind == "usage")).all()
    assert len(usage_entries) == 16
    assert sorted(entry.balance_after for entry in usage_entries) == list(range(2, 50, 3))
    assert db.session.scalar(db.select(db.func.count(Usage.id))) == 16


def test_the_same_reference_from_32_threads_is_charged_once(app):
    department = make_department(credit_per_request=3)
    customer = make_customer()
    activate(customer, make_package("credit", [department], credits=50))
    outcomes = _run_concurrently(app, [_charge(customer.id, department.id, "SAME") for _ in range(THREADS)])

    assert outcomes.count(3) == 1 and outcomes.count("repeated") == THREADS - 1
    db.session.expire_all()
    assert db.session.get(Customer, customer.id).credits == 47 == ledger.ledger_sum(customer.id)
    assert db.session.scalar(db.select(db.func.count(Usage.id))) == 1


def test_top_ups_while_tickets_are_charged(app):
    department = make_department(credit_per_request=3)
    customer = make_customer()
    package = make_package("credit", [department], credits=10)
    activate(customer, package)
    customer_id, package_id = customer.id, package.id

    def top_up():
        entitlements.activate_package(
            db.session.get(Customer, customer_id), db.session.get(Package, package_id),
            source="test", actor=audit.Actor.system("test"),
        )
        return "topped-up"

    jobs = [top_up if n % 4 == 0 else _charge(customer_id, department.id, f"R-{n}") for n in range(THREADS)]
    outcomes = _run_concurrently(app, jobs)

    charged = outcomes.count(3)
    assert outcomes.count("topped-up") == 8
    db.session.expire_all()
    final = db.session.get(Customer, customer_id).credits
    assert final == 10 + 8 * 10 - 3 * charged == ledger.ledger_sum(customer_id)
    assert final >= 0
