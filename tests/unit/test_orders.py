"""Orders at the service level: numbers, rule 7, card callbacks, and the agent actions with their effects."""
import pytest

from limonbilling.extensions import db
from limonbilling.labels import ledger_reason
from limonbilling.models import AuditEntry, LedgerEntry, Notification, Order, Payment, Refund
from limonbilling.services import (
    ServiceError,
    audit,
    card_payments,
    charging,
    entitlements,
    ledger,
    order_actions,
    placement,
    purchase_rules,
    settings,
)
from limonbilling.services.charging import charge_usage
from limonbilling.services.purchase_rules import PurchaseRefused

from ..factories import make_customer, make_department, make_package
from ..payment_support import AGENT, BANK, as_customer, bank_answer, card_order, refund_to_balance


@pytest.fixture
def support(app):
    return make_department("Support", credit_per_request=3)


def test_order_numbers_are_random_ten_digits(app):
    numbers = {placement.new_order_number() for _ in range(200)}
    assert len(numbers) == 200
    assert all(len(n) == 10 and n.isdigit() and n[0] != "0" for n in numbers)


def test_one_open_order_at_a_time(gateway, support, clock):
    customer = make_customer()
    package = make_package("credit", [support])
    first = placement.place_customer_order(customer, package, payment_method="card", actor=as_customer(customer),
                                           contracts_accepted=True)
    db.session.commit()
    assert first.customer_was_new and first.kind == "new" and first.status == "pending"
    preview = purchase_rules.preview_purchase(customer, package)
    assert preview.reason_code == "open_order" and first.number in preview.reason
    with pytest.raises(PurchaseRefused):
        placement.place_customer_order(customer, package, payment_method="card", actor=as_customer(customer),
                                       contracts_accepted=True)
    db.session.rollback()
    clock.advance(minutes=31)  # an abandoned card checkout stops blocking
    second = placement.place_customer_order(customer, package, payment_method="card", actor=as_customer(customer),
                                            contracts_accepted=True)
    assert not second.customer_was_new
    db.session.commit()
    assert card_payments.stale_checkouts() == [first.id]  # never sent to the bank: nothing to ask
    assert card_payments.expire_checkout(first.id, gateway, AGENT) is True
    db.session.commit()
    assert db.session.get(Order, first.id).status == "cancelled"


def test_approved_callback_pays_and_activates_once(gateway, support):
    customer = make_customer()
    order, attempt = card_order(customer, make_package("credit", [support], credits=10))
    fields = bank_answer(attempt)
    assert card_payments.apply_card_callback(gateway, fields, BANK) is order
    db.session.commit()
    assert (order.payment_status, order.status, customer.credits, attempt.state) == ("paid", "pending", 10, "confirmed")
    assert (attempt.trans_id, attempt.masked_pan) == ("T1", "435508***4358")
    card_payments.apply_card_callback(gateway, fields, BANK)  # replay
    db.session.commit()
    assert customer.credits == 10 and ledger.ledger_sum(customer.id) == 10


def test_card_payment_waits_for_accept_when_auto_activation_is_off(gateway, support):
    settings.update({"auto_activate_card": False}, AGENT)
    customer = make_customer()
    order, attempt = card_order(customer, make_package("credit", [support], credits=10))
    card_payments.apply_card_callback(gateway, bank_answer(attempt), BANK)
    db.session.commit()
    assert (order.payment_status, order.activated, customer.credits) == ("paid", False, 0)
    order_actions.accept_order(order, AGENT)
    db.session.commit()
    assert (order.status, order.activated, customer.credits) == ("active", True, 10)


def test_declined_callback_keeps_the_order_unpaid_with_the_banks_message(gateway, support):
    customer = make_customer()
    order, attempt = card_order(customer, make_package("credit", [support]))
    card_payments.apply_card_callback(gateway, bank_answer(attempt, approved=False), BANK)
    db.session.commit()
    assert (order.payment_status, attempt.state, attempt.message) == ("unpaid", "failed", "Do not honour")


def test_a_forged_callback_leaves_the_attempt_waiting(gateway, support):
    customer = make_customer()
    order, attempt = card_order(customer, make_package("credit", [support]))
    forged = {**bank_answer(attempt), "amount": "0.01"}
    card_payments.apply_card_callback(gateway, forged, BANK)
    db.session.commit()
    assert attempt.state == "pending" and order.payment_status == "unpaid"
    assert db.session.scalar(db.select(AuditEntry).where(AuditEntry.action == "payment.callback_rejected"))
    card_payments.apply_card_callback(gateway, bank_answer(attempt), BANK)  # the real answer still counts
    db.session.commit()
    assert order.payment_status == "paid"


def test_late_approval_of_a_cancelled_checkout_is_returned_not_activated(gateway, support):
    """Issue 14, defect 7: an approval arriving after the order was cancelled used to reopen and activate it;
    the money now goes back by itself (here the bank is out of reach, so the refund waits, recorded)."""
    customer = make_customer()
    order, attempt = card_order(customer, make_package("credit", [support], credits=10))
    order_actions.cancel_unpaid_order(order, audit.Actor.of(customer))
    db.session.commit()
    card_payments.apply_card_callback(gateway, bank_answer(attempt), BANK)
    db.session.commit()
    assert (order.status, order.activated, customer.credits, attempt.state) == ("cancelled", False, 0, "confirmed")
    [refund] = order.refunds
    assert (refund.automatic, refund.state, refund.amount_minor) == (True, "created", attempt.amount_minor)
    assert order.refundable_minor == 0 and order.refund_in_flight and not order.awaiting_payment


def test_cancel_takes_back_what_remains_and_records_the_rest(gateway, support):
    customer = make_customer()
    order, attempt = card_order(customer, make_package("credit", [support], credits=10))
    card_payments.apply_card_callback(gateway, bank_answer(attempt), BANK)
    db.session.commit()
    for n in range(3):
        charge_usage(customer.id, support.id, "ticket", f"T{n}")  # 9 of 10 credits used
    db.session.commit()
    order_actions.cancel_order(order, AGENT)
    db.session.commit()
    assert (order.status, customer.credits) == ("cancelled", 0)
    reversals = db.session.scalars(db.select(LedgerEntry).where(LedgerEntry.kind == "reversal")).all()
    assert [entry.amount for entry in reversals] == [-1, 0]
    assert "9 of the 10 credits were already used" in ledger_reason(reversals[1])
    assert ledger.ledger_sum(customer.id) == 0 and customer.departments == []


def test_fraud_removes_a_subscription_period_and_back_to_pending_then_accept(gateway, support):
    customer = make_customer()
    order, attempt = card_order(customer, make_package("subscription", [support], days=30))
    card_payments.apply_card_callback(gateway, bank_answer(attempt), BANK)
    db.session.commit()
    assert entitlements.entitlement(customer).subscription_active
    order_actions.set_fraud(order, AGENT)
    db.session.commit()
    assert order.status == "fraud" and not entitlements.entitlement(customer).subscription_active
    with pytest.raises(charging.DepartmentNotEnabled):
        charge_usage(customer.id, support.id, "ticket", "after-fraud")
    db.session.rollback()
    order_actions.back_to_pending(order, AGENT)
    order_actions.accept_order(order, AGENT)
    db.session.commit()
    assert order.status == "active" and entitlements.entitlement(customer).subscription_active


def test_delete_needs_the_grant_revoked_and_keeps_the_audit_record(gateway, support, clock):
    customer = make_customer()
    order, attempt = card_order(customer, make_package("credit", [support]))
    card_payments.apply_card_callback(gateway, bank_answer(attempt, approved=False), BANK)  # declined
    db.session.commit()
    assert order.payments[0].state == "failed" and not order.can_delete  # it may be paid again for a day
    clock.advance(days=1)
    assert order.can_delete
    number = order.number
    order_actions.delete_order(order, AGENT)
    db.session.commit()
    assert db.session.scalar(db.select(Order).where(Order.number == number)) is None
    assert db.session.scalar(db.select(db.func.count(Payment.id))) == 0  # the attempt took nothing: it goes too
    record = db.session.scalar(db.select(AuditEntry).where(AuditEntry.action == "order.delete"))
    assert record.details["number"] == number


def test_an_approval_for_an_order_no_longer_here_tells_the_team_once_to_return_it(gateway, support, clock):
    """The bank declined the attempt, the order was deleted (a day later: until then it is asked about again),
    then the bank approved the same reference (the customer tried again on its 3-D page). Nothing here names that
    money any more; it was only logged, and it stayed at the bank unnoticed. The team is mailed once, however
    often the bank posts it."""
    settings.update({"notification_email": "team@example.com"}, AGENT)
    order, attempt = card_order(make_customer(), make_package("credit", [support]))
    card_payments.apply_card_callback(gateway, bank_answer(attempt, approved=False), BANK)
    clock.advance(days=1)
    order_actions.delete_order(order, AGENT)
    db.session.commit()
    approval = bank_answer(attempt)
    for _ in range(2):
        assert card_payments.apply_card_callback(gateway, approval, BANK) is None
        db.session.commit()
    [mail] = db.session.scalars(db.select(Notification).where(Notification.event == "unknown_payment_taken")).all()
    assert mail.recipient == "team@example.com" and attempt.oid in mail.subject and attempt.oid in mail.body_text
    assert approval["TransId"] in mail.body_text and "merchant panel" in mail.body_text
    assert f"Amount: {approval['amount']} TRY" in mail.body_text
    declined, forged = bank_answer(attempt, approved=False), {**approval, "HASH": "forged"}
    db.session.execute(db.delete(Notification))
    for fields in (declined, forged):  # no money taken, or not from the bank: nothing to return
        card_payments.apply_card_callback(gateway, fields, BANK)
    db.session.commit()
    assert db.session.scalar(db.select(db.func.count(Notification.id)).where(
        Notification.event == "unknown_payment_taken")) == 0


def test_an_order_that_moved_money_is_never_deleted_and_keeps_its_payment_and_refund(gateway, support):
    customer = make_customer()
    order, attempt = card_order(customer, make_package("credit", [support]))
    card_payments.apply_card_callback(gateway, bank_answer(attempt), BANK)
    db.session.commit()
    with pytest.raises(ServiceError) as refused:
        order_actions.delete_order(order, AGENT)
    assert refused.value.code == "still_active"  # it gives credits and holds the money
    order_actions.cancel_order(order, AGENT)
    with pytest.raises(ServiceError) as refused:  # the money is still ours: refund it first
        order_actions.delete_order(order, AGENT)
    assert refused.value.code == "still_active"
    refund_to_balance(order)
    db.session.commit()
    assert not order.can_delete
    with pytest.raises(ServiceError) as refused:
        order_actions.delete_order(order, AGENT)
    assert refused.value.code == "money_on_record" and "stay on record" in refused.value.message
    db.session.rollback()
    assert (db.session.scalar(db.select(db.func.count(Payment.id))), db.session.scalar(
        db.select(db.func.count(Refund.id)))) == (1, 1)
    assert db.session.get(Order, order.id).status == "cancelled"


def test_bulk_changes_status_only(gateway, support):
    customer = make_customer()
    order, attempt = card_order(customer, make_package("credit", [support], credits=10))
    card_payments.apply_card_callback(gateway, bank_answer(attempt), BANK)
    db.session.commit()
    order_actions.bulk_set_status([order], "cancelled", AGENT)
    db.session.commit()
    assert order.status == "cancelled" and customer.credits == 10 and order.live_grant.ended_at is None


def test_an_abandoned_checkout_resumed_after_another_purchase_takes_no_money_and_forfeits_nothing(
        gateway, support, clock):
    """A credit checkout left past its time, a subscription bought and paid meanwhile (rule 7 let it: the first
    checkout had stopped counting), then the first checkout paid after all: its activation switched the customer
    back to credits and forfeited the subscription just paid for, which the customer was never asked about (the
    checkout was placed when there was nothing to lose). Resuming it is refused now; and money that arrives for
    it anyway (an attempt started before) is kept for an agent, with nothing forfeited."""
    customer = make_customer()
    credits = make_package("credit", [support], credits=10)
    subscription = make_package("subscription", [support], days=30)
    first, early_attempt = card_order(customer, credits)
    clock.advance(minutes=31)
    second, attempt = card_order(customer, subscription)
    card_payments.apply_card_callback(gateway, bank_answer(attempt), BANK)
    db.session.commit()
    expiry = entitlements.entitlement(customer).expires_at
    assert customer.package_type == "subscription" and expiry is not None

    with pytest.raises(ServiceError) as refused:
        card_payments.start_card_payment(db.session.get(Order, first.id), "nestpay")
    assert refused.value.code == "checkout_outdated" and "new order" in refused.value.message
    db.session.rollback()

    card_payments.apply_card_callback(gateway, bank_answer(early_attempt), BANK)  # paid at the bank meanwhile
    db.session.commit()
    first = db.session.get(Order, first.id)
    assert first.holds_money and not first.activated and "forfeit" in first.notes
    assert customer.package_type == "subscription" and entitlements.entitlement(customer).expires_at == expiry
    assert not db.session.scalars(db.select(LedgerEntry).where(LedgerEntry.kind == "forfeit")).all()


def test_a_switch_checkout_paid_after_a_top_up_bought_meanwhile_forfeits_nothing_bought_since(
        gateway, support, clock):
    """A switch order agrees to forfeit what the customer held when it was placed (10 credits), not what they
    bought after it: its checkout left past its time, 100 credits topped up and paid meanwhile (rule 7 let it),
    then the switch paid after all (an attempt started before) forfeited all 110 credits, the 100 just paid for
    unasked. The money is kept for an agent instead, with nothing forfeited."""
    customer = make_customer()
    paid = card_payments.apply_card_callback(gateway, bank_answer(card_order(
        customer, make_package("credit", [support], credits=10))[1]), BANK)
    db.session.commit()
    assert paid.activated and customer.credits == 10
    switch, early_attempt = card_order(customer, make_package("subscription", [support], days=30))
    assert switch.kind == "switch"
    clock.advance(minutes=31)
    _top_up, attempt = card_order(customer, make_package("credit", [support], credits=100))
    card_payments.apply_card_callback(gateway, bank_answer(attempt), BANK)
    db.session.commit()
    assert customer.credits == 110

    card_payments.apply_card_callback(gateway, bank_answer(early_attempt), BANK)  # paid at the bank meanwhile
    db.session.commit()
    switch = db.session.get(Order, switch.id)
    assert switch.holds_money and not switch.activated and "forfeit" in switch.notes
    assert customer.package_type == "credit" and customer.credits == 110
    assert not db.session.scalars(db.select(LedgerEntry).where(LedgerEntry.kind == "forfeit")).all()


def test_a_switch_checkout_resumed_after_a_top_up_bought_meanwhile_takes_no_money(gateway, support, clock):
    """Resumed past its time after 100 credits were topped up, the switch checkout was still the same kind
    (credits to a subscription), so it took the customer's card again, for an activation that is now refused (it
    would forfeit the top-up): the customer paid for nothing and waited for an agent's refund."""
    customer = make_customer()
    card_payments.apply_card_callback(gateway, bank_answer(card_order(
        customer, make_package("credit", [support], credits=10))[1]), BANK)
    db.session.commit()
    switch = placement.place_customer_order(customer, make_package("subscription", [support], days=30),
                                            payment_method="card", actor=as_customer(customer),
                                            contracts_accepted=True)
    db.session.commit()
    clock.advance(minutes=31)
    _top_up, attempt = card_order(customer, make_package("credit", [support], credits=100))
    card_payments.apply_card_callback(gateway, bank_answer(attempt), BANK)
    db.session.commit()

    with pytest.raises(ServiceError) as refused:
        card_payments.start_card_payment(db.session.get(Order, switch.id), "nestpay")
    assert refused.value.code == "checkout_outdated"
