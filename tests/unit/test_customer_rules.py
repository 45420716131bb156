"""Customer details rules (validate_details, register_customer, update_customer) and the card actions."""
import pytest
from sqlalchemy import func, select

from limonbilling.extensions import db
from limonbilling.models import AuditEntry, Customer, CustomerDepartment, CustomerNote
from limonbilling.services import ValidationFailed, audit, customers

from ..factories import PASSWORD, make_agent, make_corporate_customer, make_customer, make_department

SYSTEM = audit.Actor.system("test")


def individual(**overrides) -> dict:
    values = {
        "account_type": "individual",
        "first_name": "Ayşe",
        "last_name": "Yılmaz",
        "email": "ayse@example.com",
        "phone": "0532 123 45 67",
    }
    values.update(overrides)
    return values


def corporate(**overrides) -> dict:
    values = individual(
        account_type="corporate",
        company_name="Öztürk Yazılım A.Ş.",
        tax_number="4540536920",
        tax_office="Kadıköy",
        billing_address="Moda Cad. No: 1, Kadıköy / İstanbul",
    )
    values.update(overrides)
    return values


def errors_of(data: dict, **kwargs) -> dict[str, list[str]]:
    with pytest.raises(ValidationFailed) as caught:
        customers.validate_details(data, **kwargs)
    return caught.value.errors


def count(model) -> int:
    return db.session.scalar(select(func.count()).select_from(model))


# --- required fields -----------------------------------------------------------------------------

@pytest.mark.parametrize("field", ["first_name", "last_name", "email", "phone"])
@pytest.mark.parametrize("value", ["", "   ", None])
def test_individual_fields_are_required(app, field, value):
    errors = errors_of(individual(**{field: value}))
    assert list(errors) == [field]
    assert errors[field] == ["This field is required."]


def test_an_individual_needs_no_company_details_and_keeps_none(app):
    clean = customers.validate_details(individual(company_name="Ignored Ltd", tax_number="123", tax_office="X"))
    assert clean["account_type"] == "individual"
    assert clean["company_name"] is None and clean["tax_number"] is None and clean["tax_office"] is None
    assert clean["billing_address"] is None


def test_missing_account_type_means_individual_and_unknown_is_refused(app):
    data = individual()
    del data["account_type"]
    assert customers.validate_details(data)["account_type"] == "individual"
    assert "account_type" in errors_of(individual(account_type="reseller"))


@pytest.mark.parametrize("field", ["company_name", "tax_number", "tax_office", "billing_address"])
def test_corporate_accounts_need_the_company_details(app, field):
    errors = errors_of(corporate(**{field: ""}))
    assert errors == {field: ["This field is required."]}


def test_corporate_details_are_kept_and_the_personal_id_dropped(app):
    clean = customers.validate_details(corporate(national_id="10000000146", tax_number=" 454 053 6920 "))
    assert clean["company_name"] == "Öztürk Yazılım A.Ş."
    assert clean["tax_number"] == "4540536920"
    assert clean["national_id"] is None


def test_values_are_trimmed_and_too_long_values_refused(app):
    clean = customers.validate_details(individual(first_name="  Ayşe  "))
    assert clean["first_name"] == "Ayşe"
    errors = errors_of(individual(first_name="x" * 101))
    assert errors == {"first_name": ["At most 100 characters."]}


# --- e-mail ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("email", ["not-an-address", "ayse@", "@example.com", "ayse@@example.com", "ayşe yılmaz@x.com"])
def test_email_syntax_is_checked(app, email):
    errors = errors_of(individual(email=email))
    assert errors == {"email": ["Enter a valid e-mail address, like name@example.com."]}


def test_email_is_trimmed_and_lower_cased(app):
    clean = customers.validate_details(individual(email="  Ayse.Yilmaz@Example.COM "))
    assert clean["email"] == "ayse.yilmaz@example.com"
    customer = customers.register_customer(individual(email="Mixed.Case@Example.com"), PASSWORD, SYSTEM)
    db.session.commit()
    assert customer.email == "mixed.case@example.com"


def test_a_duplicate_email_is_refused_whatever_its_case(app):
    make_customer(email="taken@example.com")
    for email in ("taken@example.com", "TAKEN@Example.com", " Taken@example.com "):
        errors = errors_of(individual(email=email))
        assert errors == {"email": ["An account with this e-mail address already exists."]}, email


def test_own_email_is_fine_on_update_but_another_customers_is_not(app):
    other = make_customer(email="other@example.com")
    customer = make_customer(email="me@example.com")
    changed = customers.update_customer(customer, {"email": "ME@example.com", "first_name": "Zeynep"}, SYSTEM)
    assert changed == ["first_name"]
    assert customer.email == "me@example.com"
    with pytest.raises(ValidationFailed) as caught:
        customers.update_customer(customer, {"email": other.email.upper()}, SYSTEM)
    assert list(caught.value.errors) == ["email"]
    assert customer.email == "me@example.com"


# --- phone numbers -----------------------------------------------------------------------------------

@pytest.mark.parametrize("phone", ["0532 123 45 67", "5321234567", "+90 532 123 45 67", "0 (532) 123-45-67"])
def test_turkish_mobile_numbers_are_stored_in_e164(app, phone):
    assert customers.validate_details(individual(phone=phone))["phone"] == "+905321234567"


def test_an_international_number_is_accepted(app):
    assert customers.validate_details(individual(phone="+44 20 7946 0958"))["phone"] == "+442079460958"


@pytest.mark.parametrize("phone", ["abc", "123", "0532 123", "+90 000 000 00 00"])
def test_a_number_that_is_no_phone_is_refused(app, phone):
    errors = errors_of(individual(phone=phone))
    assert errors == {"phone": ["Enter a valid phone number: 0532 123 45 67 or +44 20 7946 0958."]}


# --- tax and ID numbers ------------------------------------------------------------------------------

def test_a_valid_vkn_is_accepted_and_a_wrong_checksum_refused(app):
    assert customers.validate_details(corporate(tax_number="4540536920"))["tax_number"] == "4540536920"
    errors = errors_of(corporate(tax_number="4540536921"))
    assert list(errors) == ["tax_number"]


@pytest.mark.parametrize("number", ["123", "45405369", "abcdefghij", "454053692012"])
def test_a_tax_number_of_the_wrong_shape_is_refused(app, number):
    assert list(errors_of(corporate(tax_number=number))) == ["tax_number"]


def test_an_eleven_digit_tckn_is_accepted_as_a_sole_proprietors_tax_number(app):
    assert customers.validate_details(corporate(tax_number="10000000146"))["tax_number"] == "10000000146"
    assert list(errors_of(corporate(tax_number="10000000147"))) == ["tax_number"]


def test_the_turkish_id_number_of_an_individual_is_optional_but_checked(app):
    assert customers.validate_details(individual())["national_id"] is None
    assert customers.validate_details(individual(national_id=""))["national_id"] is None
    assert customers.validate_details(individual(national_id="100 000 001 46"))["national_id"] == "10000000146"
    errors = errors_of(individual(national_id="10000000147"))
    assert errors == {"national_id": ["A Turkish ID number has 11 digits and a valid checksum."]}
    assert list(errors_of(individual(national_id="1234"))) == ["national_id"]


def test_an_unknown_language_is_refused(app):
    assert customers.validate_details(individual(language="tr"))["language"] == "tr"
    assert list(errors_of(individual(language="de"))) == ["language"]


# --- all at once, nothing half-saved ---------------------------------------------------------------

def test_every_field_error_is_reported_at_once(app):
    errors = errors_of(corporate(
        first_name="", email="nope", phone="abc", company_name="", tax_number="4540536921", language="xx",
    ))
    assert set(errors) == {"first_name", "email", "phone", "company_name", "tax_number", "language"}


def test_registration_reports_detail_and_password_errors_together(app):
    with pytest.raises(ValidationFailed) as caught:
        customers.register_customer(individual(phone="123"), "short", SYSTEM)
    assert set(caught.value.errors) == {"phone", "password"}


@pytest.mark.parametrize("data, password", [
    (individual(email="bad"), PASSWORD),
    (individual(), "weak"),
    (corporate(tax_number="4540536921"), PASSWORD),
])
def test_a_failed_registration_leaves_no_customer_and_no_audit_row(app, data, password):
    with pytest.raises(ValidationFailed):
        customers.register_customer(data, password, SYSTEM)
    db.session.commit()
    assert count(Customer) == 0
    assert count(AuditEntry) == 0


def test_a_registration_is_saved_with_its_audit_entry(app):
    customer = customers.register_customer(corporate(), PASSWORD, None)
    db.session.commit()
    assert customer.check_password(PASSWORD)
    assert customer.phone == "+905321234567"
    entry = db.session.scalars(select(AuditEntry)).one()
    assert (entry.action, entry.actor_type, entry.actor_id, entry.actor_label) == (
        "customer.register", "customer", customer.id, "ayse@example.com",
    )
    assert (entry.target_type, entry.target_id) == ("customers", str(customer.id))


def test_an_account_made_without_a_password_gets_one_nobody_knows(app):
    customer = customers.register_customer(individual(), None, SYSTEM)
    db.session.commit()
    assert customer.password_hash
    assert not customer.check_password("")
    assert not customer.check_password(PASSWORD)


def test_update_validates_the_merged_record_and_audits_changed_fields(app):
    customer = make_corporate_customer()
    with pytest.raises(ValidationFailed) as caught:
        customers.update_customer(customer, {"tax_office": "", "phone": "abc"}, SYSTEM)
    assert set(caught.value.errors) == {"tax_office", "phone"}
    assert customer.tax_office == "Kadıköy"

    changed = customers.update_customer(customer, {"phone": "+90 532 999 88 77", "tax_office": "Beşiktaş"}, SYSTEM)
    db.session.commit()
    assert sorted(changed) == ["phone", "tax_office"]
    assert customer.phone == "+905329998877"
    entry = db.session.scalars(select(AuditEntry).where(AuditEntry.action == "customer.update")).one()
    assert sorted(entry.details["fields"]) == ["phone", "tax_office"]


def test_an_update_that_changes_nothing_is_not_audited(app):
    customer = make_customer()
    assert customers.update_customer(customer, {"phone": "0532 123 45 67"}, SYSTEM) == []
    assert db.session.scalar(select(func.count()).where(AuditEntry.action == "customer.update")) == 0


def test_switching_to_individual_drops_the_company_details(app):
    customer = make_corporate_customer()
    customers.update_customer(customer, {"account_type": "individual"}, SYSTEM)
    db.session.commit()
    assert customer.account_type == "individual"
    assert customer.company_name is None and customer.tax_number is None


# --- the card: departments, notes, identity ---------------------------------------------------------

def _rows(customer):
    return {(row.department.name, row.source) for row in customer.departments}


def test_an_agent_switches_a_department_on_as_manual(app):
    customer = make_customer()
    department = make_department("Support")
    agent = make_agent("customers")
    customers.set_department(customer, department, True, audit.Actor.of(agent, "198.51.100.7"))
    db.session.commit()
    assert _rows(customer) == {("Support", "manual")}
    entry = db.session.scalars(select(AuditEntry).where(AuditEntry.action == "customer.department")).one()
    assert entry.details == {"department": "Support", "enabled": True}
    assert (entry.actor_type, entry.actor_id, entry.ip) == ("agent", agent.id, "198.51.100.7")

    customers.set_department(customer, department, True, SYSTEM)  # again: nothing to do
    db.session.commit()
    assert db.session.scalar(select(func.count()).where(AuditEntry.action == "customer.department")) == 1


def test_switching_on_a_package_department_makes_it_manual(app):
    customer = make_customer()
    department = make_department("Servers")
    customer.departments.append(CustomerDepartment(department=department, source="package"))
    db.session.commit()
    customers.set_department(customer, department, True, SYSTEM)
    db.session.commit()
    db.session.expire_all()
    assert _rows(customer) == {("Servers", "manual")}
    assert count(CustomerDepartment) == 1


def test_switching_a_department_off_removes_it_from_the_card(app):
    customer = make_customer()
    support, servers = make_department("Support"), make_department("Servers")
    customers.set_department(customer, support, True, SYSTEM)
    customers.set_department(customer, servers, True, SYSTEM)
    db.session.commit()
    customers.set_department(customer, support, False, SYSTEM)
    customers.set_department(customer, support, False, SYSTEM)  # already off: no second entry
    db.session.commit()
    db.session.expire_all()
    assert _rows(customer) == {("Servers", "manual")}
    offs = db.session.scalars(select(AuditEntry).where(AuditEntry.action == "customer.department")
                              .order_by(AuditEntry.id)).all()
    assert [e.details["enabled"] for e in offs] == [True, True, False]


def test_department_state_lists_every_department_with_its_row(app):
    customer = make_customer()
    support, servers = make_department("Support"), make_department("Servers")
    customers.set_department(customer, support, True, SYSTEM)
    db.session.commit()
    state = customers.department_state(customer)
    assert [(d.name, row.source if row else None) for d, row in state] == [("Servers", None), ("Support", "manual")]
    assert servers in [d for d, _row in state]


def test_notes_need_a_body(app):
    customer = make_customer()
    agent = make_agent("customers")
    for body in ("", "   ", None):
        with pytest.raises(ValidationFailed) as caught:
            customers.add_note(customer, body, audit.Actor.of(agent))
        assert caught.value.errors == {"body": ["Write the note first."]}
    note = customers.add_note(customer, "  Called about the invoice.  ", audit.Actor.of(agent))
    db.session.commit()
    assert note.body == "Called about the invoice."
    assert note.agent_id == agent.id
    assert count(CustomerNote) == 1
    assert db.session.scalar(select(func.count()).where(AuditEntry.action == "customer.note")) == 1


def test_a_system_note_has_no_agent(app):
    note = customers.add_note(make_customer(), "Imported", SYSTEM)
    db.session.commit()
    assert note.agent_id is None


def test_identity_verified_is_stamped_with_the_clock(app, clock):
    customer = make_customer()
    clock.advance(days=3, hours=2)
    customers.set_identity_verified(customer, True, SYSTEM)
    db.session.commit()
    assert customer.identity_verified is True
    stamped = clock.now()
    assert customer.identity_verified_at == stamped

    clock.advance(days=1)
    customers.set_identity_verified(customer, True, SYSTEM)  # already verified: the first stamp stays
    assert customer.identity_verified_at == stamped

    customers.set_identity_verified(customer, False, SYSTEM)
    db.session.commit()
    assert customer.identity_verified is False and customer.identity_verified_at is None
    entries = db.session.scalars(
        select(AuditEntry).where(AuditEntry.action == "customer.identity_verified").order_by(AuditEntry.id)
    ).all()
    assert [e.details["verified"] for e in entries] == [True, False]


# --- search ------------------------------------------------------------------------------------------

@pytest.fixture
def people(app):
    return {
        "ayse": make_customer(first_name="Ayşe", last_name="Yılmaz", email="ayse@example.com", phone="0532 123 45 67"),
        "mehmet": make_corporate_customer(
            first_name="Mehmet", last_name="Öztürk", email="mehmet@example.com", phone="+90 212 555 12 34",
            company_name="Öztürk Yazılım A.Ş.",
        ),
        "john": make_customer(
            first_name="John", last_name="Smith", email="john@smith.example", phone="+44 20 7946 0958",
        ),
    }


def found(query) -> list[str]:
    return [c.email for c in db.session.scalars(customers.search(query))]


def test_search_without_a_query_lists_everyone_newest_first(people):
    assert found(None) == ["john@smith.example", "mehmet@example.com", "ayse@example.com"]
    assert found("") == found(None)


@pytest.mark.parametrize("query, expected", [
    ("John Smith", ["john@smith.example"]),
    ("smith", ["john@smith.example"]),
    ("mehmet", ["mehmet@example.com"]),
    ("yazılım", ["mehmet@example.com"]),
    ("AYSE@EXAMPLE", ["ayse@example.com"]),
    ("@example.com", ["mehmet@example.com", "ayse@example.com"]),
    ("5321234567", ["ayse@example.com"]),
    ("532 123 45 67", ["ayse@example.com"]),
    ("0532 123 45 67", ["ayse@example.com"]),
    ("+90 532 123 45 67", ["ayse@example.com"]),
    ("+44", ["john@smith.example"]),
    ("nobody", []),
])
def test_search_by_name_company_email_and_phone(people, query, expected):
    assert found(query) == expected


@pytest.mark.parametrize("query, expected", [
    ("ayşe", ["ayse@example.com"]),
    ("Ayşe Yılmaz", ["ayse@example.com"]),
    ("Yılmaz", ["ayse@example.com"]),
])
def test_search_with_turkish_letters_in_the_same_case(people, query, expected):
    assert found(query) == expected


@pytest.mark.parametrize("query", ["Öztürk", "öztürk", "ÖZTÜRK", "Yazılım A.Ş."])
def test_search_with_turkish_capital_letters(people, query):
    assert found(query) == ["mehmet@example.com"]

