"""Who is told what (domain.md §9), at the service level: rows in the outbox, written with their event."""
import pytest
from sqlalchemy import select

from limonbilling.extensions import db
from limonbilling.models import Notification
from limonbilling.services import (
    ServiceError,
    accounts,
    charging,
    helpdesk,
    ledger,
    notifications,
    order_actions,
    placement,
    settings,
    tokens,
)

from ..factories import activate, make_customer, make_department, make_package, make_transfer_account
from ..payment_support import AGENT, paid_by_card, refund_to_balance


def queued(**filters) -> list[Notification]:
    statement = select(Notification).order_by(Notification.id)
    for name, value in filters.items():
        statement = statement.where(getattr(Notification, name) == value)
    return list(db.session.scalars(statement))


@pytest.fixture
def agents_mailbox(app):
    settings.update({"notification_email": "billing@limon.example",
                     "notification_email_cc": ["boss@limon.example", "accounts@limon.example"]}, AGENT)
    db.session.commit()




def test_a_purchase_queues_the_customer_and_the_agents_with_cc(app, agents_mailbox):
    customer = make_customer(language="tr")
    package = make_package("credit", credits=10, name="Altın Paket")
    order = paid_by_card(customer, package)

    rows = queued(event="purchase_activated")
    assert [(row.recipient, row.cc, row.language) for row in rows] == [
        (customer.email, [], "tr"),
        ("billing@limon.example", ["boss@limon.example", "accounts@limon.example"], "en"),
    ]
    mine, agents = rows
    assert order.number in mine.body_text and "Altın Paket" in mine.body_text
    assert f"/orders/{order.number}/invoice" in mine.body_text  # the invoice link
    assert customer.email in agents.body_text and customer.phone in agents.body_text  # customer details
    assert all(row.order_number == order.number and row.state == "pending" for row in rows)
    assert mine.body_html and "<html" in mine.body_html


def test_the_same_event_twice_is_one_message(app, agents_mailbox):
    customer = make_customer()
    order = paid_by_card(customer, make_package("credit"))
    grant = order.live_grant
    count = len(queued())
    notifications.purchase_activated(order, grant)  # e.g. a replayed callback reaching the event again
    db.session.commit()
    assert len(queued()) == count


def test_a_rolled_back_purchase_sends_nothing(app, agents_mailbox):
    customer = make_customer()
    package = make_package("credit")
    order = placement.place_agent_order(customer, package, payment_method="manual", actor=AGENT)
    assert queued(event="purchase_activated")  # in the transaction…
    db.session.rollback()
    assert [row.event for row in queued()] == ["welcome"]  # …gone with it; the earlier welcome stays
    assert db.session.get(type(order), order.id) is None


def test_no_agent_mail_without_addresses_and_no_sms_when_sms_is_off(app):
    customer = make_customer()
    placement.place_agent_order(customer, make_package("credit"), payment_method="manual", actor=AGENT)
    db.session.commit()
    assert [(row.channel, row.recipient) for row in queued(event="purchase_activated")] == [
        ("email", customer.email)]


def test_sms_goes_to_the_customer_when_sms_is_on(app, sms_provider):
    customer = make_customer(phone="0532 765 43 21")
    order = placement.place_agent_order(customer, make_package("credit", credits=7), payment_method="manual",
                                        actor=AGENT)
    db.session.commit()
    sms = queued(channel="sms")
    assert [row.recipient for row in sms] == ["+905327654321"]
    assert order.number in sms[0].body_text and "7" in sms[0].body_text


def test_order_events_for_the_customer(app):
    customer = make_customer()
    package = make_package("credit")
    order = paid_by_card(customer, package)
    order_actions.accept_order(order, AGENT)
    db.session.commit()
    assert len(queued(event="order_accepted")) == 1
    order_actions.cancel_order(order, AGENT)
    db.session.commit()
    assert len(queued(event="order_cancelled")) == 1

    other = placement.place_agent_order(customer, package, payment_method="manual", actor=AGENT)
    refund_to_balance(other, AGENT)
    db.session.commit()
    refunded = queued(event="order_refunded")
    assert len(refunded) == 1 and "account balance" in refunded[0].body_text


def test_accepting_a_bank_transfer_order_sends_the_activation_mail_only(app):
    customer = make_customer()
    make_transfer_account()
    order = placement.place_agent_order(customer, make_package("credit"), payment_method="bank_transfer", actor=AGENT)
    db.session.commit()
    order_actions.accept_order(order, AGENT)
    db.session.commit()
    assert [row.event for row in queued(customer_id=customer.id) if row.event != "welcome"] == ["purchase_activated"]


def test_agent_order_options_send_confirmation_and_invoice(app):
    customer = make_customer()
    make_transfer_account()
    order = placement.place_agent_order(customer, make_package("credit"), payment_method="bank_transfer", actor=AGENT,
                                send_confirmation=True, send_invoice=True)
    db.session.commit()
    events = {row.event: row for row in queued(customer_id=customer.id)}
    assert order.number in events["order_confirmation"].subject
    assert f"/orders/{order.number}/invoice" in events["invoice_issued"].body_text
    assert "waits for your payment" in events["order_confirmation"].body_text


def test_credits_running_low_warns_once_per_crossing(app):
    settings.update({"low_credit_threshold": 5}, AGENT)
    department = make_department(credit_per_request=2)
    customer = make_customer()
    activate(customer, make_package("credit", [department], credits=10))

    def charge(n):
        charging.charge_usage(customer.id, department.id, "ticket", f"T-{n}")
        db.session.commit()

    for n in range(3):  # 10 → 8 → 6 → 4: below 5 once
        charge(n)
    assert [row.body_text.count("4 credits") for row in queued(event="credits_low")] == [1]
    charge(3)  # 4 → 2: still below, no second warning
    assert len(queued(event="credits_low")) == 1
    ledger.adjust_credits(customer, 10, "goodwill", AGENT)  # back above: 12
    db.session.commit()
    for n in range(4, 8):  # 12 → 10 → 8 → 6 → 4: a new crossing
        charge(n)
    assert len(queued(event="credits_low")) == 2


def test_a_customer_threshold_wins_and_zero_switches_it_off(app):
    department = make_department(credit_per_request=1)
    customer = make_customer()
    customer.low_credit_threshold = 0
    db.session.commit()
    activate(customer, make_package("credit", [department], credits=2))
    for n in range(2):
        charging.charge_usage(customer.id, department.id, "chat", f"C-{n}")
    db.session.commit()
    assert ledger.low_credit_threshold(customer.low_credit_threshold) == 0
    assert queued(event="credits_low") == []


def test_reminders_on_simulated_days(app, clock):
    """30, 7 and 1 day(s) before the end, each once, then "ended" once; running twice a day adds nothing."""
    customer = make_customer(language="tr")
    activate(customer, make_package("subscription", days=60))
    seen = []
    for _day in range(70):
        for _run in range(2):
            notifications.queue_reminders()
            db.session.commit()
        clock.advance(days=1)
    for row in queued(customer_id=customer.id):
        if row.event != "welcome":
            seen.append((row.event, row.event_key.rsplit(":", 1)[-1] if row.event == "subscription_ending" else ""))
    assert seen == [("subscription_ending", "30"), ("subscription_ending", "7"), ("subscription_ending", "1"),
                    ("subscription_ended", "")]
    assert all(row.language == "tr" for row in queued(customer_id=customer.id))


def test_a_renewal_starts_the_reminders_over_and_a_switch_sends_no_ended(app, clock):
    customer = make_customer()
    subscription = make_package("subscription", days=30)
    activate(customer, subscription)
    notifications.queue_reminders()
    db.session.commit()
    assert len(queued(event="subscription_ending")) == 1  # 30 days left
    activate(customer, subscription)  # renewed: the end moves 30 days on
    clock.advance(days=30)
    notifications.queue_reminders()
    db.session.commit()
    assert len(queued(event="subscription_ending")) == 2  # 30 days before the new end
    activate(customer, make_package("credit"))  # a switch forfeits the subscription
    clock.advance(days=40)
    notifications.queue_reminders()
    db.session.commit()
    assert queued(event="subscription_ended") == []


def test_the_reminder_window_follows_the_renewal_window(app):
    settings.update({"renewal_window_days": 10}, AGENT)
    customer = make_customer()
    activate(customer, make_package("subscription", days=30))
    notifications.queue_reminders()
    assert queued(event="subscription_ending") == []  # 30 days left, but renewal opens only at 10


def test_registration_queues_a_welcome_with_a_confirmation_link(app, clock):
    customer = make_customer()
    welcome = queued(event="welcome")[0]
    assert welcome.sensitive and welcome.recipient == customer.email
    token = welcome.body_text.split("/verify-email/")[1].split()[0]
    clock.advance(days=1)
    assert accounts.verify_email(token) is customer and customer.email_verified_at == clock.now()


def test_confirmation_links_expire_and_do_not_confirm_a_new_address(app, clock):
    customer = make_customer()
    old_token = tokens.email_verification_token(customer)
    clock.advance(seconds=app.config["EMAIL_VERIFICATION_MAX_AGE"] + 1)
    with pytest.raises(ServiceError) as expired:
        accounts.verify_email(old_token)
    assert expired.value.code == "link_expired"
    fresh = tokens.email_verification_token(customer)
    customer.email = "new-address@example.com"
    with pytest.raises(ServiceError) as outdated:
        accounts.verify_email(fresh)
    assert outdated.value.code == "link_invalid"


def test_a_reset_link_works_once_and_expires(app, clock):
    customer = make_customer()
    token = tokens.password_reset_token(customer)
    assert accounts.user_for_reset(token, "customer") is customer
    accounts.reset_password(token, "brand-new-pass-2", "customer")
    db.session.commit()
    assert customer.check_password("brand-new-pass-2")
    with pytest.raises(ServiceError):
        accounts.user_for_reset(token, "customer")  # the password changed: the link is used
    late = tokens.password_reset_token(customer)
    clock.advance(seconds=app.config["PASSWORD_RESET_MAX_AGE"] + 1)
    with pytest.raises(ServiceError) as expired:
        accounts.user_for_reset(late, "customer")
    assert expired.value.code == "link_expired"
    with pytest.raises(ServiceError):
        accounts.user_for_reset(late[:-2] + "xx", "customer")
    with pytest.raises(ServiceError):
        accounts.user_for_reset(tokens.password_reset_token(customer), "agent")  # a customer's link, agents' page


def test_an_account_opened_by_an_agent_gets_a_set_password_link_that_lasts(app, clock):
    from limonbilling.services import customers

    customer = customers.register_customer({"account_type": "individual", "first_name": "Can", "last_name": "Ak",
                                            "email": "can@example.com", "phone": "0532 111 22 33"}, None, AGENT)
    db.session.commit()
    welcome = queued(event="welcome", customer_id=customer.id)[0]
    token = welcome.body_text.split("/reset-password/")[1].split()[0]
    clock.advance(days=2)  # longer than a reset link lives, shorter than a welcome link
    assert accounts.user_for_reset(token, "customer") is customer


def test_unknown_addresses_queue_no_reset_mail(app):
    accounts.request_password_reset("customer", "nobody@example.com")
    assert queued(event="password_reset") == []


def test_helpdesk_charge_crossing_comes_from_the_ledger_not_from_the_view(app):
    """The warning lives in the ledger: a ticket opened through the help desk service crosses too."""
    settings.update({"low_credit_threshold": 3}, AGENT)
    department = make_department(credit_per_request=2)
    customer = make_customer()
    activate(customer, make_package("credit", [department], credits=4))
    helpdesk.open_conversation(customer, department, "ticket", "Yardım", "Merhaba")
    db.session.commit()
    assert len(queued(event="credits_low")) == 1


def test_an_order_deleted_keeps_its_messages(app):
    customer = make_customer()
    make_transfer_account()
    order = placement.place_agent_order(customer, make_package("credit"), payment_method="bank_transfer", actor=AGENT)
    order_actions.cancel_order(order, AGENT)
    number = order.number
    order_actions.delete_order(order, AGENT)
    db.session.commit()
    assert [row.event for row in queued(order_number=number)] == ["order_cancelled"]


def test_subscription_ending_inside_the_window_on_day_one(app, clock):
    customer = make_customer()
    activate(customer, make_package("subscription", days=5))
    assert notifications.queue_reminders() == 1
    db.session.commit()
    assert queued(event="subscription_ending")[0].event_key.endswith(":7")
    clock.advance(days=4, hours=1)
    assert notifications.queue_reminders() == 1
    assert queued(event="subscription_ending")[-1].subject == "Your subscription ends tomorrow"
    clock.advance(days=1)
    assert notifications.queue_reminders() == 1  # ended
    assert queued(event="subscription_ended")[0].customer_id == customer.id
    clock.advance(days=1)
    assert notifications.queue_reminders() == 0
