"""Foundation pages through the test client: registration, sign-in, CSRF, language, profile, and the admin
customer cards, departments, general settings and agents (issue 2)."""
import pytest

from limonbilling.extensions import db
from limonbilling.models import Agent, Customer, CustomerDepartment, CustomerNote, Department, Setting
from limonbilling.services import accounts

from ..factories import PASSWORD, make_agent, make_customer, make_department, sign_in

PERSON = {"account_type": "individual", "first_name": "Ayşe", "last_name": "Yılmaz", "email": "ayse@example.com",
          "phone": "0532 123 45 67", "password": "good-pass-1", "password_again": "good-pass-1", "language": ""}
COMPANY = {**PERSON, "account_type": "corporate", "email": "info@ozturk.example", "company_name": "Öztürk A.Ş.",
           "tax_number": "4540536920", "tax_office": "Kadıköy", "billing_address": "Moda Cad. 1, İstanbul"}


def test_an_individual_registers_and_is_signed_in(client):
    response = client.post("/register", data=PERSON, follow_redirects=True)
    assert "Welcome! Your account is ready." in response.data.decode()
    customer = db.session.scalar(db.select(Customer))
    assert (customer.phone, customer.first_name, customer.account_type) == ("+905321234567", "Ayşe", "individual")
    assert client.get("/profile").status_code == 200


@pytest.mark.parametrize("change, field_message", [
    ({"tax_number": "4540536921"}, "tax number"),
    ({"phone": "12"}, "phone"),
    ({"password_again": "other-pass-1"}, "The two passwords differ."),
    ({"company_name": ""}, "company"),
])
def test_a_bad_corporate_registration_shows_why_and_saves_nothing(client, change, field_message):
    page = client.post("/register", data={**COMPANY, **change}).data.decode()
    assert field_message.lower() in page.lower() and "invalid-feedback" in page
    assert db.session.scalar(db.select(Customer)) is None


def test_a_corporate_registration_and_a_duplicate_email(client):
    client.post("/register", data=COMPANY)
    customer = db.session.scalar(db.select(Customer))
    assert (customer.company_name, customer.tax_number, customer.tax_office) == ("Öztürk A.Ş.", "4540536920", "Kadıköy")
    other = client.application.test_client()
    page = other.post("/register", data={**PERSON, "email": "INFO@ozturk.example"}).data.decode()
    assert "already" in page and db.session.scalar(db.select(db.func.count(Customer.id))) == 1


def test_sign_in_renews_the_session_and_sign_out_ends_it(client):
    make_customer(email="ayse@example.com")
    page = client.post("/login", data={"email": "ayse@example.com", "password": "wrong"}).data.decode()
    assert "not right" in page.lower() or "wrong" in page.lower() or "incorrect" in page.lower()
    with client.session_transaction() as session:
        session["planted"] = "by an attacker"
    client.post("/login", data={"email": "ayse@example.com", "password": PASSWORD})
    with client.session_transaction() as session:
        assert "planted" not in session and session.get("_user_id")
    assert client.get("/profile").status_code == 200
    client.post("/logout")
    assert client.get("/profile").headers["Location"].startswith("/login")


def test_forms_without_the_csrf_token_are_refused(app, make_app):
    protected = make_app(WTF_CSRF_ENABLED=True)
    with protected.app_context():
        client = protected.test_client()
        assert client.post("/register", data=PERSON).status_code == 400
        assert client.post("/admin/login", data={"email": "a@example.com", "password": "x"}).status_code == 400
        assert db.session.scalar(db.select(Customer)) is None


def test_the_language_choice_is_remembered_on_the_account(client):
    customer = make_customer()
    client.post("/language/tr", data={"next": "/profile"})
    with client.session_transaction() as session:
        assert session["language"] == "tr"
    sign_in(client, customer)
    client.post("/language/tr", data={})
    db.session.expire_all()
    assert db.session.get(Customer, customer.id).language == "tr"
    client.post("/language/de", data={})
    db.session.expire_all()
    assert db.session.get(Customer, customer.id).language == "tr"


def test_profile_changes_are_validated_and_the_password_needs_the_old_one(client):
    customer = make_customer(phone="0532 123 45 67")
    sign_in(client, customer)
    details = {"account_type": "corporate", "first_name": customer.first_name, "last_name": customer.last_name,
               "email": customer.email, "phone": "0212 555 12 34", "company_name": "Limon Ltd",
               "tax_number": "4540536920", "tax_office": "Şişli", "billing_address": "Adres 1", "language": ""}
    page = client.post("/profile", data={**details, "tax_number": "123"}).data.decode()
    assert "invalid-feedback" in page
    db.session.expire_all()
    assert db.session.get(Customer, customer.id).account_type == "individual"
    assert "are saved" in client.post("/profile", data=details, follow_redirects=True).data.decode()
    db.session.expire_all()
    saved = db.session.get(Customer, customer.id)
    assert (saved.account_type, saved.company_name, saved.phone) == ("corporate", "Limon Ltd", "+902125551234")
    refused = client.post("/profile/password", data={"pw-current_password": "wrong-pass-1",
                                                     "pw-new_password": "new-pass-12"})
    assert refused.status_code == 422
    client.post("/profile/password", data={"pw-current_password": PASSWORD, "pw-new_password": "new-pass-12"})
    assert accounts.authenticate_customer(customer.email, "new-pass-12") is not None


@pytest.fixture
def agent_client(app):
    client = app.test_client()
    sign_in(client, make_agent("customers", "settings"))
    return client


def test_customer_cards_search_page_and_act(app, agent_client, clock):
    app.config["ITEMS_PER_PAGE"] = 2
    people = [make_customer(first_name=name, email=f"{email}@example.com")
              for name, email in (("Ayşe", "ayse"), ("Berk", "berk"), ("Cem", "cem"), ("Deniz", "deniz"),
                                  ("Ece", "ece"))]
    assert "ece@example.com" in agent_client.get("/admin/customers?q=ECE").data.decode()
    assert "berk@example.com" not in agent_client.get("/admin/customers?q=ece").data.decode()
    first, third = agent_client.get("/admin/customers").data.decode(), \
        agent_client.get("/admin/customers?page=3").data.decode()
    assert "ece@example.com" in first and "ayse@example.com" in third and "ayse@example.com" not in first
    customer, department = people[0], make_department("Servers")
    url = f"/admin/customers/{customer.id}"
    assert customer.email in agent_client.get(url).data.decode()
    agent_client.post(f"{url}/departments/{department.id}", data={"enabled": "y"})
    row = db.session.scalar(db.select(CustomerDepartment))
    assert (row.department_id, row.source) == (department.id, "manual")
    agent_client.post(f"{url}/departments/{department.id}", data={})
    assert db.session.scalar(db.select(CustomerDepartment)) is None
    assert "danger" in agent_client.post(f"{url}/notes", data={"body": " "}, follow_redirects=True).data.decode()
    agent_client.post(f"{url}/notes", data={"body": "Called about the invoice"})
    assert db.session.scalar(db.select(CustomerNote)).body == "Called about the invoice"
    agent_client.post(f"{url}/identity", data={"enabled": "y"})
    db.session.expire_all()
    marked = db.session.get(Customer, customer.id)
    assert marked.identity_verified and marked.identity_verified_at == clock.now()


@pytest.mark.parametrize("credit", ["-1", "1.5", "abc"])
def test_department_credit_must_be_a_whole_number(agent_client, credit):
    page = agent_client.post("/admin/departments/new", data={"name": "Sales", "active": "y",
                                                              "credit_per_request": credit}).data.decode()
    assert "invalid-feedback" in page and db.session.scalar(db.select(Department)) is None


def test_departments_are_created_edited_and_names_unique(agent_client):
    agent_client.post("/admin/departments/new", data={"name": "Sales", "active": "y", "credit_per_request": "2"})
    department = db.session.scalar(db.select(Department))
    assert (department.name, department.credit_per_request) == ("Sales", 2)
    page = agent_client.post("/admin/departments/new", data={"name": "SALES", "credit_per_request": "0"}).data.decode()
    assert "invalid-feedback" in page
    agent_client.post(f"/admin/departments/{department.id}/edit", data={"name": "Satış", "credit_per_request": "0"})
    db.session.expire_all()
    assert (department.name, department.active, department.credit_per_request) == ("Satış", False, 0)


def test_general_settings_name_the_bad_address(agent_client):
    data = {"company_name": "Limon", "notification_email": "billing@example.com",
            "notification_email_cc": "a@example.com, nope", "default_language": "tr", "renewal_window_days": "14"}
    page = agent_client.post("/admin/settings/general", data=data).data.decode()
    assert "nope is not a valid e-mail address." in page and db.session.scalar(db.select(Setting)) is None
    agent_client.post("/admin/settings/general", data={**data, "notification_email_cc": "a@example.com"})
    from limonbilling.services import settings

    assert settings.get("notification_email_cc") == ["a@example.com"] and settings.get("renewal_window_days") == 14


def test_agents_are_managed_with_settings_and_the_last_owner_stays(app, agent_client):
    assert agent_client.get("/admin/settings/agents").status_code == 200
    page = agent_client.post("/admin/settings/agents/new", data={
        "name": "Boss", "email": "boss@example.com", "password": "boss-pass-12", "is_owner": "y"}).data.decode()
    assert db.session.scalar(db.select(Agent).where(Agent.email == "boss@example.com")) is None, page
    agent_client.post("/admin/settings/agents/new", data={"name": "Ali", "email": "ali@example.com",
                                                          "password": "ali-pass-12", "can_support": "y"})
    ali = db.session.scalar(db.select(Agent).where(Agent.email == "ali@example.com"))
    assert ali.permissions == ["support"] and not ali.is_owner
    owner = make_agent(is_owner=True)
    client = app.test_client()
    sign_in(client, owner)
    page = client.post(f"/admin/settings/agents/{owner.id}/edit", data={"active": "y"}).data.decode()
    assert "owner" in page.lower()
    db.session.expire_all()
    assert db.session.get(Agent, owner.id).is_owner
