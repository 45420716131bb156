"""Assigning an order's affiliate at the same instant from 16 callers (PostgreSQL, as test_lifecycle_races.py):
the order's lock makes them one after another, so the final affiliate is the last change, and every actual
change — and only those — has its audit entry, each continuing from the one before."""
import pytest
from sqlalchemy import select
from sqlalchemy.engine import make_url

from limonbilling.extensions import db
from limonbilling.models import AuditEntry, Order
from limonbilling.services import affiliates

from ..factories import make_package
from ..payment_support import AGENT
from .test_affiliates import make_affiliate, transfer_order
from .test_lifecycle_races import THREADS, done, no_errors, on_order, race, worker  # noqa: F401 (a fixture)


@pytest.fixture(autouse=True)
def _postgresql_only(database_url):
    if make_url(database_url).get_backend_name() != "postgresql":
        pytest.skip("SQLite serialises writers and would hide these races; they run on PostgreSQL only")


def _changes(order_id: int) -> list[tuple[str | None, str | None]]:
    return [(entry.details["previous"], entry.details["affiliate"]) for entry in db.session.scalars(
        select(AuditEntry).where(AuditEntry.action == "order.affiliate", AuditEntry.target_id == str(order_id))
        .order_by(AuditEntry.id))]


def test_sixteen_agents_setting_one_affiliate_change_the_order_once(app, worker):  # noqa: F811
    blog_id = make_affiliate("BLOG").id
    order_id = transfer_order(make_package("credit", credits=10)).id
    outcomes = race(worker, [on_order(order_id, lambda o: affiliates.assign(o, blog_id, AGENT))] * THREADS)
    no_errors(outcomes)
    assert sorted(outcome.value for outcome in done(outcomes)) == [False] * (THREADS - 1) + [True]
    assert db.session.get(Order, order_id).affiliate_id == blog_id
    assert _changes(order_id) == [(None, "BLOG")]


def test_sixteen_agents_setting_two_affiliates_and_none_end_with_the_last_change_audited_in_a_chain(
        app, worker):  # noqa: F811
    choices = [make_affiliate("BLOG").id, make_affiliate("NEWS").id, None]
    order_id = transfer_order(make_package("credit", credits=10)).id
    jobs = [on_order(order_id, lambda o, chosen=choices[n % 3]: affiliates.assign(o, chosen, AGENT))
            for n in range(THREADS)]
    outcomes = race(worker, jobs)
    no_errors(outcomes)
    assert len(done(outcomes)) == THREADS
    changes = _changes(order_id)
    assert len(changes) == sum(outcome.value is True for outcome in outcomes) >= 1
    assert changes[0][0] is None
    # each change starts where the one before ended
    assert all(before[1] == after[0] for before, after in zip(changes, changes[1:], strict=False))
    final = db.session.get(Order, order_id)
    assert (final.affiliate.code if final.affiliate else None) == changes[-1][1]
