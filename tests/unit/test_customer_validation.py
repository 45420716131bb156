"""Customer details, accounts, departments and settings at the service level (domain.md §1–3)."""
import pytest

from limonbilling.extensions import db
from limonbilling.models import Agent, AuditEntry, Customer
from limonbilling.services import ServiceError, ValidationFailed, accounts, audit, customers, departments, settings

from ..factories import make_agent, make_corporate_customer, make_customer, make_department

ACTOR = audit.Actor("agent", 7, "agent@example.com", "10.0.0.1")
INDIVIDUAL = {"account_type": "individual", "first_name": "Ayşe", "last_name": "Yılmaz",
              "email": "Ayse@Example.com", "phone": "0532 123 45 67"}
CORPORATE = {**INDIVIDUAL, "account_type": "corporate", "company_name": "Öztürk A.Ş.", "tax_number": "4540536920",
             "tax_office": "Kadıköy", "billing_address": "Moda Cad. 1"}


def errors_of(data, **kwargs) -> dict:
    with pytest.raises(ValidationFailed) as failed:
        customers.validate_details(data, **kwargs)
    return failed.value.errors


def test_individual_needs_name_email_and_phone(app):
    assert set(errors_of({"account_type": "individual"})) == {"first_name", "last_name", "email", "phone"}
    clean = customers.validate_details(INDIVIDUAL)
    assert (clean["email"], clean["phone"], clean["company_name"]) == ("ayse@example.com", "+905321234567", None)


def test_corporate_needs_company_details_too(app):
    assert set(errors_of({**INDIVIDUAL, "account_type": "corporate"})) == {
        "company_name", "tax_number", "tax_office", "billing_address"}
    assert customers.validate_details(CORPORATE)["tax_number"] == "4540536920"


@pytest.mark.parametrize(("phone", "normalised"), [
    ("0532 123 45 67", "+905321234567"), ("5321234567", "+905321234567"), ("+90 532 123 45 67", "+905321234567"),
    ("0212 555 12 34", "+902125551234"), ("+44 20 7946 0958", "+442079460958"), ("+1 202 555 0143", "+12025550143"),
])
def test_turkish_and_international_phones(app, phone, normalised):
    assert customers.validate_details({**INDIVIDUAL, "phone": phone})["phone"] == normalised


@pytest.mark.parametrize("phone", ["abc", "123", "0532 12", "+90 000 000 00 00"])
def test_bad_phones(app, phone):
    assert "phone" in errors_of({**INDIVIDUAL, "phone": phone})


@pytest.mark.parametrize("email", ["no-at-sign", "a@b", "x@@example.com", "ayşe@"])
def test_bad_emails(app, email):
    assert "email" in errors_of({**INDIVIDUAL, "email": email})


@pytest.mark.parametrize(("number", "valid"), [
    ("4540536920", True), ("4540536921", False), ("454053692", False),
    ("10000000146", True), ("10000000147", False), ("abcdefghij", False),
])
def test_tax_numbers_vkn_or_tckn_with_checksum(app, number, valid):
    data = {**CORPORATE, "tax_number": number}
    if valid:
        assert customers.validate_details(data)["tax_number"] == number
    else:
        assert "tax_number" in errors_of(data)


def test_individual_turkish_id_is_optional_but_checked(app):
    assert customers.validate_details(INDIVIDUAL)["national_id"] is None
    assert customers.validate_details({**INDIVIDUAL, "national_id": "100 000 001 46"})["national_id"] == "10000000146"
    assert "national_id" in errors_of({**INDIVIDUAL, "national_id": "10000000147"})


def test_every_error_is_reported_at_once(app):
    errors = errors_of({**CORPORATE, "email": "bad", "phone": "1", "tax_number": "1", "first_name": ""})
    assert {"email", "phone", "tax_number", "first_name"} <= errors.keys()


def test_duplicate_email_is_refused_whatever_the_case(app):
    customer = make_customer(email="ayse@example.com")
    assert "email" in errors_of({**INDIVIDUAL, "email": "AYSE@example.com"})
    assert customers.validate_details({**INDIVIDUAL, "email": "ayse@example.com"}, customer=customer)


def test_a_failed_registration_saves_nothing(app):
    with pytest.raises(ValidationFailed) as failed:
        customers.register_customer({**INDIVIDUAL, "phone": "1"}, "short")
    assert {"phone", "password"} <= failed.value.errors.keys()
    db.session.rollback()
    assert db.session.scalar(db.select(db.func.count(Customer.id))) == 0
    assert db.session.scalar(db.select(db.func.count(AuditEntry.id))) == 0


def test_update_changes_only_what_differs_and_is_audited(app):
    customer = make_customer()
    assert customers.update_customer(customer, {"first_name": "Ayşegül", "phone": "0532 123 45 67"}, ACTOR) == [
        "first_name"]
    entry = db.session.scalars(db.select(AuditEntry).where(AuditEntry.action == "customer.update")).one()
    assert (entry.actor_type, entry.actor_id, entry.actor_label, entry.ip) == ("agent", 7, "agent@example.com",
                                                                               "10.0.0.1")
    assert entry.details == {"fields": ["first_name"]}


def test_card_departments_notes_and_identity(app, clock):
    customer, department = make_customer(), make_department("Support")
    agent = make_agent("customers")
    actor = audit.Actor.of(agent)
    customers.set_department(customer, department, True, actor)
    assert [(row.department.name, row.source) for row in customer.departments] == [("Support", "manual")]
    customer.departments[0].source = "package"
    customers.set_department(customer, department, True, actor)
    assert customer.departments[0].source == "manual"
    customers.set_department(customer, department, False, actor)
    assert customer.departments == []
    with pytest.raises(ValidationFailed):
        customers.add_note(customer, "   ", actor)
    customers.add_note(customer, "Called about the invoice.", actor)
    customers.set_identity_verified(customer, True, actor)
    db.session.commit()
    assert (customer.notes[0].body, customer.notes[0].agent) == ("Called about the invoice.", agent)
    assert customer.identity_verified and customer.identity_verified_at == clock.now()


def test_search_by_name_company_email_and_phone(app):
    ayse = make_customer(first_name="Ayşe", last_name="Yılmaz", email="ayse@example.com")
    company = make_corporate_customer(first_name="Mehmet", last_name="Kaya", email="mk@example.com",
                                      phone="+44 20 7946 0958")

    def found(query):
        return {c.id for c in db.session.scalars(customers.search(query))}

    assert found("ayşe yıl") == {ayse.id}
    assert found("Öztürk") == {company.id}
    assert found("MK@EXAMPLE") == {company.id}
    assert found("+44207946") == {company.id}
    assert found("") == {ayse.id, company.id}


def test_passwords_and_sign_in(app):
    assert accounts.password_problem("short1") and accounts.password_problem("onlyletters")
    assert accounts.password_problem("12345678901") and accounts.password_problem("good-pass-1") is None
    customer = make_customer(email="ayse@example.com")
    assert accounts.authenticate_customer("AYSE@example.com", "secret-pass-1") == customer
    assert accounts.authenticate_customer("ayse@example.com", "wrong") is None
    assert accounts.authenticate_customer("nobody@example.com", "secret-pass-1") is None
    disabled = make_agent("billing", active=False)
    assert accounts.authenticate_agent(disabled.email, "secret-pass-1") is None


def test_agents_permissions_and_the_last_owner(app):
    owner = accounts.create_owner("owner@example.com", "owner-pass-1")
    assert owner.permissions == ["billing", "customers", "settings", "support"]
    with pytest.raises(ValidationFailed) as failed:
        accounts.create_agent(name="", email="owner@example.com", password="x", permissions=[], is_owner=False,
                              actor=ACTOR)
    assert set(failed.value.errors) == {"name", "email", "password"}
    agent = accounts.create_agent(name="Ali", email="ali@example.com", password="ali-pass-1",
                                  permissions=["support"], is_owner=False, actor=ACTOR)
    assert agent.can("support") and not agent.can("billing")
    with pytest.raises(ServiceError) as refused:
        accounts.update_agent(owner, permissions=[], is_owner=False, active=True, actor=ACTOR)
    assert refused.value.code == "last_owner"
    accounts.update_agent(agent, permissions=["billing"], is_owner=True, active=True, actor=ACTOR)
    accounts.update_agent(owner, permissions=[], is_owner=False, active=True, actor=ACTOR)
    db.session.commit()
    assert db.session.scalar(db.select(db.func.count(Agent.id)).where(Agent.is_owner)) == 1


def test_settings_defaults_update_and_general_validation(app):
    assert settings.get("renewal_window_days") == 30 and settings.vip_support_enabled()
    assert settings.update({"company_name": "Limon", "renewal_window_days": 30}, ACTOR) == ["company_name"]
    with pytest.raises(ValidationFailed) as failed:
        settings.update_general(company_name="", notification_email="bad", notification_email_cc="a@example.com, nope",
                                default_language="de", renewal_window_days=0, actor=ACTOR)
    errors = failed.value.errors
    assert set(errors) == {"company_name", "notification_email", "notification_email_cc", "default_language",
                           "renewal_window_days"}
    assert "nope" in errors["notification_email_cc"][0]
    settings.update_general(company_name="Limon", notification_email="Billing@Example.com",
                            notification_email_cc="a@example.com; B@example.com", default_language="tr",
                            renewal_window_days=14, actor=ACTOR)
    assert settings.get("notification_email_cc") == ["a@example.com", "b@example.com"]
    assert settings.get("notification_email") == "billing@example.com" and settings.get("renewal_window_days") == 14


def test_departments_validation(app):
    department = departments.create_department(name="Support", active=True, credit_per_request="2", actor=ACTOR)
    for bad in ("-1", "1.5", "abc", ""):
        with pytest.raises(ValidationFailed):
            departments.create_department(name=f"D{bad}", active=True, credit_per_request=bad, actor=ACTOR)
    with pytest.raises(ValidationFailed) as failed:
        departments.create_department(name="SUPPORT", active=True, credit_per_request="0", actor=ACTOR)
    assert "name" in failed.value.errors
    departments.update_department(department, name="Support", active=False, credit_per_request="0", actor=ACTOR)
    assert (department.active, department.credit_per_request) == (False, 0)
    actions = db.session.scalars(db.select(AuditEntry.action)).all()
    assert actions == ["department.create", "department.update"]
