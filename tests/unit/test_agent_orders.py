"""Orders agents place (issue 17, WHMCS order placement): n × a package, promo codes the agent forces, card
orders paid through a mailed payment link, and the customer's own note at checkout."""
import re
from datetime import timedelta

import pytest
from sqlalchemy import select

from limonbilling.extensions import db
from limonbilling.models import AuditEntry, Notification, Order, PromoCode
from limonbilling.services import (
    ServiceError,
    ValidationFailed,
    bank_transfer,
    card_payments,
    entitlements,
    holdings,
    invoices,
    order_actions,
    placement,
    promo_codes,
    purchase_rules,
    tokens,
)

from ..factories import activate, make_agent, make_customer, make_department, make_package, make_transfer_account
from ..payment_support import AGENT, BANK, as_customer, bank_answer, configure_gateway, refund_to_balance


@pytest.fixture
def support(app):
    return make_department("Support", credit_per_request=1)


def agent_order(customer, package, method="manual", **kwargs) -> Order:
    order = placement.place_agent_order(customer, package, payment_method=method, actor=AGENT, **kwargs)
    db.session.commit()
    return order


def promo(**values) -> PromoCode:
    code = promo_codes.create({"code": "SAVE10", "kind": "percent", "value": "10", **values}, AGENT)
    db.session.commit()
    return code


# --- quantity ----------------------------------------------------------------------------------------

def test_three_credit_packages_cost_three_times_and_give_three_times_the_credits(support):
    package = make_package("credit", [support], credits=10, price="100.00", name="Ten")
    customer = make_customer()
    order = agent_order(customer, package, quantity=3)
    _rate, vat, total = invoices.order_totals(30000)
    assert (order.quantity, order.amount_minor, order.vat_minor, order.status) == (3, total, vat, "active")
    assert order.item_label == "3 × Ten" and order.package_snapshot["credits"] == 10  # the unit, as sold
    assert customer.credits == 30 and order.live_grant.snapshot["credits"] == 30
    assert order.invoice.lines == [{"description": "3 × Ten", "quantity": 3, "net_minor": total - vat}]


def test_the_discount_is_on_the_total_and_the_invoice_shows_both_lines(support):
    package = make_package("credit", [support], price="100.00", name="Ten")
    promo(code="TENOFF")
    order = agent_order(make_customer(), package, quantity=3, promo_code="TENOFF")
    assert order.discount_minor == 3000  # 10 % of 3 × 100.00
    _rate, _vat, total = invoices.order_totals(27000)
    assert order.amount_minor == total
    assert [line["description"] for line in order.invoice.lines] == ["3 × Ten", "Promo code TENOFF"]
    assert sum(line["net_minor"] for line in order.invoice.lines) == order.invoice.net_minor


def test_a_price_override_is_the_price_of_one(support):
    package = make_package("credit", [support], price="100.00")
    order = agent_order(make_customer(), package, quantity=4, price_override_minor=5000)
    assert order.amount_minor == invoices.order_totals(20000)[2] and order.price_overridden


def test_a_negative_price_override_is_refused_by_the_service_whoever_calls_it(support):
    """The pages and the API parse the price first; the rule is the service's, so a direct caller gets the same
    clear refusal and no order, not a database error."""
    package = make_package("credit", [support], price="100.00")
    customer = make_customer()
    with pytest.raises(ValidationFailed) as refused:
        agent_order(customer, package, price_override_minor=-1)
    assert "price_override" in refused.value.errors
    db.session.rollback()
    assert db.session.scalar(select(Order.id).where(Order.customer_id == customer.id)) is None
    assert agent_order(customer, package, price_override_minor=0).amount_minor == 0  # 0 makes it free


def test_an_erased_customer_takes_no_new_order(support):
    """An erased account signs in no more: an order placed for it (by an agent, the API, or an activation request
    approved just after the erasure) would be paid and activated for nobody."""
    from limonbilling.services import privacy

    from ..factories import PASSWORD
    from ..payment_support import as_customer

    customer = make_customer()
    request = privacy.request_erasure(customer, "", PASSWORD, as_customer(customer))
    privacy.approve(request.id, AGENT)
    db.session.commit()
    with pytest.raises(ServiceError) as refused:
        agent_order(customer, make_package("credit", [support]))
    assert refused.value.code == "customer_erased"
    db.session.rollback()
    assert db.session.scalar(select(Order.id).where(Order.customer_id == customer.id)) is None


@pytest.mark.parametrize("method", ["card", "bank_transfer"])
def test_a_free_order_is_not_sent_to_be_paid_by_card_or_transfer(support, method):
    """Nothing to pay: a payment link for 0.00 the bank cannot take, or a transfer of nothing, would keep the
    order waiting for money that never comes. A kuruş is still paid that way."""
    configure_gateway()
    make_transfer_account()
    package = make_package("credit", [support], price="100.00")
    customer = make_customer()
    with pytest.raises(ServiceError) as refused:
        agent_order(customer, package, method, price_override_minor=0)
    assert refused.value.code == "nothing_to_pay"
    db.session.rollback()
    assert agent_order(customer, package, method, price_override_minor=1).amount_minor == 1


def test_two_subscription_periods_run_back_to_back(support, clock):
    package = make_package("subscription", [support], days=30, price="900.00")
    customer = make_customer()
    order = agent_order(customer, package, quantity=2)
    assert holdings.subscription_expiry(customer) == clock.now() + timedelta(days=60)
    assert order.amount_minor == invoices.order_totals(180000)[2]


@pytest.mark.parametrize("days_left, allowed", [(31, False), (30, True)])
def test_rule_3_holds_for_the_first_of_n_periods(support, clock, days_left, allowed):
    """A renewal of n periods opens when one would (30 days before the end, not n × 30) and starts at the end."""
    package = make_package("subscription", [support], days=30)
    customer = make_customer()
    activate(customer, make_package("subscription", [support], days=days_left))
    expiry = holdings.subscription_expiry(customer)
    if not allowed:
        with pytest.raises(purchase_rules.PurchaseRefused) as refused:
            agent_order(customer, package, quantity=3)
        assert refused.value.code == "renewal_not_open"
        return
    agent_order(customer, package, quantity=3)
    assert holdings.subscription_expiry(customer) == expiry + timedelta(days=90)


@pytest.mark.parametrize("kind, most", [("credit", 100), ("subscription", 12)])
def test_the_quantity_edges(support, kind, most):
    package = make_package(kind, [support])
    for refused_quantity in (0, most + 1):
        with pytest.raises(ValidationFailed) as refused:
            agent_order(make_customer(), package, quantity=refused_quantity)
        assert list(refused.value.errors) == ["quantity"]
        db.session.rollback()
    assert agent_order(make_customer(), package, quantity=most).quantity == most


def test_a_full_refund_of_a_credit_quantity_order_takes_back_every_credit(support):
    customer = make_customer()
    order = agent_order(customer, make_package("credit", [support], credits=10), quantity=3)
    assert customer.credits == 30
    refund_to_balance(order)
    db.session.commit()
    assert (customer.credits, order.status, order.activated) == (0, "cancelled", False)


def test_a_full_refund_of_n_periods_removes_them_all(support, clock):
    customer = make_customer()
    order = agent_order(customer, make_package("subscription", [support], days=30), quantity=2)
    clock.advance(days=40)  # into the second period
    refund_to_balance(order)
    db.session.commit()
    assert holdings.subscription_expiry(customer) is None and order.status == "cancelled"
    assert entitlements.entitlement(customer).departments == []


# --- promo codes an agent picks ------------------------------------------------------------------------

def test_a_forced_promo_code_applies_outside_its_dates_limit_and_packages(support, clock):
    package = make_package("credit", [support], price="100.00")
    other = make_package("credit", [support], price="100.00")
    today = clock.now().date()
    codes = {
        "LATER": promo(code="LATER", valid_from=today + timedelta(days=2)),
        "OVER": promo(code="OVER", valid_until=today - timedelta(days=1)),
        "ONLY": promo(code="ONLY", package_ids=[other.id]),
        "USEDUP": promo(code="USEDUP", max_uses=1),
    }
    promo_codes.take_use(codes["USEDUP"])
    db.session.commit()
    for code in codes:
        with pytest.raises(ServiceError):  # a customer is refused each of them
            make_transfer_account()
            placement.place_customer_order(make_customer(), package, payment_method="bank_transfer",
                                           actor=AGENT, promo_code=code, contracts_accepted=True)
        db.session.rollback()
    agent = make_agent("billing")
    for code, promo_code in codes.items():
        order = agent_order(make_customer(), package, method="bank_transfer", promo_code=code, placed_by=agent)
        assert (order.promo_code, order.discount_minor, order.promo_forced) == (code, 1000, True)
        db.session.refresh(promo_code)
    assert [codes[c].uses for c in ("LATER", "OVER", "ONLY", "USEDUP")] == [1, 1, 1, 2]  # past its limit of 1
    logged = db.session.scalars(select(AuditEntry).where(AuditEntry.action == "order.create")).all()
    assert {(entry.details["promo"], entry.details["promo_forced"]) for entry in logged} == {
        (code, True) for code in codes}


def test_a_forced_code_still_needs_to_exist_be_active_fit_the_currency_and_leave_a_price(support):
    package = make_package("credit", [support], price="100.00")
    promo(code="EUROS", kind="fixed", value="10", currency="EUR")
    promo(code="HUGE", kind="fixed", value="100", currency="TRY")
    promo_codes.set_active(promo(code="OFF"), False, AGENT)
    db.session.commit()
    for code, reason in {"NOPE": "promo_unknown", "OFF": "promo_unknown", "EUROS": "promo_currency",
                         "HUGE": "promo_too_large"}.items():
        with pytest.raises(ServiceError) as refused:
            agent_order(make_customer(), package, promo_code=code)
        assert refused.value.code == reason
        db.session.rollback()


def test_a_forced_use_given_back_and_taken_again_passes_the_limit(support):
    """An unpaid forced order gives its use back when cancelled, and Back to Pending takes it again."""
    package = make_package("credit", [support], price="100.00")
    code = promo(code="ONCE", max_uses=1)
    agent_order(make_customer(), package, promo_code="ONCE")
    make_transfer_account()
    order = agent_order(make_customer(), package, method="bank_transfer", promo_code="ONCE")
    order_actions.cancel_order(order, AGENT)
    db.session.commit()
    db.session.refresh(code)
    assert code.uses == 1
    order_actions.back_to_pending(order, AGENT)
    db.session.commit()
    db.session.refresh(code)
    assert code.uses == 2 and order.promo_use_held


# --- the payment link ------------------------------------------------------------------------------------

def link_token(order: Order) -> str:
    mail = db.session.scalars(select(Notification).where(
        Notification.order_number == order.number, Notification.event == "payment_link")).one()
    return re.search(r"/pay/([^\s\"<]+)", mail.body_text).group(1)


def test_a_card_order_mails_the_customer_a_payment_link_in_their_language(support, clock):
    customer = make_customer(language="tr")
    order = agent_order(customer, make_package("subscription", [support]), method="card", quantity=2)
    assert (order.status, order.payment_status, order.activated) == ("pending", "unpaid", False)
    assert order.expires_at == clock.now() + timedelta(days=7)
    mail = db.session.scalars(select(Notification).where(Notification.event == "payment_link")).one()
    assert (mail.recipient, mail.language, mail.sensitive) == (customer.email, "tr", True)
    assert order.number in mail.subject and "2 × " in mail.body_text
    assert card_payments.payment_link_order(link_token(order), customer) == order


def test_the_link_works_until_the_last_second_before_the_order_expires(support, clock):
    customer = make_customer()
    order = agent_order(customer, make_package("credit", [support]), method="card")
    token = link_token(order)
    clock.advance(seconds=card_payments.PAYMENT_LINK_LIFETIME.total_seconds() - 1)
    assert card_payments.payment_link_order(token, customer) == order
    clock.advance(seconds=1)
    with pytest.raises(ServiceError) as refused:
        card_payments.payment_link_order(token, customer)
    assert refused.value.code == "link_expired"


def test_an_expired_link_order_is_not_paid_from_the_order_page_before_the_expiry_job_cancels_it(support, clock):
    customer = make_customer()
    order = agent_order(customer, make_package("credit", [support]), method="card")
    clock.advance(seconds=card_payments.PAYMENT_LINK_LIFETIME.total_seconds() - 1)
    card_payments.start_card_payment(order, "nestpay")  # the last second still counts
    db.session.commit()
    clock.advance(seconds=1)
    with pytest.raises(ServiceError) as refused:
        card_payments.start_card_payment(order, "nestpay")
    assert refused.value.code == "link_expired" and order.status == "pending"
    db.session.rollback()
    own = placement.place_customer_order(make_customer(), make_package("credit", [support]), payment_method="card",
                                         actor=AGENT, contracts_accepted=True)
    clock.advance(days=1)
    card_payments.start_card_payment(own, "nestpay")  # a customer's own expired checkout gets a new window
    assert own.expires_at > clock.now()


def test_the_link_stops_once_paid_or_cancelled_and_only_serves_its_customer(support):
    customer = make_customer()
    package = make_package("credit", [support], credits=10)
    order = agent_order(customer, package, method="card", quantity=3)
    token = link_token(order)
    for other_token, code in ((token[:-2] + "xx", "link_invalid"),
                              (tokens.payment_link_token(order), None)):
        if code is None:
            with pytest.raises(ServiceError) as refused:
                card_payments.payment_link_order(other_token, make_customer())
            assert refused.value.code == "link_other_customer"
        else:
            with pytest.raises(ServiceError) as refused:
                card_payments.payment_link_order(other_token, customer)
            assert refused.value.code == code
    gateway = configure_gateway()
    attempt = card_payments.start_card_payment(card_payments.payment_link_order(token, customer), "nestpay")
    db.session.commit()
    card_payments.apply_card_callback(gateway, bank_answer(attempt), BANK)
    db.session.commit()
    assert (order.payment_status, customer.credits) == ("paid", 30)  # n × the credits, activated by the card
    with pytest.raises(ServiceError) as refused:
        card_payments.payment_link_order(token, customer)
    assert refused.value.code == "link_paid"

    second = agent_order(make_customer(), package, method="card")
    order_actions.cancel_order(second, AGENT)
    db.session.commit()
    with pytest.raises(ServiceError) as refused:
        card_payments.payment_link_order(link_token(second), second.customer)
    assert refused.value.code == "link_cancelled"


def test_an_unpaid_link_order_is_the_customers_one_open_order(support, clock):
    """Rule 7: until it is paid, cancelled or expired, the customer cannot start another order."""
    customer = make_customer()
    package = make_package("credit", [support])
    agent_order(customer, package, method="card")
    with pytest.raises(purchase_rules.PurchaseRefused) as refused:
        placement.place_customer_order(customer, package, payment_method="card", actor=as_customer(customer),
                                       contracts_accepted=True)
    assert refused.value.code == "open_order"
    db.session.rollback()
    clock.advance(seconds=card_payments.PAYMENT_LINK_LIFETIME.total_seconds())
    placement.place_customer_order(customer, package, payment_method="card", actor=as_customer(customer),
                                   contracts_accepted=True)


def _links(order: Order) -> list[str]:
    return [re.search(r"/pay/([^\s\"<]+)", mail.body_text).group(1) for mail in db.session.scalars(
        select(Notification).where(Notification.order_number == order.number, Notification.event == "payment_link")
        .order_by(Notification.id))]


def test_the_link_is_sent_again_with_a_week_from_now_once_a_minute(support, clock):
    customer = make_customer()
    order = agent_order(customer, make_package("credit", [support]), method="card")
    clock.advance(days=6, hours=23)
    assert card_payments.resend_payment_link(order, AGENT) is True
    db.session.commit()
    assert order.expires_at == clock.now() + card_payments.PAYMENT_LINK_LIFETIME
    assert card_payments.resend_payment_link(order, AGENT) is False  # pressed twice: one mail
    clock.advance(seconds=60)
    assert card_payments.resend_payment_link(order, AGENT) is True
    db.session.commit()
    first, second, third = _links(order)
    assert len({first, second, third}) == 3
    assert db.session.scalars(select(AuditEntry.action).where(
        AuditEntry.action == "order.payment_link_resent")).all() == ["order.payment_link_resent"] * 2
    clock.advance(seconds=card_payments.PAYMENT_LINK_LIFETIME.total_seconds() - 1)
    assert card_payments.payment_link_order(third, customer) == order  # a week from the last mail, to the second
    with pytest.raises(ServiceError) as refused:
        card_payments.payment_link_order(first, customer)  # the first link is older than a week
    assert refused.value.code == "link_expired"


def test_the_link_is_not_sent_again_once_paid_cancelled_or_expired_nor_for_other_orders(support, clock):
    package = make_package("credit", [support])
    refused_with = {}
    for case in ("paid", "cancelled", "expired", "manual", "customer's own"):
        customer = make_customer()
        if case == "manual":
            order = agent_order(customer, package, method="manual")
        elif case == "customer's own":
            order = placement.place_customer_order(customer, package, payment_method="card",
                                                   actor=as_customer(customer), contracts_accepted=True)
        else:
            order = agent_order(customer, package, method="card")
        if case == "paid":
            attempt = card_payments.start_card_payment(order, "nestpay")
            db.session.commit()
            card_payments.apply_card_callback(configure_gateway(), bank_answer(attempt), BANK)
        elif case == "cancelled":
            order_actions.cancel_order(order, AGENT)
        db.session.commit()
        moment = clock.now()
        if case == "expired":
            clock.advance(seconds=card_payments.PAYMENT_LINK_LIFETIME.total_seconds())
        with pytest.raises(ServiceError) as refused:
            card_payments.resend_payment_link(order, AGENT)
        db.session.rollback()
        refused_with[case] = refused.value.code
        clock.set(moment)
    assert refused_with == {"paid": "not_payable", "cancelled": "not_payable", "expired": "not_payable",
                            "manual": "no_payment_link", "customer's own": "no_payment_link"}
    assert db.session.scalar(select(db.func.count()).select_from(AuditEntry).where(
        AuditEntry.action == "order.payment_link_resent")) == 0


# --- the customer's note at checkout ---------------------------------------------------------------------

def test_the_customers_note_is_kept_trimmed_and_limited(support):
    package = make_package("credit", [support])
    customer = make_customer()
    longest = "n" * placement.CUSTOMER_NOTE_LENGTH
    make_transfer_account()
    order = placement.place_customer_order(customer, package, payment_method="bank_transfer",
                                           actor=as_customer(customer), note=f"  {longest}  ", contracts_accepted=True)
    assert order.customer_note == longest
    db.session.rollback()
    with pytest.raises(ServiceError) as refused:
        make_transfer_account()
        placement.place_customer_order(customer, package, payment_method="bank_transfer",
                                       actor=as_customer(customer), note=longest + "n", contracts_accepted=True)
    assert refused.value.code == "customer_note"
    db.session.rollback()
    make_transfer_account()
    blank = placement.place_customer_order(customer, package, payment_method="bank_transfer",
                                           actor=as_customer(customer), note="   ", contracts_accepted=True)
    assert blank.customer_note is None


def test_the_activation_request_note_follows_the_checkout_note(support):
    package = make_package("credit", [support])
    customer = make_customer()
    make_transfer_account()
    order = placement.place_customer_order(customer, package, payment_method="bank_transfer",
                                           actor=as_customer(customer), note="For the Ankara office",
                                           contracts_accepted=True)
    db.session.commit()
    bank_transfer.request_activation(order, email=customer.email, phone=customer.phone, note="Sent by Ali Veli",
                                     actor=as_customer(customer))
    assert order.customer_note == "For the Ankara office\nSent by Ali Veli"


def test_an_agents_transfer_order_needs_an_account_in_its_currency(support):
    """An agent's (or the API's) order paid by bank transfer waits for the customer's transfer: in a currency
    with no account (only a TRY one here), its page and its reminder show nowhere to pay, and it could only be
    cancelled at its deadline. Refused like the customer's own; one in the currency of an account is placed."""
    customer = make_customer()
    usd = make_package("credit", [support], currency="USD", price="20.00")
    make_transfer_account("TRY")
    db.session.commit()
    with pytest.raises(ServiceError) as refused:
        agent_order(customer, usd, method="bank_transfer")
    assert refused.value.code == "payment_method"
    db.session.rollback()
    assert db.session.scalar(select(db.func.count(Order.id))) == 0
    make_transfer_account("USD")
    assert agent_order(customer, usd, method="bank_transfer").currency == "USD"


def test_a_ver1_store_takes_no_card_order_with_a_payment_link_in_another_currency_than_lira(support):
    """A ver1 NestPay store takes card payments in TRY only (the bank form is refused for others), but an agent
    could still place a 150 USD card order: its payment link was mailed, every payment on it was refused, and
    as an open order it kept the customer from ordering anything else, by transfer or balance, for 7 days."""
    from limonbilling.services import audit, settings

    configure_gateway()
    settings.update({"nestpay_hash_version": "ver1"}, audit.Actor.system("test"))
    customer = make_customer()
    with pytest.raises(ServiceError) as refused:
        agent_order(customer, make_package("credit", [support], price="150.00", currency="USD"), method="card")
    assert refused.value.code == "card_currency"
    db.session.rollback()
    assert db.session.scalars(select(Order)).all() == []
    assert agent_order(customer, make_package("credit", [support], price="150.00"), method="card").currency == "TRY"
