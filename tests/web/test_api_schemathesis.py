"""Schemathesis against /api/v1/openapi.json: generated requests find no 500 and no answer that breaks
the documented schema (status codes, content types, bodies).

"Schema-valid data must be accepted" is left out: the API keeps rules no JSON schema can say (a Turkish
phone number, a tax number's checksum, the purchase rules) and answers them with a documented 422/409.

The operations are driven by Hypothesis directly (one `given` per operation), so each runs inside the
test's app and database, on SQLite and on PostgreSQL.
"""
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    positive_data_acceptance,
    response_schema_conformance,
)
from schemathesis.generation import GenerationMode

from limonbilling.api.openapi import SCHEMAS, document
from limonbilling.extensions import db
from limonbilling.services import api_tokens, audit

from ..factories import activate, make_customer, make_department, make_package


@pytest.mark.slow
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


@pytest.mark.slow
def test_requests_outside_the_schema_find_no_500(app):
    """Schemathesis's negative mode breaks the schema on purpose: numbers of any size and sign where ids, credits
    and limits go, wrong types, missing fields. Every answer is a documented refusal, never a 500 (issue 15)."""
    department = make_department("Teknik Destek", credit_per_request=1)
    activate(make_customer(), make_package("credit", [department], credits=1000))
    _token, plain = api_tokens.create_token("negative", ["read", "write"], audit.Actor.system("test"))
    db.session.commit()
    schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", app)

    for operation in [result.ok() for result in schema.get_all_operations()]:
        @given(case=operation.as_strategy(generation_mode=GenerationMode.NEGATIVE))
        @settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        def refuses_cleanly(case):
            try:
                case.call_and_validate(headers={"Authorization": f"Bearer {plain}"},
                                       checks=[not_a_server_error, content_type_conformance,
                                               response_schema_conformance])
            finally:
                db.session.rollback()

        refuses_cleanly()


HUGE_TEXT = st.one_of(st.sampled_from(["1e30", "2147483648", "21474836.48", "10000000.01", "9" * 5000, "NaN", "inf",
                                       "-1", "1e-30", "²"]),
                      st.integers(2**31, 2**80).map(str), st.decimals(allow_nan=True).map(str))
HUGE = st.one_of(HUGE_TEXT, st.integers(2**31 - 1, 2**80), st.integers(-(2**80), -(2**31)),
                 st.floats(allow_nan=False, allow_infinity=False))


def _holds_a_number(schema: dict) -> bool:
    return "integer" in str(schema.get("type")) or _as_text(schema)


def _as_text(schema: dict) -> bool:
    return schema.get("pattern", "").startswith("^[0-9]")


def _number_fields(operation) -> tuple[dict, list[str]]:
    """The body properties of the operation that take a number (with what to send there: text for a price) and
    its query parameters that take one."""
    definition = document()["paths"][operation.path][operation.method.lower()]
    query = [parameter["name"] for parameter in definition.get("parameters", [])
             if parameter["in"] == "query" and _holds_a_number(parameter["schema"])]
    body = definition.get("requestBody", {}).get("content", {}).get("application/json", {}).get("schema", {})
    properties = SCHEMAS[body["$ref"].rsplit("/", 1)[1]]["properties"] if "$ref" in body else {}
    return {name: HUGE_TEXT if _as_text(schema) else HUGE for name, schema in properties.items()
            if _holds_a_number(schema)}, query


def _with_huge_numbers(operation, headers: dict) -> None:
    """Generated requests of the operation with a huge number in every field and query parameter that takes one."""
    body_fields, query_fields = _number_fields(operation)

    @given(data=st.data())
    @settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    def refuses_cleanly(data):
        case = data.draw(operation.as_strategy())
        if isinstance(case.body, dict):
            case.body.update({name: data.draw(huge, label=name) for name, huge in body_fields.items()})
        if query_fields:
            case.query = {**(case.query or {}), **{name: data.draw(HUGE, label=name) for name in query_fields}}
        try:
            case.call_and_validate(headers=headers, checks=[not_a_server_error, content_type_conformance,
                                                            response_schema_conformance])
        finally:
            db.session.rollback()

    refuses_cleanly()


@pytest.mark.slow
def test_huge_numbers_in_every_numeric_field_find_no_500(app):
    """Numbers no column holds (2**31 and past, 1e30, NaN, thousands of digits) in every field that takes a
    number: the API refuses them in its JSON shape (issue 15)."""
    department = make_department("Teknik Destek", credit_per_request=1)
    activate(make_customer(), make_package("credit", [department], credits=1000))
    _token, plain = api_tokens.create_token("huge", ["read", "write"], audit.Actor.system("test"))
    db.session.commit()
    schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", app)
    for operation in [result.ok() for result in schema.get_all_operations()]:
        _with_huge_numbers(operation, {"Authorization": f"Bearer {plain}"})


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
