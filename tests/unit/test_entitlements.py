"""The rules of entitlement (domain.md §5, rules 1–6) at the service level, with a moving clock."""
from datetime import timedelta

import pytest

from limonbilling.extensions import db
from limonbilling.labels import ledger_reason
from limonbilling.models import LedgerEntry, Usage
from limonbilling.services import ServiceError, audit, entitlements, holdings, ledger, packages, settings
from limonbilling.services.charging import DepartmentNotEnabled, charge_usage
from limonbilling.services.ledger import InsufficientCredits
from limonbilling.services.purchase_rules import PurchaseRefused, preview_purchase

from ..factories import activate, make_customer, make_department, make_package


@pytest.fixture
def support(app):
    return make_department("Support", credit_per_request=3)


@pytest.fixture
def servers(app):
    return make_department("Servers", credit_per_request=5)


def assert_ledger_consistent(customer):
    db.session.refresh(customer)
    assert customer.credits == ledger.ledger_sum(customer.id)
    assert customer.credits >= 0


def department_sources(customer):
    db.session.refresh(customer)
    return {row.department.name: row.source for row in customer.departments}


# --- rule 1 and 2: credits add up -------------------------------------------------------------

def test_first_credit_purchase_gives_credits_and_switches_departments_on(support, servers):
    customer = make_customer()
    package = make_package("credit", [support, servers], credits=10)
    preview = preview_purchase(customer, package)
    assert (preview.allowed, preview.kind, preview.new_credits) == (True, "new", 10)
    activate(customer, package)
    assert customer.package_type == "credit" and customer.credits == 10
    assert department_sources(customer) == {"Support": "package", "Servers": "package"}
    assert_ledger_consistent(customer)


def test_credit_top_ups_add_up_any_time(support, servers):
    customer = make_customer()
    activate(customer, make_package("credit", [support], credits=10))
    top_up = make_package("credit", [servers], credits=5)
    preview = preview_purchase(customer, top_up)
    assert (preview.allowed, preview.kind, preview.new_credits) == (True, "top-up", 15)
    activate(customer, top_up)
    assert customer.credits == 15
    # credits cover the departments of every credit package bought since the last switch
    assert department_sources(customer) == {"Support": "package", "Servers": "package"}
    assert_ledger_consistent(customer)


def test_a_top_up_past_the_most_an_account_holds_is_refused_and_changes_nothing(support):
    customer = make_customer()
    activate(customer, make_package("credit", [support], credits=1_000_000_000))
    ledger.post(customer, "adjustment", ledger.MAX_BALANCE - 1_000_000_005, reason="Nearly full")
    db.session.commit()
    top_up = make_package("credit", [support], credits=10)
    preview = preview_purchase(customer, top_up)
    assert (preview.allowed, preview.reason_code) == (False, "balance_limit")
    with pytest.raises(PurchaseRefused):
        activate(customer, top_up)
    db.session.rollback()
    assert customer.credits == ledger.MAX_BALANCE - 5
    assert_ledger_consistent(customer)
    with pytest.raises(ledger.BalanceLimit):
        ledger.post(customer, "adjustment", 6, reason="One too many")


# --- rule 3: subscriptions renew only near the end ----------------------------------------------

def test_subscription_renewal_window_edges(app, clock, support):
    customer = make_customer()
    monthly = make_package("subscription", [support], days=90)
    activate(customer, monthly)
    expiry = holdings.subscription_expiry(customer)
    assert expiry == clock.now() + timedelta(days=90)

    clock.set(expiry - timedelta(days=31))
    refused = preview_purchase(customer, monthly)
    assert not refused.allowed and refused.reason_code == "renewal_not_open"
    assert refused.renewable_from == expiry - timedelta(days=30)
    with pytest.raises(PurchaseRefused):
        entitlements.activate_package(customer, monthly, source="test", actor=audit.Actor.system("t"))
    db.session.rollback()

    clock.set(expiry - timedelta(days=30))
    preview = preview_purchase(customer, monthly)
    assert preview.allowed and preview.kind == "renewal"
    assert preview.period_start == expiry and preview.new_expiry == expiry + timedelta(days=90)
    activate(customer, monthly)
    assert holdings.subscription_expiry(customer) == expiry + timedelta(days=90)


def test_renewal_window_is_a_setting(clock, support):
    settings.update({"renewal_window_days": 7}, audit.Actor.system("t"))
    customer = make_customer()
    package = make_package("subscription", [support], days=30)
    activate(customer, package)
    clock.advance(days=22)
    assert not preview_purchase(customer, package).allowed
    clock.advance(days=1)
    assert preview_purchase(customer, package).allowed


def test_renewal_after_expiry_starts_now(clock, support):
    customer = make_customer()
    package = make_package("subscription", [support], days=30)
    activate(customer, package)
    clock.advance(days=45)
    preview = preview_purchase(customer, package)
    assert preview.allowed and preview.period_start == clock.now()
    activate(customer, package)
    assert holdings.subscription_expiry(customer) == clock.now() + timedelta(days=30)


def test_each_period_covers_its_own_packages_departments(clock, support, servers):
    customer = make_customer()
    activate(customer, make_package("subscription", [support], days=30))
    clock.advance(days=20)
    activate(customer, make_package("subscription", [servers], days=30))
    # Servers is switched on at activation but usable only when its period starts.
    with pytest.raises(DepartmentNotEnabled):
        charge_usage(customer.id, servers.id, "ticket", "early")
    db.session.rollback()
    assert charge_usage(customer.id, support.id, "ticket", "s1").covered_by == "subscription"
    clock.advance(days=11)
    assert charge_usage(customer.id, servers.id, "ticket", "s2").covered_by == "subscription"
    with pytest.raises(DepartmentNotEnabled):
        charge_usage(customer.id, support.id, "ticket", "s3")


def test_a_period_covers_from_its_first_instant_to_just_before_its_end_and_a_cut_ends_it(clock, support):
    """Rule 3 at the edges of [starts_at, end): a renewal bought ahead covers from the old end on, and a
    subscription ended early (an approved cancellation) covers nothing from that instant."""
    customer = make_customer()
    package = make_package("subscription", [support], days=30)
    activate(customer, package)
    end = holdings.subscription_expiry(customer)
    clock.advance(days=30, seconds=-1)
    assert charge_usage(customer.id, support.id, "ticket", "last-second").covered_by == "subscription"
    clock.advance(seconds=1)
    with pytest.raises(DepartmentNotEnabled):
        charge_usage(customer.id, support.id, "ticket", "at-the-end")
    db.session.rollback()

    renewed = make_customer()
    clock.advance(days=-30)  # back to the start: buy, then renew inside the window
    activate(renewed, package)
    clock.advance(days=25)
    activate(renewed, package)
    clock.advance(days=5)  # exactly the first period's end, the renewal's first instant
    assert clock.now() == end
    assert charge_usage(renewed.id, support.id, "ticket", "renewal-start").covered_by == "subscription"
    entitlements.end_subscription(renewed, clock.now() + timedelta(minutes=1), audit.Actor.system("t"),
                                  {"reason": "Cancelled"})
    db.session.commit()
    assert charge_usage(renewed.id, support.id, "ticket", "before-the-cut").covered_by == "subscription"
    clock.advance(minutes=1)
    with pytest.raises(DepartmentNotEnabled):
        charge_usage(renewed.id, support.id, "ticket", "at-the-cut")


# --- rule 4: switching forfeits ----------------------------------------------------------------

def test_switch_credits_to_subscription_forfeits_credits(clock, support, servers):
    customer = make_customer()
    activate(customer, make_package("credit", [support], credits=10))
    charge_usage(customer.id, support.id, "ticket", "t1")
    db.session.commit()
    subscription = make_package("subscription", [servers], days=30)
    preview = preview_purchase(customer, subscription)
    assert (preview.allowed, preview.kind, preview.forfeit_credits) == (True, "switch", 7)
    assert preview.forfeits_something
    activate(customer, subscription)
    assert customer.package_type == "subscription" and customer.credits == 0
    forfeit = db.session.scalars(db.select(LedgerEntry).where(LedgerEntry.kind == "forfeit")).one()
    assert forfeit.amount == -7 and forfeit.balance_after == 0
    assert department_sources(customer) == {"Servers": "package"}
    assert_ledger_consistent(customer)


def test_switch_subscription_to_credits_forfeits_the_rest(clock, support, servers):
    customer = make_customer()
    monthly = make_package("subscription", [support], days=30)
    activate(customer, monthly)
    clock.advance(days=25)
    activate(customer, monthly)  # a renewal already paid for the next period
    clock.advance(days=1)
    credits = make_package("credit", [servers], credits=20)
    preview = preview_purchase(customer, credits)
    assert preview.kind == "switch"
    assert preview.forfeit_subscription_until == clock.now() + timedelta(days=34)
    activate(customer, credits)
    assert customer.package_type == "credit" and customer.credits == 20
    assert holdings.subscription_periods(customer)[-1].effective_end == clock.now()
    assert holdings.subscription_expiry(customer) == clock.now()
    note = db.session.scalars(db.select(LedgerEntry).where(LedgerEntry.kind == "forfeit")).one()
    assert note.amount == 0 and "forfeited" in ledger_reason(note)
    with pytest.raises(DepartmentNotEnabled):
        charge_usage(customer.id, support.id, "ticket", "after-switch")
    db.session.rollback()
    assert department_sources(customer) == {"Servers": "package"}
    assert_ledger_consistent(customer)


def test_switch_from_expired_subscription_forfeits_nothing(clock, support):
    customer = make_customer()
    activate(customer, make_package("subscription", [support], days=30))
    clock.advance(days=31)
    preview = preview_purchase(customer, make_package("credit", [support]))
    assert preview.kind == "switch" and not preview.forfeits_something


# --- rule 5: departments switch on and off by themselves ----------------------------------------

def test_manual_departments_are_free_and_never_touched(support, servers):
    customer = make_customer()
    from limonbilling.services import customers

    customers.set_department(customer, servers, True, audit.Actor.system("t"))
    activate(customer, make_package("credit", [support, servers], credits=4))
    assert department_sources(customer) == {"Support": "package", "Servers": "manual"}
    result = charge_usage(customer.id, servers.id, "ticket", "manual-1")
    assert (result.charged, result.covered_by) == (0, "manual")


def test_expired_subscription_departments_go_off(clock, support):
    customer = make_customer()
    activate(customer, make_package("subscription", [support], days=30))
    clock.advance(days=30)
    assert entitlements.subscribers_to_expire() == [customer.id]
    assert entitlements.expire_subscriber(customer.id)
    db.session.commit()
    assert department_sources(customer) == {}
    assert entitlements.subscribers_to_expire() == []


# --- rule 6: charging -------------------------------------------------------------------------

def test_charge_per_new_request_once_per_reference(support):
    customer = make_customer()
    activate(customer, make_package("credit", [support], credits=10))
    first = charge_usage(customer.id, support.id, "ticket", "T-1")
    db.session.commit()
    again = charge_usage(customer.id, support.id, "ticket", "T-1")
    assert (first.charged, first.repeated, again.repeated, again.usage_id) == (3, False, True, first.usage_id)
    assert customer.credits == 7
    chat = charge_usage(customer.id, support.id, "chat", "T-1")  # another kind is another request
    assert chat.charged == 3 and customer.credits == 4
    assert_ledger_consistent(customer)


def test_not_enough_credits_is_refused_with_the_numbers(support):
    customer = make_customer()
    activate(customer, make_package("credit", [support], credits=2))
    with pytest.raises(InsufficientCredits) as refused:
        charge_usage(customer.id, support.id, "ticket", "T-2")
    assert (refused.value.details["have"], refused.value.details["need"]) == (2, 3)
    assert "you have 2" in refused.value.message and "needs 3" in refused.value.message
    db.session.rollback()
    assert db.session.scalar(db.select(db.func.count(Usage.id))) == 0
    assert_ledger_consistent(customer)


def test_department_not_enabled(support, servers):
    customer = make_customer()
    activate(customer, make_package("credit", [support], credits=10))
    with pytest.raises(DepartmentNotEnabled):
        charge_usage(customer.id, servers.id, "ticket", "T-3")


def test_subscription_use_is_free_but_recorded(support):
    customer = make_customer()
    activate(customer, make_package("subscription", [support], days=30))
    result = charge_usage(customer.id, support.id, "chat", "C-1")
    assert (result.charged, result.covered_by) == (0, "subscription")
    assert db.session.get(Usage, result.usage_id) is not None


def test_reference_of_another_customer_conflicts(support):
    package = make_package("credit", [support], credits=10)
    one, other = make_customer(), make_customer()
    activate(one, package)
    activate(other, package)
    charge_usage(one.id, support.id, "ticket", "shared")
    db.session.commit()
    with pytest.raises(ServiceError) as conflict:
        charge_usage(other.id, support.id, "ticket", "shared")
    assert conflict.value.code == "reference_conflict"


# --- a package edited after sale ---------------------------------------------------------------

def test_editing_a_package_after_sale_changes_nothing_sold(support, servers):
    customer = make_customer()
    package = make_package("credit", [support], credits=10, price="100.00")
    grant = activate(customer, package)
    packages.update_package(package, {
        "name": "Renamed", "type": "credit", "price": "999.99", "currency": "TRY", "credits": 1,
        "department_ids": [servers.id], "on_sale": True,
    }, audit.Actor.system("t"))
    db.session.commit()
    assert grant.snapshot["name"] != "Renamed" and grant.snapshot["credits"] == 10
    assert grant.snapshot["price_minor"] == 10000 and grant.snapshot["department_ids"] == [support.id]
    assert customer.credits == 10
    assert charge_usage(customer.id, support.id, "ticket", "still-covered").charged == 3
    assert packages.archive_or_delete(package, audit.Actor.system("t")) == "archived"


# --- the ledger and adjustments -------------------------------------------------------------------

def test_adjustment_needs_a_reason_and_never_goes_below_zero(support):
    from limonbilling.services import ValidationFailed

    customer = make_customer()
    activate(customer, make_package("credit", [support], credits=5))
    actor = audit.Actor("agent", None, "agent@example.com")
    with pytest.raises(ValidationFailed):
        ledger.adjust_credits(customer, 3, "  ", actor)
    ledger.adjust_credits(customer, 3, "Goodwill", actor)
    db.session.commit()
    with pytest.raises(InsufficientCredits):
        ledger.adjust_credits(customer, -9, "Too much", actor)
    db.session.rollback()
    ledger.adjust_credits(customer, -8, "Correction", actor)
    db.session.commit()
    assert customer.credits == 0
    assert_ledger_consistent(customer)


def test_subscriber_holds_no_credits(support):
    customer = make_customer()
    activate(customer, make_package("subscription", [support]))
    with pytest.raises(ServiceError) as refused:
        ledger.adjust_credits(customer, 5, "Gift", audit.Actor.system("t"))
    assert refused.value.code == "not_a_credit_customer"


def test_package_not_on_sale_cannot_be_bought(support):
    customer = make_customer()
    package = make_package("credit", [support], on_sale=False)
    preview = preview_purchase(customer, package)
    assert not preview.allowed and preview.reason_code == "not_on_sale"


def test_ledger_reasons_are_worded_in_the_reader_s_language(app, clock):
    """A Turkish customer's switch forfeits credits, an English agent cancels an order: each row keeps a code and
    its arguments, and every reader gets their own language (the words used to be stored in the writer's)."""
    from flask_babel import force_locale

    web = make_department("Web")
    customer = make_customer()
    with force_locale("tr"):
        activate(customer, make_package("credit", [web], credits=10))
        activate(customer, make_package("subscription", [web], days=30))
    db.session.commit()
    forfeit = db.session.scalar(db.select(LedgerEntry).where(LedgerEntry.kind == "forfeit"))
    assert (forfeit.reason, forfeit.reason_code, forfeit.reason_args) == (None, "credits_forfeited", None)
    with force_locale("en"):
        assert ledger_reason(forfeit) == "Credits forfeited on switching to a subscription."
    with force_locale("tr"):
        assert ledger_reason(forfeit) == "Aboneliğe geçişte krediler silindi."
    assert ledger_reason(LedgerEntry(reason="Goodwill, agent Mert")) == "Goodwill, agent Mert"  # an agent's words
