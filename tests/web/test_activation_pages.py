"""The public activation form (/activate) and Billing → Activation requests, through the test client."""
import html
import re

import pytest
from sqlalchemy import func, select

from limonbilling.extensions import db
from limonbilling.models import ActivationRequest, Customer, Notification, Order
from limonbilling.services import settings

from ..factories import make_agent, make_customer, make_department, make_package, sign_in
from ..payment_support import AGENT
from .test_account_enumeration import hashing  # noqa: F401 (a fixture)
from .test_foundation_pages import csrf_token

FORM = {"first_name": "Deniz", "last_name": "Kaya", "email": "deniz@example.com", "phone": "0532 765 43 21",
        "amount": "150.00", "currency": "TRY", "paid_on": "2026-03-01", "package_id": "", "note": ""}


def count(model) -> int:
    return db.session.scalar(select(func.count()).select_from(model))


@pytest.fixture
def package(app):
    settings.update({"notification_email": "team@example.com"}, AGENT)
    db.session.commit()
    return make_package("credit", [make_department("Support")], credits=10, price="150.00", name="Ten credits")


@pytest.fixture
def agent_client(app):
    client = app.test_client()
    sign_in(client, make_agent("billing"))
    return client


def test_anyone_may_open_the_form_and_a_package_in_the_link_is_chosen(app, package):
    page = app.test_client().get(f"/activate?package={package.id}")
    assert page.status_code == 200
    body = page.get_data(as_text=True)
    assert f'<option selected value="{package.id}">' in body and "Ten credits" in body
    assert 'name="email"' in body and 'value="deniz' not in body


def test_the_sign_in_page_leads_to_the_form(app):
    page = app.test_client().get("/login").get_data(as_text=True)
    assert 'href="/activate"' in page and "Paid for a package by bank transfer?" in page


def test_a_signed_in_customer_finds_their_details_filled_in(app, package):
    customer = make_customer(email="ayse@example.com")
    client = app.test_client()
    sign_in(client, customer)
    body = client.get("/activate").get_data(as_text=True)
    assert 'value="ayse@example.com"' in body and f'value="{customer.phone}"' in body


def test_sending_the_form_answers_the_same_for_a_new_and_a_known_address(app, package):
    make_customer(email="ayse@example.com")
    answers = []
    for email in ("deniz@example.com", "ayse@example.com", "ayse@example.com"):  # the third: one waits already
        client = app.test_client()
        response = client.post("/activate", data={**FORM, "email": email})
        assert response.status_code == 302 and response.location == "/activate/sent"
        page = client.get(response.location).get_data(as_text=True)
        answers.append(re.sub(r'nonce="[^"]+"', "", page.split("<main", 1)[1]).replace(email, "EMAIL"))
    assert count(ActivationRequest) == 2 and count(Customer) == 2
    assert len(set(answers)) == 1


def test_a_known_address_costs_the_same_password_hashing_as_a_new_one(app, package, hashing):  # noqa: F811
    make_customer(email="ayse@example.com")
    made = []
    for email in ("deniz@example.com", "ayse@example.com"):
        hashing["made"] = 0
        assert app.test_client().post("/activate", data={**FORM, "email": email}).status_code == 302
        made.append(hashing["made"])
    assert made == [1, 1]


def test_a_signed_in_customer_with_a_request_waiting_is_told_on_the_page(app, package):
    customer = make_customer(email="ayse@example.com")
    client = app.test_client()
    sign_in(client, customer)
    assert client.post("/activate", data={**FORM, "email": customer.email}).status_code == 302
    again = client.post("/activate", data={**FORM, "email": customer.email})
    assert again.status_code == 422 and "already waiting for our answer" in html.unescape(again.get_data(as_text=True))
    assert count(ActivationRequest) == 1


@pytest.mark.parametrize("field, value, message", [
    ("paid_on", "2026-03-02", "cannot be in the future"),
    ("paid_on", "yesterday", "Not a valid date value"),
    ("amount", "0", "must be more than 0"),
    ("amount", "-150", "must be more than 0"),
    ("amount", "150.001", "Use at most 2 decimals"),
    ("email", "deniz@@example", "valid e-mail address"),
    ("phone", "05", "valid phone number"),
    ("last_name", "", "This field is required"),
])
def test_each_bad_field_is_shown_next_to_it_and_nothing_is_recorded(app, package, field, value, message):
    response = app.test_client().post("/activate", data={**FORM, field: value})
    body = html.unescape(response.get_data(as_text=True))
    assert response.status_code == 422
    assert message in body and f'id="{field}"' in body and "is-invalid" in body
    assert count(ActivationRequest) == 0 and count(Customer) == 0


def test_the_form_needs_its_csrf_token(app, make_app, package):
    protected = make_app(WTF_CSRF_ENABLED=True)
    db.session.commit()
    with protected.app_context():
        client = protected.test_client()
        assert client.post("/activate", data=FORM).status_code == 400
        token = csrf_token(client.get("/activate").get_data(as_text=True))
        assert client.post("/activate", data={**FORM, "csrf_token": token}).status_code == 302
    db.session.expire_all()
    assert count(ActivationRequest) == 1


def test_the_form_is_throttled_per_address_like_the_other_public_forms(app, package):
    app.config.update(SIGN_IN_LIMIT_PER_IP="5 per minute")
    client = app.test_client()
    answers = [client.post("/activate", data={**FORM, "email": f"p{n}@example.com"},
                           environ_base={"REMOTE_ADDR": "198.51.100.9"}).status_code for n in range(6)]
    assert answers == [302] * 5 + [429]
    assert count(ActivationRequest) == 5


def test_the_agent_approves_with_the_package_and_the_customer_has_it(app, package, agent_client):
    app.test_client().post("/activate", data={**FORM, "package_id": str(package.id)})
    request_id = db.session.scalar(select(ActivationRequest.id))

    listing = agent_client.get("/admin/billing/activation-requests").get_data(as_text=True)
    assert "Deniz Kaya" in listing and f'<option value="{package.id}" selected>' in listing
    assert "/activate" in html.unescape(listing)  # the snippet for the seller's website
    response = agent_client.post(f"/admin/billing/activation-requests/{request_id}/approve",
                                 data={"package_id": str(package.id)})
    assert response.status_code == 302
    db.session.expire_all()
    order = db.session.scalar(select(Order))
    assert (order.status, order.payment_status) == ("active", "paid")
    assert db.session.get(Customer, order.customer_id).credits == 10
    page = agent_client.get(response.location).get_data(as_text=True)
    assert f"Order {order.number} is placed" in page and "more than the order" not in page


def test_the_agent_is_told_when_the_customer_says_they_sent_more_than_the_total(app, package, agent_client):
    app.test_client().post("/activate", data={**FORM, "amount": "175.50"})
    request_id = db.session.scalar(select(ActivationRequest.id))
    page = agent_client.post(f"/admin/billing/activation-requests/{request_id}/approve", follow_redirects=True,
                             data={"package_id": str(package.id)}).get_data(as_text=True)
    assert "The customer says they sent TRY\xa025.50 more than the order's total." in html.unescape(page)
    db.session.expire_all()
    assert [p.amount_minor for p in db.session.scalar(select(Order)).payments] == [15000]


def test_a_refused_approval_is_said_to_the_agent_and_the_request_stays(app, package, agent_client):
    app.test_client().post("/activate", data={**FORM, "amount": "100.00"})
    request_id = db.session.scalar(select(ActivationRequest.id))
    response = agent_client.post(f"/admin/billing/activation-requests/{request_id}/approve",
                                 data={"package_id": str(package.id)}, follow_redirects=True)
    assert "costs" in html.unescape(response.get_data(as_text=True))
    db.session.expire_all()
    assert db.session.get(ActivationRequest, request_id).state == "pending" and count(Order) == 0


def test_the_agent_rejects_with_a_reason_the_customer_reads(app, package, agent_client):
    app.test_client().post("/activate", data=FORM)
    request_id = db.session.scalar(select(ActivationRequest.id))
    without = agent_client.post(f"/admin/billing/activation-requests/{request_id}/reject", data={"reason": ""},
                                follow_redirects=True)
    assert "Tell the customer why" in without.get_data(as_text=True)
    agent_client.post(f"/admin/billing/activation-requests/{request_id}/reject", data={"reason": "No money."})
    db.session.expire_all()
    assert db.session.get(ActivationRequest, request_id).state == "rejected"
    assert db.session.scalar(select(Notification.recipient).where(Notification.event == "activation_rejected")) \
        == "deniz@example.com"
    rejected = agent_client.get("/admin/billing/activation-requests?state=rejected").get_data(as_text=True)
    assert "No money." in rejected


def test_the_snippet_links_to_the_form_with_the_package_chosen(app, package, agent_client):
    body = html.unescape(agent_client.get(f"/admin/billing/activation-requests?snippet={package.id}")
                         .get_data(as_text=True))
    assert f'<a href="http://localhost/activate?package={package.id}">' in body
