"""The order lifecycle of domain.md §6a at the service level: no activation without a payment, the invoice
follows the money, partial refunds, promo uses, money we refuse goes back (issue 14's defects 3, 4, 7, 8, 9)."""
from datetime import UTC, date, datetime, timedelta

import pytest

from limonbilling.extensions import db
from limonbilling.models import AuditEntry, LedgerEntry, Order, Payment, PromoCode, Refund, RefundDestination
from limonbilling.models.lifecycle import ORDER_MOVES, OrderState, invoice_state
from limonbilling.payments.base import GatewayError, RefundAnswer, SaleStatus
from limonbilling.payments.nestpay_gateway import NestPayGateway
from limonbilling.services import (
    ServiceError,
    balance,
    cancellations,
    card_payments,
    charging,
    entitlements,
    holdings,
    order_actions,
    placement,
    refunds,
    settings,
)
from limonbilling.services import ledger as ledger_service

from ..factories import make_customer, make_department, make_package, make_transfer_account
from ..payment_support import (
    AGENT,
    BANK,
    as_customer,
    bank_answer,
    card_order,
    paid_by_card,
    refund_to_balance,
)


def _credit_package(credits=10, price="100.00"):
    return make_package("credit", [make_department()], credits=credits, price=price)


# --- defect 3: a refunded order is never re-activated for free ------------------------------------------

def test_a_refunded_card_order_back_to_pending_cannot_be_accepted_without_a_new_payment(gateway):
    customer = make_customer()
    order = paid_by_card(customer, _credit_package())
    refund_to_balance(order)
    db.session.commit()
    assert (order.status, order.payment_status, customer.credits) == ("cancelled", "refunded", 0)
    order_actions.back_to_pending(order, AGENT)
    db.session.commit()
    with pytest.raises(ServiceError) as refused:
        order_actions.accept_order(order, AGENT)
    db.session.rollback()
    assert refused.value.code == "payment_required"
    db.session.expire_all()
    assert (order.status, order.activated, customer.credits) == ("pending", False, 0)
    assert order.awaiting_payment  # the customer can pay again; a new approval activates it
    attempt = card_payments.start_card_payment(order, "nestpay")
    db.session.commit()
    card_payments.apply_card_callback(gateway, bank_answer(attempt), BANK)
    db.session.commit()
    assert (order.payment_status, customer.credits, len(order.confirmed_payments)) == ("paid", 10, 2)


def test_an_agent_may_give_a_card_order_free_only_with_a_reason(gateway):
    customer = make_customer()
    order, _attempt = card_order(customer, _credit_package())
    with pytest.raises(ServiceError) as refused:
        order_actions.accept_order(order, AGENT, free_reason="   ")
    db.session.rollback()
    assert refused.value.code == "payment_required"
    order_actions.accept_order(order, AGENT, free_reason="Goodwill after the outage of 3 March")
    db.session.commit()
    [free] = [p for p in order.payments if p.method == "free"]
    assert (free.amount_minor, free.reason, free.state) == (0, "Goodwill after the outage of 3 March", "confirmed")
    assert (order.status, order.payment_status, customer.credits) == ("active", "paid", 10)


def test_an_order_given_free_has_no_invoice_numbered_for_money_never_taken(gateway):
    """An invoice gets its number when money for it is accepted: a free grant takes none, so numbering its
    invoice made a tax document of 100.00 (VAT 16.67) the customer never paid. The next order's money takes the
    first number of the year."""
    customer = make_customer()
    order, _attempt = card_order(customer, _credit_package())
    order_actions.accept_order(order, AGENT, free_reason="Goodwill after the outage of 3 March")
    db.session.commit()
    assert (order.status, order.payment_status, order.invoice.total_minor) == ("active", "paid", 10000)
    assert order.invoice.number is None
    paid = placement.place_agent_order(make_customer(), _credit_package(), payment_method="manual", actor=AGENT)
    db.session.commit()
    assert paid.invoice.number == "2026-000001"


def test_accepting_a_bank_transfer_records_the_payment_with_its_day(gateway):
    customer = make_customer()
    make_transfer_account()
    order = placement.place_agent_order(customer, _credit_package(), payment_method="bank_transfer", actor=AGENT)
    order_actions.accept_order(order, AGENT, received_on=date(2026, 2, 27))
    db.session.commit()
    [payment] = order.payments
    assert (payment.method, payment.amount_minor, payment.received_on) == ("bank_transfer", 10000, date(2026, 2, 27))
    assert (order.invoice.status, order.invoice.number) == ("paid", "2026-000001")


# --- defect 4: the invoice follows the money, and the order keeps its ledger history --------------------

def test_a_transfer_received_today_in_istanbul_is_accepted_and_tomorrow_is_refused(gateway, clock):
    """21:30 UTC on 1 March is 00:30 on 2 March in Istanbul: the 2nd is today, the 3rd is not yet."""
    clock.set(datetime(2026, 3, 1, 21, 30, tzinfo=UTC))
    make_transfer_account()
    customer = make_customer()
    order = placement.place_customer_order(customer, _credit_package(), payment_method="bank_transfer",
                                           actor=as_customer(customer), contracts_accepted=True)
    db.session.commit()
    with pytest.raises(ServiceError) as refused:
        order_actions.accept_order(order, AGENT, received_on=date(2026, 3, 3))
    assert refused.value.code == "received_on_future"
    db.session.rollback()
    order_actions.accept_order(order, AGENT, received_on=date(2026, 3, 2))
    db.session.commit()
    assert [p.received_on for p in order.payments] == [date(2026, 3, 2)]


@pytest.mark.parametrize("aside", ["fraud", "cancel"])
def test_fraud_or_cancel_then_back_to_pending_then_accept_leaves_a_paid_invoice(gateway, aside):
    customer = make_customer()
    order = paid_by_card(customer, _credit_package())
    (order_actions.set_fraud if aside == "fraud" else order_actions.cancel_order)(order, AGENT)
    db.session.commit()
    assert order.invoice.status == "cancelled"
    order_actions.back_to_pending(order, AGENT)
    assert order.invoice.status == "paid"  # the money never left
    order_actions.accept_order(order, AGENT)
    db.session.commit()
    assert (order.status, order.payment_status, order.invoice.status, customer.credits) == (
        "active", "paid", "paid", 10)
    grant_ids = [grant.id for grant in order.grants]
    kinds = [e.kind for e in db.session.scalars(db.select(LedgerEntry).where(LedgerEntry.grant_id.in_(grant_ids)))]
    assert kinds.count("purchase") == 2 and "reversal" in kinds  # bought, taken back, given again: all kept


def _cancelled_and_accepted_again(order):
    """Cancel, Back to Pending and Accept with the same money, each committed as the pages do."""
    order_actions.cancel_order(order, AGENT)
    order_actions.back_to_pending(order, AGENT)
    db.session.commit()
    order_actions.accept_order(order, AGENT)
    db.session.commit()


def _one_credit_a_ticket():
    return make_package("credit", [make_department(credit_per_request=1)], credits=10, price="100.00")


def _use_credits(customer, department_id, n):
    for k in range(n):
        charging.charge_usage(customer.id, department_id, "ticket", f"use-{customer.id}-{k}")
    db.session.commit()


@pytest.mark.parametrize("aside", ["fraud", "cancel"])
def test_accepted_again_with_the_same_money_it_gives_back_only_the_credits_the_revocation_took(gateway, aside):
    """10 credits paid once, 6 used, Cancel (or Fraud) takes back the 4 left; Back to Pending and Accept give back
    those 4, not 10 new ones (16 credits for one payment before). Twice over, the same."""
    customer = make_customer()
    package = _one_credit_a_ticket()
    order = paid_by_card(customer, package)
    _use_credits(customer, package.department_ids[0], 6)
    for _round in range(2):
        (order_actions.set_fraud if aside == "fraud" else order_actions.cancel_order)(order, AGENT)
        db.session.commit()
        assert customer.credits == 0
        order_actions.back_to_pending(order, AGENT)
        order_actions.accept_order(order, AGENT)
        db.session.commit()
        assert (order.status, order.payment_status, customer.credits) == ("active", "paid", 4)
        assert customer.credits == ledger_service.ledger_sum(customer.id)
    assert [e.amount for e in db.session.scalars(db.select(LedgerEntry).where(
        LedgerEntry.customer_id == customer.id, LedgerEntry.kind == "purchase").order_by(LedgerEntry.id))] == [10, 4, 4]
    restored = db.session.scalars(db.select(AuditEntry.details).where(AuditEntry.action == "order.restored")).all()
    assert [d["credits"] for d in restored] == [4, 4]


def test_accepted_again_with_the_same_money_a_subscription_gets_back_the_time_that_was_left(gateway, clock):
    """30 days paid once, Cancel on day 25 removes the period; Accepted again on day 28, the customer gets the 5
    days that were left, to the second, not 30 new ones."""
    customer = make_customer()
    order = paid_by_card(customer, make_package("subscription", [make_department()], days=30))
    started = clock.now()
    clock.advance(days=25)
    order_actions.cancel_order(order, AGENT)
    db.session.commit()
    assert holdings.subscription_expiry(customer) is None or holdings.subscription_expiry(customer) <= clock.now()
    clock.advance(days=3)
    order_actions.back_to_pending(order, AGENT)
    order_actions.accept_order(order, AGENT)
    db.session.commit()
    assert holdings.subscription_expiry(customer) == clock.now() + timedelta(days=5)
    assert started + timedelta(days=30) < holdings.subscription_expiry(customer)  # the 3 days in between are kept


def test_a_subscription_cancelled_by_mistake_with_a_renewal_ahead_gets_its_time_back_when_accepted_again(
        gateway, clock):
    """30 days paid, a renewal of 30 more bought on day 25, the first order cancelled on day 26 (4 days left) and
    accepted again with the same money: the 4 days come back on top of the renewal. Rule 3's window is for new
    purchases; it refused the restoration ("Renewal opens on …") until day 30, and the paid days were lost."""
    customer = make_customer()
    package = make_package("subscription", [make_department()], days=30)
    first = placement.place_agent_order(customer, package, payment_method="manual", actor=AGENT)
    db.session.commit()
    started = clock.now()
    clock.advance(days=25)
    placement.place_agent_order(customer, package, payment_method="manual", actor=AGENT)
    db.session.commit()
    clock.advance(days=1)
    _cancelled_and_accepted_again(first)
    assert (first.status, first.payment_status) == ("active", "paid")
    assert holdings.subscription_expiry(customer) == started + timedelta(days=64)


def test_a_new_payment_after_a_refund_buys_the_package_whole_again(gateway, clock):
    customer = make_customer()
    make_transfer_account()
    package = _one_credit_a_ticket()
    order = placement.place_customer_order(customer, package, payment_method="bank_transfer",
                                           actor=as_customer(customer), contracts_accepted=True)
    order_actions.accept_order(order, AGENT)
    db.session.commit()
    _use_credits(customer, package.department_ids[0], 6)
    refund_to_balance(order)  # Cancel & Refund: the 4 left taken back, 100.00 to the balance
    clock.advance(minutes=1)
    order_actions.back_to_pending(order, AGENT)
    order_actions.accept_order(order, AGENT)  # a new transfer recorded: new money
    db.session.commit()
    assert (order.status, order.payment_status, customer.credits) == ("active", "paid", 10)


class _RefundingBank:
    """A bank whose refunds (the automatic return of an approval we did not accept) succeed."""

    def sale_status(self, oid):
        return SaleStatus(state=None)  # refunds ask the bank first: this one's status tells nothing

    def refund(self, oid, amount_minor, currency, *, operation, whole):
        return RefundAnswer(succeeded=True, operation=operation, return_code="00", transaction_id="R1")


def test_a_late_approval_sent_back_to_the_card_does_not_buy_the_package_whole_again(gateway, clock):
    """10 credits paid, 6 used, Cancel takes back the 4 left; a second attempt (another tab) approved after the
    Cancel is returned to the card by itself. That money is not ours: Accepted again, the order gives back the 4
    credits, not 10 new ones (the returned approval counted as a payment made after the revocation)."""
    customer = make_customer()
    package = _one_credit_a_ticket()
    order, first = card_order(customer, package)
    second = card_payments.start_card_payment(order, "nestpay")
    db.session.commit()
    card_payments.apply_card_callback(gateway, bank_answer(first), BANK)
    db.session.commit()
    _use_credits(customer, package.department_ids[0], 6)
    order_actions.cancel_order(order, AGENT)
    db.session.commit()
    clock.advance(minutes=1)
    card_payments.apply_card_callback(gateway, bank_answer(second), BANK)
    db.session.commit()
    assert refunds.send(order, _RefundingBank(), BANK) == "refunded"
    db.session.commit()
    assert (second.state, first.state, order.payment_status) == ("refunded", "confirmed", "paid")
    order_actions.back_to_pending(order, AGENT)
    order_actions.accept_order(order, AGENT)
    db.session.commit()
    assert (order.status, customer.credits) == ("active", 4)


def test_a_late_approval_the_bank_would_not_take_back_does_not_buy_the_package_whole_again(gateway, clock):
    """As above, but the bank refuses to take the late approval back: it stays confirmed, flagged for agents.
    Accepted again on the first payment, the order gave 10 new credits instead of the 4 taken (6 given away):
    the refused approval still counted as new money paid after the revocation."""
    customer = make_customer()
    package = _one_credit_a_ticket()
    order, first = card_order(customer, package)
    second = card_payments.start_card_payment(order, "nestpay")
    db.session.commit()
    card_payments.apply_card_callback(gateway, bank_answer(first), BANK)
    db.session.commit()
    _use_credits(customer, package.department_ids[0], 6)
    order_actions.cancel_order(order, AGENT)
    db.session.commit()
    clock.advance(minutes=1)
    card_payments.apply_card_callback(gateway, bank_answer(second), BANK)
    db.session.commit()
    assert refunds.send(order, _RefusingBank(), BANK) == "failed"
    db.session.commit()
    assert (second.state, first.state, order.accepted_payments) == ("confirmed", "confirmed", [first])
    order_actions.back_to_pending(order, AGENT)
    order_actions.accept_order(order, AGENT)
    db.session.commit()
    assert (order.status, customer.credits) == ("active", 4)


def test_accepted_again_after_a_switch_took_it_all_gives_nothing_and_forfeits_nothing(gateway, clock):
    """A subscription order, then credits bought (the switch forfeits the subscription), then the subscription
    order cancelled: its revocation took nothing. Accepted again with the same money it gives nothing, and it
    does not switch the customer back (forfeiting the credits) nor fail on a period of no length."""
    customer = make_customer()
    order = paid_by_card(customer, make_package("subscription", [make_department()], days=30))
    order_actions.accept_order(order, AGENT)
    db.session.commit()
    clock.advance(days=5)
    credits = paid_by_card(customer, _one_credit_a_ticket())
    order_actions.accept_order(credits, AGENT)
    db.session.commit()
    assert (customer.package_type, customer.credits) == ("credit", 10)
    _cancelled_and_accepted_again(order)
    assert (order.status, order.payment_status, order.activated) == ("active", "paid", True)
    assert (customer.package_type, customer.credits) == ("credit", 10)
    assert holdings.subscription_expiry(customer) is None
    order_actions.cancel_order(order, AGENT)  # and the nothing it gave is taken back as nothing
    db.session.commit()
    assert (customer.package_type, customer.credits) == ("credit", 10)


def test_credits_taken_back_are_not_given_back_over_a_subscription_bought_since(gateway, clock):
    """10 credits, 6 used, Cancel takes back 4; the customer then buys a subscription. Accepting the credit order
    again would switch them back and forfeit the paid subscription, unasked: it is refused with a note, the
    money stays on the order for the agent to refund."""
    customer = make_customer()
    package = _one_credit_a_ticket()
    order = paid_by_card(customer, package)
    _use_credits(customer, package.department_ids[0], 6)
    order_actions.cancel_order(order, AGENT)
    order_actions.back_to_pending(order, AGENT)
    db.session.commit()
    subscription = paid_by_card(customer, make_package("subscription", [make_department()], days=30))
    order_actions.accept_order(subscription, AGENT)
    db.session.commit()
    expiry = holdings.subscription_expiry(customer)
    with pytest.raises(ServiceError) as refused:
        order_actions.accept_order(order, AGENT)
    assert refused.value.code == "activation_refused" and "forfeit the package" in refused.value.message
    db.session.rollback()
    assert (order.status, order.payment_status, order.activated) == ("pending", "paid", False)
    assert (customer.package_type, holdings.subscription_expiry(customer)) == ("subscription", expiry)


def test_a_credit_order_whose_credits_a_switch_forfeited_gives_nothing_when_accepted_again(gateway, clock):
    """10 credits, then a subscription bought (the credits forfeited), then the credit order cancelled (nothing to
    take back) and accepted again: the subscription stays; no credit purchase of 0 switches the customer back."""
    customer = make_customer()
    order = paid_by_card(customer, _one_credit_a_ticket())
    order_actions.accept_order(order, AGENT)
    db.session.commit()
    subscription = paid_by_card(customer, make_package("subscription", [make_department()], days=30))
    order_actions.accept_order(subscription, AGENT)
    db.session.commit()
    expiry = holdings.subscription_expiry(customer)
    order_actions.cancel_order(order, AGENT)
    order_actions.back_to_pending(order, AGENT)
    order_actions.accept_order(order, AGENT)
    db.session.commit()
    assert (order.status, customer.package_type, customer.credits) == ("active", "subscription", 0)
    assert holdings.subscription_expiry(customer) == expiry


def test_a_subscription_ended_now_by_a_cancellation_request_then_cancelled_is_accepted_again_with_nothing(
        gateway, clock):
    """The period was ended at once (a cancellation request approved "now"), then the order cancelled: nothing
    was left to take back, so Accept gives nothing back (it failed on a period of no length)."""
    customer = make_customer()
    order = paid_by_card(customer, make_package("subscription", [make_department()], days=30))
    clock.advance(days=10)
    entitlements.end_subscription(customer, clock.now(), AGENT, ledger_service.because("subscription_cancelled"))
    db.session.commit()
    clock.advance(minutes=1)
    _cancelled_and_accepted_again(order)
    assert (order.status, order.activated) == ("active", True)
    assert holdings.subscription_expiry(customer) is None or holdings.subscription_expiry(customer) <= clock.now()


def test_the_invoice_is_always_what_the_payments_and_refunds_say(gateway):
    order = paid_by_card(make_customer(), _credit_package(price="100.00"))
    for step in (lambda: refund_to_balance(order, amount_minor=2500), lambda: refund_to_balance(order)):
        step()
        db.session.commit()
        assert order.invoice.status == invoice_state(order.status, order.money)
    assert order.invoice.status == "refunded"


# --- partial refunds -------------------------------------------------------------------------------------

def test_a_partial_refund_keeps_the_order_and_the_rest_stays_refundable(gateway):
    customer = make_customer()
    order = paid_by_card(customer, _credit_package(price="100.00"))
    order_actions.accept_order(order, AGENT)
    refund_to_balance(order, amount_minor=2500)
    db.session.commit()
    assert (order.status, order.payment_status, order.invoice.status) == ("active", "partly_refunded",
                                                                          "partly_refunded")
    assert (order.refunded_minor, order.refundable_minor, customer.credits) == (2500, 7500, 10)
    assert balance.amount(customer, "TRY") == 2500
    with pytest.raises(ServiceError) as too_much:
        refund_to_balance(order, amount_minor=7501)  # one kuruş more than is left
    db.session.rollback()
    assert too_much.value.code == "refund_amount"
    refund_to_balance(order, amount_minor=7500)
    db.session.commit()
    assert (order.status, order.payment_status, customer.credits, balance.amount(customer, "TRY")) == (
        "cancelled", "refunded", 0, 10000)
    with pytest.raises(ServiceError) as nothing:
        refund_to_balance(order, amount_minor=1)
    assert nothing.value.code == "nothing_to_refund"


# --- defect 5 and 7: money the bank took that we do not accept goes back --------------------------------

def test_half_3d_approval_refused_by_the_store_is_returned(gateway):
    customer = make_customer()
    order, attempt = card_order(customer, _credit_package())
    card_payments.apply_card_callback(gateway, bank_answer(attempt, mdStatus="2"), BANK)
    db.session.commit()
    [refund] = order.refunds
    assert (attempt.state, refund.automatic, refund.destination, refund.amount_minor) == (
        "confirmed", True, "card", attempt.amount_minor)
    assert "half 3-D" in refund.reason and not order.activated and customer.credits == 0


class _RefusingBank(_RefundingBank):
    """A bank that will not return the money (e.g. the sale is already settled and the Credit is refused)."""

    def refund(self, oid, amount_minor, currency, *, operation, whole):
        return RefundAnswer(succeeded=False, operation=operation, return_code="99", transaction_id=None,
                            message="Refund refused")


def test_refused_money_the_bank_will_not_return_is_not_a_payment_accept_can_use(gateway):
    """A half 3-D approval the store refuses, whose return the bank refuses: the money is here, but it is not a
    payment for the order. Accept used it, and the order went Active with the credits given, no paid_at, no
    order.paid and an invoice without a number. Accept is refused until it is refunded; then a new payment, or a
    free grant with a reason, accepts the order."""
    customer = make_customer()
    order, attempt = card_order(customer, _credit_package())
    card_payments.apply_card_callback(gateway, bank_answer(attempt, mdStatus="2"), BANK)
    db.session.commit()
    assert refunds.send(order, _RefusingBank(), BANK) == "failed"
    db.session.commit()
    assert (order.payment_status, order.accepted_payments) == ("paid", [])
    with pytest.raises(ServiceError) as refused:
        order_actions.accept_order(order, AGENT)
    db.session.rollback()
    assert refused.value.code == "refused_money_only"
    assert (order.status, order.activated, customer.credits, order.paid_at) == ("pending", False, 0, None)
    refund_to_balance(order)  # all of it: Cancel & Refund
    order_actions.back_to_pending(order, AGENT)
    db.session.commit()
    order_actions.accept_order(order, AGENT, free_reason="Goodwill after the refused card")
    db.session.commit()
    assert (order.status, customer.credits, balance.amount(customer, "TRY")) == ("active", 10, order.amount_minor)


def test_a_partial_refund_returns_the_refused_money_before_the_payment_the_order_stands_on(gateway):
    """Breaks the lifecycle machine's invariant that no order is Active without money we accepted and hold
    (found by reading refunds.start against it, not yet by a run). The customer paid in two tabs; the later
    attempt's approval came first and paid the order, the earlier one's was refused (a second approval) and the
    bank would not take it back. The agent refunded that much (100.00 of the 200.00 held): the refund took the
    newest payment, the one the order was paid with, so the order stayed Active giving its credits on money the
    store had refused, and the refused 100.00 was still flagged as not returned."""
    customer = make_customer()
    order, earlier = card_order(customer, _credit_package())
    later = card_payments.start_card_payment(order, "nestpay")
    db.session.commit()
    card_payments.apply_card_callback(gateway, bank_answer(later), BANK)
    card_payments.apply_card_callback(gateway, bank_answer(earlier), BANK)  # a second approval: returned
    db.session.commit()
    assert refunds.send(order, _RefusingBank(), BANK) == "failed"
    db.session.commit()
    assert (order.refundable_minor, [p.id for p in order.accepted_payments]) == (20000, [later.id])
    refund_to_balance(order, amount_minor=10000)
    db.session.commit()
    assert [(r.payment_id, r.state) for r in order.refunds if not r.automatic] == [(earlier.id, "done")]
    assert (later.refundable_minor, order.activated, customer.credits) == (10000, True, 10)
    assert order.attention is None  # the refused money is back: nothing left to flag


def test_refused_money_does_not_accept_an_order_whose_own_payment_was_refunded(gateway):
    """Found by the lifecycle machine (shrunk). Paid 100.00, Cancel & Refund to the card, Back to Pending; the
    customer pays again on a tab left open, but the order was set aside as fraud meanwhile: that approval is
    refused, and the bank will not take it back. Back to Pending and Accept then counted the refunded first
    payment as the money the order stands on: Active with 10 new credits, paid with money the store refused."""
    customer = make_customer()
    order, first = card_order(customer, _credit_package())
    card_payments.apply_card_callback(gateway, bank_answer(first), BANK)
    db.session.commit()
    refunds.start(order, to=RefundDestination.CARD, actor=AGENT)
    db.session.commit()
    assert refunds.send(order, _RefundingBank(), AGENT) == "refunded"
    db.session.commit()
    order_actions.back_to_pending(order, AGENT)
    db.session.commit()
    again = card_payments.start_card_payment(order, "nestpay")
    order_actions.set_fraud(order, AGENT)
    db.session.commit()
    card_payments.apply_card_callback(gateway, bank_answer(again), BANK)  # refused: returned by itself
    db.session.commit()
    assert refunds.send(order, _RefusingBank(), BANK) == "failed"
    db.session.commit()
    order_actions.back_to_pending(order, AGENT)
    db.session.commit()
    with pytest.raises(ServiceError) as refused:
        order_actions.accept_order(order, AGENT)
    db.session.rollback()
    assert refused.value.code == "refused_money_only"
    assert (order.status, order.activated, customer.credits) == ("pending", False, 0)


def test_an_order_an_agent_gave_at_price_zero_is_accepted_again_after_a_cancel(gateway):
    """Its manual payment of 0.00 holds nothing to refund, but it is a payment we accepted, not refused money."""
    customer = make_customer()
    order = placement.place_agent_order(customer, _credit_package(), payment_method="manual", actor=AGENT,
                                        price_override_minor=0)
    db.session.commit()
    _cancelled_and_accepted_again(order)
    assert (order.status, customer.credits) == ("active", 10)


def test_half_3d_is_taken_when_the_store_accepts_it(gateway):
    settings.update({"nestpay_accept_half_3d": True}, AGENT)
    customer = make_customer()
    order, attempt = card_order(customer, _credit_package())
    card_payments.apply_card_callback(NestPayGateway(), bank_answer(attempt, mdStatus="2"), BANK)
    db.session.commit()
    assert (order.refunds, order.payment_status, customer.credits) == ([], "paid", 10)


@pytest.mark.parametrize("aside", ["fraud", "cancel"])
def test_a_late_approval_for_an_order_set_aside_is_returned(gateway, aside):
    customer = make_customer()
    order, attempt = card_order(customer, _credit_package())
    (order_actions.set_fraud if aside == "fraud" else order_actions.cancel_order)(order, AGENT)
    db.session.commit()
    card_payments.apply_card_callback(gateway, bank_answer(attempt), BANK)
    db.session.commit()
    assert order.status == ("fraud" if aside == "fraud" else "cancelled")
    assert (order.activated, customer.credits, [r.automatic for r in order.refunds]) == (False, 0, [True])


def test_a_second_approved_attempt_is_returned_and_cancel_and_refund_returns_the_first(gateway):
    customer = make_customer()
    order, first = card_order(customer, _credit_package())
    second = card_payments.start_card_payment(order, "nestpay")  # e.g. the customer paid in two tabs
    db.session.commit()
    card_payments.apply_card_callback(gateway, bank_answer(first), BANK)
    card_payments.apply_card_callback(gateway, bank_answer(second), BANK)
    db.session.commit()
    assert [(r.payment_id, r.automatic) for r in order.refunds] == [(second.id, True)]
    assert (order.captured_minor, order.refundable_minor, customer.credits) == (20000, 10000, 10)
    refund_to_balance(order)
    db.session.commit()
    assert [(r.payment_id, r.destination) for r in order.refunds][1:] == [(first.id, "balance")]
    assert order.refundable_minor == 0 and customer.credits == 0


def test_a_replayed_approval_does_nothing_after_a_failed_one_was_decided(gateway):
    order, attempt = card_order(make_customer(), _credit_package())
    declined = bank_answer(attempt, approved=False)
    card_payments.apply_card_callback(gateway, declined, BANK)
    card_payments.apply_card_callback(gateway, declined, BANK)
    db.session.commit()
    assert (attempt.state, order.payment_status, order.refunds) == ("failed", "unpaid", [])


# --- defect 8: a promo use comes back only when the order ends without any payment ----------------------

def _single_use_code():
    promo = PromoCode(code="ONCE", kind="percent", value=10, max_uses=1, uses=0, package_ids=[], active=True)
    db.session.add(promo)
    db.session.commit()
    return promo


def test_a_single_use_code_cannot_be_used_again_by_cancelling_and_paying_the_saved_form(gateway):
    promo = _single_use_code()
    customer = make_customer()
    package = _credit_package()
    order = placement.place_customer_order(customer, package, payment_method="card", actor=as_customer(customer),
                                promo_code="ONCE", contracts_accepted=True)
    attempt = card_payments.start_card_payment(order, "nestpay")
    db.session.commit()
    order_actions.cancel_unpaid_order(order, as_customer(customer))
    db.session.commit()
    assert db.session.get(PromoCode, promo.id).uses == 0  # ended unpaid: the use comes back
    card_payments.apply_card_callback(gateway, bank_answer(attempt), BANK)  # the bank form saved earlier
    db.session.commit()
    db.session.expire_all()
    assert (order.status, order.activated, customer.credits) == ("cancelled", False, 0)
    assert [r.automatic for r in order.refunds] == [True]  # the discounted payment goes back
    assert db.session.get(PromoCode, promo.id).uses == 0


def test_a_paid_order_keeps_its_use_when_cancelled_and_back_to_pending_takes_it_again(gateway):
    promo = _single_use_code()
    customer = make_customer()
    make_transfer_account()
    order = placement.place_agent_order(customer, _credit_package(), payment_method="bank_transfer", actor=AGENT,
                                promo_code="ONCE")
    db.session.commit()
    order_actions.cancel_order(order, AGENT)
    db.session.commit()
    with pytest.raises(ServiceError):  # a second cancel is refused and gives back nothing more
        order_actions.cancel_order(order, AGENT)
    db.session.rollback()
    assert db.session.get(PromoCode, promo.id).uses == 0
    order_actions.back_to_pending(order, AGENT)
    order_actions.accept_order(order, AGENT)
    order_actions.cancel_order(order, AGENT)
    db.session.commit()
    db.session.expire_all()
    assert db.session.get(PromoCode, promo.id).uses == 1  # money arrived once: the use stays


@pytest.mark.parametrize("end", ["customer_cancels", "expires"])
def test_an_order_whose_only_money_was_refused_and_returned_gives_its_promo_use_back(gateway, clock, end):
    """A half 3-D approval the store refuses is returned by itself: the order never had a payment we accepted,
    so when it ends unpaid its single-use code is free again (it was kept for good, and no one could use it)."""
    promo = _single_use_code()
    customer = make_customer()
    order = placement.place_customer_order(customer, _credit_package(), payment_method="card",
                                           actor=as_customer(customer), promo_code="ONCE", contracts_accepted=True)
    attempt = card_payments.start_card_payment(order, "nestpay")
    db.session.commit()
    card_payments.apply_card_callback(gateway, bank_answer(attempt, mdStatus="2"), BANK)
    db.session.commit()
    assert refunds.send(order, _RefundingBank(), BANK) == "refunded"
    db.session.commit()
    assert (order.payment_status, order.awaiting_payment, order.invoice.number) == ("refunded", True, None)
    if end == "customer_cancels":
        order_actions.cancel_unpaid_order(order, as_customer(customer))
    else:
        clock.advance(minutes=settings.get("card_checkout_minutes") + 1)
        assert card_payments.expire_checkout(order.id, _RefundingBank(), BANK)
    db.session.commit()
    db.session.expire_all()
    assert (order.status, order.promo_use_held) == ("cancelled", False)
    assert db.session.get(PromoCode, promo.id).uses == 0


# --- the move table ------------------------------------------------------------------------------------

@pytest.mark.parametrize("start", list(OrderState))
@pytest.mark.parametrize("action", ["accept", "cancel", "fraud", "pending"])
def test_every_action_follows_the_move_table(gateway, start, action):
    customer = make_customer()
    make_transfer_account()
    order = placement.place_agent_order(customer, _credit_package(), payment_method="bank_transfer", actor=AGENT)
    order.status = start
    db.session.commit()
    target = {"accept": OrderState.ACTIVE, "cancel": OrderState.CANCELLED, "fraud": OrderState.FRAUD,
              "pending": OrderState.PENDING}[action]
    handler = {"accept": order_actions.accept_order, "cancel": order_actions.cancel_order,
               "fraud": order_actions.set_fraud,
               "pending": order_actions.back_to_pending}[action]
    if target in ORDER_MOVES[start]:
        handler(order, AGENT)
        db.session.commit()
        assert db.session.get(Order, order.id).status == target
    else:
        with pytest.raises(ServiceError):
            handler(order, AGENT)
        db.session.rollback()
        assert db.session.get(Order, order.id).status == start


def test_bulk_status_never_makes_an_unpaid_order_active(gateway):
    customer = make_customer()
    unpaid, _attempt = card_order(customer, _credit_package())
    changed, skipped = order_actions.bulk_set_status([unpaid], "active", AGENT)
    db.session.commit()
    assert (changed, skipped, unpaid.status) == (0, [unpaid.number], "pending")


# --- defect 9: a cancellation at the end of the period keeps renewals already paid for ------------------

def _subscriber_with_a_paid_renewal(clock):
    customer = make_customer()
    package = make_package("subscription", [make_department()], days=30, price="300.00")
    first = placement.place_agent_order(customer, package, payment_method="manual", actor=AGENT)
    db.session.commit()
    clock.advance(days=25)  # inside the renewal window
    renewal = placement.place_agent_order(customer, package, payment_method="manual", actor=AGENT)
    db.session.commit()
    request = cancellations.request_cancellation(customer, timing="period_end", reason="Moving on",
                                                 actor=as_customer(customer))
    db.session.commit()
    return customer, first, renewal, request


def test_an_end_of_period_cancellation_keeps_a_paid_renewal(gateway, clock):
    customer, first, renewal, request = _subscriber_with_a_paid_renewal(clock)
    cancellations.approve(request, AGENT, "Sorry to see you go")
    db.session.commit()
    assert request.ends_at == first.created_at + timedelta(days=60)  # the renewal's end, not the first one's
    assert renewal.live_grant.period.effective_end == request.ends_at and renewal.status == "active"
    clock.advance(days=20)  # past the first period: the renewal covers
    assert entitlements.entitlement(customer).subscription_active


def test_an_end_of_period_cancellation_may_refund_the_renewal_to_the_balance(gateway, clock):
    customer, first, renewal, request = _subscriber_with_a_paid_renewal(clock)
    cancellations.approve(request, AGENT, "Refunded the renewal", refund_renewals=RefundDestination.BALANCE)
    db.session.commit()
    assert request.ends_at == first.created_at + timedelta(days=30)
    assert (renewal.status, renewal.payment_status, balance.amount(customer, "TRY")) == (
        "cancelled", "refunded", 30000)
    assert ledger_service.ledger_sum(customer.id) == 0
    assert db.session.scalar(db.select(db.func.count(Refund.id))) == 1
    assert db.session.scalar(db.select(db.func.count(Payment.id))) == 2


def test_refunding_renewals_is_refused_while_one_of_them_gave_back_time_partly_used(gateway, clock):
    """The first order (30 days, 300.00) was cancelled by mistake on day 26 with a renewal ahead and accepted
    again: its 4 days left now run after the renewal, so they look like time bought ahead, and refunding renewals
    refunded that order in full: 300.00 back for 4 days. The approval is refused with what to do instead, and
    nothing moves; approved without refunds, both orders keep their time."""
    customer, first, renewal, request = _subscriber_with_a_paid_renewal(clock)
    clock.advance(days=1)
    _cancelled_and_accepted_again(first)
    with pytest.raises(ServiceError) as refused:
        cancellations.approve(request, AGENT, "Refunded", refund_renewals=RefundDestination.BALANCE)
    db.session.rollback()
    assert refused.value.code == "renewal_partly_used" and first.number in refused.value.message
    assert db.session.scalar(db.select(db.func.count(Refund.id))) == 0 and request.state == "pending"
    cancellations.approve(request, AGENT, "Sorry to see you go")
    db.session.commit()
    assert (first.status, renewal.status, balance.amount(customer, "TRY")) == ("active", "active", 0)
    assert request.ends_at == first.live_grant.period.effective_end


def test_the_refusal_of_a_partly_used_renewal_says_how_to_refund_it_and_that_way_holds(gateway, clock):
    """The refusal told agents to refund the order's unused part from its page, then approve without refunding
    renewals; but a partial refund changes nothing else, so the customer got the 4 days' money back and kept the
    4 days, and the renewal they wanted refunded was kept too. It says to Cancel the order first (that takes the
    days back) and approve again; done that way, nothing is paid for twice."""
    customer, first, renewal, request = _subscriber_with_a_paid_renewal(clock)
    clock.advance(days=1)
    order_actions.cancel_order(first, AGENT)
    order_actions.back_to_pending(first, AGENT)
    order_actions.accept_order(first, AGENT)
    db.session.commit()
    with pytest.raises(ServiceError) as refused:
        cancellations.approve(request, AGENT, "Refunded", refund_renewals=RefundDestination.BALANCE)
    db.session.rollback()
    assert "Cancel it" in refused.value.message and "approve again" in refused.value.message
    order_actions.cancel_order(first, AGENT)  # as the refusal says: the 4 days go back ...
    refund_to_balance(first, amount_minor=4000)  # ... and what they were worth (4 of 30 days of 300.00)
    db.session.commit()
    cancellations.approve(request, AGENT, "Refunded", refund_renewals=RefundDestination.BALANCE)
    db.session.commit()
    assert (first.status, renewal.status, balance.amount(customer, "TRY")) == ("cancelled", "cancelled", 34000)
    assert holdings.subscription_expiry(customer) is None or holdings.subscription_expiry(customer) <= clock.now()


def test_deleting_an_unpaid_order_gives_its_promo_use_back(gateway):
    """Found by the lifecycle state machine: the use of a deleted, never paid order was lost for good."""
    promo = _single_use_code()
    customer = make_customer()
    make_transfer_account()
    order = placement.place_agent_order(customer, _credit_package(), payment_method="bank_transfer", actor=AGENT,
                                promo_code="ONCE")
    db.session.commit()
    order_actions.delete_order(order, AGENT)
    db.session.commit()
    assert db.session.get(PromoCode, promo.id).uses == 0


def test_bulk_back_to_pending_holds_the_promo_use_again(gateway):
    """Found by the lifecycle state machine: bulk Pending reopened an order without its promo use, so two
    orders could be paid with a code of one use."""
    promo = _single_use_code()
    make_transfer_account()
    order = placement.place_agent_order(make_customer(), _credit_package(), payment_method="bank_transfer", actor=AGENT,
                                promo_code="ONCE")
    db.session.commit()
    order_actions.cancel_order(order, AGENT)
    db.session.commit()
    assert db.session.get(PromoCode, promo.id).uses == 0
    assert order_actions.bulk_set_status([order], "pending", AGENT) == (1, [])
    db.session.commit()
    assert order.promo_use_held and db.session.get(PromoCode, promo.id).uses == 1
    with pytest.raises(ServiceError) as used_up:  # a customer's order (an agent's forces the code past its limit)
        make_transfer_account()
        placement.place_customer_order(make_customer(), _credit_package(), payment_method="bank_transfer",
                                       actor=AGENT, promo_code="ONCE", contracts_accepted=True)
    assert used_up.value.code == "promo_used_up"


# --- attack pass 6: the order of events for card money ----------------------------------------------------

class _BankLosingOneAnswer:
    """A bank that makes every refund asked of one sale, and whose answer to the first one is lost (a timeout
    after it made it); its status tells what it holds, as NestPay's ORDERSTATUS does."""

    def __init__(self, amount_minor):
        self.amount_minor, self.refunded_minor, self.refunds_made = amount_minor, 0, []

    def sale_status(self, oid):
        return SaleStatus("taken", original_minor=self.amount_minor,
                          captured_minor=self.amount_minor - self.refunded_minor)

    def refund(self, oid, amount_minor, currency, *, operation, whole):
        self.refunded_minor += amount_minor
        self.refunds_made.append(amount_minor)
        if len(self.refunds_made) == 1:
            raise GatewayError("the bank did not answer in time")
        return RefundAnswer(succeeded=True, operation=operation, return_code="00", transaction_id="R2")


def test_a_card_refund_made_unheard_after_a_refund_to_the_balance_is_found_made_not_sent_again(gateway, clock):
    """10.00 of a 100.00 card payment went back to the account balance, then 20.00 to the card, whose answer was
    lost. Asked, the bank says it gave back 20.00: that is the refund, made. It was compared with our refunds
    done plus this one, counting the 10.00 the bank never saw, so it was sent again and the card got 40.00."""
    customer = make_customer()
    order = paid_by_card(customer, _credit_package(price="100.00"))
    refund_to_balance(order, amount_minor=1000)
    db.session.commit()
    clock.advance(days=1)
    bank = _BankLosingOneAnswer(order.amount_minor)
    refunds.start(order, to=RefundDestination.CARD, actor=AGENT, amount_minor=2000)
    db.session.commit()
    assert refunds.send(order, bank, AGENT) == "unknown"
    db.session.commit()

    assert card_payments.ask_bank_about_refunds(order.id, bank, BANK).endswith("refunded")
    db.session.commit()
    assert bank.refunds_made == [2000]  # the card got its 20.00 once
    assert [(r.destination, r.state, r.amount_minor) for r in order.refunds] == [
        ("balance", "done", 1000), ("card", "done", 2000)]
    assert (order.refunded_minor, order.refundable_minor, balance.amount(customer, "TRY")) == (3000, 7000, 1000)


class _BankHolding(NestPayGateway):
    """NestPay as set up in the settings, whose status answer says it holds the attempt's sale (or none)."""

    def __init__(self, attempt, taken=True):
        super().__init__()
        self.attempt, self.taken = attempt, taken

    def sale_status(self, oid):
        if not self.taken:
            return SaleStatus("failed", summary="TRANS_STAT ERR")
        amount = self.attempt.amount_minor
        return SaleStatus("taken", original_minor=amount, captured_minor=amount, auth_code="123456")


def test_card_payments_switched_off_still_settle_what_the_bank_took_and_expire_what_it_did_not(gateway, clock):
    """Card payments switched off for new customers (Settings → Payment Systems; the callbacks still count):
    asking the bank said "not set up", so an approval whose callback was lost was never taken, and a checkout
    with an attempt waiting stayed pending for ever (Delete refused, Accept refused)."""
    paid, lost = card_order(make_customer(), _credit_package())
    open_, abandoned = card_order(make_customer(), _credit_package())
    settings.update({"nestpay_enabled": False}, AGENT)
    db.session.commit()
    clock.advance(minutes=31)

    assert card_payments.ask_bank_about_attempt(lost.id, _BankHolding(lost), BANK).endswith("confirmed")
    assert card_payments.expire_checkout(open_.id, _BankHolding(abandoned, taken=False), BANK) is True
    db.session.commit()
    assert (lost.state, paid.payment_status, paid.activated) == ("confirmed", "paid", True)
    assert (abandoned.state, open_.status) == ("failed", "cancelled")
