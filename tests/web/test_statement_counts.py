"""Statements that must not multiply: pages that list packages read the customer once, not once per package
(the same number of statements for 3 packages as for 50; each offer used to query the open order, the periods
and the departments again), and settings are read once per transaction."""
from contextlib import contextmanager

import pytest
from sqlalchemy import event

from limonbilling.extensions import db
from limonbilling.models import Department, Setting
from limonbilling.services import settings

from ..factories import activate, make_agent, make_customer, make_department, make_package, sign_in


@contextmanager
def counted():
    statements = []

    def count(_connection, _cursor, statement, *_args):
        statements.append(statement)

    event.listen(db.engine, "before_cursor_execute", count)
    try:
        yield statements
    finally:
        event.remove(db.engine, "before_cursor_execute", count)


def _statements(client, url: str) -> int:
    client.get(url)  # warm: the session, the settings
    with counted() as statements:
        assert client.get(url).status_code == 200
    return len(statements)


@pytest.mark.parametrize("holding", ["credit", "subscription"])
def test_the_packages_page_costs_the_same_for_3_or_50_packages(app, holding):
    web, mail = make_department("Web"), make_department("Mail")
    customer = make_customer()
    activate(customer, make_package(holding, [web]))
    db.session.commit()
    client = app.test_client()
    sign_in(client, customer)
    for number in range(3):
        make_package("credit" if number % 2 else "subscription", [web, mail])
    db.session.commit()
    few = _statements(client, "/packages")
    for number in range(47):
        make_package("credit" if number % 2 else "subscription", [web, mail])
    db.session.commit()
    assert _statements(client, "/packages") == few


def test_placing_an_order_for_a_customer_costs_the_same_for_3_or_20_packages(app):
    web = make_department("Web")
    customer = make_customer()
    client = app.test_client()
    sign_in(client, make_agent("billing", "customers"))
    url = f"/admin/billing/customers/{customer.id}/orders/new"
    for _number in range(3):
        make_package("credit", [web])
    db.session.commit()
    few = _statements(client, url)
    for _number in range(17):
        make_package("subscription", [web])
    db.session.commit()
    assert _statements(client, url) == few


def test_settings_are_read_once_per_transaction_not_again_after_each_flush(app):
    settings.get("company_name")
    with counted() as statements:
        db.session.add(Department(name="Web", credit_per_request=1, active=True))
        db.session.flush()
        assert settings.get("renewal_window_days") == 30
    assert not any("FROM settings" in statement for statement in statements)


def test_settings_are_read_again_after_a_savepoint_that_rolled_back(app):
    settings.get("company_name")
    savepoint = db.session.begin_nested()
    db.session.add(Setting(key="renewal_window_days", value="12"))
    settings.get("renewal_window_days")  # read inside the savepoint, with its change
    savepoint.rollback()
    assert settings.get("renewal_window_days") == 30
