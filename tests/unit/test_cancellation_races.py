"""Races on subscription cancellation requests (PostgreSQL only, as in test_lifecycle_races.py): many requests of
one subscriber at once leave one waiting, so an agent decides it once."""
from sqlalchemy import func, select

from limonbilling.extensions import db
from limonbilling.models import AuditEntry, CancellationRequest, Customer
from limonbilling.services import cancellations, placement

from ..factories import make_customer, make_package
from ..payment_support import AGENT, as_customer
from .test_lifecycle_races import THREADS, _postgresql_only, done, no_errors, race, worker  # noqa: F401 (fixtures)


def test_sixteen_requests_of_one_subscriber_leave_one_waiting(app, worker):  # noqa: F811
    """Found by the attack pass: the check for a waiting request and the insert were not under any lock, so
    parallel requests left several waiting, each to be approved on its own."""
    customer = make_customer()
    placement.place_agent_order(customer, make_package("subscription", days=30), payment_method="manual",
                                actor=AGENT)
    db.session.commit()
    customer_id = customer.id

    def asking():
        customer = db.session.get(Customer, customer_id)
        return lambda: cancellations.request_cancellation(customer, timing="now", reason="Moving away",
                                                          actor=as_customer(customer))

    outcomes = race(worker, [asking] * THREADS)

    no_errors(outcomes)
    assert len(done(outcomes)) == 1
    assert {o.value for o in outcomes if o.kind == "refused"} == {"already_requested"}
    assert db.session.scalar(select(func.count()).select_from(CancellationRequest)) == 1
    assert db.session.scalar(select(func.count()).select_from(AuditEntry).where(
        AuditEntry.action == "cancellation.request")) == 1
