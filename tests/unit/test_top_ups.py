"""Account balance top-ups (issue 16) at the service level, on both databases: a top-up is an order of its own
kind that credits the balance once when paid, is refunded to the card only after its money is taken back from the
balance (refused when spent), and its money is invoiced once whichever way the setting says."""
from types import SimpleNamespace

import pytest
from sqlalchemy import select

from limonbilling.extensions import db
from limonbilling.models import BalanceEntry, Invoice, Order, RefundDestination
from limonbilling.payments.base import SaleStatus
from limonbilling.services import (
    ServiceError,
    ValidationFailed,
    balance,
    bank_transfer,
    card_payments,
    order_actions,
    placement,
    refunds,
    settings,
    top_ups,
)

from ..factories import make_customer, make_department, make_package
from ..payment_support import AGENT, BANK, as_customer, bank_answer

IBAN = "TR330006100519786457841326"


def _card_top_up(customer, amount="250,00"):
    order = placement.place_top_up(customer, amount, payment_method="card", actor=as_customer(customer))
    attempt = card_payments.start_card_payment(order, "nestpay")
    db.session.commit()
    return order, attempt


def _paid_top_up(gateway, customer, amount="250,00"):
    order, attempt = _card_top_up(customer, amount)
    card_payments.apply_card_callback(gateway, bank_answer(attempt), BANK)
    db.session.commit()
    return order, attempt


def _entries(customer):
    return [(e.kind, e.amount_minor, e.balance_after_minor) for e in db.session.scalars(
        select(BalanceEntry).where(BalanceEntry.customer_id == customer.id).order_by(BalanceEntry.id))]


class _Bank:
    """A bank whose refunds succeed or are refused, as told."""

    def __init__(self, succeed: bool):
        self.succeed, self.asked = succeed, []

    def sale_status(self, oid):
        return SaleStatus(state=None)  # refunds ask the bank first: this one's status tells nothing

    def refund(self, oid, amount_minor, currency, *, operation, whole):
        self.asked.append((oid, amount_minor, operation))
        return SimpleNamespace(succeeded=self.succeed, operation=operation, return_code="00" if self.succeed else "99",
                               transaction_id="R1", message="" if self.succeed else "Declined by the issuer")


# --- paying: the balance is credited once ------------------------------------------------------------------

def test_a_card_top_up_credits_the_balance_once_whatever_the_callback_replays(gateway):
    customer = make_customer()
    order, attempt = _card_top_up(customer)
    assert (order.kind, order.amount_minor, order.currency, order.instalments) == ("balance", 25_000, "TRY", 1)
    assert balance.amount(customer, "TRY") == 0 and order.awaiting_payment
    for _replay in range(3):
        card_payments.apply_card_callback(gateway, bank_answer(attempt), BANK)
        db.session.commit()
    assert (order.status, order.payment_status, order.activated) == ("active", "paid", True)
    assert _entries(customer) == [("top_up", 25_000, 25_000)]
    assert order.refunds == [] and not order.awaiting_payment


def test_a_declined_top_up_adds_nothing_and_a_second_approval_goes_back_to_the_card(gateway):
    customer = make_customer()
    order, attempt = _card_top_up(customer)
    card_payments.apply_card_callback(gateway, bank_answer(attempt, approved=False), BANK)
    db.session.commit()
    assert balance.amount(customer, "TRY") == 0 and order.payment_status == "unpaid"
    second = card_payments.start_card_payment(order, "nestpay")
    third = card_payments.start_card_payment(order, "nestpay")
    db.session.commit()
    card_payments.apply_card_callback(gateway, bank_answer(second), BANK)
    card_payments.apply_card_callback(gateway, bank_answer(third), BANK)
    db.session.commit()
    assert _entries(customer) == [("top_up", 25_000, 25_000)]  # the second approval was not credited
    [returned] = order.refunds
    assert returned.automatic and returned.payment_id == third.id


def test_the_least_and_the_most_are_allowed_and_a_kurus_beyond_either_is_refused(app):
    settings.update({"top_up_minimum_minor": 5_000, "top_up_maximum_minor": 20_000}, AGENT)
    customer = make_customer()
    actor = as_customer(customer)
    for amount in ("50,00", "200,00"):
        assert placement.place_top_up(customer, amount, payment_method="card", actor=actor).amount_minor in (
            5_000, 20_000)
    for amount in ("49,99", "200,01", "0", "-10", "abc"):
        with pytest.raises(ValidationFailed) as refused:
            placement.place_top_up(customer, amount, payment_method="card", actor=actor)
        assert "amount" in refused.value.errors
    with pytest.raises(ServiceError) as refused:
        placement.place_top_up(customer, "100", payment_method="account_balance", actor=actor)
    assert refused.value.code == "payment_method"


def test_the_settings_keep_the_least_at_most_the_most(app):
    with pytest.raises(ValidationFailed) as refused:
        settings.update({"top_up_minimum_minor": 20_001, "top_up_maximum_minor": 20_000}, AGENT)
    assert "top_up_maximum_minor" in refused.value.errors
    assert settings.update({"top_up_minimum_minor": 20_000, "top_up_maximum_minor": 20_000}, AGENT)
    with pytest.raises(ValidationFailed):
        settings.update({"top_up_invoicing": "both"}, AGENT)


def test_the_way_top_ups_are_invoiced_changes_only_while_no_balance_holds_money(app):
    """Money topped up under one way and spent under the other would be invoiced twice or never."""
    customer = make_customer()
    balance.move(customer.id, "EUR", 1, "adjustment", reason="one cent")
    db.session.commit()
    with pytest.raises(ValidationFailed) as refused:
        top_ups.save_settings("50.00", "20000.00", "top_up", AGENT)
    assert "1 customer holds money" in refused.value.errors["top_up_invoicing"][0]
    db.session.rollback()
    changed = top_ups.save_settings("60.00", "20000.00", "orders", AGENT)  # the way stays: the amounts may change
    assert changed == ["top_up_minimum_minor", "top_up_maximum_minor"]
    balance.move(customer.id, "EUR", -1, "adjustment", reason="spent")
    waiting = placement.place_top_up(customer, "100,00", payment_method="card", actor=as_customer(customer))
    db.session.commit()  # placed under "orders", so not invoiced: paid and spent later, it would never be
    with pytest.raises(ValidationFailed) as refused:
        top_ups.save_settings("60.00", "20000.00", "top_up", AGENT)
    assert "1 top-up placed under the current way still waits" in refused.value.errors["top_up_invoicing"][0]
    db.session.rollback()
    order_actions.cancel_unpaid_order(waiting, as_customer(customer))
    db.session.commit()
    assert top_ups.save_settings("60.00", "20000.00", "top_up", AGENT) == ["top_up_invoicing"]


def test_a_transfer_top_up_is_credited_when_an_agent_accepts_it_once(app):
    bank_transfer.add_account(bank_name="Ziraat", account_holder="Limon", iban=IBAN, currency="TRY", actor=AGENT)
    customer = make_customer()
    order = placement.place_top_up(customer, "1.000,00", payment_method="bank_transfer", actor=as_customer(customer))
    bank_transfer.request_activation(order, email=customer.email, phone="0532 123 45 67", note="",
                                     actor=as_customer(customer))
    db.session.commit()
    assert balance.amount(customer, "TRY") == 0
    order_actions.accept_order(order, AGENT)
    db.session.commit()
    with pytest.raises(ServiceError) as again:
        order_actions.accept_order(order, AGENT)
    db.session.rollback()
    assert again.value.code == "already_active"
    assert _entries(customer) == [("top_up", 100_000, 100_000)]
    assert [(p.method, p.amount_minor) for p in order.confirmed_payments] == [("bank_transfer", 100_000)]


def test_a_top_up_is_never_given_free_and_never_reopened(gateway):
    customer = make_customer()
    order, _attempt = _card_top_up(customer)
    with pytest.raises(ServiceError) as refused:
        order_actions.accept_order(order, AGENT, free_reason="goodwill")
    db.session.rollback()
    assert refused.value.code == "top_up_not_free" and balance.amount(customer, "TRY") == 0
    order_actions.cancel_order(order, AGENT)
    db.session.commit()
    with pytest.raises(ServiceError) as refused:
        order_actions.back_to_pending(order, AGENT)
    db.session.rollback()
    assert refused.value.code == "top_up_not_again"


def test_a_waiting_top_up_does_not_block_buying_a_package(gateway):
    customer = make_customer()
    _card_top_up(customer)
    package = make_package("credit", [make_department()], credits=5, price="10.00")
    order = placement.place_customer_order(customer, package, payment_method="card", actor=as_customer(customer),
                                           contracts_accepted=True)
    assert order.kind == "new"


# --- refunding: the money leaves the balance first ------------------------------------------------------------

def test_cancel_and_refund_takes_the_top_up_from_the_balance_then_returns_it_to_the_card(gateway):
    customer = make_customer()
    order, attempt = _paid_top_up(gateway, customer)
    refunds.start(order, to=RefundDestination.CARD, actor=AGENT)
    db.session.commit()
    assert balance.amount(customer, "TRY") == 0  # gone from the balance while on its way to the card
    bank = _Bank(succeed=True)
    assert refunds.send(order, bank, AGENT) == "refunded"
    db.session.commit()
    assert bank.asked == [(attempt.oid, 25_000, "void")]
    assert (order.status, order.payment_status) == ("cancelled", "refunded")
    assert _entries(customer) == [("top_up", 25_000, 25_000), ("top_up_back", -25_000, 0)]


def test_a_refund_the_bank_refuses_puts_the_money_back_into_the_balance(gateway):
    customer = make_customer()
    order, _attempt = _paid_top_up(gateway, customer)
    refunds.start(order, to=RefundDestination.CARD, actor=AGENT, amount_minor=10_000)
    db.session.commit()
    assert refunds.send(order, _Bank(succeed=False), AGENT) == "failed"
    db.session.commit()
    assert balance.amount(customer, "TRY") == 25_000
    assert _entries(customer) == [("top_up", 25_000, 25_000), ("top_up_back", -10_000, 15_000),
                                  ("top_up_kept", 10_000, 25_000)]
    assert order.refundable_minor == 25_000  # a new refund may take it again


def test_a_spent_top_up_is_refunded_only_as_far_as_it_is_still_in_the_balance(gateway):
    customer = make_customer()
    order, _attempt = _paid_top_up(gateway, customer)
    package = make_package("credit", [make_department()], credits=5, price="100.00")
    settings.update({"vat_rate_percent": 0}, AGENT)
    placement.place_customer_order(customer, package, payment_method="account_balance", actor=as_customer(customer),
                                   contracts_accepted=True)
    db.session.commit()
    assert balance.amount(customer, "TRY") == 15_000
    with pytest.raises(ServiceError) as refused:
        refunds.start(order, to=RefundDestination.CARD, actor=AGENT)
    db.session.rollback()
    assert refused.value.code == "top_up_spent" and "150.00" in refused.value.message
    with pytest.raises(ServiceError) as refused:
        refunds.start(order, to=RefundDestination.CARD, actor=AGENT, amount_minor=15_001)
    db.session.rollback()
    assert refused.value.code == "top_up_spent"
    refunds.start(order, to=RefundDestination.CARD, actor=AGENT, amount_minor=15_000)  # exactly what is left
    db.session.commit()
    assert balance.amount(customer, "TRY") == 0 and order.refundable_minor == 10_000
    assert refunds.send(order, _Bank(succeed=True), AGENT) == "refunded"
    db.session.commit()
    assert (order.status, order.payment_status) == ("active", "partly_refunded")


def test_a_top_up_is_not_refunded_to_the_balance(gateway):
    customer = make_customer()
    order, _attempt = _paid_top_up(gateway, customer)
    with pytest.raises(ServiceError) as refused:
        refunds.start(order, to=RefundDestination.BALANCE, actor=AGENT)
    db.session.rollback()
    assert refused.value.code == "top_up_to_balance" and balance.amount(customer, "TRY") == 25_000


# --- invoicing: the same money once ---------------------------------------------------------------------------

def _buy_from_balance(customer):
    package = make_package("credit", [make_department()], credits=5, price="100.00")
    order = placement.place_customer_order(customer, package, payment_method="account_balance",
                                           actor=as_customer(customer), contracts_accepted=True)
    db.session.commit()
    return order


def test_invoicing_the_top_up_leaves_the_orders_the_balance_pays_without_an_invoice(gateway):
    settings.update({"top_up_invoicing": "top_up"}, AGENT)
    db.session.commit()
    customer = make_customer()
    top_up, _attempt = _paid_top_up(gateway, customer)
    assert top_up.invoice is not None and top_up.invoice.number is not None
    assert (top_up.invoice.total_minor, top_up.invoice.vat_minor) == (25_000, top_up.vat_minor) and top_up.vat_minor
    bought = _buy_from_balance(customer)
    assert bought.payment_status == "paid" and bought.invoice is None
    assert db.session.scalar(select(Invoice.total_minor).where(Invoice.customer_id == customer.id)) == 25_000


def test_invoicing_the_orders_leaves_the_top_up_without_an_invoice(gateway):
    assert settings.get("top_up_invoicing") == "orders"  # the default
    customer = make_customer()
    top_up, _attempt = _paid_top_up(gateway, customer)
    assert top_up.invoice is None and top_up.vat_minor == 0
    bought = _buy_from_balance(customer)
    assert bought.invoice is not None and bought.invoice.number is not None
    assert [i.order_id for i in db.session.scalars(select(Invoice).where(Invoice.customer_id == customer.id))] == [
        bought.id]


def test_the_balance_history_names_each_movement(gateway, app):
    from limonbilling.labels import balance_reason

    customer = make_customer()
    top_up, _attempt = _paid_top_up(gateway, customer)
    bought = _buy_from_balance(customer)
    rows = list(db.session.scalars(balance.entries(customer.id)))
    with app.test_request_context():
        assert [(row.kind, balance_reason(row)) for row in rows] == [
            ("payment", f"Order {bought.number}"), ("top_up", f"Top-up order {top_up.number}")]
    assert db.session.get(Order, top_up.id).package_name


def test_revenue_counts_top_up_money_once_when_the_balance_pays(gateway):
    from limonbilling.services import reports

    customer = make_customer()
    _paid_top_up(gateway, customer)  # 250.00 into the balance: not revenue yet
    assert sum(reports.revenue_by_month(1).get("TRY", {}).values()) == 0
    _buy_from_balance(customer)  # 100.00 of it spent on a package
    assert sum(reports.revenue_by_month(1)["TRY"].values()) == 10_000


# --- attack pass: Cancel / Fraud of a credited top-up ---------------------------------------------------------

def test_a_top_up_at_the_fraud_threshold_goes_to_fraud_and_never_to_the_bank(app):
    """A stolen card's top-up would be credited and spendable at once: the fraud check of every customer order
    applies to it too (here: an unverified address worth the threshold), and one point below it still passes."""
    settings.update({"fraud_unverified_email_points": 60, "fraud_threshold": 60}, AGENT)
    db.session.commit()
    customer = make_customer()
    order = placement.place_top_up(customer, "250,00", payment_method="card", actor=as_customer(customer))
    db.session.commit()
    assert (order.status, order.fraud_score, order.payment_status) == ("fraud", 60, "unpaid")
    with pytest.raises(ServiceError) as refused:
        card_payments.start_card_payment(order, "nestpay")
    assert refused.value.code == "not_payable" and order.payments == []
    db.session.rollback()
    settings.update({"fraud_threshold": 61}, AGENT)
    passed = placement.place_top_up(make_customer(), "250,00", payment_method="card", actor=AGENT)
    assert (passed.status, passed.fraud_score) == ("pending", 60)


def test_a_paid_top_up_is_not_cancelled_or_set_as_fraud_with_its_money_left_in_the_balance(gateway):
    """Paid top-up (250.00 in the balance) → Set as Fraud or Cancel: nothing was taken back from the balance (a
    top-up gives money, not a grant), so the money (maybe a stolen card's) stayed spendable while the order was
    "fraud" and its invoice Cancelled. Both are refused: refund it (Cancel & Refund takes it from the balance)."""
    settings.update({"top_up_invoicing": "top_up"}, AGENT)
    db.session.commit()
    customer = make_customer()
    order, _attempt = _paid_top_up(gateway, customer)
    for action in (order_actions.set_fraud, order_actions.cancel_order):
        with pytest.raises(ServiceError) as refused:
            action(order, AGENT)
        db.session.rollback()
        assert refused.value.code == "top_up_paid"
    assert order_actions.bulk_set_status([order], "fraud", AGENT) == (0, [order.number])
    assert order_actions.bulk_set_status([order], "cancelled", AGENT) == (0, [order.number])
    db.session.commit()
    assert (order.status, order.payment_status, order.invoice.status) == ("active", "paid", "paid")
    assert balance.amount(customer, "TRY") == 25_000
    refunds.start(order, to=RefundDestination.CARD, actor=AGENT)  # the way to take it back
    db.session.commit()
    assert refunds.send(order, _Bank(succeed=True), AGENT) == "refunded"
    db.session.commit()
    assert (order.status, balance.amount(customer, "TRY")) == ("cancelled", 0)


def _twice_approved_top_up(gateway):
    """A top-up of 250.00 whose two card attempts the bank approved: the first credited, the second returned."""
    customer = make_customer()
    order, first = _card_top_up(customer)
    second = card_payments.start_card_payment(order, "nestpay")
    db.session.commit()
    card_payments.apply_card_callback(gateway, bank_answer(first), BANK)
    card_payments.apply_card_callback(gateway, bank_answer(second), BANK)
    db.session.commit()
    return customer, order, second


def test_money_the_bank_could_not_return_by_itself_is_refunded_without_taking_it_from_the_balance(gateway):
    """Two approved attempts of one top-up: the first is credited (250.00), the second's automatic return is refused
    by the bank, and the order page says "refund it from this page". Before, a refund took every kuruş it returned
    from the balance, the uncredited money too: Cancel & Refund (500.00) was refused ("at most 250.00"), and a
    refund of 250.00 returned the second payment but emptied the balance, so the customer lost 250.00 for good (the
    first payment could then never be refunded: nothing of it was "left to refund")."""
    customer, order, second = _twice_approved_top_up(gateway)
    assert refunds.send(order, _Bank(succeed=False), BANK) == "failed"  # the automatic return, refused
    db.session.commit()
    assert (order.refundable_minor, balance.amount(customer, "TRY")) == (50_000, 25_000) and order.attention
    refunds.start(order, to=RefundDestination.CARD, actor=AGENT, amount_minor=25_000)
    db.session.commit()
    assert balance.amount(customer, "TRY") == 25_000  # the second payment was never in the balance
    bank = _Bank(succeed=True)
    assert refunds.send(order, bank, AGENT) == "refunded"
    db.session.commit()
    assert bank.asked == [(second.oid, 25_000, "void")] and order.status == "active"
    refunds.start(order, to=RefundDestination.CARD, actor=AGENT)  # Cancel & Refund: the credited one
    db.session.commit()
    assert refunds.send(order, bank, AGENT) == "refunded"
    db.session.commit()
    assert (order.status, order.payment_status, balance.amount(customer, "TRY")) == ("cancelled", "refunded", 0)
    assert _entries(customer) == [("top_up", 25_000, 25_000), ("top_up_back", -25_000, 0)]


def test_a_refused_refund_puts_back_only_what_it_took_from_the_balance(gateway):
    """The same two payments refunded at once (500.00) took 250.00 from the balance; when the bank refuses both
    parts, 250.00 goes back into it, not 500.00."""
    customer, order, second = _twice_approved_top_up(gateway)
    refunds.send(order, _Bank(succeed=False), BANK)
    db.session.commit()
    refunds.start(order, to=RefundDestination.CARD, actor=AGENT)
    db.session.commit()
    assert balance.amount(customer, "TRY") == 0
    assert refunds.send(order, _Bank(succeed=False), AGENT) == "failed"
    db.session.commit()
    assert (order.refundable_minor, balance.amount(customer, "TRY")) == (50_000, 25_000)
    assert _entries(customer) == [("top_up", 25_000, 25_000), ("top_up_back", -25_000, 0),
                                  ("top_up_kept", 25_000, 25_000)]


def test_an_erased_customer_takes_no_top_up(gateway):
    """A top-up sent from a page loaded before the erasure committed (the customer's lock waits for it): its
    money, once paid, sat in the balance of an account that signs in no more, which the erasure refuses to
    leave. Refused under the customer's lock, as any other new order."""
    from limonbilling.services import privacy

    from ..factories import PASSWORD

    customer = make_customer()
    request = privacy.request_erasure(customer, "", PASSWORD, as_customer(customer))
    privacy.approve(request.id, AGENT)
    db.session.commit()
    with pytest.raises(ServiceError) as refused:
        placement.place_top_up(customer, "250,00", payment_method="card", actor=as_customer(customer))
    assert refused.value.code == "customer_erased"
    db.session.rollback()
    assert db.session.scalar(select(Order.id).where(Order.customer_id == customer.id)) is None
