"""The polish a new user asked for after walking through the app in a browser (issue 17): what agents are told
about bank transfer, declines and statuses in the customer's words, the balance on the home page, expired
cards, team e-mails, counts, date-only fields."""
import re
from datetime import UTC, date, datetime
from email.utils import parsedate_to_datetime

import pytest
from flask import render_template_string

from limonbilling.extensions import db
from limonbilling.models import BankAccount, Notification, Payment
from limonbilling.services import (
    audit,
    balance,
    bank_transfer,
    card_payments,
    ledger,
    order_actions,
    outbox,
    placement,
    promo_codes,
    settings,
)
from limonbilling.services.demo import load_demo_data

from ..conftest import START
from ..factories import activate, make_agent, make_customer, make_package, sign_in
from ..order_records import make_order
from ..payment_support import AGENT, BANK, as_customer, bank_answer, card_order, configure_gateway

SYSTEM = audit.Actor.system("test")
IBAN = "TR330006100519786457841326"
TEAM = "team@limon.example"


def page(client, url: str) -> str:
    response = client.get(url)
    assert response.status_code == 200, url
    return response.get_data(as_text=True)


def badges(html: str) -> list[str]:
    return [text.strip() for text in re.findall(r'<span class="badge[^"]*">([^<]+)</span>', html)]


def add_bank_account() -> None:
    bank_transfer.add_account(bank_name="Ziraat", account_holder="Limon", iban=IBAN, currency="TRY", actor=SYSTEM)
    db.session.commit()


@pytest.fixture
def customer(client):
    customer = make_customer()
    sign_in(client, customer)
    return customer


# --- 1. bank transfer needs a bank account, and says so --------------------------------------------------

def test_the_demo_data_has_one_bank_account_so_bank_transfer_is_offered(app):
    created = load_demo_data()
    db.session.commit()
    assert [line for line in created if line.startswith("bank account")] != []
    assert len(bank_transfer.accounts_for("TRY")) == 1
    assert not any(line.startswith("bank account") for line in load_demo_data())  # run again: nothing twice
    assert db.session.scalar(db.select(db.func.count(BankAccount.id))) == 1


def test_the_demo_data_adds_no_bank_account_when_one_exists(app):
    bank_transfer.add_account(bank_name="Own", account_holder="Us", iban="DE89370400440532013000", currency="EUR",
                              actor=SYSTEM)
    db.session.commit()
    load_demo_data()
    db.session.commit()
    assert [account.bank_name for account in bank_transfer.all_accounts()] == ["Own"]


def test_the_payment_settings_page_says_bank_transfer_needs_a_bank_account(app):
    client = app.test_client()
    sign_in(client, make_agent("settings"))
    html = page(client, "/admin/settings/payments")
    assert "Bank transfer is offered to customers only once a bank account exists" in html
    assert 'href="#bank-accounts"' in html and 'id="bank-accounts"' in html
    add_bank_account()
    assert "Bank transfer is offered to customers only once a bank account exists" in page(
        client, "/admin/settings/payments")


# --- 2. declines in the customer's words; the bank's own text for agents only ----------------------------

DECLINES = {
    "insufficient funds": ({"ProcReturnCode": "51", "ErrMsg": "Limit yetersiz (Insufficient funds)"},
                           "balance or limit is not enough"),
    "expired card": ({"ProcReturnCode": "54", "ErrMsg": "Kartın süresi dolmuş (Expired card)"},
                     "the card has expired"),
    "3-D Secure failed": ({"mdStatus": "0", "Response": "Error", "ProcReturnCode": "99",
                           "ErrMsg": "3-D Secure doğrulaması başarısız"}, "3-D Secure check did not succeed"),
    "other": ({"ProcReturnCode": "05", "ErrMsg": "Red-Onaylanmadı (Do not honour)"},
              "Your bank declined the payment. Check the card details or try another card."),
}


def declined_order(customer, answer: dict):
    gateway = configure_gateway()
    order, attempt = card_order(customer, make_package("credit", credits=10))
    card_payments.apply_card_callback(gateway, bank_answer(attempt, approved=False, **answer), BANK)
    db.session.commit()
    return order


@pytest.mark.parametrize("reason", DECLINES)
def test_a_decline_tells_the_customer_what_to_do_and_agents_what_the_bank_said(app, client, customer,
                                                                                billing_client, reason):
    answer, advice = DECLINES[reason]
    add_bank_account()
    order = declined_order(customer, answer)

    html = page(client, f"/orders/{order.number}")
    assert "The payment did not go through." in html and advice in html
    assert "You can also pay by bank transfer" in html
    assert answer["ErrMsg"] not in html
    assert answer["ErrMsg"] in page(billing_client, f"/admin/billing/orders/{order.number}")


def test_bank_transfer_is_suggested_after_a_decline_only_when_it_is_offered(app, client, customer):
    order = declined_order(customer, DECLINES["other"][0])
    html = page(client, f"/orders/{order.number}")
    assert "try another card" in html and "You can also pay by bank transfer" not in html


# --- 3. statuses in the customer's words --------------------------------------------------------------------

def test_a_paid_order_waiting_for_review_is_paid_being_reviewed_not_pending(app, client, customer):
    gateway = configure_gateway()
    order, attempt = card_order(customer, make_package("credit", credits=10))
    card_payments.apply_card_callback(gateway, bank_answer(attempt), BANK)
    db.session.commit()
    unpaid = make_order(customer, make_package(), payment_method="bank_transfer")

    assert badges(page(client, f"/orders/{order.number}")) == ["Paid — being reviewed"]
    assert badges(page(client, f"/orders/{unpaid.number}")) == ["Pending", "Unpaid"]
    listed = page(client, "/orders")
    assert "Paid — being reviewed" in listed and listed.count("Pending") == 1

    order_actions.accept_order(order, AGENT)
    db.session.commit()
    assert badges(page(client, f"/orders/{order.number}")) == ["Active", "Paid"]


# --- 4. the balance on the home page ---------------------------------------------------------------------

def test_the_home_page_shows_the_credits_and_the_account_balance(app, client, customer):
    home = page(client, "/")
    assert "You have no package yet" in home and "Account balance:" not in home  # only the link to the balance page
    activate(customer, make_package("credit", credits=10))
    balance.adjust(customer, "25.00", "TRY", "Goodwill", AGENT)
    db.session.commit()
    home = page(client, "/")
    assert "You have 10 credits." in home and "Account balance: TRY\xa025.00" in home
    assert 'href="/usage"' in home


def test_the_home_page_shows_a_subscription_and_nothing_of_packages_without_vip(app, client, customer):
    activate(customer, make_package("subscription", days=30))
    assert "Your subscription runs until March 31, 2026" in page(client, "/")
    settings.update({"vip_support_enabled": False}, SYSTEM)
    db.session.commit()
    assert "Your subscription runs until" not in page(client, "/")


def test_my_orders_and_my_usage_label_each_cell_for_stacked_rows_on_phones(app, client, customer):
    activate(customer, make_package("credit", credits=10))
    order = make_order(customer, make_package())
    for url, labels in (("/orders", ["Order", "Date", "Package", "Amount", "Status"]),
                        ("/usage", ["Date", "What", "For", "Credits", "Balance"])):
        html = page(client, url)
        assert 'class="table table-stack' in html
        assert re.findall(r'<td[^>]* data-label="([^"]+)"', html)[:5] == labels, url
    assert order.number in page(client, "/orders")


# --- 5. an expired card is refused before the bank -------------------------------------------------------

@pytest.mark.parametrize(("utc", "expiry", "accepted"), [
    (datetime(2026, 6, 30, 20, 59, 59, tzinfo=UTC), "06/26", True),  # 23:59:59 on 30 June in Istanbul: its last day
    (datetime(2026, 6, 30, 21, 0, 0, tzinfo=UTC), "06/26", False),   # 00:00 on 1 July in Istanbul
    (datetime(2026, 6, 30, 21, 0, 0, tzinfo=UTC), "07/2026", True),
    (START, "01/20", False),
    (START, "02/26", False),
    (START, "03/26", True),
])
def test_a_card_past_its_expiry_month_is_refused_by_istanbul_time(app, client, customer, clock, utc, expiry,
                                                                   accepted):
    configure_gateway()
    clock.set(utc)
    package = make_package("credit", credits=10)
    response = client.post(f"/checkout/{package.id}", data={
        "card_number": "4355 0843 5508 4358", "card_expiry": expiry, "card_cvv": "000", "accept_contracts": "y"})
    html = response.get_data(as_text=True)
    if accepted:
        assert response.status_code == 200 and 'name="hash"' in html
    else:
        assert response.status_code == 422 and "This card has expired" in html and 'name="hash"' not in html
    assert db.session.scalar(db.select(db.func.count(Payment.id))) == (1 if accepted else 0)


# --- 6. team e-mails, the Date header, the agents' SMS phone ------------------------------------------------

def test_every_mail_carries_a_date_header_of_when_it_was_sent(app, smtp_server, clock):
    make_customer(email="elif@example.com")  # a welcome mail waits in the outbox
    clock.advance(minutes=5)
    outbox.send_due()
    [mail] = smtp_server.received
    assert parsedate_to_datetime(mail.message["Date"]) == datetime(2026, 3, 1, 9, 5, tzinfo=UTC)


def team_mails() -> dict[str, Notification]:
    db.session.expire_all()
    return {row.event: row for row in db.session.scalars(db.select(Notification).where(Notification.recipient == TEAM))}


def test_team_mails_speak_of_the_customer_and_keep_each_field_on_its_line(app):
    settings.update({"notification_email": TEAM}, SYSTEM)
    add_bank_account()
    customer = make_customer(first_name="Elif", last_name="Kaya")
    order = placement.place_customer_order(customer, make_package("credit", credits=10), payment_method="bank_transfer",
                                actor=as_customer(customer), contracts_accepted=True)
    db.session.commit()
    bank_transfer.request_activation(order, email="elif@example.com", phone="0532 123 45 67", note="",
                                     actor=as_customer(customer))
    order_actions.accept_order(order, AGENT)
    db.session.commit()

    mails = team_mails()
    request_lines = mails["activation_requested"].body_text.splitlines()
    assert [line for line in request_lines if line.startswith("Date: ")] == ["Date: Mar 1, 2026, 12:00:00\u202fPM"]
    assert "Contact e-mail: elif@example.com" in request_lines
    purchase = mails["purchase_activated"]
    for body in (purchase.body_text, purchase.body_html):
        assert "Elif Kaya now has 10 credits." in body
        assert "You now have" not in body and "Your subscription" not in body
    assert "Payment method: Bank transfer" in purchase.body_text.splitlines()


def test_the_team_mail_of_a_subscription_does_not_say_your_subscription(app):
    settings.update({"notification_email": TEAM}, SYSTEM)
    customer = make_customer(first_name="Elif", last_name="Kaya")
    placement.place_agent_order(customer, make_package("subscription", days=30), payment_method="manual",
                        actor=AGENT, placed_by=make_agent("billing"))
    db.session.commit()
    body = team_mails()["purchase_activated"].body_text
    assert "The subscription of Elif Kaya now runs until" in body and "Your subscription" not in body


def test_the_agents_sms_phone_says_what_it_gets(app):
    client = app.test_client()
    sign_in(client, make_agent("settings"))
    html = page(client, "/admin/settings/notifications")
    assert "Gets purchases" not in html and "Gets bank-transfer activation requests" in html


# --- 7. counts, the order filter's end date, bulk-action labels ----------------------------------------------

def test_one_credit_is_one_credit(app, client, customer):
    activate(customer, make_package("credit", credits=1))
    for url in ("/", "/usage", "/packages"):
        html = page(client, url)
        assert "You have 1 credit." in html and "1 credits" not in html, url


def test_mails_count_in_singular_and_plural(app):
    customer = make_customer()
    activate(customer, make_package("credit", credits=6))
    ledger.adjust_credits(customer, -5, "Used elsewhere", AGENT)  # below the threshold of 5: a warning
    db.session.commit()
    [low] = db.session.scalars(db.select(Notification).where(Notification.event == "credits_low"))
    assert low.subject == "You have 1 credit left" and "You have 1 credit left." in low.body_text

    buyer = make_customer()
    placement.place_agent_order(buyer, make_package("credit", credits=1), payment_method="manual", actor=AGENT,
                        placed_by=make_agent("billing"))
    db.session.commit()
    [mail] = db.session.scalars(db.select(Notification).where(
        Notification.event == "purchase_activated", Notification.recipient == buyer.email))
    assert "Credits added: 1. You now have 1 credit." in mail.body_text and "1 credits" not in mail.body_text


def test_bulk_status_messages_count_and_name_the_status(app, billing_client):
    customer = make_customer()
    package = make_package()
    first, second = make_order(customer, package), make_order(customer, package)

    def bulk(*numbers) -> str:
        response = billing_client.post("/admin/billing/orders/bulk", data={"numbers": list(numbers),
                                                                           "status": "cancelled"})
        return page(billing_client, response.headers["Location"])

    assert "1 order set to Cancelled." in bulk(first.number)
    order_actions.back_to_pending(first, AGENT)
    db.session.commit()
    assert "2 orders set to Cancelled." in bulk(first.number, second.number)


def test_the_order_filter_asks_from_and_until(app, billing_client):
    html = page(billing_client, "/admin/billing/orders")
    assert '<label class="form-label" for="to">Until</label>' in html


# --- 8. date-only fields keep their day ----------------------------------------------------------------------

def test_a_promo_code_ends_on_the_day_it_was_given(app, billing_client):
    promo_codes.create({"code": "SUMMER", "kind": "percent", "value": "10", "valid_from": date(2026, 6, 1),
                        "valid_until": date(2026, 6, 30)}, AGENT)
    db.session.commit()
    html = page(billing_client, "/admin/billing/promo-codes")
    assert "6/1/26 – 6/30/26" in html and "7/1/26" not in html


def test_the_date_filter_keeps_a_date_and_shows_a_moment_in_istanbul(app):
    with app.test_request_context():
        shown = render_template_string("{{ day | date('short') }} {{ moment | date('short') }}",
                                       day=date(2026, 6, 30), moment=datetime(2026, 6, 30, 21, 0, tzinfo=UTC))
    assert shown == "6/30/26 7/1/26"
