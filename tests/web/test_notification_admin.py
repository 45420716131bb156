"""Notification pages through the test client: settings with write-only passwords and test sends, the
outbox with filters and retry, password reset and e-mail confirmation links, the agent's order options."""
import re

import pytest

from limonbilling.extensions import db
from limonbilling.models import Agent, Customer, Notification
from limonbilling.services import orders, outbox, settings

from ..factories import PASSWORD, make_agent, make_customer, make_package, sign_in
from ..payment_support import AGENT

SETTINGS = {"smtp_host": "mail.example.com", "smtp_port": "587", "smtp_security": "starttls",
            "smtp_username": "billing", "smtp_password": "", "smtp_from_address": "billing@example.com",
            "smtp_from_name": "", "notification_max_attempts": "8", "low_credit_threshold": "5",
            "sms_method": "POST", "sms_url": "", "sms_parameters": "to={phone}\nmessage={message}",
            "sms_username": "", "sms_password": "", "sms_agent_phone": ""}


def page_of(response) -> str:
    return response.get_data(as_text=True)


def link_in(text: str, path: str) -> str:
    return re.search(rf"https?://[^/\s]+({path}/[A-Za-z0-9_.\-]+)", text).group(1)


@pytest.fixture
def admin(client):
    sign_in(client, make_agent("settings", "billing"))
    return client


# --- Settings → E-mail and SMS ----------------------------------------------------------------------

def test_settings_need_the_settings_permission(client):
    sign_in(client, make_agent("billing"))
    assert client.get("/admin/settings/notifications").status_code == 403
    assert client.get("/admin/notifications").status_code == 403


def test_the_smtp_password_is_write_only(admin):
    response = admin.post("/admin/settings/notifications", data={**SETTINGS, "smtp_password": "s3cret-pw"})
    assert response.status_code == 302
    assert settings.get("smtp_host") == "mail.example.com" and settings.get("smtp_password") == "s3cret-pw"
    page = page_of(admin.get("/admin/settings/notifications"))
    assert "s3cret-pw" not in page and "A password is stored; leave empty to keep it." in page
    admin.post("/admin/settings/notifications", data={**SETTINGS, "smtp_port": "465", "smtp_security": "ssl"})
    assert settings.get("smtp_password") == "s3cret-pw" and settings.get("smtp_port") == 465
    admin.post("/admin/settings/notifications", data={**SETTINGS, "smtp_password": "new-pw-2"})
    assert settings.get("smtp_password") == "new-pw-2"


@pytest.mark.parametrize(("change", "field", "message"), [
    ({"smtp_port": "0"}, "smtp_port", "Number must be between 1 and 65535."),
    ({"smtp_from_address": "not-an-address"}, "smtp_from_address", "Enter a valid e-mail address"),
    ({"sms_enabled": "y"}, "sms_url", "Needed to send SMS."),
    ({"sms_enabled": "y", "sms_url": "https://sms.example.com/send", "sms_parameters": "to={phone}"},
     "sms_parameters", "Put {message} where the text goes"),
    ({"sms_agent_phone": "12"}, "sms_agent_phone", "Enter a valid phone number"),
])
def test_bad_settings_are_refused_next_to_the_field_and_nothing_is_stored(admin, change, field, message):
    response = admin.post("/admin/settings/notifications", data={**SETTINGS, **change})
    page = page_of(response)
    assert response.status_code == 200 and message in page
    assert settings.get("smtp_host") == ""  # nothing saved


def test_test_sends_reach_the_real_servers_or_show_the_error(admin, smtp_server, sms_provider):
    response = admin.post("/admin/settings/notifications/test/email", data={"email-recipient": "me@example.com"},
                          follow_redirects=True)
    assert "A test was sent to me@example.com." in page_of(response)
    assert smtp_server.to("me@example.com")[0].subject == "Test e-mail from LimonBilling"

    response = admin.post("/admin/settings/notifications/test/sms", data={"sms-recipient": "0532 111 22 33"},
                          follow_redirects=True)
    assert "A test was sent to 0532 111 22 33." in page_of(response)
    assert sms_provider.requests[-1]["to"] == "905321112233"

    smtp_server.stop()
    response = admin.post("/admin/settings/notifications/test/email", data={"email-recipient": "me@example.com"},
                          follow_redirects=True)
    assert "The test to me@example.com failed: ConnectionRefusedError" in page_of(response)
    response = admin.post("/admin/settings/notifications/test/email", data={"email-recipient": "nope"},
                          follow_redirects=True)
    assert "Enter a valid e-mail address" in page_of(response)


# --- the outbox ---------------------------------------------------------------------------------------

def test_the_outbox_lists_filters_and_waits_for_smtp(admin):
    make_customer(email="first@example.com")
    second = make_customer(email="second@example.com")
    order = orders.create_order(
        second, make_package("credit"), payment_method="manual", actor=AGENT)
    db.session.commit()
    page = page_of(admin.get("/admin/notifications"))
    assert "No SMTP server is set up: 3 e-mails are waiting." in page
    assert "first@example.com" in page and "second@example.com" in page
    by_recipient = page_of(admin.get("/admin/notifications?q=first@"))
    assert "first@example.com" in by_recipient and "second@example.com" not in by_recipient
    by_order = page_of(admin.get(f"/admin/notifications?q={order.number}"))
    assert "purchase_activated" in by_order and "welcome" not in by_order.split("<tbody>")[1]
    assert "No messages match." in page_of(admin.get("/admin/notifications?state=failed"))


def test_a_failed_message_is_retried_by_an_agent(admin, smtp_server):
    make_customer(email="late@example.com")
    row = db.session.scalars(db.select(Notification)).one()
    row.state, row.attempts, row.last_error = "failed", 8, "SMTP 550: mailbox full"
    db.session.commit()
    page = page_of(admin.get("/admin/notifications?state=failed"))
    assert "SMTP 550: mailbox full" in page and "Retry" in page
    response = admin.post(f"/admin/notifications/{row.id}/retry", data={"back": "list"}, follow_redirects=True)
    assert "The message to late@example.com is queued again." in page_of(response)
    db.session.refresh(row)
    assert (row.state, row.attempts) == ("pending", 0)
    assert outbox.send_due().sent == 1 and smtp_server.to("late@example.com")
    again = admin.post(f"/admin/notifications/{row.id}/retry", follow_redirects=True)
    assert "Only a failed message can be sent again." in page_of(again)


def test_the_detail_shows_the_mail_but_hides_personal_links(admin):
    customer = make_customer()
    order = orders.create_order(
        customer, make_package("credit", name="Altın"), payment_method="manual", actor=AGENT)
    db.session.commit()
    purchase = db.session.scalars(db.select(Notification).where(Notification.event == "purchase_activated")).one()
    page = page_of(admin.get(f"/admin/notifications/{purchase.id}"))
    assert order.number in page and "Altın" in page and f"/admin/notifications/{purchase.id}/preview" in page
    welcome = db.session.scalars(db.select(Notification).where(Notification.event == "welcome")).one()
    page = page_of(admin.get(f"/admin/notifications/{welcome.id}"))
    assert "its text is not shown here" in page and "/verify-email/" not in page


def test_the_order_page_lists_its_messages(admin):
    customer = make_customer()
    order = orders.create_order(
        customer, make_package("credit"), payment_method="manual", actor=AGENT)
    db.session.commit()
    page = page_of(admin.get(f"/admin/billing/orders/{order.number}"))
    assert "E-mails and SMS of this order" in page and customer.email in page.split("E-mails and SMS")[1]


# --- password reset and e-mail confirmation --------------------------------------------------------------

def test_a_customer_resets_the_password_by_the_mailed_link(client, smtp_server, clock):
    customer = make_customer(email="ayse@example.com")
    for address in ("ayse@example.com", "nobody@example.com"):
        response = client.post("/forgot-password", data={"email": address}, follow_redirects=True)
        assert f"If {address} has an account, a link to choose a new password is on its way." in page_of(response)
    outbox.send_due()
    resets = [mail for mail in smtp_server.received if mail.subject == "Choose a new password"]
    assert [mail.rcpt_tos for mail in resets] == [["ayse@example.com"]]
    link = link_in(resets[0].text(), "/reset-password")

    assert "For the account ayse@example.com." in page_of(client.get(link))
    mismatch = client.post(link, data={"password": "brand-new-1", "confirm": "brand-new-2"})
    assert "The two passwords differ." in page_of(mismatch)
    weak = client.post(link, data={"password": "short", "confirm": "short"})
    assert "Use at least 8 characters." in page_of(weak)
    done = client.post(link, data={"password": "brand-new-1", "confirm": "brand-new-1"}, follow_redirects=True)
    assert "Your new password is set and you are signed in." in page_of(done)
    db.session.refresh(customer)
    assert customer.check_password("brand-new-1") and not customer.check_password(PASSWORD)

    used = client.get(link, follow_redirects=True)
    assert "This link has been used or is not valid" in page_of(used)
    tampered = client.get(link[:-3] + "abc", follow_redirects=True)
    assert "This link is not valid" in page_of(tampered)


def test_a_reset_link_expires(client, smtp_server, clock, app):
    make_customer(email="ayse@example.com")
    client.post("/forgot-password", data={"email": "ayse@example.com"})
    outbox.send_due()
    link = link_in(smtp_server.received[-1].text(), "/reset-password")
    clock.advance(seconds=app.config["PASSWORD_RESET_MAX_AGE"] + 1)
    assert "This link has expired; ask for a new one." in page_of(client.get(link, follow_redirects=True))


def test_an_agent_resets_the_password_too(client, smtp_server):
    agent = make_agent("billing", email="zeynep@example.com")
    client.post("/admin/forgot-password", data={"email": "zeynep@example.com"})
    outbox.send_due()
    link = link_in(smtp_server.to("zeynep@example.com")[0].text(), "/admin/reset-password")
    response = client.post(link, data={"password": "agent-pass-9", "confirm": "agent-pass-9"})
    assert response.status_code == 302 and response.headers["Location"].endswith("/admin/")
    assert db.session.get(Agent, agent.id).check_password("agent-pass-9")


def test_registration_confirms_the_address_by_the_mailed_link(client, smtp_server):
    client.post("/register", data={
        "account_type": "individual", "first_name": "Deniz", "last_name": "Kaya", "email": "deniz@example.com",
        "phone": "0532 123 45 67", "password": PASSWORD, "password_again": PASSWORD, "language": ""})
    assert "Not confirmed yet" in page_of(client.get("/profile"))
    outbox.send_due()
    link = link_in(smtp_server.to("deniz@example.com")[0].text(), "/verify-email")
    response = client.get(link, follow_redirects=True)
    assert "Thank you: your e-mail address is confirmed." in page_of(response)
    customer = db.session.scalars(db.select(Customer).where(Customer.email == "deniz@example.com")).one()
    assert customer.email_verified_at is not None and "Confirmed" in page_of(client.get("/profile"))


def test_resending_and_changing_the_address_need_a_new_link(client, smtp_server):
    customer = make_customer(email="old@example.com")
    sign_in(client, customer)
    client.post("/profile/verify-email")
    outbox.send_due()
    assert len(smtp_server.to("old@example.com")) == 2  # the welcome and the new link
    old_link = link_in(smtp_server.to("old@example.com")[-1].text(), "/verify-email")
    client.post("/profile", data={
        "account_type": "individual", "first_name": customer.first_name, "last_name": customer.last_name,
        "email": "new@example.com", "phone": customer.phone, "language": ""})
    outbox.send_due()
    assert smtp_server.to("new@example.com")[0].subject == "Confirm your e-mail address"
    stale = client.get(old_link, follow_redirects=True)
    assert "This link is not valid any more" in page_of(stale)
    assert db.session.get(Customer, customer.id).email_verified_at is None


# --- the agent's order options and the activation request (issue 8) ------------------------------------

def test_an_agent_places_an_order_with_confirmation_and_invoice_mails(admin, smtp_server):
    customer = make_customer(email="buyer@example.com")
    package = make_package("credit")
    form = {"package_id": package.id, "payment_method": "manual", "promo_code": "", "price_override": "",
            "create_invoice": "y"}
    admin.post(f"/admin/billing/customers/{customer.id}/orders/new", data={**form, "send_confirmation": "y",
                                                                           "send_invoice": "y"})
    outbox.send_due()
    subjects = [mail.subject for mail in smtp_server.to("buyer@example.com")]
    number = db.session.scalars(db.select(Notification.order_number).where(
        Notification.event == "order_confirmation")).one()
    assert f"Order confirmation {number}" in subjects and f"Invoice for order {number}" in subjects

    other = make_customer(email="quiet@example.com")
    admin.post(f"/admin/billing/customers/{other.id}/orders/new", data=form)
    outbox.send_due()
    assert not [s for s in (mail.subject for mail in smtp_server.to("quiet@example.com"))
                if s.startswith(("Order confirmation", "Invoice"))]


def test_an_activation_request_tells_the_agents_by_mail_with_cc_and_by_sms(client, smtp_server, sms_provider):
    from limonbilling.services import bank_transfer

    settings.update({"notification_email": "billing@limon.example", "notification_email_cc": ["boss@limon.example"],
                     "sms_agent_phone": "+905551112233"}, AGENT)
    bank_transfer.add_account(bank_name="Ziraat", account_holder="Limon", iban="TR330006100519786457841326",
                              currency="TRY", actor=AGENT)
    db.session.commit()
    customer = make_customer()
    package = make_package("credit", price="150.00")
    sign_in(client, customer)
    response = client.post(f"/checkout/{package.id}/transfer")
    number = response.headers["Location"].rsplit("/", 1)[1]
    client.post(f"/orders/{number}/activation-request", data={"email": customer.email, "phone": "0532 123 45 67",
                                                              "note": "Gönderen: Ayşe"})
    outbox.send_due()
    agents = smtp_server.to("billing@limon.example")
    assert len(agents) == 1 and agents[0].message["Cc"] == "boss@limon.example"
    assert sorted(agents[0].rcpt_tos) == ["billing@limon.example", "boss@limon.example"]
    assert number in agents[0].subject and "Gönderen: Ayşe" in agents[0].text()
    assert [request["to"] for request in sms_provider.requests] == ["905551112233"]
    assert number in sms_provider.requests[0]["message"]


def test_an_agent_sets_a_customers_own_low_credit_threshold(admin):
    customer = make_customer()
    url = f"/admin/billing/subscriptions/{customer.id}/low-credit-threshold"
    response = admin.post(url, data={"low_credit_threshold": "12"}, follow_redirects=True)
    assert "The low-credit warning threshold is saved." in page_of(response)
    assert db.session.get(Customer, customer.id).low_credit_threshold == 12
    refused = admin.post(url, data={"low_credit_threshold": "-1"})
    assert refused.status_code == 422 and db.session.get(Customer, customer.id).low_credit_threshold == 12
    admin.post(url, data={"low_credit_threshold": ""})
    assert db.session.get(Customer, customer.id).low_credit_threshold is None
    assert "Empty: the global setting (5)." in page_of(admin.get(f"/admin/billing/subscriptions/{customer.id}"))
