"""Days people type or read are Istanbul days (UTC+3), whatever the database keeps: a promo code valid
until 31 March works until midnight in Istanbul, not until 03:00 the next morning; the order filter's
"from 2 March" starts at 2 March 00:00 in Istanbul. Each edge is pinned to the microsecond."""
from datetime import UTC, date, datetime, timedelta

import pytest

from limonbilling.clock import day_start, local_day
from limonbilling.extensions import db
from limonbilling.services import ServiceError, promo_codes

from ..factories import make_customer, make_package
from ..order_records import make_order
from ..payment_support import AGENT

TICK = timedelta(microseconds=1)


def test_a_local_day_starts_three_hours_before_midnight_utc(app_without_database):
    assert day_start(date(2026, 3, 31)) == datetime(2026, 3, 30, 21, 0, tzinfo=UTC)
    assert local_day(datetime(2026, 3, 30, 20, 59, 59, 999999, tzinfo=UTC)) == date(2026, 3, 30)
    assert local_day(datetime(2026, 3, 30, 21, 0, tzinfo=UTC)) == date(2026, 3, 31)


def test_a_promo_code_works_from_the_first_to_the_last_moment_of_its_days_in_istanbul(app, clock):
    package = make_package()
    promo_codes.create({"code": "MARCH", "kind": "percent", "value": "10", "valid_from": date(2026, 3, 5),
                        "valid_until": date(2026, 3, 31)}, AGENT)
    db.session.commit()
    # 00:00 in Istanbul
    first, after_last = datetime(2026, 3, 4, 21, 0, tzinfo=UTC), datetime(2026, 3, 31, 21, 0, tzinfo=UTC)

    clock.set(first - TICK)
    with pytest.raises(ServiceError) as refused:
        promo_codes.check("MARCH", package)
    assert refused.value.code == "promo_not_yet" and "2026-03-05" in refused.value.message
    clock.set(first)
    assert promo_codes.check("MARCH", package)[1] == package.price_minor // 10
    clock.set(after_last - TICK)
    assert promo_codes.check("MARCH", package)[1] == package.price_minor // 10
    clock.set(after_last)
    with pytest.raises(ServiceError) as refused:
        promo_codes.check("MARCH", package)
    assert refused.value.code == "promo_expired"


def test_the_promo_list_shows_the_days_the_agent_typed(app, billing_client):
    promo_codes.create({"code": "MARCH", "kind": "percent", "value": "10", "valid_from": date(2026, 3, 5),
                        "valid_until": date(2026, 3, 31)}, AGENT)
    db.session.commit()
    html = billing_client.get("/admin/billing/promo-codes").get_data(as_text=True)
    assert "3/5/26 – 3/31/26" in html


def test_the_order_filter_counts_days_in_istanbul(app, billing_client):
    customer, package = make_customer(), make_package()
    late_on_the_first = make_order(customer, package, created_at=datetime(2026, 3, 1, 20, 59, 59, 999999, tzinfo=UTC))
    early_on_the_second = make_order(customer, package, created_at=datetime(2026, 3, 1, 21, 0, tzinfo=UTC))

    def listed(day: str) -> set[str]:
        html = billing_client.get(f"/admin/billing/orders?from={day}&to={day}").get_data(as_text=True)
        return {order.number for order in (late_on_the_first, early_on_the_second) if order.number in html}

    assert listed("2026-03-01") == {late_on_the_first.number}
    assert listed("2026-03-02") == {early_on_the_second.number}
