"""Races on erasure requests (PostgreSQL only, as in test_lifecycle_races.py): many approvals of one request, or
approvals and rejections at once, decide it once, erase once and write one audit entry; many requests of one
customer at once leave one waiting."""
from sqlalchemy import func, select

from limonbilling.extensions import db
from limonbilling.models import AuditEntry, Customer, ErasureRequest
from limonbilling.services import privacy

from ..factories import PASSWORD, make_activation_request, make_customer
from ..payment_support import AGENT, as_customer
from .test_lifecycle_races import THREADS, _postgresql_only, call, done, exactly_one, labelled, no_errors, race, worker  # noqa: F401,E501 (fixtures)


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


def test_activation_approvals_just_after_the_erasure_give_no_package_to_the_erased_account(app, worker,  # noqa: F811
                                                                                          monkeypatch):
    """A request submitted just after the erasure checked for waiting ones (forced: that check is passed over),
    and fifteen approvals of it arriving just after the erasure committed (forced: each waits for the commit).
    The order an approval places checks the erasure under the customer's lock: every approval is refused, none
    fails, and the erased account gets no package."""
    import threading

    from limonbilling.models import ActivationRequest, Grant, Order
    from limonbilling.services import activation_requests, decisions

    from ..factories import make_package

    package_id = make_package("credit", price="100.00").id
    customer_id, request_id = waiting_request()
    customer = db.session.get(Customer, customer_id)
    activation_id = make_activation_request(customer).id
    monkeypatch.setattr(privacy, "_refuse_activation_waiting", lambda customer_id: None)
    erased, real_lock_pending = threading.Event(), decisions.lock_pending

    def wait_then_lock_pending(model, *args, **kwargs):
        if model is ActivationRequest:  # the erasure's own request is decided through it too
            if not erased.wait(timeout=30):
                raise RuntimeError("the other caller did not commit within 30 s")
        return real_lock_pending(model, *args, **kwargs)

    monkeypatch.setattr(activation_requests.decisions, "lock_pending", wait_then_lock_pending)

    def erase():
        def action():
            privacy.approve(request_id, AGENT)
            db.session.commit()
            erased.set()
        return action

    outcomes = race(worker, [labelled(erase, "erase")] + [
        call(lambda: activation_requests.approve(activation_id, package_id, AGENT), "activate")] * (THREADS - 1))

    no_errors(outcomes)
    assert db.session.get(Customer, customer_id).erased_at is not None
    assert {o.value for o in outcomes if o.name == "activate"} == {"customer_erased"}
    assert count(Order, Order.customer_id == customer_id) == count(Grant, Grant.customer_id == customer_id) == 0


def test_an_erasure_and_an_activation_approval_at_once_do_not_deadlock(app, worker, monkeypatch):  # noqa: F811
    """The approval locks its request, then the customer (placing the order); the erasure locked the customer,
    then changed the customer's requests: each held what the other waited for, and PostgreSQL aborted one.
    Forced: each holds its first lock until the other holds its own. The erasure locks the requests first."""

    from limonbilling.services import activation_requests, decisions, ledger

    from ..factories import make_package
    from .test_lifecycle_races import Interleaving

    package_id = make_package("credit", price="100.00").id
    customer_id, request_id = waiting_request()
    customer = db.session.get(Customer, customer_id)
    activation_id = make_activation_request(customer).id
    monkeypatch.setattr(privacy, "_refuse_activation_waiting", lambda customer_id: None)  # submitted just after
    interleaving = Interleaving(monkeypatch)
    interleaving.pause_after(decisions, "lock_pending", role="activate")
    interleaving.pause_after(ledger, "lock_customer", role="erase")

    outcomes = race(worker, [
        interleaving.as_role(call(lambda: privacy.approve(request_id, AGENT)), "erase"),
        interleaving.as_role(call(lambda: activation_requests.approve(activation_id, package_id, AGENT)),
                             "activate")])

    no_errors(outcomes)
    assert db.session.get(Customer, customer_id).erased_at is not None
    [activated] = [o for o in outcomes if o.name == "activate"]
    if activated.kind == "refused":  # it waited for the erasure
        assert activated.value == "customer_erased"
    else:  # the erasure waited for it, and erased an account that had bought a package, as any other
        [approval] = db.session.scalars(select(AuditEntry.id).where(AuditEntry.action == "activation.approve"))
        [erasure] = db.session.scalars(select(AuditEntry.id).where(AuditEntry.action == "customer.erase"))
        assert approval < erasure


def test_an_erasure_and_a_cancellation_approval_at_once_do_not_deadlock(app, worker, monkeypatch):  # noqa: F811
    """The approval of a cancellation "now" locks its request, then the customer (ending the subscription); the
    erasure locked the customer, then blanked the customer's cancellation requests: each held what the other
    waited for, and PostgreSQL aborted one. Forced: each holds its first lock until the other holds its own."""
    from limonbilling.services import cancellations, decisions, ledger, placement

    from ..factories import make_package
    from .test_lifecycle_races import Interleaving

    customer_id, request_id = waiting_request()
    customer = db.session.get(Customer, customer_id)
    placement.place_agent_order(customer, make_package("subscription", days=30), payment_method="manual",
                                actor=AGENT)
    cancellation_id = cancellations.request_cancellation(customer, timing="now", reason="Too expensive",
                                                         actor=as_customer(customer)).id
    db.session.commit()
    interleaving = Interleaving(monkeypatch)
    interleaving.pause_after(decisions, "lock_pending", role="cancel")
    interleaving.pause_after(ledger, "lock_customer", role="erase")

    def cancel():
        from limonbilling.models import CancellationRequest
        request = db.session.get(CancellationRequest, cancellation_id)
        return lambda: cancellations.approve(request, AGENT, "Done")

    outcomes = race(worker, [interleaving.as_role(call(lambda: privacy.approve(request_id, AGENT)), "erase"),
                             interleaving.as_role(cancel, "cancel")])

    no_errors(outcomes)
    assert db.session.get(Customer, customer_id).erased_at is not None
    assert len(done(outcomes)) == 2


def test_an_activation_form_sent_as_the_erasure_commits_records_nothing_personal(app, worker, monkeypatch):  # noqa: F811
    """The signed-in customer sends the activation form just as the erasure is approved: the form found the
    account by its address before the erasure committed, then waited for the customer's lock. The request was
    recorded for the erased account, with the address, phone and note just erased, and never erased again.
    Forced: the form holds after finding the account until the erasure holds the customer."""
    from datetime import date

    from limonbilling.models import ActivationRequest
    from limonbilling.services import activation_requests, ledger

    from .test_lifecycle_races import Interleaving

    customer_id, request_id = waiting_request()
    interleaving = Interleaving(monkeypatch)
    interleaving.pause_after(activation_requests, "_customer_for", role="submit")
    interleaving.pause_after(ledger, "lock_customer", role="erase")

    def submitting():
        customer = db.session.get(Customer, customer_id)
        fields = {"first_name": customer.first_name, "last_name": customer.last_name, "email": customer.email,
                  "phone": "0532 123 45 67", "amount": "120,00", "currency": "TRY", "paid_on": date(2026, 3, 1),
                  "package_id": None, "note": "Sent from my account"}
        return lambda: activation_requests.submit(fields, signed_in=customer, language="en", ip=None)

    outcomes = race(worker, [interleaving.as_role(call(lambda: privacy.approve(request_id, AGENT)), "erase"),
                             interleaving.as_role(submitting, "submit")])

    no_errors(outcomes)
    assert db.session.get(Customer, customer_id).erased_at is not None
    assert [o.value for o in outcomes if o.name == "submit"] == ["customer_erased"]
    assert count(ActivationRequest, ActivationRequest.customer_id == customer_id) == 0
