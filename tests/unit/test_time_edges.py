"""The edges of time that the scheduled jobs and the rules meet, each pinned to its unit (the microsecond the
database keeps): a subscription's last valid moment, the renewal window and its reminders, a card checkout's
end, and the bank's day (Istanbul, UTC+3) that decides between a Void and a Credit. Moving any edge by one unit
fails a test here."""
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from limonbilling.extensions import db
from limonbilling.models import Notification, Order, SubscriptionPeriod
from limonbilling.services import (
    card_payments,
    charging,
    entitlements,
    notifications,
    placement,
    purchase_rules,
    refunds,
)
from limonbilling.services.charging import DepartmentNotEnabled

from ..factories import activate, make_customer, make_department, make_package
from ..payment_support import BANK, as_customer, bank_answer, card_order, configure_gateway

DAY = timedelta(days=1)
TICK = timedelta(microseconds=1)


def end_of(customer) -> datetime:
    return max(db.session.scalars(select(SubscriptionPeriod.ends_at).where(
        SubscriptionPeriod.customer_id == customer.id)))


def ending_reminders(customer) -> list[str]:
    return [key.rsplit(":", 1)[-1] for key in db.session.scalars(select(Notification.event_key).where(
        Notification.customer_id == customer.id, Notification.event == "subscription_ending")
        .order_by(Notification.id))]


def test_a_subscription_covers_its_last_microsecond_and_not_its_end(app, clock):
    support = make_department("Support")
    customer = make_customer()
    activate(customer, make_package("subscription", [support], days=30))
    end = end_of(customer)
    assert end == clock.now() + 30 * DAY
    clock.set(end - TICK)
    assert charging.charge_usage(customer.id, support.id, "ticket", "last").covered_by == "subscription"
    assert not entitlements.expire_subscriber(customer.id)
    db.session.commit()
    clock.set(end)
    with pytest.raises(DepartmentNotEnabled):
        charging.charge_usage(customer.id, support.id, "ticket", "after")
    db.session.rollback()
    assert entitlements.expire_subscriber(customer.id)


def test_the_renewal_window_and_its_first_reminder_open_at_the_same_microsecond(app, clock):
    customer = make_customer()
    package = make_package("subscription", days=60)
    activate(customer, package)
    opens = end_of(customer) - 30 * DAY  # renewal_window_days: 30
    clock.set(opens - TICK)
    assert notifications.queue_reminders() == 0
    assert purchase_rules.preview_purchase(customer, package).reason_code == "renewal_not_open"
    clock.set(opens)
    assert notifications.queue_reminders() == 1
    assert purchase_rules.preview_purchase(customer, package).allowed
    db.session.commit()
    assert ending_reminders(customer) == ["30"]


@pytest.mark.parametrize("days", [7, 1])
def test_the_seven_and_one_day_reminders_go_at_their_exact_moment(app, clock, days):
    customer = make_customer()
    activate(customer, make_package("subscription", days=60))
    end = end_of(customer)
    clock.set(end - 30 * DAY)
    notifications.queue_reminders()
    clock.set(end - days * DAY - TICK)
    notifications.queue_reminders()  # the reminders before this one, if any
    db.session.commit()
    before = ending_reminders(customer)
    assert str(days) not in before
    clock.set(end - days * DAY)
    assert notifications.queue_reminders() == 1
    db.session.commit()
    assert ending_reminders(customer) == [*before, str(days)]


def test_a_card_checkout_ends_at_its_exact_minute(app, clock):
    customer = make_customer()
    order = placement.place_customer_order(customer, make_package("credit"), payment_method="card",
                                           actor=as_customer(customer), contracts_accepted=True)
    db.session.commit()  # the customer left before the bank's page: no attempt waits for an answer
    end = order.expires_at
    assert end == clock.now() + timedelta(minutes=30)  # card_checkout_minutes: 30
    clock.set(end - TICK)
    assert card_payments.stale_checkouts() == []
    assert purchase_rules.open_order(customer).id == order.id  # still blocks a new order (rule 7)
    assert card_payments.expire_checkout(order.id, configure_gateway(), BANK) is False
    clock.set(end)
    assert card_payments.stale_checkouts() == [order.id]
    assert purchase_rules.open_order(customer) is None
    assert card_payments.expire_checkout(order.id, configure_gateway(), BANK) is True
    db.session.commit()
    assert db.session.get(Order, order.id).status == "cancelled"


def test_a_refund_is_a_void_until_the_last_microsecond_of_the_payments_day_in_istanbul(app, clock):
    """23:59 in Istanbul is 20:59 UTC: the bank's day ends three hours before the UTC one."""
    gateway = configure_gateway()
    clock.set(datetime(2026, 3, 1, 20, 30, tzinfo=UTC))  # 23:30 in Istanbul
    customer = make_customer()
    order, attempt = card_order(customer, make_package("credit"))
    card_payments.apply_card_callback(gateway, bank_answer(attempt), BANK)
    db.session.commit()
    assert order.payment_status == "paid"
    clock.set(datetime(2026, 3, 1, 21, 0, tzinfo=UTC) - TICK)
    assert refunds.card_plan(order) == "void"
    clock.set(datetime(2026, 3, 1, 21, 0, tzinfo=UTC))  # midnight in Istanbul, still 1 March in UTC
    assert refunds.card_plan(order) == "credit"


def test_the_ended_notice_goes_at_the_subscriptions_end_not_a_microsecond_before(app, clock):
    customer = make_customer()
    activate(customer, make_package("subscription", days=30))
    end = end_of(customer)
    clock.set(end - TICK)
    notifications.queue_reminders()  # the 1-day reminder
    db.session.commit()
    ended = select(Notification.id).where(Notification.customer_id == customer.id,
                                          Notification.event == "subscription_ended")
    assert db.session.scalars(ended).all() == []
    clock.set(end)
    assert notifications.queue_reminders() == 1
    db.session.commit()
    assert len(db.session.scalars(ended).all()) == 1
