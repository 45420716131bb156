"""Card attempts are limited per order and per customer in a rolling hour (issue 15, defect 10: card testing).

`start_card_payment` counts the attempt rows under the order's lock and the customer's, so parallel callers
cannot slip past either limit; the PostgreSQL tests fire 16 of them at once.
"""
from datetime import UTC, datetime

import pytest
from sqlalchemy import func, select
from sqlalchemy.engine import make_url

from limonbilling.extensions import db
from limonbilling.models import Order, Payment
from limonbilling.services import ServiceError, ValidationFailed, card_payments, order_actions, placement, settings

from ..factories import make_customer, make_department, make_package
from ..payment_support import AGENT, as_customer
from .test_lifecycle_races import THREADS, no_errors, on_order, race, refusals, worker  # noqa: F401 (a fixture)


@pytest.fixture
def package(app):
    settings.update({"fraud_check_enabled": False}, AGENT)  # several orders in an hour are what is tested here
    return make_package("credit", [make_department("Support")], credits=10)


def start_by_card(order):
    return card_payments.start_card_payment(order, "nestpay")


def _card_order(customer, package) -> Order:
    """A card order placed by the customer, committed, with no attempt yet."""
    order = placement.place_customer_order(customer, package, payment_method="card", actor=as_customer(customer),
                                ip="127.0.0.1", contracts_accepted=True)
    db.session.commit()
    return order


def _attempt(order: Order) -> Payment:
    attempt = card_payments.start_card_payment(order, "nestpay")
    db.session.commit()
    return attempt


def _refused(order: Order) -> ServiceError:
    with pytest.raises(ServiceError) as refused:
        card_payments.start_card_payment(order, "nestpay")
    db.session.rollback()
    return refused.value


def _attempts(**where) -> int:
    statement = select(func.count(Payment.id)).join(Order).where(
        *(getattr(Order, key) == value for key, value in where.items()))
    return db.session.scalar(statement)


def test_the_fifth_attempt_on_an_order_is_allowed_and_the_sixth_refused(package):
    order = _card_order(make_customer(), package)
    assert [_attempt(order).oid for _ in range(5)][-1] == f"{order.number}-5"
    refusal = _refused(order)
    assert refusal.code == "card_attempts_order"
    assert "Too many card attempts for this order" in refusal.message and "bank transfer" in refusal.message
    assert _attempts(id=order.id) == 5


def test_the_per_order_limit_is_a_setting(package):
    settings.update({"card_attempts_per_order": 2}, AGENT)
    order = _card_order(make_customer(), package)
    _attempt(order)
    _attempt(order)
    assert _refused(order).code == "card_attempts_order"
    assert _attempts(id=order.id) == 2


def test_the_per_customer_limit_counts_a_rolling_hour_across_orders(package, clock):
    customer = make_customer()
    first = _card_order(customer, package)
    for _ in range(5):
        _attempt(first)  # 09:00:00
    order_actions.cancel_unpaid_order(first, as_customer(customer))
    clock.advance(minutes=10)
    second = _card_order(customer, package)
    for _ in range(5):
        _attempt(second)  # 09:10:00: the tenth attempt in the hour is allowed
    order_actions.cancel_unpaid_order(second, as_customer(customer))
    db.session.commit()
    third = _card_order(customer, package)
    refusal = _refused(third)
    assert refusal.code == "card_attempts_hour"
    assert refusal.details["retry_at"] == datetime(2026, 3, 1, 10, 0, 0, tzinfo=UTC)
    # Shown in the display time zone (Istanbul, UTC+3), with what else the customer can do.
    assert "Too many card attempts in the last hour; try again after 13:00" in refusal.message
    assert "bank transfer" in refusal.message
    clock.set(datetime(2026, 3, 1, 9, 59, 59, tzinfo=UTC))  # the first five are 59:59 old: they still count
    assert _refused(third).code == "card_attempts_hour"
    clock.set(datetime(2026, 3, 1, 10, 0, 1, tzinfo=UTC))  # 60:01 old: they no longer count
    _attempt(third)
    assert _attempts(customer_id=customer.id) == 11


def test_try_again_names_the_minute_when_an_attempt_leaves_the_hour(package, clock):
    settings.update({"card_attempts_per_customer_hour": 2}, AGENT)
    order = _card_order(make_customer(), package)
    clock.set(datetime(2026, 3, 1, 9, 0, 30, tzinfo=UTC))
    _attempt(order)
    clock.set(datetime(2026, 3, 1, 9, 20, 0, tzinfo=UTC))
    _attempt(order)
    refusal = _refused(order)
    # The slot frees at 10:00:30 UTC: "after 13:01" in Istanbul, never a minute at which it is still refused.
    assert refusal.details["retry_at"] == datetime(2026, 3, 1, 10, 0, 30, tzinfo=UTC)
    assert "try again after 13:01" in refusal.message


def test_other_customers_attempts_do_not_count(package):
    settings.update({"card_attempts_per_customer_hour": 1}, AGENT)
    _attempt(_card_order(make_customer(), package))
    _attempt(_card_order(make_customer(), package))
    assert _attempts() == 2


@pytest.mark.parametrize(("key", "low", "high"), [
    ("card_attempts_per_order", 1, 50), ("card_attempts_per_customer_hour", 1, 200),
])
def test_the_limits_are_bounded_so_zero_never_means_unlimited(app, key, low, high):
    for refused in (low - 1, high + 1, "5", 5.0, None):
        with pytest.raises(ValidationFailed) as error:
            settings.update({key: refused}, AGENT)
        assert key in error.value.errors
    for allowed in (low, high):
        settings.update({key: allowed}, AGENT)
        assert settings.get(key) == allowed


def test_the_defaults_are_five_per_order_and_ten_per_customer_an_hour(app):
    assert (settings.get("card_attempts_per_order"), settings.get("card_attempts_per_customer_hour")) == (5, 10)


# --- parallel callers (PostgreSQL: SQLite serialises every writer and would hide the race) ------------------

@pytest.fixture
def postgresql_only(database_url):
    if make_url(database_url).get_backend_name() != "postgresql":
        pytest.skip("SQLite serialises writers and would hide these races; they run on PostgreSQL only")


def test_sixteen_parallel_attempts_on_one_order_leave_exactly_the_limit(postgresql_only, worker, package):  # noqa: F811
    order_id = _card_order(make_customer(), package).id
    outcomes = race(worker, [on_order(order_id, start_by_card)] * THREADS)
    no_errors(outcomes)
    assert refusals(outcomes) == {"card_attempts_order": THREADS - 5}
    assert _attempts(id=order_id) == 5


def test_sixteen_parallel_attempts_of_one_customer_leave_exactly_the_hourly_limit(
        postgresql_only, worker, package):  # noqa: F811
    """One order at a time (rule 7; a checkout resumed past its time is checked again): the customer's hourly
    limit is raced on that order, with the order's own limit above it."""
    settings.update({"card_attempts_per_order": 50}, AGENT)
    customer = make_customer()
    customer_id, order_id = customer.id, _card_order(customer, package).id
    outcomes = race(worker, [on_order(order_id, start_by_card)] * THREADS)
    no_errors(outcomes)
    assert refusals(outcomes) == {"card_attempts_hour": THREADS - 10}
    assert _attempts(customer_id=customer_id) == 10


def test_sixteen_checkouts_past_their_time_resumed_at_once_start_exactly_one(
        postgresql_only, worker, package, clock):  # noqa: F811
    """Rule 7 under a race: a checkout resumed past its time opens again, and then the customer's other ones are
    refused, as a new order would be."""
    settings.update({"card_checkout_minutes": 5}, AGENT)
    customer = make_customer()
    customer_id, order_ids = customer.id, []
    for _ in range(THREADS):  # each checkout left to expire, so the next one may be placed (rule 7)
        order_ids.append(_card_order(customer, package).id)
        clock.advance(minutes=6)
    outcomes = race(worker, [on_order(order_id, start_by_card) for order_id in order_ids])
    no_errors(outcomes)
    assert refusals(outcomes) == {"checkout_outdated": THREADS - 1}
    assert _attempts(customer_id=customer_id) == 1
