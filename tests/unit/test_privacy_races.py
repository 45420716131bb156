"""Races on erasure requests (PostgreSQL only, as in test_lifecycle_races.py): many approvals of one request, or
approvals and rejections at once, decide it once, erase once and write one audit entry; many requests of one
customer at once leave one waiting."""
from sqlalchemy import func, select

from limonbilling.extensions import db
from limonbilling.models import AuditEntry, Customer, ErasureRequest
from limonbilling.services import privacy

from ..factories import PASSWORD, make_customer
from ..payment_support import AGENT, as_customer
from .test_lifecycle_races import THREADS, _postgresql_only, call, done, exactly_one, no_errors, race, worker  # noqa: F401,E501 (fixtures)


def count(model, *conditions) -> int:
    return db.session.scalar(select(func.count()).select_from(model).where(*conditions))


def waiting_request() -> tuple[int, int]:
    customer = make_customer(email="leaving@example.com")
    request = privacy.request_erasure(customer, "I am leaving", PASSWORD, as_customer(customer))
    db.session.commit()
    return customer.id, request.id


def test_sixteen_approvals_of_one_request_erase_once(app, worker):  # noqa: F811
    customer_id, request_id = waiting_request()

    outcomes = race(worker, [call(lambda: privacy.approve(request_id, AGENT))] * THREADS)

    exactly_one(outcomes, "already_decided")
    assert db.session.get(Customer, customer_id).email == f"erased-{customer_id}@invalid"
    assert count(AuditEntry, AuditEntry.action == "customer.erase") == 1
    assert count(AuditEntry, AuditEntry.action == "erasure.approve") == 1


def test_approvals_and_rejections_at_once_answer_the_request_once(app, worker):  # noqa: F811
    customer_id, request_id = waiting_request()
    half = THREADS // 2
    jobs = ([call(lambda: privacy.approve(request_id, AGENT))] * half
            + [call(lambda: privacy.reject(request_id, "Not now.", AGENT))] * half)

    outcomes = race(worker, jobs)

    exactly_one(outcomes, "already_decided")
    state = db.session.get(ErasureRequest, request_id).state
    erased = db.session.get(Customer, customer_id).erased_at is not None
    assert (state, erased) in (("approved", True), ("rejected", False))
    assert count(AuditEntry, AuditEntry.action.in_(("erasure.approve", "erasure.reject"))) == 1
    assert count(AuditEntry, AuditEntry.action == "customer.erase") == int(erased)


def test_sixteen_requests_of_one_customer_leave_one_waiting(app, worker):  # noqa: F811
    customer_id = make_customer().id

    def asking():
        customer = db.session.get(Customer, customer_id)
        return lambda: privacy.request_erasure(customer, "", PASSWORD, as_customer(customer))

    outcomes = race(worker, [asking] * THREADS)

    no_errors(outcomes)
    assert len(done(outcomes)) == 1
    assert count(ErasureRequest, ErasureRequest.customer_id == customer_id) == 1
    assert count(AuditEntry, AuditEntry.action == "erasure.request") == 1


def test_refunds_to_the_balance_racing_the_approval_never_leave_money_with_an_erased_account(app, worker):  # noqa: F811
    """Erasure checks the balance under the customer's lock, and a refund to the balance checks the erasure under
    the same lock: either the refunds come first (and the approval is refused) or the erasure (and they are)."""
    from limonbilling.models import RefundDestination
    from limonbilling.services import balance, refunds

    from ..factories import make_package
    from ..payment_support import paid_by_card

    customer_id, request_id = waiting_request()
    order_id = paid_by_card(db.session.get(Customer, customer_id), make_package("credit", price="100.00")).id
    half = THREADS // 2

    def refunding():
        from limonbilling.models import Order
        order = db.session.get(Order, order_id)
        return lambda: refunds.start(order, to=RefundDestination.BALANCE, actor=AGENT, amount_minor=100)

    outcomes = race(worker, [call(lambda: privacy.approve(request_id, AGENT))] * half + [refunding] * half)

    no_errors(outcomes)
    erased = db.session.get(Customer, customer_id).erased_at is not None
    held = balance.amount_by_id(customer_id, "TRY")
    refused = {o.value for o in outcomes if o.kind == "refused"}
    assert (erased and held == 0) or (not erased and held > 0), (erased, held, refused)
    assert refused <= {"already_decided", "balance_held", "customer_erased"}
