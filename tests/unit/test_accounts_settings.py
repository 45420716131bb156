"""Accounts, agents, departments and settings at the service level (domain.md §1–3).

Customer details, card actions and search are in test_customer_rules.py."""
import pytest

from limonbilling.clock import now
from limonbilling.extensions import db
from limonbilling.models import Agent, AuditEntry, Notification
from limonbilling.services import ServiceError, ValidationFailed, accounts, audit, departments, settings

from ..factories import make_agent, make_customer

ACTOR = audit.Actor("agent", 7, "agent@example.com", "10.0.0.1")
CLI = audit.Actor.system("cli")  # agents are an owner's (or the installation's) business


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
                              actor=CLI)
    assert set(failed.value.errors) == {"name", "email", "password"}
    agent = accounts.create_agent(name="Ali", email="ali@example.com", password="ali-pass-1",
                                  permissions=["support"], is_owner=False, actor=CLI)
    assert agent.can("support") and not agent.can("billing")
    with pytest.raises(ServiceError) as refused:
        accounts.update_agent(owner, permissions=[], is_owner=False, active=True, actor=CLI)
    assert refused.value.code == "last_owner"
    accounts.update_agent(agent, permissions=["billing"], is_owner=True, active=True, actor=CLI)
    accounts.update_agent(owner, permissions=[], is_owner=False, active=True, actor=CLI)
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


@pytest.mark.parametrize("key", sorted(settings.BOUNDS))
def test_every_bounded_setting_is_checked_by_the_service_at_its_edges(app, key):
    """Whoever stores a setting (a page, a command, a future API), the service keeps it within its bounds: the
    VAT rate and the fraud points were only checked by their forms."""
    low, high = settings.BOUNDS[key]
    # the least top-up may not pass the most: the other one is moved out of the way of both edges first
    partner = {"top_up_minimum_minor": ("top_up_maximum_minor", 1), "top_up_maximum_minor": ("top_up_minimum_minor", 0)}
    if key in partner:
        other, edge = partner[key]
        settings.update({other: settings.BOUNDS[other][edge]}, ACTOR)
    for refused in (low - 1, high + 1, str(low), None, True):
        with pytest.raises(ValidationFailed) as failed:
            settings.update({key: refused}, ACTOR)
        assert list(failed.value.errors) == [key]
    for accepted in (low, high):
        settings.update({key: accepted}, ACTOR)
        assert settings.get(key) == accepted


def test_a_new_confirmation_link_only_for_an_address_not_confirmed_yet(app):
    customer = make_customer(email="unconfirmed@example.com")
    assert customer.email_verified_at is None
    accounts.resend_verification(customer)
    customer.email_verified_at = now()
    with pytest.raises(ServiceError) as refused:
        accounts.resend_verification(customer)
    assert refused.value.code == "already_confirmed"
    sent = db.session.scalars(db.select(Notification.recipient).where(Notification.event == "email_verification"))
    assert list(sent) == ["unconfirmed@example.com"]
