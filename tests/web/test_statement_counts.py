"""Statements that must not multiply: pages that list packages read the customer once, not once per package
(the same number of statements for 3 packages as for 50; each offer used to query the open order, the periods
and the departments again), settings are read once per transaction, and the two hot paths, the API's usage
charge and the bank's callback, run the statements counted here (bench/RESULTS.md)."""
from contextlib import contextmanager

import pytest
from sqlalchemy import event

from limonbilling.extensions import db
from limonbilling.models import Department, Setting
from limonbilling.services import api_tokens, audit, settings

from ..factories import activate, make_agent, make_customer, make_department, make_package, sign_in
from ..payment_support import bank_answer, card_order, configure_gateway


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


def test_a_charge_runs_eight_statements(app):
    """The token, the settings, what the charge decides on, what the package covers, the usage, the balance, the
    ledger row, the usage's balance after it: no look-up of webhook endpoints when nobody listens."""
    department = make_department("Web", credit_per_request=1)
    customer = make_customer()
    activate(customer, make_package("credit", [department], credits=100))
    _token, plain = api_tokens.create_token("Help desk", ["read", "write"], audit.Actor.system("test"))
    db.session.commit()
    client, ids = app.test_client(), {"customer_id": customer.id, "department_id": department.id}

    def charge(reference: str):
        return client.post("/api/v1/usage", headers={"Authorization": f"Bearer {plain}"},
                           json={**ids, "kind": "ticket", "reference": reference})

    assert charge("first").status_code == 201  # also keeps the token's last use
    with counted() as statements:
        assert charge("second").status_code == 201
    assert len(statements) == 8, "\n".join(statements)


def test_a_bank_callback_that_activates_an_order_runs_26_statements(app):
    """26 since the purchase mail carries the contracts kept with the order (one read of order_contracts)."""
    configure_gateway()
    package = make_package("credit", [make_department("Web")], credits=10)
    db.session.commit()
    (_first, warm), (order, attempt) = card_order(make_customer(), package), card_order(make_customer(), package)
    number, warm_answer, answer = order.number, bank_answer(warm), bank_answer(attempt)
    client = app.test_client()
    assert client.post("/payments/nestpay/ok", data=warm_answer).status_code == 303  # this process has read the
    with counted() as statements:  # webhook endpoints now (none), as a worker has after its first request
        response = client.post("/payments/nestpay/ok", data=answer)
    assert response.status_code == 303 and number in response.headers["Location"]
    assert len(statements) == 26, "\n".join(statements)
