"""The team is told when an order needs a person (domain.md §6a), and subscribers hear about their
cancellation request: rows in the outbox, each once per event."""
from datetime import timedelta

import pytest
from sqlalchemy import select

from limonbilling.clock import now
from limonbilling.extensions import db
from limonbilling.models import CancellationRequest, Notification, Payment
from limonbilling.services import audit, notifications, settings

from ..factories import activate, make_customer, make_package
from ..order_records import add_card_payment, make_order

AGENT = audit.Actor("agent", None, "agent@example.com")
TEAM = ("billing@limon.example", ["boss@limon.example"])


def queued(**filters) -> list[Notification]:
    statement = select(Notification).order_by(Notification.id)
    for name, value in filters.items():
        statement = statement.where(getattr(Notification, name) == value)
    return list(db.session.scalars(statement))


@pytest.fixture
def agents_mailbox(app):
    settings.update({"notification_email": TEAM[0], "notification_email_cc": TEAM[1]}, AGENT)
    db.session.commit()


def test_an_order_set_to_fraud_tells_the_team_its_score_and_rules(app, agents_mailbox, clock):
    customer = make_customer(first_name="Zeynep", last_name="Kaya")
    order = make_order(customer, make_package(), status="fraud", fraud_score=80, fraud_checks=[
        {"rule": "failed_cards", "points": 40, "detail": "3 failed card payments by this customer in the last hour."},
        {"rule": "many_orders", "points": 40, "detail": "4 orders by this customer in 60 minutes."},
    ])

    notifications.order_set_to_fraud(order)
    notifications.order_set_to_fraud(order)  # the same move reaching the alert twice
    db.session.commit()

    [row] = queued(event="order_set_to_fraud")
    assert (row.recipient, row.cc, row.language, row.order_number) == (*TEAM, "en", order.number)
    assert order.number in row.subject and "Zeynep Kaya" in row.subject
    for text in (row.body_text, row.body_html):
        assert "Fraud score: 80." in text and "Orders at or above 60 go to Fraud." in text
        assert "+40: 3 failed card payments by this customer in the last hour." in text
        assert "+40: 4 orders by this customer in 60 minutes." in text
        assert f"/admin/billing/orders/{order.number}" in text
    assert not queued(customer_id=customer.id, recipient=customer.email, event="order_set_to_fraud")

    clock.advance(days=1)  # back to Pending, then to Fraud again: a new event
    notifications.order_set_to_fraud(order)
    db.session.commit()
    assert len(queued(event="order_set_to_fraud")) == 2


def test_no_team_mail_without_the_general_e_mail_settings(app):
    order = make_order(make_customer(), make_package(), status="fraud", fraud_score=70)
    notifications.order_set_to_fraud(order)
    notifications.paid_order_awaiting_review(order)
    notifications.money_needs_attention(order, "The bank refused the Void.", "refund:1")
    db.session.commit()
    assert [row.event for row in queued()] == ["welcome"]


def test_a_paid_card_order_waiting_for_review_tells_the_team_once_per_payment(app, agents_mailbox):
    customer = make_customer()
    order = make_order(customer, make_package(price="250.00"), payment_status="paid", fraud_score=10,
                       fraud_checks=[{"rule": "unverified_email", "points": 10,
                                      "detail": "The e-mail address is not verified."}])
    add_card_payment(order, "failed")
    add_card_payment(order, "confirmed")

    notifications.paid_order_awaiting_review(order)
    notifications.paid_order_awaiting_review(order)  # a replayed bank callback
    db.session.commit()

    [row] = queued(event="paid_order_awaiting_review")
    assert (row.recipient, row.cc) == TEAM
    assert order.number in row.subject
    assert f"paid order {order.number} by card" in row.body_text
    assert "stays Pending until you review it" in row.body_text
    assert "+10: The e-mail address is not verified." in row.body_text
    assert f"/admin/billing/orders/{order.number}" in row.body_text and customer.email in row.body_text

    add_card_payment(order, "confirmed")  # refunded, then paid again: the team reviews it again
    notifications.paid_order_awaiting_review(order)
    db.session.commit()
    assert len(queued(event="paid_order_awaiting_review")) == 2


def test_a_payment_recorded_in_the_same_transaction_names_the_review_event(app, agents_mailbox):
    order = make_order(make_customer(), make_package(), payment_status="paid")
    payment = Payment(order=order, method="card", oid=f"{order.number}-1", state="confirmed",
                      amount_minor=order.amount_minor, currency=order.currency, confirmed_at=now())
    db.session.add(payment)

    notifications.paid_order_awaiting_review(order)  # before anything flushed the payment
    db.session.commit()

    [row] = queued(event="paid_order_awaiting_review")
    assert row.event_key == f"order:{order.number}:awaiting_review:{payment.id}"


def test_money_that_could_not_go_back_tells_the_team_once_per_problem(app, agents_mailbox):
    order = make_order(make_customer(), make_package(), status="cancelled", payment_status="paid")

    notifications.money_needs_attention(order, "The bank refused the Credit: 99 Insufficient funds.", "refund:7")
    notifications.money_needs_attention(order, "The bank refused the Credit: 99 Insufficient funds.", "refund:7")
    db.session.commit()
    [row] = queued(event="money_needs_attention")
    assert (row.recipient, row.cc) == TEAM and order.number in row.subject
    for text in (row.body_text, row.body_html):
        assert "could not be returned automatically" in text
        assert "The bank refused the Credit: 99 Insufficient funds." in text
        assert f"/admin/billing/orders/{order.number}" in text

    notifications.money_needs_attention(order, "A second approval was taken; the Void was refused.", "refund:8")
    db.session.commit()
    assert len(queued(event="money_needs_attention")) == 2


def _cancellation(customer, **values) -> CancellationRequest:
    request = CancellationRequest(customer_id=customer.id, created_at=now(), **{
        "timing": "period_end", "reason": "We are moving to another provider.", "state": "pending", **values})
    db.session.add(request)
    db.session.commit()
    return request


def test_a_cancellation_request_tells_the_team(app, agents_mailbox):
    customer = make_customer(first_name="Mehmet", last_name="Öztürk")
    activate(customer, make_package("subscription", days=30))
    request = _cancellation(customer)

    notifications.cancellation_requested(request)
    notifications.cancellation_requested(request)
    db.session.commit()

    [row] = queued(event="cancellation_requested")
    assert (row.recipient, row.cc) == TEAM and "Mehmet Öztürk" in row.subject
    for text in (row.body_text, row.body_html):
        assert "asks to end their subscription at the end of the current period" in text
        assert "The current period ends on" in text
        assert "We are moving to another provider." in text
        assert "/admin/billing/cancellations" in text


def test_the_customer_hears_an_approval_with_its_end_and_the_note(app, clock):
    customer = make_customer()
    ends = now() + timedelta(days=12)
    request = _cancellation(customer, state="approved", decided_at=now(), ends_at=ends,
                            decision_note="Your last invoice is settled too.")

    notifications.cancellation_decided(request)
    notifications.cancellation_decided(request)
    db.session.commit()

    [row] = queued(event="cancellation_decided")
    assert row.recipient == customer.email and row.customer_id == customer.id
    assert row.subject == "Your cancellation request is approved"
    for text in (row.body_text, row.body_html):
        assert "Your subscription ends on" in text and "until then you keep using it" in text
        assert "Our note: Your last invoice is settled too." in text
        assert "/subscription/cancel" in text


def test_the_customer_hears_a_rejection_with_the_note(app):
    customer = make_customer()
    request = _cancellation(customer, state="rejected", decided_at=now(),
                            decision_note="Sözleşmeniz yıl sonuna kadar sürüyor.")

    notifications.cancellation_decided(request)
    db.session.commit()

    [row] = queued(event="cancellation_decided")
    assert row.subject == "Your cancellation request is not approved"
    assert "Your subscription continues as before." in row.body_text
    assert "Our note: Sözleşmeniz yıl sonuna kadar sürüyor." in row.body_text


def test_an_approval_that_ends_now_says_it_ended(app):
    customer = make_customer()
    request = _cancellation(customer, timing="now", state="approved", decided_at=now(), ends_at=now())

    notifications.cancellation_decided(request)
    db.session.commit()

    [row] = queued(event="cancellation_decided")
    assert "Your subscription ended on" in row.body_text and "Our note" not in row.body_text


def test_the_decision_reaches_the_customer_in_their_language(app):
    customer = make_customer(language="tr")
    request = _cancellation(customer, state="rejected", decided_at=now(),
                            decision_note="Sözleşmeniz yıl sonuna kadar sürüyor.")

    notifications.cancellation_decided(request)
    db.session.commit()

    [row] = queued(event="cancellation_decided")
    assert (row.language, row.subject) == ("tr", "İptal talebiniz onaylanmadı")
    assert "Aboneliğiniz eskisi gibi devam ediyor." in row.body_text
    assert "Notumuz: Sözleşmeniz yıl sonuna kadar sürüyor." in row.body_text
