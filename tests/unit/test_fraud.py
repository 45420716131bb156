"""The fraud rules look at the customer's own history; a shared IP address alone never sends a first order to
Fraud (domain.md §6a; issue 14, defect 10). Orders and card payments are written as rows here: what is tested
is the score, whatever service placed the order."""
from datetime import timedelta

import pytest
from flask_babel import force_locale

from limonbilling.extensions import db
from limonbilling.services import audit, fraud, settings

from ..factories import make_customer, make_package
from ..order_records import add_card_payment, make_order

AGENT = audit.Actor("agent", None, "agent@example.com")
OFFICE = "198.51.100.20"  # an office, or a mobile carrier's gateway: many customers behind one address


@pytest.fixture
def package(app):
    return make_package("credit", price="100.00")


def fails_cards(customer, package, times: int, ip: str = OFFICE) -> None:
    """The customer orders from `ip` and the bank refuses `times` card payments, one order each."""
    for _ in range(times):
        add_card_payment(make_order(customer, package, ip=ip, status="cancelled"), "failed")


def rules(order) -> dict[str, int]:
    return {check["rule"]: check["points"] for check in order.fraud_checks}


def check(customer, package, ip: str = OFFICE):
    """A new order of the customer from `ip`, scored as checkout scores it: (is it fraud, the order)."""
    order = make_order(customer, package, ip=ip)
    result = fraud.is_fraud(order, customer)
    db.session.commit()
    return result, order


def test_another_customers_failed_cards_from_the_same_ip_do_not_send_a_first_order_to_fraud(package):
    """The defect: after one customer's three failed card tries (three orders), every order from the same IP
    scored 70–80 and went straight to Fraud."""
    fails_cards(make_customer(), package, 3)
    newcomer = make_customer()

    is_fraud, order = check(newcomer, package)

    assert not is_fraud
    assert order.fraud_score < settings.get("fraud_threshold")
    assert rules(order) == {"unverified_email": 10}


def test_the_customers_own_failed_cards_and_orders_still_count(package):
    customer = make_customer()
    fails_cards(customer, package, 3)

    is_fraud, order = check(customer, package)

    assert is_fraud and order.fraud_score == 80
    assert rules(order) == {"failed_cards": 40, "many_orders": 30, "unverified_email": 10}
    details = {check["rule"]: fraud.describe(check) for check in order.fraud_checks}
    assert details["failed_cards"] == "3 failed card payments by this customer in the last hour."
    assert details["many_orders"] == "4 orders by this customer in 60 minutes."


def test_own_failed_cards_count_from_any_address_and_only_within_the_hour(package, clock):
    customer = make_customer()
    fails_cards(customer, package, 1, ip="192.0.2.1")
    fails_cards(customer, package, 1, ip="192.0.2.2")
    clock.advance(minutes=61)
    fails_cards(customer, package, 2, ip="192.0.2.3")
    settings.update({"fraud_many_orders_points": 0}, AGENT)

    assert rules(check(customer, package)[1]) == {"unverified_email": 10}  # two in the last hour
    fails_cards(customer, package, 1, ip="192.0.2.4")
    assert rules(check(customer, package)[1]) == {"failed_cards": 40, "unverified_email": 10}


def _regular(package):
    """A customer with an earlier order and a verified address: only the IP rule can fire."""
    customer = make_customer()
    customer.email_verified_at = customer.created_at
    make_order(customer, package, ip="192.0.2.99", created_at=customer.created_at - timedelta(days=40),
               status="active", payment_status="paid")
    return customer


def test_the_ip_rule_fires_at_exactly_the_number_of_other_customers(package):
    for _ in range(3):  # the default limit: three different customers
        fails_cards(make_customer(), package, 1)
    customer = _regular(package)

    is_fraud, order = check(customer, package)

    assert not is_fraud and rules(order) == {"ip_failed_customers": 30}
    assert fraud.describe(order.fraud_checks[0]) == (
        "3 other customers had card payments refused from this IP address in the last hour.")


def test_one_customer_fewer_than_the_limit_does_not_fire_however_often_they_failed(package):
    fails_cards(make_customer(), package, 1)
    fails_cards(make_customer(), package, 5)  # one customer failing often is one customer
    customer = _regular(package)
    fails_cards(customer, package, 2)  # the customer's own failures are not "other customers"

    assert "ip_failed_customers" not in rules(check(customer, package)[1])


def test_the_limit_of_other_customers_is_a_setting(package):
    settings.update({"fraud_ip_failed_customers_limit": 2, "fraud_ip_failed_customers_points": 25}, AGENT)
    fails_cards(make_customer(), package, 1)
    customer = _regular(package)
    assert rules(check(customer, package)[1]) == {}
    fails_cards(make_customer(), package, 1)
    assert rules(check(customer, package)[1]) == {"ip_failed_customers": 25}


def test_only_the_same_address_and_the_last_hour_count_for_the_ip_rule(package, clock):
    for _ in range(2):
        fails_cards(make_customer(), package, 1)
    fails_cards(make_customer(), package, 1, ip="192.0.2.50")  # elsewhere
    clock.advance(minutes=30)
    customer = _regular(package)
    assert rules(check(customer, package)[1]) == {}

    fails_cards(make_customer(), package, 1)
    assert rules(check(customer, package)[1]) == {"ip_failed_customers": 30}
    clock.advance(minutes=31)  # the first two are now older than an hour
    assert "ip_failed_customers" not in rules(check(customer, package)[1])


def test_the_ip_rule_alone_never_sends_a_first_order_to_fraud_whatever_its_points(package):
    settings.update({"fraud_ip_failed_customers_points": 500}, AGENT)
    for _ in range(4):
        fails_cards(make_customer(), package, 1)
    newcomer = make_customer()

    is_fraud, order = check(newcomer, package)

    assert not is_fraud
    assert order.fraud_score == settings.get("fraud_threshold") - 1 == 59
    assert rules(order) == {"unverified_email": 10, "ip_failed_customers": 49}  # recorded, below the threshold
    assert "first order" in fraud.describe(order.fraud_checks[-1])

    # the same address counts in full once the customer has ordered before
    is_fraud, second = check(newcomer, package)
    assert is_fraud and rules(second) == {"unverified_email": 10, "ip_failed_customers": 500}


def test_a_first_order_that_the_customers_own_rules_send_to_fraud_still_goes(package):
    settings.update({"fraud_unverified_email_points": 60}, AGENT)
    for _ in range(3):
        fails_cards(make_customer(), package, 1)

    is_fraud, order = check(make_customer(), package)

    assert is_fraud and rules(order) == {"unverified_email": 60, "ip_failed_customers": 30}


def test_the_ip_rule_can_be_switched_off_with_zero_points(package):
    settings.update({"fraud_ip_failed_customers_points": 0}, AGENT)
    for _ in range(3):
        fails_cards(make_customer(), package, 1)
    assert rules(check(_regular(package), package)[1]) == {}


def test_the_new_settings_have_defaults():
    assert settings.DEFAULTS["fraud_ip_failed_customers_limit"] == 3
    assert settings.DEFAULTS["fraud_ip_failed_customers_points"] < settings.DEFAULTS["fraud_threshold"]


def test_the_words_of_a_check_are_written_in_the_reader_s_language_not_the_customer_s(package):
    """A Turkish customer's order is reviewed by an English agent and the reverse: the row keeps the rule and
    its numbers, each reader gets their own language (the words used to be stored in the customer's)."""
    customer = make_customer()
    fails_cards(customer, package, 3)
    with force_locale("tr"):
        _is_fraud, order = check(customer, package)
    failed = next(check for check in order.fraud_checks if check["rule"] == "failed_cards")
    assert failed == {"rule": "failed_cards", "points": 40, "args": {"num": 3}}
    with force_locale("en"):
        assert fraud.describe(failed) == "3 failed card payments by this customer in the last hour."
    with force_locale("tr"):
        assert fraud.describe(failed) == "Bu müşterinin son bir saatte 3 başarısız kart ödemesi var."


def test_checks_stored_with_their_words_before_keep_them():
    assert fraud.describe({"rule": "failed_cards", "points": 40, "detail": "kept as it was"}) == "kept as it was"
