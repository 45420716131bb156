"""Races on the activation form (PostgreSQL only, as in test_lifecycle_races.py): many forms sent at one
instant record one request per customer (and make one account for a new address); many approvals of one
request make one order, one payment and one activation."""
from datetime import date

from sqlalchemy import func, select

from limonbilling.extensions import db
from limonbilling.models import ActivationRequest, AuditEntry, Customer, Grant, Notification, Order, Payment
from limonbilling.services import activation_requests

from ..factories import make_customer
from ..payment_support import AGENT
from .test_activation_requests import credits10, form, support  # noqa: F401 (fixtures)
from .test_lifecycle_races import THREADS, _postgresql_only, call, done, exactly_one, no_errors, race, worker  # noqa: F401,E501 (fixtures)


def count(model, *conditions) -> int:
    return db.session.scalar(select(func.count()).select_from(model).where(*conditions))


def sending(values: dict):
    return call(lambda: activation_requests.submit(values, ip="192.0.2.1"))


def test_sixteen_forms_for_one_customer_record_one_request(worker, support):  # noqa: F811
    customer_id = make_customer(email="ayse@example.com").id
    outcomes = race(worker, [sending(form(email="ayse@example.com"))] * THREADS)

    no_errors(outcomes)
    assert len(done(outcomes)) == THREADS  # every sender gets the same answer
    assert [o.value for o in done(outcomes)].count(None) == THREADS - 1
    assert count(ActivationRequest) == 1
    assert count(ActivationRequest, ActivationRequest.customer_id == customer_id) == 1
    assert count(Notification, Notification.event == "activation_form_received") == 1


def test_sixteen_forms_with_one_new_address_make_one_account_and_one_request(worker, support):  # noqa: F811
    outcomes = race(worker, [sending(form(email="new@example.com"))] * THREADS)

    no_errors(outcomes)
    assert count(Customer) == 1 and count(ActivationRequest) == 1
    assert count(Notification, Notification.event == "welcome") == 1


def test_sixteen_approvals_of_one_request_make_one_order_one_payment_one_activation(worker, credits10):  # noqa: F811
    request = activation_requests.submit(form(paid_on=date(2026, 2, 28)))
    db.session.commit()
    request_id, package_id = request.id, credits10.id

    outcomes = race(worker, [call(lambda: activation_requests.approve(request_id, package_id, AGENT))] * THREADS)

    exactly_one(outcomes, "already_decided")
    order = db.session.scalar(select(Order))
    assert count(Order) == 1 and count(Grant) == 1
    assert count(Payment) == 1 and order.payments[0].received_on == date(2026, 2, 28)
    assert db.session.get(Customer, order.customer_id).credits == 10
    assert db.session.get(ActivationRequest, request_id).order_id == order.id
    assert count(AuditEntry, AuditEntry.action == "activation.approve") == 1
    assert count(Notification, Notification.event == "activation_approved") == 1


def test_approvals_and_rejections_at_once_answer_the_request_once(worker, credits10):  # noqa: F811
    request = activation_requests.submit(form())
    db.session.commit()
    request_id, package_id = request.id, credits10.id
    half = THREADS // 2
    jobs = ([call(lambda: activation_requests.approve(request_id, package_id, AGENT))] * half
            + [call(lambda: activation_requests.reject(request_id, "No money arrived.", AGENT))] * half)

    outcomes = race(worker, jobs)

    exactly_one(outcomes, "already_decided")
    state = db.session.get(ActivationRequest, request_id).state
    assert (state, count(Order)) in (("approved", 1), ("rejected", 0))
