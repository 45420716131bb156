"""Profile → Your data (KVKK) and Customers → Erasure requests, through the test client: the archive (type, files,
password, throttle, only one's own), the erasure request, its approval and rejection by an agent."""
import io
import json
import zipfile

import pytest
from sqlalchemy import select

from limonbilling.extensions import db
from limonbilling.models import AuditEntry, Customer, ErasureRequest

from ..factories import PASSWORD, make_agent, make_customer, make_package, sign_in
from ..payment_support import card_order


@pytest.fixture
def customer_client(app):
    customer = make_customer(first_name="Selin", email="selin@example.com")
    client = app.test_client()
    sign_in(client, customer)
    return client, customer


def test_the_data_page_is_linked_from_the_profile(customer_client):
    client, _customer = customer_client
    assert b"/profile/privacy" in client.get("/profile").data
    page = client.get("/profile/privacy")
    assert page.status_code == 200 and b"Download my data" in page.data


def test_the_archive_is_a_zip_of_the_customer_s_own_records(customer_client):
    client, customer = customer_client
    other = make_customer(first_name="Kerem", email="kerem@example.com")
    response = client.post("/profile/privacy/export", data={"export-password": PASSWORD})

    assert response.status_code == 200
    assert response.mimetype == "application/zip"
    assert response.headers["Content-Disposition"] == f"attachment; filename=limonbilling-data-{customer.id}.zip"
    assert "no-store" in response.headers["Cache-Control"]
    with zipfile.ZipFile(io.BytesIO(response.data)) as archive:
        names = set(archive.namelist())
        profile = json.loads(archive.read("profile.json"))
        whole = "".join(archive.read(name).decode() for name in names)
    assert {"README.txt", "profile.json", "orders.json", "invoices.json", "audit_log.json"} <= names
    assert [row["id"] for row in profile] == [customer.id] and profile[0]["email"] == "selin@example.com"
    assert "password_hash" not in profile[0]
    assert other.email not in whole and "Kerem" not in whole
    assert db.session.scalar(select(AuditEntry.target_id).where(AuditEntry.action == "customer.data_export")) == \
        str(customer.id)


def test_a_wrong_password_gives_no_archive(customer_client):
    client, _customer = customer_client
    response = client.post("/profile/privacy/export", data={"export-password": "wrong-password-1"})
    assert response.status_code == 422 and response.mimetype == "text/html"
    assert b"This is not your current password." in response.data


def test_the_archive_is_throttled_per_customer(customer_client, app):
    client, _customer = customer_client
    limit = int(app.config["DATA_EXPORT_LIMIT"].split()[0])
    answers = [client.post("/profile/privacy/export", data={"export-password": PASSWORD}).status_code
               for _ in range(limit + 1)]
    assert answers == [200] * limit + [429]
    other = app.test_client()
    sign_in(other, make_customer())
    assert other.post("/profile/privacy/export", data={"export-password": PASSWORD}).status_code == 200


def test_no_one_else_gets_the_archive(app, customer_client):
    _client, customer = customer_client
    stranger = app.test_client()
    signed_out = stranger.post("/profile/privacy/export", data={"export-password": PASSWORD})
    assert signed_out.status_code == 302 and "/login" in signed_out.headers["Location"]
    agent = app.test_client()
    sign_in(agent, make_agent("customers"))
    assert agent.post("/profile/privacy/export", data={"export-password": PASSWORD}).status_code == 302
    # the archive is always the signed-in customer's: no id in the address to change, another's id is a 404
    other = app.test_client()
    intruder = make_customer()
    sign_in(other, intruder)
    response = other.post(f"/profile/privacy/export?customer_id={customer.id}", data={"export-password": PASSWORD})
    with zipfile.ZipFile(io.BytesIO(response.data)) as archive:
        assert [row["id"] for row in json.loads(archive.read("profile.json"))] == [intruder.id]
    assert other.get(f"/profile/privacy/export/{customer.id}").status_code == 404


def test_request_then_an_agent_approves_and_the_customer_cannot_sign_in(app, customer_client):
    client, customer = customer_client
    response = client.post("/profile/privacy/erasure",
                           data={"erasure-reason": "Closing my company", "erasure-password": PASSWORD})
    assert response.status_code == 302
    page = client.get("/profile/privacy")
    assert b"Waiting" in page.data and b"Ask to erase my data" not in page.data  # one open request
    again = client.post("/profile/privacy/erasure", data={"erasure-reason": "", "erasure-password": PASSWORD})
    assert again.status_code == 422 and b"already waiting" in again.data

    agent = app.test_client()
    sign_in(agent, make_agent("customers"))
    listing = agent.get("/admin/customers/erasure-requests")
    assert b"Closing my company" in listing.data and b"Selin" in listing.data
    request = db.session.scalar(select(ErasureRequest))
    assert agent.post(f"/admin/customers/erasure-requests/{request.id}/approve").status_code == 302
    assert b"personal data is erased" in agent.get("/admin/customers/erasure-requests?state=approved").data

    assert client.get("/profile").status_code == 302  # the session ended
    refused = app.test_client().post("/login", data={"email": "selin@example.com", "password": PASSWORD})
    assert refused.status_code == 200 and b"wrong" in refused.data
    assert db.session.get(Customer, customer.id).email == f"erased-{customer.id}@invalid"


def test_an_agent_rejects_with_a_note_the_customer_reads(app, customer_client):
    client, _customer = customer_client
    client.post("/profile/privacy/erasure", data={"erasure-reason": "", "erasure-password": PASSWORD})
    request = db.session.scalar(select(ErasureRequest))
    agent = app.test_client()
    sign_in(agent, make_agent("customers"))
    agent.post(f"/admin/customers/erasure-requests/{request.id}/reject", data={"note": ""})
    assert db.session.get(ErasureRequest, request.id).state == "pending"  # a note is needed
    agent.post(f"/admin/customers/erasure-requests/{request.id}/reject", data={"note": "An invoice is disputed."})
    page = client.get("/profile/privacy")
    assert b"Rejected" in page.data and b"An invoice is disputed." in page.data
    assert b"Ask to erase my data" in page.data  # may ask again


def test_only_agents_with_the_customers_permission_decide(app, customer_client):
    client, _customer = customer_client
    client.post("/profile/privacy/erasure", data={"erasure-reason": "", "erasure-password": PASSWORD})
    request = db.session.scalar(select(ErasureRequest))
    agent = app.test_client()
    sign_in(agent, make_agent("billing", "support"))
    assert agent.get("/admin/customers/erasure-requests").status_code == 403
    assert agent.post(f"/admin/customers/erasure-requests/{request.id}/approve").status_code == 403
    assert db.session.get(ErasureRequest, request.id).state == "pending"


def test_money_in_flight_is_refused_with_a_clear_message(customer_client):
    client, customer = customer_client
    card_order(customer, make_package("credit"))
    response = client.post("/profile/privacy/erasure", data={"erasure-reason": "", "erasure-password": PASSWORD})
    assert response.status_code == 422 and b"still on its way" in response.data
    assert db.session.scalar(select(ErasureRequest)) is None


def test_the_retention_period_is_set_on_the_invoice_settings_page(app):
    from limonbilling.services import settings

    agent = app.test_client()
    sign_in(agent, make_agent("billing", "settings"))
    page = agent.get("/admin/settings/invoices").data.decode()
    assert 'name="retention_years"' in page and 'value="10"' in page
    refused = agent.post("/admin/settings/invoices", data={"vat_rate_percent": "20", "retention_years": "0"})
    assert refused.status_code == 200 and settings.get("retention_years") == 10
    saved = agent.post("/admin/settings/invoices", data={"vat_rate_percent": "20", "retention_years": "12"})
    assert saved.status_code == 302
    db.session.rollback()
    assert settings.get("retention_years") == 12
