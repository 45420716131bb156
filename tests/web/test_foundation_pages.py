"""The foundation pages through the test client, judged by the rows they leave and the text they show:
registration, sign-in and sign-out, CSRF, language, profile, and the admin customer cards, departments,
general settings and agents."""
import html
import re

import pytest

from limonbilling.extensions import db
from limonbilling.models import Agent, Customer, CustomerDepartment, CustomerNote, Department
from limonbilling.services import accounts, settings

from ..factories import PASSWORD, make_agent, make_customer, make_department, make_package, sign_in

PERSON = {"account_type": "individual", "first_name": "Ayşe", "last_name": "Yılmaz", "email": "ayse@example.com",
          "phone": "0532 123 45 67", "password": "good-pass-1", "password_again": "good-pass-1", "language": ""}
COMPANY = {**PERSON, "account_type": "corporate", "email": "info@ozturk.example", "company_name": "Öztürk A.Ş.",
           "tax_number": "4540536920", "tax_office": "Kadıköy", "billing_address": "Moda Cad. 1, İstanbul"}
TAX_NUMBER_MESSAGE = "A tax number has 10 digits (or 11 for a sole proprietor's ID number) and a valid checksum."
PHONE_MESSAGE = "Enter a valid phone number: 0532 123 45 67 or +44 20 7946 0958."


def field_errors(page: str, name: str) -> list[str]:
    """The messages shown right under the field `name` (up to where the next field starts)."""
    after = page.split(f'id="{name}"', 1)[1]
    block = re.split(r'<div class="mb-3">|<fieldset', after, maxsplit=1)[0]
    return [html.unescape(m) for m in re.findall(r'<div class="invalid-feedback">(.*?)</div>', block)]


def csrf_token(page: str) -> str:
    return re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page).group(1)


def count(model) -> int:
    return db.session.scalar(db.select(db.func.count()).select_from(model))


def fresh(model, record_id):
    db.session.expire_all()
    return db.session.get(model, record_id)


# --- registration --------------------------------------------------------------------------------


def test_an_individual_registers_with_a_local_phone_and_signs_in(client):
    response = client.post("/register", data=PERSON)
    assert response.status_code == 302 and response.location == "/register/check-your-mail"
    assert "We sent a message to ayse@example.com." in client.get(response.location).data.decode()
    customer = db.session.scalar(db.select(Customer))
    assert (customer.account_type, customer.first_name, customer.last_name, customer.email, customer.phone) == (
        "individual", "Ayşe", "Yılmaz", "ayse@example.com", "+905321234567")
    assert customer.company_name is None and accounts.authenticate_customer("ayse@example.com", "good-pass-1")
    assert client.get("/orders").status_code == 302  # registering does not sign in (see test_account_enumeration)
    assert client.post("/login", data={"email": "ayse@example.com", "password": "good-pass-1"}).status_code == 302
    assert client.get("/orders").status_code == 200
    assert 'value="+905321234567"' in client.get("/profile").data.decode()


def test_a_corporate_customer_registers_with_the_company_details(client):
    assert client.post("/register", data=COMPANY).status_code == 302
    customer = db.session.scalar(db.select(Customer))
    assert (customer.account_type, customer.company_name, customer.tax_number, customer.tax_office,
            customer.billing_address) == ("corporate", "Öztürk A.Ş.", "4540536920", "Kadıköy", "Moda Cad. 1, İstanbul")
    client.post("/login", data={"email": COMPANY["email"], "password": COMPANY["password"]})
    assert client.get("/profile").status_code == 200


@pytest.mark.parametrize("change, field, message", [
    ({"tax_number": "4540536921"}, "tax_number", TAX_NUMBER_MESSAGE),
    ({"phone": "0532 12"}, "phone", PHONE_MESSAGE),
    ({"password_again": "other-pass-1"}, "password_again", "The two passwords differ."),
    ({"tax_office": ""}, "tax_office", "This field is required."),
    ({"password": "short", "password_again": "short"}, "password", "Use at least 10 characters."),
])
def test_a_refused_registration_names_the_field_and_saves_nothing(client, change, field, message):
    response = client.post("/register", data={**COMPANY, **change})
    page = response.data.decode()
    assert response.status_code == 200 and "Please correct the fields marked below." in page
    assert message in field_errors(page, field)
    assert field_errors(page, "email") == [] and count(Customer) == 0
    assert client.get("/profile").status_code == 302  # not signed in


def test_an_email_address_registers_once_whatever_its_case(client):
    make_customer(email="info@ozturk.example")
    answer = client.post("/register", data={**COMPANY, "email": " INFO@Ozturk.Example "})
    assert answer.location == "/register/check-your-mail"  # as for a new address: the mail tells the owner
    assert count(Customer) == 1


# --- signing in and out --------------------------------------------------------------------------


def test_a_wrong_password_is_refused_and_the_right_one_starts_a_new_session(client):
    customer = make_customer(email="ayse@example.com")
    refused = client.post("/login", data={"email": "ayse@example.com", "password": "wrong-pass-1"})
    assert refused.status_code == 200 and "The e-mail address or the password is wrong." in refused.data.decode()
    with client.session_transaction() as session:
        assert "_user_id" not in session
        session["planted"] = "by an attacker"
        session["language"] = "tr"
    response = client.post("/login?next=/profile", data={"email": "AYSE@example.com", "password": PASSWORD})
    assert response.status_code == 302 and response.location == "/profile"
    with client.session_transaction() as session:
        assert "planted" not in session and session["_user_id"] == customer.get_id()
        assert session["language"] == "tr"  # the visitor's language choice survives the new session
    assert customer.email in client.get("/profile").data.decode()


def test_sign_in_never_follows_next_to_another_site(client):
    customer = make_customer()
    for target in ("https://evil.example/", "//evil.example/", "profile"):
        response = client.post("/login", query_string={"next": target},
                               data={"email": customer.email, "password": PASSWORD})
        assert response.location == "/", target


def test_sign_out_is_a_post_and_portal_pages_then_send_to_sign_in(client):
    sign_in(client, make_customer())
    assert client.get("/logout").status_code == 405
    assert client.get("/profile").status_code == 200
    response = client.post("/logout")
    assert response.status_code == 302 and response.location == "/login"
    assert "You are signed out." in client.get("/login").data.decode()
    for path in ("/profile", "/orders", "/"):
        response = client.get(path)
        assert response.status_code == 302 and response.location.startswith("/login"), path
    assert client.get("/profile").location == "/login?next=/profile"


# --- CSRF ----------------------------------------------------------------------------------------


def test_forms_without_the_csrf_token_are_refused_and_with_it_accepted(app, make_app):
    protected = make_app(WTF_CSRF_ENABLED=True)
    email = make_agent("customers").email
    db.session.commit()  # release SQLite's write lock before the other app's session writes
    with protected.app_context():
        client = protected.test_client()
        refused = client.post("/register", data=PERSON)
        assert refused.status_code == 400 and "The form has expired" in refused.data.decode()
        assert client.post("/admin/login", data={"email": email, "password": PASSWORD}).status_code == 400
        assert client.post("/language/tr", data={}).status_code == 400
        assert count(Customer) == 0
        with client.session_transaction() as session:
            assert "_user_id" not in session and "language" not in session

        token = csrf_token(client.get("/register").data.decode())
        assert client.post("/register", data={**PERSON, "csrf_token": token}).status_code == 302
        assert db.session.scalar(db.select(Customer.email)) == "ayse@example.com"

        admin = protected.test_client()
        token = csrf_token(admin.get("/admin/login").data.decode())
        signed_in = admin.post("/admin/login", data={"email": email, "password": PASSWORD, "csrf_token": token})
        assert signed_in.status_code == 302 and admin.get("/admin/customers").status_code == 200


# --- language ------------------------------------------------------------------------------------
# The app has no compiled translation catalogue (limonbilling/translations does not exist), so no text
# turns Turkish; the choice still sets the page's locale: <html lang="tr"> and Turkish money formatting.


def test_a_visitor_choice_of_turkish_carries_into_registration(client):
    response = client.post("/language/tr", data={"next": "/register"})
    assert response.status_code == 302 and response.location == "/register"
    page = client.get("/register").data.decode()
    assert '<html lang="tr">' in page and '<option selected value="tr">' in page
    client.post("/register", data={**PERSON, "language": "tr"})
    assert db.session.scalar(db.select(Customer.language)) == "tr"
    client.post("/login", data={"email": PERSON["email"], "password": PERSON["password"]})
    assert '<html lang="tr">' in client.get("/profile").data.decode()
    assert client.post("/language/xx", data={}).status_code == 302
    with client.session_transaction() as session:
        assert session["language"] == "tr"


def test_a_customer_language_is_kept_on_the_account_and_used_on_pages(app, client):
    make_package("credit", price="150.00")
    customer = make_customer()
    sign_in(client, customer)
    page = client.get("/packages").data.decode()
    assert '<html lang="en">' in page and "₺150,00" not in page
    client.post("/language/tr", data={"next": "/packages"})
    assert fresh(Customer, customer.id).language == "tr"
    other_device = app.test_client()
    sign_in(other_device, customer)
    page = other_device.get("/packages").data.decode()
    assert '<html lang="tr">' in page and "₺150,00" in page


# --- profile -------------------------------------------------------------------------------------


def _details(customer, **changes):
    values = {"account_type": customer.account_type, "first_name": customer.first_name,
              "last_name": customer.last_name, "email": customer.email, "phone": customer.phone, "national_id": "",
              "company_name": "", "tax_number": "", "tax_office": "", "billing_address": "", "language": ""}
    return {**values, **changes}


def test_profile_changes_phone_and_becomes_corporate(client):
    customer = make_customer()
    sign_in(client, customer)
    corporate = _details(customer, account_type="corporate", phone="+44 20 7946 0958", company_name="Limon Ltd",
                         tax_number="4540536920", tax_office="Şişli", billing_address="Halaskargazi Cad. 1",
                         language="tr")
    response = client.post("/profile", data=corporate, follow_redirects=True)
    assert "Bilgileriniz kaydedildi." in response.data.decode()  # now in the chosen language
    saved = fresh(Customer, customer.id)
    assert (saved.account_type, saved.phone, saved.company_name, saved.tax_number, saved.tax_office,
            saved.language) == ("corporate", "+442079460958", "Limon Ltd", "4540536920", "Şişli", "tr")


def test_invalid_profile_data_shows_errors_and_changes_nothing(client):
    customer = make_customer(phone="0532 123 45 67")
    other = make_customer(email="taken@example.com")
    sign_in(client, customer)
    bad = _details(customer, account_type="corporate", phone="12", email=other.email, company_name="Limon Ltd",
                   tax_number="1234567891", tax_office="", billing_address="Adres")
    response = client.post("/profile", data=bad)
    page = response.data.decode()
    assert response.status_code == 200
    assert field_errors(page, "phone") == [PHONE_MESSAGE]
    assert 'id="email"' not in page  # the address changes in its own form (test_email_change.py)
    assert field_errors(page, "tax_number") == [TAX_NUMBER_MESSAGE]
    assert field_errors(page, "tax_office") == ["This field is required."]
    saved = fresh(Customer, customer.id)
    assert (saved.account_type, saved.phone, saved.email, saved.company_name) == (
        "individual", "+905321234567", customer.email, None)


def test_a_password_change_needs_the_current_password(app, client):
    customer = make_customer()
    sign_in(client, customer)
    refused = client.post("/profile/password", data={"pw-current_password": "wrong-pass-1",
                                                     "pw-new_password": "new-pass-12"})
    assert refused.status_code == 422
    assert field_errors(refused.data.decode(), "pw-current_password") == ["This is not your current password."]
    weak = client.post("/profile/password", data={"pw-current_password": PASSWORD, "pw-new_password": "abc"})
    assert "Use at least 10 characters." in field_errors(weak.data.decode(), "pw-new_password")
    assert accounts.authenticate_customer(customer.email, PASSWORD) is not None
    changed = client.post("/profile/password", data={"pw-current_password": PASSWORD, "pw-new_password": "new-pass-12"},
                          follow_redirects=True)
    assert "Your password is changed; your other sessions are signed out." in changed.data.decode()
    assert accounts.authenticate_customer(customer.email, PASSWORD) is None
    new_device = app.test_client()
    assert new_device.post("/login", data={"email": customer.email, "password": "new-pass-12"}).status_code == 302


# --- admin: customer cards -----------------------------------------------------------------------


@pytest.fixture
def cards(app):
    client = app.test_client()
    agent = make_agent("customers")
    sign_in(client, agent)
    client.agent = agent
    return client


def test_customer_list_searches_name_email_and_phone(cards):
    make_customer(first_name="Berk", last_name="Kaya", email="berk@example.com", phone="0555 444 33 22")
    make_customer(first_name="Deniz", last_name="Şahin", email="deniz@example.org", phone="0532 765 43 21")
    for query, found in (("berk kaya", "berk@example.com"), ("ŞAHIN", "deniz@example.org"),
                         ("example.org", "deniz@example.org"), ("555 444", "berk@example.com"),
                         ("0532 765 43 21", "deniz@example.org"), ("+905554443322", "berk@example.com")):
        page = cards.get("/admin/customers", query_string={"q": query}).data.decode()
        other = {"berk@example.com", "deniz@example.org"} - {found}
        assert found in page and other.pop() not in page, query
    page = cards.get("/admin/customers?q=nobody").data.decode()
    assert "No customer matches “nobody”" in page


def test_customer_search_finds_names_with_a_dotted_capital_i(cards):
    make_customer(first_name="İlker", last_name="Işık", email="c1@example.com")
    for query in ("İlker", "ilker", "İLKER"):
        assert "c1@example.com" in cards.get("/admin/customers", query_string={"q": query}).data.decode(), query


def test_customer_list_pages_newest_first(app, cards):
    app.config["ITEMS_PER_PAGE"] = 2
    for n in range(1, 6):
        make_customer(email=f"c{n}@example.com")
    pages, url = [], "/admin/customers"
    while url:  # follow the "Older" links to the end
        pages.append(cards.get(url).data.decode())
        older = re.search(r'href="(/admin/customers\?before=\d+[^"]*)"', pages[-1])
        url = older.group(1).replace("&amp;", "&") if older else None
    shown = [sorted(re.findall(r"<td>(c\d@example\.com)</td>", page)) for page in pages]
    assert shown == [["c4@example.com", "c5@example.com"], ["c2@example.com", "c3@example.com"], ["c1@example.com"]]
    searched = cards.get("/admin/customers?q=example.com").data.decode()
    assert re.search(r"/admin/customers\?before=\d+&amp;q=example.com", searched)


def test_customer_card_departments_notes_and_identity(cards, clock):
    customer = make_customer(first_name="Berk", email="berk@example.com")
    department = make_department("Servers")
    url = f"/admin/customers/{customer.id}"
    page = cards.get(url).data.decode()
    assert "berk@example.com" in page and "+905321234567" in page and "Servers" in page
    assert "Switch on (free)" in page and "No notes yet." in page

    cards.post(f"{url}/departments/{department.id}", data={"enabled": "y"})
    row = db.session.scalar(db.select(CustomerDepartment))
    assert (row.customer_id, row.department_id, row.source) == (customer.id, department.id, "manual")
    assert row.enabled_at == clock.now()
    switched_on = cards.get(url).data.decode()
    assert "is on for this customer, free of charge." in switched_on
    assert f"on since {clock.now():%b} {clock.now().day}, {clock.now().year}" in switched_on
    cards.post(f"{url}/departments/{department.id}", data={})
    assert count(CustomerDepartment) == 0

    refused = cards.post(f"{url}/notes", data={"body": "   "}, follow_redirects=True).data.decode()
    assert "Write the note first." in refused and count(CustomerNote) == 0
    cards.post(f"{url}/notes", data={"body": "Called about the invoice"})
    note = db.session.scalar(db.select(CustomerNote))
    assert (note.customer_id, note.agent_id, note.body) == (customer.id, cards.agent.id, "Called about the invoice")
    assert "Called about the invoice" in cards.get(url).data.decode()

    clock.advance(days=3, hours=2)
    cards.post(f"{url}/identity", data={"enabled": "y"})
    marked = fresh(Customer, customer.id)
    assert marked.identity_verified and marked.identity_verified_at == clock.now()
    assert "Identity verified" in cards.get(url).data.decode()
    cards.post(f"{url}/identity", data={})
    unmarked = fresh(Customer, customer.id)
    assert not unmarked.identity_verified and unmarked.identity_verified_at is None


# --- admin: departments --------------------------------------------------------------------------


@pytest.fixture
def admin(app):
    client = app.test_client()
    sign_in(client, make_agent("settings"))
    return client


def test_departments_are_created_and_edited(admin):
    response = admin.post("/admin/departments/new", data={"name": " Sales ", "active": "y", "credit_per_request": "3"})
    assert response.status_code == 302
    department = db.session.scalar(db.select(Department))
    assert (department.name, department.active, department.credit_per_request) == ("Sales", True, 3)
    assert "Department Sales is saved." in admin.get("/admin/departments").data.decode()
    admin.post(f"/admin/departments/{department.id}/edit", data={"name": "Satış", "credit_per_request": "0"})
    edited = fresh(Department, department.id)
    assert (edited.name, edited.active, edited.credit_per_request) == ("Satış", False, 0)
    assert 'value="Satış"' in admin.get(f"/admin/departments/{department.id}/edit").data.decode()


@pytest.mark.parametrize("credit", ["-1", "1.5", "abc", ""])
def test_department_credit_per_request_must_be_a_whole_number(admin, credit):
    page = admin.post("/admin/departments/new", data={"name": "Sales", "credit_per_request": credit}).data.decode()
    assert field_errors(page, "credit_per_request") == ["Enter a whole number of credits from 0 to 1000000."]
    assert count(Department) == 0


def test_department_names_are_unique_whatever_their_case(admin):
    make_department("Sales")
    other = make_department("Servers", credit_per_request=1)
    page = admin.post("/admin/departments/new", data={"name": "SALES", "credit_per_request": "1"}).data.decode()
    assert field_errors(page, "name") == ["A department with this name already exists."]
    page = admin.post(f"/admin/departments/{other.id}/edit",
                      data={"name": "sales", "credit_per_request": "1"}).data.decode()
    assert field_errors(page, "name") == ["A department with this name already exists."]
    assert count(Department) == 2 and fresh(Department, other.id).name == "Servers"


def test_a_huge_credit_per_request_is_refused_with_a_message(admin):
    response = admin.post("/admin/departments/new", data={"name": "Sales", "credit_per_request": "9" * 20})
    assert response.status_code == 200 and field_errors(response.data.decode(), "credit_per_request")
    assert count(Department) == 0


# --- admin: settings → general -------------------------------------------------------------------


GENERAL = {"company_name": "Limon Destek", "notification_email": "Billing@Example.com",
           "notification_email_cc": "a@example.com, B@example.com;c@example.com", "default_language": "tr",
           "renewal_window_days": "14"}


def test_general_settings_are_saved(client, admin):
    response = admin.post("/admin/settings/general", data=GENERAL, follow_redirects=True)
    page = response.data.decode()
    assert "Ayarlar kaydedildi." in page and "Limon Destek" in page  # the new default language: Turkish
    assert 'value="a@example.com, b@example.com, c@example.com"' in page
    assert (settings.get("company_name"), settings.get("notification_email"), settings.get("notification_email_cc"),
            settings.get("default_language"), settings.get("renewal_window_days")) == (
        "Limon Destek", "billing@example.com", ["a@example.com", "b@example.com", "c@example.com"], "tr", 14)
    visitor = client.get("/login").data.decode()  # the default language and the company name reach the portal
    assert '<html lang="tr">' in visitor and "Limon Destek" in visitor


@pytest.mark.parametrize("change, field, message", [
    ({"notification_email_cc": "a@example.com, not-an-address"}, "notification_email_cc",
     "not-an-address is not a valid e-mail address."),
    ({"notification_email": "billing@"}, "notification_email", "Enter a valid e-mail address, like name@example.com."),
    ({"renewal_window_days": "0"}, "renewal_window_days", "Enter a number from 1 to 365."),
    ({"company_name": ""}, "company_name", "This field is required."),
])
def test_general_settings_refuse_bad_values_and_keep_the_old_ones(admin, change, field, message):
    page = admin.post("/admin/settings/general", data={**GENERAL, **change}).data.decode()
    assert message in field_errors(page, field)
    assert settings.get("company_name") == "LimonBilling" and settings.get("notification_email_cc") == []


# --- admin: agents -------------------------------------------------------------------------------


def test_an_owner_creates_agents_with_permissions(app):
    owner = make_agent(is_owner=True, name="Owner")
    client = app.test_client()
    sign_in(client, owner)
    response = client.post("/admin/settings/agents/new", data={
        "name": "Ali Veli", "email": "Ali@Example.com", "password": "ali-pass-12",
        "can_customers": "y", "can_billing": "y"})
    assert response.status_code == 302
    ali = db.session.scalar(db.select(Agent).where(Agent.email == "ali@example.com"))
    assert (ali.name, ali.permissions, ali.is_owner, ali.active) == ("Ali Veli", ["billing", "customers"], False, True)
    assert "billing, customers" in client.get("/admin/settings/agents").data.decode()
    page = client.post("/admin/settings/agents/new", data={"name": "Again", "email": "ali@example.com",
                                                           "password": "ali-pass-12"}).data.decode()
    assert field_errors(page, "email") == ["An agent with this e-mail address already exists."]
    ali_client = app.test_client()
    signed_in = ali_client.post("/admin/login", data={"email": "ali@example.com", "password": "ali-pass-12"})
    assert signed_in.status_code == 302
    assert ali_client.get("/admin/customers").status_code == 200
    assert ali_client.get("/admin/settings/agents").status_code == 403


def test_only_an_owner_makes_owners(app, admin):
    response = admin.post("/admin/settings/agents/new", data={"name": "Boss", "email": "boss@example.com",
                                                              "password": "boss-pass-12", "is_owner": "y"})
    assert response.status_code == 403
    assert db.session.scalar(db.select(Agent).where(Agent.email == "boss@example.com")) is None


def test_the_last_owner_cannot_be_demoted_or_disabled(app):
    owner = make_agent(is_owner=True)
    client = app.test_client()
    sign_in(client, owner)
    url = f"/admin/settings/agents/{owner.id}/edit"
    for data in ({"active": "y"}, {"is_owner": "y"}):
        page = client.post(url, data=data).data.decode()
        assert "At least one active owner must remain." in page
        kept = fresh(Agent, owner.id)
        assert kept.is_owner and kept.active
    second = make_agent(is_owner=True)
    assert client.post(f"/admin/settings/agents/{second.id}/edit", data={"active": "y", "can_support": "y"}
                       ).status_code == 302
    demoted = fresh(Agent, second.id)
    assert (demoted.is_owner, demoted.permissions) == (False, ["support"])


def test_a_too_long_agent_name_is_refused_with_a_message(app):
    owner = app.test_client()
    sign_in(owner, make_agent(is_owner=True))
    response = owner.post("/admin/settings/agents/new", data={"name": "x" * 121, "email": "long@example.com",
                                                              "password": "long-pass-12"})
    assert response.status_code == 200 and field_errors(response.data.decode(), "name")
    assert db.session.scalar(db.select(Agent).where(Agent.email == "long@example.com")) is None
