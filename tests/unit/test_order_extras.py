"""Promo codes, the account balance, the fraud check, agent and API-side orders, custom statuses and
subscription cancellation requests, at the service level (domain.md §6, issue 8)."""
from datetime import date, timedelta

import pytest

from limonbilling.extensions import db
from limonbilling.models import AccountBalance, BalanceEntry, Invoice, Order, PromoCode
from limonbilling.payments.nestpay_gateway import NestPayGateway
from limonbilling.services import (
    ServiceError,
    ValidationFailed,
    audit,
    balance,
    cancellations,
    card_payments,
    charging,
    entitlements,
    holdings,
    order_actions,
    order_statuses,
    placement,
    promo_codes,
    purchase_rules,
    settings,
)
from limonbilling.services.balance import InsufficientBalance

from ..factories import (
    activate,
    make_agent,
    make_corporate_customer,
    make_customer,
    make_department,
    make_package,
    make_transfer_account,
)
from ..payment_support import AGENT, as_customer, refund_to_balance


@pytest.fixture
def support(app):
    return make_department("Support", credit_per_request=1)


def promo(**values) -> PromoCode:
    code = promo_codes.create({"code": "SAVE10", "kind": "percent", "value": "10", **values}, AGENT)
    db.session.commit()
    return code


def place(customer, package, method="bank_transfer", **kwargs) -> Order:
    if method == "bank_transfer":
        make_transfer_account(package.currency)
    order = placement.place_customer_order(customer, package, payment_method=method, actor=as_customer(customer),
                                           **kwargs, contracts_accepted=True)
    db.session.commit()
    return order


# --- promo codes -------------------------------------------------------------------------------------

def test_promo_code_validation(app):
    with pytest.raises(ValidationFailed) as failed:
        promo_codes.create({"code": "bad code!", "kind": "percent", "value": "0", "max_uses": 0,
                            "valid_from": date(2026, 5, 2), "valid_until": date(2026, 5, 1)}, AGENT)
    assert set(failed.value.errors) == {"code", "value", "max_uses", "valid_until"}
    with pytest.raises(ValidationFailed) as failed:
        promo_codes.create({"code": "X", "kind": "fixed", "value": "1.005", "currency": "GBP"}, AGENT)
    assert set(failed.value.errors) == {"value", "currency"}
    promo(code="spring-26")
    with pytest.raises(ValidationFailed) as failed:
        promo_codes.create({"code": "SPRING-26", "kind": "percent", "value": "5"}, AGENT)
    assert "already exists" in failed.value.errors["code"][0]


def test_a_percentage_rounds_the_half_kurus_up_and_a_fixed_amount_must_leave_one_kurus(support):
    """10 % of 10.05 is 100.5 kuruş: 101 off (half up, not banker's 100), 10 % of 10.04 is 100; a fixed 10.04 off a
    10.05 price leaves the kuruş that may be paid, 10.05 off leaves nothing and is refused."""
    package = make_package("credit", [support], price="10.05")
    promo(code="TENTH")
    assert promo_codes.check("TENTH", package)[1] == 101
    assert promo_codes.check("TENTH", package, 1004)[1] == 100
    promo(code="ALMOST", kind="fixed", value="10.04", currency="TRY")
    promo(code="ALL", kind="fixed", value="10.05", currency="TRY")
    assert promo_codes.check("ALMOST", package)[1] == 1004
    with pytest.raises(ServiceError) as refused:
        promo_codes.check("ALL", package)
    assert refused.value.code == "promo_too_large"
    order = place(make_customer(), package, promo_code="ALMOST")
    assert (order.discount_minor, order.amount_minor) == (1004, 1)


def test_promo_code_refusals_say_why(support, clock):
    package = make_package("credit", [support], price="100.00")
    other = make_package("credit", [support], price="100.00", currency="USD")
    today = clock.now().date()
    promo(code="LATER", valid_from=today + timedelta(days=2))
    promo(code="OVER", valid_until=today - timedelta(days=1))
    promo(code="ONLY", package_ids=[other.id])
    promo(code="EUROS", kind="fixed", value="10", currency="EUR")
    promo(code="HUGE", kind="fixed", value="100", currency="TRY")
    expected = {"NOPE": "promo_unknown", "LATER": "promo_not_yet", "OVER": "promo_expired",
                "ONLY": "promo_not_for_package", "EUROS": "promo_currency", "HUGE": "promo_too_large"}
    for code, reason in expected.items():
        with pytest.raises(ServiceError) as refused:
            promo_codes.check(code, package)
        assert refused.value.code == reason, code
    used_up = promo(code="ONCE", max_uses=1)
    promo_codes.take_use(used_up)
    with pytest.raises(ServiceError) as refused:
        promo_codes.check("once", package)
    assert refused.value.code == "promo_used_up"
    promo_codes.set_active(used_up, False, AGENT)
    with pytest.raises(ServiceError):
        promo_codes.check("ONCE", package)


def test_percent_discount_rounds_half_up_and_vat_is_on_the_discounted_price(support):
    package = make_package("credit", [support], price="99.99")
    promo(code="THIRD", value="33")
    price = placement.quote(package, " third ")
    assert (price.discount_minor, price.total_minor) == (3300, 6699)  # 9999 × 33% = 3299.67 → 3300
    assert price.vat_minor == 1116  # 20% inside 66.99: net 55.825 → 55.83
    customer = make_customer()
    order = place(customer, package, promo_code="THIRD")
    assert (order.promo_code, order.discount_minor, order.amount_minor) == ("THIRD", 3300, 6699)
    lines = db.session.scalar(db.select(Invoice)).lines
    assert [line["net_minor"] for line in lines] == [8333, 5583 - 8333]
    assert sum(line["net_minor"] for line in lines) == order.amount_minor - order.vat_minor


def test_a_use_is_counted_per_order_and_given_back_when_the_unpaid_order_ends(support, clock):
    package = make_package("credit", [support])
    code = promo(max_uses=1)
    customer = make_customer()
    place(customer, package, method="card", promo_code="SAVE10")
    assert db.session.get(PromoCode, code.id).uses == 1
    with pytest.raises(ServiceError) as refused:
        place(make_customer(), package, promo_code="SAVE10")
    assert refused.value.code == "promo_used_up"
    db.session.rollback()
    clock.advance(minutes=31)
    [stale] = card_payments.stale_checkouts()
    assert card_payments.expire_checkout(stale, NestPayGateway(), AGENT) is True
    db.session.commit()
    db.session.expire_all()
    assert db.session.get(PromoCode, code.id).uses == 0
    transfer = place(make_customer(), package, promo_code="SAVE10")
    order_actions.cancel_order(transfer, AGENT)  # agent's Cancel of an unpaid order also gives it back
    db.session.commit()
    db.session.expire_all()
    assert db.session.get(PromoCode, code.id).uses == 0
    order_actions.back_to_pending(transfer, AGENT)  # reopened: counted again
    db.session.commit()
    db.session.expire_all()
    assert db.session.get(PromoCode, code.id).uses == 1
    order_actions.accept_order(transfer, AGENT)
    order_actions.cancel_order(transfer, AGENT)  # a paid order keeps its use
    db.session.commit()
    db.session.expire_all()
    assert db.session.get(PromoCode, code.id).uses == 1


# --- the account balance -----------------------------------------------------------------------------

def test_balance_moves_never_go_below_zero_and_are_all_recorded(app):
    customer = make_customer()
    balance.move(customer.id, "TRY", 5000, "adjustment", reason="goodwill")
    balance.move(customer.id, "USD", 700, "adjustment", reason="goodwill")
    with pytest.raises(InsufficientBalance):
        balance.move(customer.id, "TRY", -5001, "payment")
    balance.move(customer.id, "TRY", -5000, "payment")
    db.session.commit()
    assert balance.amounts(customer) == {"USD": 700}
    entries = db.session.scalars(db.select(BalanceEntry).order_by(BalanceEntry.id)).all()
    assert [(e.currency, e.amount_minor, e.balance_after_minor) for e in entries] == [
        ("TRY", 5000, 5000), ("USD", 700, 700), ("TRY", -5000, 0)]


def test_agent_adjustments_need_a_reason_and_a_real_amount(app):
    customer = make_customer()
    agent = audit.Actor("agent", make_agent("billing").id, "a@example.com")
    with pytest.raises(ValidationFailed) as failed:
        balance.adjust(customer, "abc", "GBP", " ", agent)
    assert set(failed.value.errors) == {"amount", "currency", "reason"}
    with pytest.raises(ValidationFailed) as failed:
        balance.adjust(customer, "-1.00", "TRY", "mistake", agent)
    assert "below zero" in failed.value.errors["amount"][0]
    db.session.rollback()
    entry = balance.adjust(customer, "1.250,50", "TRY", "refund by phone", agent)
    balance.adjust(customer, "-250.50", "TRY", "correction", agent)
    db.session.commit()
    assert entry.agent_id == agent.id and balance.amount(customer, "TRY") == 100000


def test_paying_from_the_balance_activates_at_once_and_waits_for_review(support):
    customer = make_customer()
    package = make_package("credit", [support], credits=10, price="150.00")
    balance.move(customer.id, "TRY", 14999, "adjustment", reason="x")
    db.session.commit()
    with pytest.raises(InsufficientBalance):
        place(customer, package, method="account_balance")
    db.session.rollback()
    assert db.session.scalar(db.select(db.func.count(Order.id))) == 0
    balance.move(customer.id, "TRY", 1, "adjustment", reason="x")
    order = place(customer, package, method="account_balance")
    assert (order.payment_status, order.status, order.activated) == ("paid", "pending", True)
    assert customer.credits == 10 and balance.amount(customer, "TRY") == 0
    assert order.invoice.status == "paid" and order.invoice.number is not None


def test_refund_to_balance_takes_back_what_remains_and_credits_the_money(support):
    customer = make_customer()
    package = make_package("credit", [support], credits=10, price="150.00")
    order = place(customer, package)
    order_actions.accept_order(order, AGENT)
    charging.charge_usage(customer.id, support.id, "ticket", "T-1")
    db.session.commit()
    refund_to_balance(order, AGENT)
    db.session.commit()
    assert (order.status, order.payment_status, order.invoice.status) == ("cancelled", "refunded", "refunded")
    assert customer.credits == 0 and balance.amount(customer, "TRY") == 15000
    with pytest.raises(ServiceError) as refused:
        refund_to_balance(order, AGENT)
    assert refused.value.code == "nothing_to_refund"


def test_32_concurrent_balance_payments_never_overdraw(app, support):
    from .test_concurrency import THREADS, _run_concurrently

    customer_id = make_customer().id
    balance.move(customer_id, "TRY", 10000, "adjustment", reason="x")
    db.session.commit()

    def pay():
        try:
            balance.move(customer_id, "TRY", -700, "payment")
            return "paid"
        except InsufficientBalance:
            db.session.rollback()
            return "refused"

    outcomes = _run_concurrently(app, [pay] * THREADS)
    assert outcomes.count("paid") == 14 and outcomes.count("refused") == THREADS - 14
    db.session.expire_all()
    assert db.session.get(AccountBalance, (customer_id, "TRY")).amount_minor == 200
    assert db.session.scalar(db.select(db.func.sum(BalanceEntry.amount_minor))) == 200


def test_32_concurrent_checkouts_never_use_a_promo_code_past_its_limit(app, support):
    from .test_concurrency import THREADS, _run_concurrently

    package = make_package("credit", [support])
    make_transfer_account()
    code_id = promo(max_uses=5).id
    buyers = [make_customer() for _ in range(THREADS)]
    ids = [(buyer.id, package.id) for buyer in buyers]

    def job(customer_id, package_id):
        def checkout():
            from limonbilling.models import Customer, Package

            buyer = db.session.get(Customer, customer_id)
            try:
                placement.place_customer_order(buyer, db.session.get(Package, package_id),
                                               payment_method="bank_transfer",
                                    actor=as_customer(buyer), promo_code="SAVE10", contracts_accepted=True)
                return "ordered"
            except ServiceError as error:
                db.session.rollback()
                return error.code
        return checkout

    outcomes = _run_concurrently(app, [job(*pair) for pair in ids])
    assert outcomes.count("ordered") == 5 and outcomes.count("promo_used_up") == THREADS - 5
    db.session.expire_all()
    assert db.session.get(PromoCode, code_id).uses == 5
    assert db.session.scalar(db.select(db.func.count(Order.id)).where(Order.promo_code_id == code_id)) == 5


# --- the fraud check and the identity rule -------------------------------------------------------------

def test_fraud_rules_add_up_and_at_the_threshold_nothing_happens(support, clock):
    package = make_package("credit", [support], credits=10, price="100.00")
    customer = make_customer()
    first = place(customer, package)
    assert first.fraud_score == 10 and [c["rule"] for c in first.fraud_checks] == ["unverified_email"]
    order_actions.accept_order(first, AGENT)
    customer.email_verified_at = clock.now()
    db.session.commit()
    big = make_package("credit", [support], credits=100, price="600.00")
    second = place(customer, big)
    assert [c["rule"] for c in second.fraud_checks] == ["price_above_usual"] and second.status == "pending"
    order_actions.cancel_unpaid_order(second, as_customer(customer))
    db.session.commit()
    third = place(customer, big)  # three orders in an hour and a price far above the usual: 30 + 30
    assert {c["rule"] for c in third.fraud_checks} == {"many_orders", "price_above_usual"}
    assert (third.status, third.fraud_score, third.activated) == ("fraud", 60, False)
    assert third.invoice.status == "cancelled" and purchase_rules.open_order(customer) is None
    settings.update({"fraud_check_enabled": False}, AGENT)
    order_actions.back_to_pending(third, AGENT)
    order_actions.cancel_unpaid_order(third, as_customer(customer))
    fourth = place(customer, big)
    assert fourth.status == "pending" and fourth.fraud_score is None


def test_failed_card_payments_of_other_customers_from_the_same_ip_count_but_not_to_fraud(gateway, support):
    """Three different customers had cards refused from one address: it counts, but a shared address alone
    does not send a first order to Fraud (issue 14, defect 10; the rules in detail: test_fraud.py)."""
    from ..payment_support import bank_answer, card_order

    package = make_package("credit", [support])
    for _ in range(3):
        buyer = make_customer()
        order, attempt = card_order(buyer, package)
        card_payments.apply_card_callback(gateway, bank_answer(attempt, approved=False), AGENT)
        order_actions.cancel_unpaid_order(order, as_customer(buyer))
        db.session.commit()
    buyer = make_customer()  # a new customer from the same IP, 127.0.0.1
    order = placement.place_customer_order(buyer, package, payment_method="card", actor=as_customer(buyer),
                                           ip="127.0.0.1", contracts_accepted=True)
    assert {c["rule"]: c["points"] for c in order.fraud_checks} == {"unverified_email": 10, "ip_failed_customers": 30}
    assert order.status == "pending"


def test_individuals_must_be_identity_verified_when_the_setting_is_on(support):
    settings.update({"require_identity_verification": True}, AGENT)
    package = make_package("credit", [support])
    person, company = make_customer(), make_corporate_customer()
    assert placement.checkout_refusal(person) and placement.checkout_refusal(company) is None
    with pytest.raises(ServiceError) as refused:
        place(person, package)
    assert refused.value.code == "identity_not_verified"
    db.session.rollback()
    place(company, package)
    person.identity_verified = True
    assert place(person, package).status == "pending"
    agent_order = placement.place_agent_order(make_customer(), package, payment_method="manual", actor=AGENT)
    assert agent_order.status == "active"  # agents are not bound by it


# --- orders an agent or the API places -------------------------------------------------------------------

def test_agent_orders_manual_bank_transfer_balance_and_price_override(support):
    agent = make_agent("billing")
    actor = audit.Actor.of(agent)
    package = make_package("credit", [support], credits=10, price="150.00")
    customer = make_customer()
    manual = placement.place_agent_order(customer, package, payment_method="manual", actor=actor, placed_by=agent,
                                 price_override_minor=0, create_invoice=False)
    assert (manual.status, manual.payment_status, manual.amount_minor, manual.price_overridden) == (
        "active", "paid", 0, True)
    assert manual.invoice is None and manual.fraud_score is None and customer.credits == 10
    assert manual.placed_by_agent_id == agent.id
    make_transfer_account()
    transfer = placement.place_agent_order(customer, package, payment_method="bank_transfer", actor=actor,
                                           placed_by=agent)
    assert (transfer.status, transfer.payment_status) == ("pending", "unpaid")
    with pytest.raises(ServiceError) as refused:
        placement.place_agent_order(make_customer(), package, payment_method="free", actor=actor, placed_by=agent)
    assert refused.value.code == "payment_method"


# --- custom order statuses -----------------------------------------------------------------------------

def test_custom_statuses_count_as_a_core_status_until_an_action_sets_one(support):
    waiting = order_statuses.save(None, name="Waiting for documents", colour="#1A7F37", counts_as="pending",
                                  actor=AGENT)
    with pytest.raises(ValidationFailed) as failed:
        order_statuses.save(None, name="waiting FOR documents", colour="red", counts_as="fraud", actor=AGENT)
    assert set(failed.value.errors) == {"name", "colour", "counts_as"}
    with pytest.raises(ValidationFailed):
        order_statuses.save(None, name="Active", colour="#000000", counts_as="active", actor=AGENT)
    customer = make_customer()
    order = place(customer, make_package("credit", [support]))
    order_actions.bulk_set_status([order], f"custom:{waiting.id}", AGENT)
    assert (order.status, order.custom_status_id) == ("pending", waiting.id)
    assert purchase_rules.open_order(customer) == order  # still counts as pending for rule 7
    with pytest.raises(ValidationFailed) as relabelled:  # an order's state moves by an action, not by a label
        order_statuses.save(waiting, name="Waiting", colour="#1a7f37", counts_as="cancelled", actor=AGENT)
    assert set(relabelled.value.errors) == {"counts_as"}
    order_statuses.save(waiting, name="Waiting", colour="#1a7f37", counts_as="pending", actor=AGENT)
    db.session.refresh(order)
    assert (order.status, order.custom_status_id, waiting.name) == ("pending", waiting.id, "Waiting")
    with pytest.raises(ServiceError) as refused:
        order_statuses.delete(waiting, AGENT)
    assert refused.value.code == "in_use"
    order = order_actions.cancel_order(order, AGENT)
    assert (order.status, order.custom_status_id) == ("cancelled", None)
    order_statuses.delete(waiting, AGENT)
    with pytest.raises(ServiceError):
        order_actions.bulk_set_status([order], "custom:999", AGENT)


# --- subscription cancellation requests ----------------------------------------------------------------

def test_cancellation_at_the_end_of_the_period_keeps_a_renewal_bought_ahead(support, clock):
    """Issue 14, defect 9: approving used to delete the renewal the customer had paid for, without a refund."""
    package = make_package("subscription", [support], days=30)
    customer = make_customer()
    activate(customer, package)
    clock.advance(days=10)
    activate(customer, package)  # renewal: a second period from day 30 to day 60
    me = as_customer(customer)
    with pytest.raises(ValidationFailed) as failed:
        cancellations.request_cancellation(customer, timing="tomorrow", reason="", actor=me)
    assert set(failed.value.errors) == {"timing", "reason"}
    request = cancellations.request_cancellation(customer, timing="period_end", reason="Too expensive", actor=me)
    with pytest.raises(ServiceError) as refused:
        cancellations.request_cancellation(customer, timing="now", reason="again", actor=me)
    assert refused.value.code == "already_requested"
    period_end = holdings.current_period_end(customer)
    cancellations.approve(request, AGENT, "Sorry to see you go")
    db.session.commit()
    renewal_end = period_end + timedelta(days=30)
    assert request.state == "approved" and request.ends_at == renewal_end
    assert holdings.subscription_expiry(customer) == renewal_end
    with pytest.raises(ServiceError):
        cancellations.approve(request, AGENT)
    clock.set(period_end)
    assert entitlements.entitlement(customer).subscription_active  # the paid renewal runs
    clock.set(renewal_end)
    entitlements.expire_subscriber(customer.id)
    assert not entitlements.entitlement(customer).subscription_active and customer.departments == []


def test_cancellation_now_ends_at_once_and_a_rejection_needs_a_note(support, clock):
    customer = make_customer()
    activate(customer, make_package("subscription", [support], days=30))
    me = as_customer(customer)
    request = cancellations.request_cancellation(customer, timing="now", reason="Moving away", actor=me)
    with pytest.raises(ValidationFailed):
        cancellations.reject(request, AGENT, " ")
    cancellations.reject(request, AGENT, "Your contract runs for a year")
    assert request.state == "rejected" and entitlements.entitlement(customer).subscription_active
    second = cancellations.request_cancellation(customer, timing="now", reason="Still moving", actor=me)
    cancellations.approve(second, AGENT)
    db.session.commit()
    assert not entitlements.entitlement(customer).subscription_active and customer.departments == []
    with pytest.raises(ServiceError) as refused:
        cancellations.request_cancellation(customer, timing="now", reason="again", actor=me)
    assert refused.value.code == "no_subscription"
    credit_customer = make_customer()
    activate(credit_customer, make_package("credit", [support]))
    with pytest.raises(ServiceError):
        cancellations.request_cancellation(credit_customer, timing="now", reason="x", actor=me)


@pytest.mark.parametrize("method", ["manual", "free", "cheque"])
def test_a_customer_cannot_place_an_order_paid_in_a_way_only_agents_have(app, method):
    """Money received outside the system (manual) is an agent's word: a customer's own order naming it would be
    paid and activated at once. Nothing is written."""
    customer = make_customer()
    with pytest.raises(ServiceError) as refused:
        place(customer, make_package("credit", [make_department()]), method=method)
    assert refused.value.code == "payment_method"
    db.session.rollback()
    assert db.session.scalar(db.select(db.func.count(Order.id))) == 0 and customer.credits == 0


def test_a_bank_transfer_order_needs_an_account_in_its_currency(app, support):
    """The service refuses it, whoever calls it (the checkout page only offered the choice before)."""
    customer = make_customer()
    usd = make_package("credit", [support], currency="USD", price="20.00")
    make_transfer_account("TRY")
    with pytest.raises(ServiceError) as refused:
        placement.place_customer_order(customer, usd, payment_method="bank_transfer", actor=as_customer(customer),
                                       contracts_accepted=True)
    assert refused.value.code == "payment_method"
    db.session.rollback()
    assert db.session.scalar(db.select(db.func.count(Order.id))) == 0
    make_transfer_account("USD")
    assert place(customer, usd).currency == "USD"


def test_a_usd_order_is_paid_only_from_usd_and_refunded_to_usd(support):
    """A balance holding lira does not pay a dollar order, whatever the number; the dollars pay it, and its
    refund to the balance comes back in dollars, the lira untouched throughout."""
    customer = make_customer()
    usd = make_package("credit", [support], currency="USD", price="20.00")
    balance.move(customer.id, "TRY", 10_000_000, "adjustment", reason="lira")
    db.session.commit()
    with pytest.raises(InsufficientBalance):
        place(customer, usd, method="account_balance")
    db.session.rollback()
    balance.move(customer.id, "USD", placement.quote(usd).total_minor, "adjustment", reason="dollars")
    order = place(customer, usd, method="account_balance")
    assert balance.amounts(customer) == {"TRY": 10_000_000}
    refund_to_balance(order)
    db.session.commit()
    assert balance.amounts(customer) == {"TRY": 10_000_000, "USD": order.amount_minor}
