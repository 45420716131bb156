"""Schemathesis against /api/v1/openapi.json: generated requests find no 500 and no answer that breaks
the documented schema (status codes, content types, bodies).

"Schema-valid data must be accepted" is left out: the API keeps rules no JSON schema can say (a Turkish
phone number, a tax number's checksum, the purchase rules) and answers them with a documented 422/409.

The operations are driven by Hypothesis directly (one `given` per operation), so each runs inside the
test's app and database, on SQLite and on PostgreSQL.
"""
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import positive_data_acceptance

from limonbilling.extensions import db
from limonbilling.services import api_tokens, audit

from ..factories import activate, make_customer, make_department, make_package


def test_the_api_keeps_its_documented_promises(app):
    department = make_department("Teknik Destek", credit_per_request=1)
    activate(make_customer(), make_package("credit", [department], credits=1000))
    make_package("subscription", [department])
    _token, plain = api_tokens.create_token("schemathesis", ["read", "write"], audit.Actor.system("test"))
    db.session.commit()
    headers = {"Authorization": f"Bearer {plain}"}
    schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", app)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 8

    for operation in operations:
        @given(case=operation.as_strategy())
        @settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        def keeps_promises(case):
            try:
                case.call_and_validate(headers=headers, excluded_checks=[positive_data_acceptance])
            finally:
                db.session.rollback()

        keeps_promises()


def test_ids_beyond_a_database_integer_are_not_found_not_errors(app, client):
    from ..factories import make_agent, sign_in

    _token, plain = api_tokens.create_token("ids", ["read", "write"], audit.Actor.system("test"))
    db.session.commit()
    huge = 2**63
    headers = {"Authorization": f"Bearer {plain}"}
    assert client.get(f"/api/v1/customers/{huge}", headers=headers).status_code == 404
    answer = client.post("/api/v1/usage", headers=headers, json={
        "customer_id": huge, "department_id": 1, "kind": "ticket", "reference": "X-1"})
    assert answer.status_code == 404 and answer.json["error"]["code"] == "not_found"
    sign_in(client, make_agent(is_owner=True))
    assert client.get(f"/admin/billing/subscriptions/{huge}").status_code == 404
    assert client.get(f"/tickets/{huge}").status_code in (302, 404)


def test_page_cursors_beyond_a_database_integer_read_as_the_ends_of_the_list(app, client):
    """`before`/`after`, the API's `before_id`, `page` and `per_page` are numbers a visitor can type: past the
    ends of what the database counts they mean "everything" or "nothing", never a database error
    (schemathesis found the 500 on PostgreSQL)."""
    from ..factories import activate, make_agent, make_customer, make_department, make_package, sign_in

    _token, plain = api_tokens.create_token("cursors", ["read"], audit.Actor.system("test"))
    customer = make_customer()
    activate(customer, make_package("credit", [make_department("Support")], credits=10))
    headers = {"Authorization": f"Bearer {plain}"}
    ledger_url = f"/api/v1/customers/{customer.id}/ledger"
    assert len(client.get(f"{ledger_url}?before_id={2**31}", headers=headers).json) == 1
    assert client.get(f"{ledger_url}?before_id={-(2**40)}", headers=headers).json == []
    sign_in(client, make_agent(is_owner=True))
    for cursor, sees_the_customer in ((f"before={2**31}", True), (f"before={-(2**40)}", False),
                                      (f"after={-(2**40)}", True), (f"after={2**31}", False),
                                      (f"after={2**31}&sort=oldest", False), (f"before={2**63}&sort=oldest", True)):
        page = client.get(f"/admin/customers?{cursor}")
        assert page.status_code == 200, cursor
        assert (customer.email in page.data.decode()) is sees_the_customer, cursor
    for per_page in (-5, 0, 2**70):
        assert client.get(f"/admin/notifications?per_page={per_page}").status_code == 200
    for path in ("/admin/cancellations", "/admin/tickets", "/admin/chats"):
        for page in (-3, 2**70):
            assert client.get(f"{path}?page={page}").status_code in (200, 404), (path, page)
    sign_in(client, customer)
    for path in ("/orders", "/tickets", "/chats"):
        assert client.get(f"{path}?page={2**70}").status_code in (200, 404), path
