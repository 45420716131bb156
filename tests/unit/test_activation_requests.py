"""The public activation form's requests (xcPanel; services/activation_requests.py), on SQLite and PostgreSQL:
who gets an account, one waiting request per customer, approval with a package (order, bank-transfer payment of
the order's total, activation, the customer's mail and SMS), rejection, and what the agents are told."""
from datetime import UTC, date, datetime

import pytest
from sqlalchemy import func, select

from limonbilling.extensions import db
from limonbilling.models import ActivationRequest, AuditEntry, Customer, Grant, Order, Payment, RefundDestination
from limonbilling.services import (
    ServiceError,
    ValidationFailed,
    activation_requests,
    balance,
    placement,
    refunds,
    settings,
)

from ..factories import make_customer, make_department, make_package, make_transfer_account
from ..payment_support import AGENT
from .test_notifications import queued

TEAM = "team@example.com"
AGENTS_PHONE = "+905321112233"


@pytest.fixture
def support(app):
    settings.update({"notification_email": TEAM}, AGENT)
    db.session.commit()
    return make_department("Support", credit_per_request=3)


@pytest.fixture
def credits10(support):
    return make_package("credit", [support], credits=10, price="150.00", name="Ten credits")


def form(**overrides) -> dict:
    values = {"first_name": "Deniz", "last_name": "Kaya", "email": "deniz@example.com", "phone": "0532 765 43 21",
              "amount": "150,00", "currency": "TRY", "paid_on": date(2026, 3, 1), "package_id": None,
              "note": "Sent from Garanti"}
    values.update(overrides)
    return values


def submit(signed_in=None, **overrides):
    request = activation_requests.submit(form(**overrides), signed_in=signed_in, language="tr", ip="192.0.2.1")
    db.session.commit()
    return request


def count(model, *conditions) -> int:
    return db.session.scalar(select(func.count()).select_from(model).where(*conditions))


# --- the form -------------------------------------------------------------------------------------------

def test_a_new_address_gets_an_unconfirmed_individual_account_and_the_welcome_mail_to_set_a_password(credits10):
    request = submit(package_id=credits10.id)

    customer = db.session.get(Customer, request.customer_id)
    assert (customer.email, customer.first_name, customer.phone, customer.account_type, customer.language) == (
        "deniz@example.com", "Deniz", "+905327654321", "individual", "tr")
    assert customer.email_verified_at is None
    assert (request.amount_minor, request.currency, request.paid_on, request.package_id, request.state) == (
        15000, "TRY", date(2026, 3, 1), credits10.id, "pending")
    [welcome] = queued(event="welcome")
    assert welcome.recipient == "deniz@example.com" and "/reset-password/" in welcome.body_text
    [team] = queued(event="activation_form_received")
    assert team.recipient == TEAM and "Ten credits" in team.body_text and "Garanti" in team.body_text
    assert "/admin/billing/activation-requests" in team.body_text
    assert count(AuditEntry, AuditEntry.action == "activation.request") == 1


def test_a_known_address_gets_the_request_and_no_new_account_nor_welcome(support):
    customer = make_customer(email="ayse@example.com")
    welcomes = len(queued(event="welcome"))

    request = submit(email="AYSE@example.com")

    assert request.customer_id == customer.id and count(Customer) == 1
    assert len(queued(event="welcome")) == welcomes
    assert db.session.get(Customer, customer.id).phone == customer.phone  # the stated phone is the request's
    assert request.phone == "+905327654321"


def test_a_second_request_while_one_waits_is_refused_to_the_signed_in_customer(support):
    customer = make_customer(email="ayse@example.com")
    submit(signed_in=customer, email="ayse@example.com")

    with pytest.raises(ServiceError) as refused:
        activation_requests.submit(form(email="ayse@example.com"), signed_in=customer)
    db.session.rollback()

    assert refused.value.code == "already_requested" and "already waiting" in refused.value.message
    assert count(ActivationRequest) == 1


def test_a_second_request_from_someone_not_signed_in_is_not_recorded_and_the_customer_is_mailed(support):
    """The page may not tell that the address has an account (or a request): it answers as always."""
    customer = make_customer(email="ayse@example.com")
    submit(email="ayse@example.com")

    assert submit(email="ayse@example.com") is None
    assert submit(email="ayse@example.com") is None

    assert count(ActivationRequest) == 1
    [notice] = queued(event="activation_already_waiting")  # at most one an hour
    assert notice.recipient == customer.email and notice.customer_id == customer.id


def test_after_an_answer_the_customer_may_send_a_new_request(support, credits10):
    first = submit()
    activation_requests.reject(first.id, "No transfer arrived.", AGENT)
    db.session.commit()

    second = submit()

    assert second.customer_id == first.customer_id and second.id != first.id


@pytest.mark.parametrize("field, value, message", [
    ("email", "deniz@", "valid e-mail"),
    ("phone", "12", "valid phone"),
    ("first_name", " ", "required"),
    ("amount", "0", "more than 0"),
    ("amount", "-5", "more than 0"),
    ("amount", "150.005", "at most 2 decimals"),
    ("amount", "ten", "like 150.00"),
    ("currency", "GBP", "TRY, USD or EUR"),
    ("paid_on", None, "the day you paid"),
    ("paid_on", date(2026, 3, 2), "future"),
    ("package_id", 99999, "from the list"),
    ("note", "x" * 1001, "1000"),
])
def test_each_bad_field_is_refused_with_its_reason(support, field, value, message):
    with pytest.raises(ValidationFailed) as refused:
        activation_requests.submit(form(**{field: value}))
    db.session.rollback()
    assert list(refused.value.errors) == [field]
    assert message.lower() in refused.value.errors[field][0].lower()
    assert count(ActivationRequest) == 0 and count(Customer) == 0


def test_the_amount_is_read_exactly_into_minor_units(support):
    assert submit(amount="1.250,50").amount_minor == 125050


def test_today_in_istanbul_is_the_last_valid_day_even_when_utc_is_still_yesterday(support, clock):
    clock.set(datetime(2026, 3, 1, 21, 30, tzinfo=UTC))  # 00:30 on 2 March in Istanbul
    assert submit(paid_on=date(2026, 3, 2)).paid_on == date(2026, 3, 2)
    with pytest.raises(ValidationFailed):
        activation_requests.submit(form(email="other@example.com", paid_on=date(2026, 3, 3)))


def test_a_chosen_package_must_be_on_sale_and_in_the_stated_currency(support):
    euro = make_package("credit", [support], currency="EUR", name="Euro credits")
    hidden = make_package("credit", [support], on_sale=False)
    with pytest.raises(ValidationFailed) as refused:
        activation_requests.submit(form(package_id=euro.id))
    assert "priced in EUR" in refused.value.errors["currency"][0]
    with pytest.raises(ValidationFailed) as refused:
        activation_requests.submit(form(package_id=hidden.id))
    assert list(refused.value.errors) == ["package_id"]


def test_the_agents_phone_gets_an_sms_when_sms_is_on(support, sms_provider):
    settings.update({"sms_agent_phone": AGENTS_PHONE}, AGENT)
    db.session.commit()
    submit()
    [sms] = queued(event="activation_form_received", channel="sms")
    assert sms.recipient == AGENTS_PHONE and "150" in sms.body_text and "Deniz Kaya" in sms.body_text


# --- approval and rejection -----------------------------------------------------------------------------

def test_approval_places_the_order_records_the_transfer_as_stated_and_activates_it(credits10, sms_provider):
    request = submit(paid_on=date(2026, 2, 27))

    order = activation_requests.approve(request.id, credits10.id, AGENT)
    db.session.commit()

    request = db.session.get(ActivationRequest, request.id)
    assert (request.state, request.order_id) == ("approved", order.id)
    assert (order.customer_id, order.package_id, order.payment_method) == (request.customer_id, credits10.id,
                                                                           "bank_transfer")
    assert (order.status, order.payment_status, order.activated) == ("active", "paid", True)
    [payment] = order.payments
    assert (payment.method, payment.state, payment.amount_minor, payment.received_on) == (
        "bank_transfer", "confirmed", 15000, date(2026, 2, 27))
    assert db.session.get(Customer, request.customer_id).credits == 10
    assert order.invoice.status == "paid" and order.invoice.number is not None
    [mail] = queued(event="activation_approved", channel="email")
    assert mail.recipient == "deniz@example.com" and mail.language == "tr"
    assert order.number in mail.body_text and "Ten credits" in mail.body_text and "10" in mail.body_text
    [sms] = queued(event="activation_approved", channel="sms")
    assert sms.recipient == "+905327654321" and order.number in sms.body_text
    assert queued(event="purchase_activated", recipient="deniz@example.com") == []  # one mail, not two
    assert [row.recipient for row in queued(event="purchase_activated")] == [TEAM]
    assert count(AuditEntry, AuditEntry.action == "activation.approve") == 1


def test_approval_takes_the_package_the_agent_chooses_not_the_one_the_customer_chose(credits10, support):
    bigger = make_package("credit", [support], credits=50, price="100.00")
    request = submit(package_id=credits10.id)
    order = activation_requests.approve(request.id, bigger.id, AGENT)
    db.session.commit()
    assert order.package_id == bigger.id and order.payments[0].amount_minor == 10000  # the order's total
    assert db.session.get(Customer, request.customer_id).credits == 50
    assert activation_requests.excess_minor(db.session.get(ActivationRequest, request.id)) == 5000


def test_only_the_orders_total_is_recorded_so_a_refund_never_returns_what_the_customer_only_said_they_sent(
        credits10):
    """The customer says 10,000.00 for a 150.00 package: the payment is 150.00, and Cancel & Refund to the
    balance gives back 150.00, not 10,000.00 (before, the stated amount was the payment)."""
    request = submit(amount="10.000,00")
    order = activation_requests.approve(request.id, credits10.id, AGENT)
    db.session.commit()
    assert [p.amount_minor for p in order.payments] == [15000] and order.payment_status == "paid"
    assert activation_requests.excess_minor(db.session.get(ActivationRequest, request.id)) == 985000
    entry = db.session.scalar(select(AuditEntry).where(AuditEntry.action == "activation.approve"))
    assert (entry.details["stated_minor"], entry.details["recorded_minor"]) == (1000000, 15000)
    refunds.start(order, to=RefundDestination.BALANCE, actor=AGENT)
    db.session.commit()
    assert balance.amount_by_id(order.customer_id, "TRY") == 15000
    assert (order.status, order.payment_status) == ("cancelled", "refunded")


def test_a_stated_amount_one_kurus_short_of_the_price_is_refused_and_the_request_stays_open(credits10):
    request = submit(amount="149.99")
    with pytest.raises(ServiceError) as refused:
        activation_requests.approve(request.id, credits10.id, AGENT)
    db.session.rollback()
    assert refused.value.code == "amount_short" and "149.99" in refused.value.message
    assert db.session.get(ActivationRequest, request.id).state == "pending"
    assert count(Order) == 0


def test_the_purchase_rules_still_apply_and_a_refusal_leaves_the_request_open(credits10):
    request = submit()
    customer = db.session.get(Customer, request.customer_id)
    make_transfer_account()
    waiting = placement.place_customer_order(customer, credits10, payment_method="bank_transfer", actor=AGENT,
                                             contracts_accepted=True)
    db.session.commit()

    with pytest.raises(ServiceError) as refused:  # rule 7: an order still awaiting its payment blocks a new one
        activation_requests.approve(request.id, credits10.id, AGENT)
    db.session.rollback()

    assert refused.value.code == "open_order" and waiting.number in refused.value.message
    assert db.session.get(ActivationRequest, request.id).state == "pending"
    assert count(Order) == 1 and count(Payment) == 0


def test_an_answered_request_is_not_answered_again(credits10):
    request = submit()
    activation_requests.approve(request.id, credits10.id, AGENT)
    db.session.commit()
    for again in (lambda: activation_requests.approve(request.id, credits10.id, AGENT),
                  lambda: activation_requests.reject(request.id, "No.", AGENT)):
        with pytest.raises(ServiceError) as refused:
            again()
        db.session.rollback()
        assert refused.value.code == "already_decided"
    assert count(Order) == 1 and count(Grant) == 1


def test_approval_needs_a_package_on_sale_in_the_currency_paid(credits10, support):
    euro = make_package("credit", [support], currency="EUR")
    request = submit()
    with pytest.raises(ValidationFailed):
        activation_requests.approve(request.id, None, AGENT)
    with pytest.raises(ServiceError) as refused:
        activation_requests.approve(request.id, euro.id, AGENT)
    assert refused.value.code == "currency_differs"
    with pytest.raises(ValidationFailed):
        activation_requests.approve(request.id, make_package("credit", [support], on_sale=False).id, AGENT)


def test_rejection_needs_a_reason_and_mails_it_to_the_customer(support):
    request = submit()
    with pytest.raises(ValidationFailed):
        activation_requests.reject(request.id, "  ", AGENT)
    db.session.rollback()

    activation_requests.reject(request.id, "No transfer of 150 TRY arrived on 1 March.", AGENT)
    db.session.commit()

    request = db.session.get(ActivationRequest, request.id)
    assert (request.state, request.reason, request.order_id) == ("rejected", "No transfer of 150 TRY arrived on "
                                                                            "1 March.", None)
    [mail] = queued(event="activation_rejected")
    assert mail.recipient == "deniz@example.com" and "No transfer of 150 TRY" in mail.body_text
    assert "/activate" in mail.body_text
