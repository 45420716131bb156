"""Billing → Billing Packages, Paid Subscriptions and the customer's packages page, through the test client."""
from datetime import timedelta

import pytest

from limonbilling.extensions import db
from limonbilling.models import Package
from limonbilling.services import audit, settings

from ..factories import activate, make_agent, make_customer, make_department, make_package, sign_in
from ..urls import sample_url


@pytest.fixture
def billing_client(app):
    client = app.test_client()
    sign_in(client, make_agent("billing"))
    return client



def test_every_billing_route_is_behind_the_licence_switch(app_without_database):
    billing_rules = [r for r in app_without_database.url_map.iter_rules()
                     if "/billing/" in r.rule or r.rule == "/packages"]
    assert billing_rules
    for rule in billing_rules:
        assert getattr(app_without_database.view_functions[rule.endpoint], "vip_only", False), rule.endpoint


def test_switch_off_hides_billing_and_loses_nothing(app, billing_client):
    package = make_package("credit", [make_department("Support")])
    customer = make_customer()
    activate(customer, package)
    settings.update({"vip_support_enabled": False}, audit.Actor.system("t"))
    db.session.commit()
    for rule in app.url_map.iter_rules():
        if getattr(app.view_functions[rule.endpoint], "vip_only", False) and rule.endpoint.startswith("admin."):
            method = "GET" if "GET" in rule.methods else "POST"
            assert billing_client.open(sample_url(rule), method=method).status_code == 404, rule.endpoint
    assert b"Billing packages" not in billing_client.get("/admin/").data
    portal = app.test_client()
    sign_in(portal, customer)
    assert portal.get("/packages").status_code == 404

    settings.update({"vip_support_enabled": True}, audit.Actor.system("t"))
    db.session.commit()
    assert package.name.encode() in billing_client.get("/admin/billing/packages").data
    assert b"You have 10 credits" in portal.get("/packages").data


def _package_form(department, **overrides):
    data = {"name": "Starter", "type": "credit", "price": "150.00", "currency": "TRY", "credits": "10",
            "days": "", "department_ids": [department.id], "on_sale": "y", "description": "Ten credits"}
    data.update(overrides)
    return data


def test_create_credit_and_subscription_packages(billing_client):
    department = make_department("Support")
    response = billing_client.post("/admin/billing/packages/new", data=_package_form(department))
    assert response.status_code == 302
    response = billing_client.post("/admin/billing/packages/new", data=_package_form(
        department, name="Monthly", type="subscription", price="1.250,50", credits="", days="30"))
    assert response.status_code == 302
    starter, monthly = db.session.scalars(db.select(Package).order_by(Package.id)).all()
    assert (starter.price_minor, starter.credits, starter.days, starter.on_sale) == (15000, 10, None, True)
    assert (monthly.price_minor, monthly.credits, monthly.days) == (125050, None, 30)
    page = billing_client.get("/admin/billing/packages").data.decode()
    assert "Starter" in page and "Monthly" in page


@pytest.mark.parametrize(("field", "value", "message"), [
    ("price", "0", "more than 0"),
    ("price", "10.555", "at most 2 decimals"),
    ("price", "abc", "price like 150.00"),
    ("credits", "0", "from 1 to 1,000,000,000"),
    ("credits", "2.5", "from 1 to 1,000,000,000"),
    ("credits", "1000000001", "from 1 to 1,000,000,000"),
    ("credits", "99999999999999", "from 1 to 1,000,000,000"),
    ("name", "", "required"),
    ("department_ids", [], "at least one department"),
])
def test_package_validation_messages(billing_client, field, value, message):
    department = make_department("Support")
    response = billing_client.post("/admin/billing/packages/new", data=_package_form(department, **{field: value}))
    assert response.status_code == 200
    assert message in response.data.decode()
    assert db.session.scalar(db.select(db.func.count(Package.id))) == 0


def test_subscription_needs_days(billing_client):
    department = make_department("Support")
    response = billing_client.post("/admin/billing/packages/new", data=_package_form(
        department, type="subscription", credits="10", days=""))
    assert "from 1 to 36,500" in response.data.decode()
    response = billing_client.post("/admin/billing/packages/new", data=_package_form(
        department, type="subscription", credits="", days="36501"))
    assert "from 1 to 36,500" in response.data.decode()
    assert db.session.scalar(db.select(db.func.count(Package.id))) == 0


def test_edit_sale_reorder_archive_and_delete(billing_client):
    department = make_department("Support")
    first = make_package("credit", [department], name="First")
    second = make_package("credit", [department], name="Second")
    response = billing_client.post(f"/admin/billing/packages/{first.id}/edit",
                                   data=_package_form(department, name="First renamed", price="99.90"),
                                   follow_redirects=True)
    assert "Package First renamed is saved" in response.data.decode()
    db.session.refresh(first)
    assert (first.name, first.price_minor) == ("First renamed", 9990)

    page = billing_client.post(f"/admin/billing/packages/{second.id}/move/up", follow_redirects=True).data.decode()
    assert page.index("Second") < page.index("First renamed")

    billing_client.post(f"/admin/billing/packages/{second.id}/sale", data={})
    db.session.refresh(second)
    assert not second.on_sale

    activate(make_customer(), first)  # sold: archived, never deleted
    archived = billing_client.post(f"/admin/billing/packages/{first.id}/archive", follow_redirects=True)
    assert "First renamed is archived: it was sold" in archived.data.decode()
    deleted = billing_client.post(f"/admin/billing/packages/{second.id}/archive", follow_redirects=True)
    assert "Second is deleted" in deleted.data.decode()
    db.session.expire_all()
    assert db.session.get(Package, first.id).archived
    assert db.session.get(Package, second.id) is None
    assert "First renamed" not in billing_client.get("/admin/billing/packages").data.decode()
    assert "First renamed" in billing_client.get("/admin/billing/packages?archived=1").data.decode()
    response = billing_client.post(f"/admin/billing/packages/{first.id}/edit", data=_package_form(department))
    assert "archived package cannot be edited" in response.data.decode()


def test_paid_subscriptions_list_detail_and_adjustment(app, billing_client, clock):
    support = make_department("Support", credit_per_request=2)
    credit_customer = make_customer(first_name="Kredi")
    subscriber = make_customer(first_name="Abone")
    make_customer(first_name="Hiç")
    activate(credit_customer, make_package("credit", [support], credits=10))
    activate(subscriber, make_package("subscription", [support], days=30))

    page = billing_client.get("/admin/billing/subscriptions").data.decode()
    assert "Kredi" in page and "Abone" in page and "Hiç" not in page
    page = billing_client.get("/admin/billing/subscriptions?type=subscription").data.decode()
    assert "Abone" in page and "Kredi" not in page

    url = f"/admin/billing/subscriptions/{credit_customer.id}"
    response = billing_client.post(url, data={"credits": "5", "reason": ""})
    assert "Say why the credits change" in response.data.decode()
    response = billing_client.post(url, data={"credits": "-20", "reason": "Too many"})
    assert "Not enough credits" in response.data.decode()
    response = billing_client.post(url, data={"credits": "5", "reason": "Goodwill after outage"}, follow_redirects=True)
    text = response.data.decode()
    assert "the balance is now 15" in text and "Goodwill after outage" in text
    db.session.refresh(credit_customer)
    assert credit_customer.credits == 15

    subscriber_page = billing_client.get(f"/admin/billing/subscriptions/{subscriber.id}").data.decode()
    assert "Adjust credits" not in subscriber_page and "Subscription periods" in subscriber_page


def test_a_refused_form_of_the_subscription_page_marks_only_itself(billing_client):
    """The page has three forms (credits, balance, warning threshold); the one refused shows its error, and the
    others stay blank: the credits form does not judge a post that was not meant for it."""
    customer = make_customer()
    activate(customer, make_package("credit", [make_department("Support")], credits=10))
    url = f"/admin/billing/subscriptions/{customer.id}"
    for path, fields, refusal in (
        ("/balance", {"amount": "10", "currency": "TRY", "reason": "kept"}, None),
        ("/balance", {"amount": "10", "currency": "TRY", "reason": ""}, "Say why the balance changes"),
        ("/low-credit-threshold", {"low_credit_threshold": "2000000"}, "Enter a whole number from 0 to 1,000,000."),
    ):
        answer = billing_client.post(url + path, data=fields)
        if refusal is None:
            assert answer.status_code == 302
            continue
        page = answer.data.decode()
        assert answer.status_code == 422 and refusal in page
        assert page.count('class="invalid-feedback"') == 1
        assert "Enter a whole number of credits." not in page


def test_customer_packages_page_shows_what_each_purchase_would_do(app, clock):
    support = make_department("Support")
    credits = make_package("credit", [support], credits=10, name="Ten credits")
    monthly = make_package("subscription", [support], days=90, name="Quarterly")
    make_package("credit", [support], name="Hidden", on_sale=False)
    customer = make_customer()
    client = app.test_client()
    sign_in(client, customer)
    page = client.get("/packages").data.decode()
    assert "Ten credits" in page and "Quarterly" in page and "Hidden" not in page
    assert page.index("Credit packages") < page.index("Ten credits") < page.index("Subscriptions")
    assert "You have no package yet" in page

    activate(customer, credits)
    page = client.get("/packages").data.decode()
    assert "Your balance would be 20 credits" in page
    assert "Switching forfeits your 10 remaining credits" in page

    activate(customer, monthly)
    clock.advance(days=10)
    page = client.get("/packages").data.decode()
    opens = (clock.now() + timedelta(days=50)).strftime("%B")
    assert "Renewal opens on" in page and opens in page
    assert "Switching ends your subscription" in page
