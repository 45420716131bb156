"""Notification pages through the test client, against the real SMTP server and SMS provider of tests/mail.py:
Settings → E-mail and SMS, test sends, the outbox, password reset and e-mail confirmation links, the order mails
an agent or the API asks for, and the team's mail (with CC) and SMS on a bank transfer activation request."""
import re

import pytest

from limonbilling.extensions import db
from limonbilling.models import Agent, AuditEntry, Customer, Notification, Order
from limonbilling.services import api_tokens, audit, bank_transfer, outbox, placement, settings

from ..factories import PASSWORD, make_agent, make_customer, make_package, sign_in
from ..mail import SmtpServer

SYSTEM = audit.Actor.system("test")
SETTINGS = "/admin/settings/notifications"
TEST_EMAIL, TEST_SMS = f"{SETTINGS}/test/email", f"{SETTINGS}/test/sms"
FORM = {"smtp_host": "smtp.limon.example", "smtp_port": "2525", "smtp_security": "starttls",
        "smtp_username": "mailer", "smtp_password": "", "smtp_from_address": "Billing@Limon.Example",
        "smtp_from_name": "Limon Fatura", "notification_max_attempts": "5", "low_credit_threshold": "3",
        "sms_method": "POST", "sms_url": "", "sms_parameters": "to={phone}\nmessage={message}",
        "sms_username": "", "sms_password": "", "sms_agent_phone": ""}


def text(response) -> str:
    return response.get_data(as_text=True)


def shown(client, url: str, data: dict | None = None) -> str:
    """The page a visitor ends on after a GET (or a POST of `data`) and its redirects."""
    response = client.get(url) if data is None else client.post(url, data=data)
    return text(client.get(response.headers["Location"]) if response.status_code == 302 else response)


def link_in(body: str, path: str) -> str:
    """The path of the first absolute link to `path/<token>` in a mail's text."""
    return re.search(rf"https?://[^/\s]+({re.escape(path)}/[A-Za-z0-9_.\-]+)", body).group(1)


def invalid_fields(page: str) -> set[str]:
    """Ids of the inputs the page marks invalid (the error is shown next to them)."""
    return {re.search(r'id="([^"]+)"', tag).group(1)
            for tag in re.findall(r"<(?:input|select|textarea)\b[^>]*>", page) if "is-invalid" in tag}


def mailed_reset_link(client, smtp_server, address: str, area: str = "") -> str:
    """Ask for a reset link on the area's page, deliver the outbox and return the link's path."""
    client.post(f"{area}/forgot-password", data={"email": address})
    outbox.send_due()
    return link_in(smtp_server.to(address)[-1].text(), f"{area}/reset-password")


def rows(**where) -> list[Notification]:
    db.session.expire_all()
    return list(db.session.scalars(db.select(Notification).filter_by(**where).order_by(Notification.id)))


@pytest.fixture
def admin(client):
    sign_in(client, make_agent("settings"))
    return client


# --- 1. Settings → E-mail and SMS --------------------------------------------------------------------------

def test_the_settings_page_needs_the_settings_permission(client):
    sign_in(client, make_agent("billing"))
    assert client.get(SETTINGS).status_code == 403
    assert client.post(SETTINGS, data=FORM).status_code == 403
    assert client.post(f"{SETTINGS}/test/email", data={"email-recipient": "a@b.co"}).status_code == 403
    assert client.get("/admin/notifications").status_code == 403
    assert settings.get("smtp_host") == ""


def test_saving_the_smtp_settings_stores_them_and_shows_them_again(admin):
    assert "E-mails wait in the outbox until an SMTP server and a sender address are saved." in shown(admin, SETTINGS)
    email = shown(admin, TEST_EMAIL, {"email-recipient": "ops@example.com"})  # a test before the settings: refused
    assert "Fill in and save the SMTP server and the sender address first." in email
    sms = shown(admin, TEST_SMS, {"sms-recipient": "0532 111 22 33"})
    assert "Switch SMS on and save the provider&#39;s address first." in sms
    page = shown(admin, SETTINGS, FORM)
    assert "Notification settings are saved." in page and "E-mails are sent." in page
    stored = settings.get_all()
    assert (stored["smtp_host"], stored["smtp_port"], stored["smtp_security"], stored["smtp_username"],
            stored["smtp_from_address"], stored["smtp_from_name"], stored["notification_max_attempts"]) == (
        "smtp.limon.example", 2525, "starttls", "mailer", "billing@limon.example", "Limon Fatura", 5)
    assert 'value="smtp.limon.example"' in page and 'value="2525"' in page and 'value="billing@limon.example"' in page


def test_the_passwords_are_write_only(admin):
    admin.post(SETTINGS, data={**FORM, "smtp_password": "smtp-Secret-1", "sms_password": "sms-Secret-2"})
    assert (settings.get("smtp_password"), settings.get("sms_password")) == ("smtp-Secret-1", "sms-Secret-2")
    page = text(admin.get(SETTINGS))
    assert "smtp-Secret-1" not in page and "sms-Secret-2" not in page
    assert page.count("A password is stored; leave empty to keep it.") == 2
    audited = " ".join(str(entry.details) for entry in db.session.scalars(db.select(AuditEntry)))
    assert "smtp_password" in audited and "smtp-Secret-1" not in audited
    admin.post(SETTINGS, data={**FORM, "smtp_port": "465", "smtp_security": "ssl"})
    assert (settings.get("smtp_port"), settings.get("smtp_password"), settings.get("sms_password")) == (
        465, "smtp-Secret-1", "sms-Secret-2")
    admin.post(SETTINGS, data={**FORM, "smtp_password": "smtp-Other-3"})
    assert (settings.get("smtp_password"), settings.get("sms_password")) == ("smtp-Other-3", "sms-Secret-2")
    refused = admin.post(SETTINGS, data={**FORM, "smtp_port": "0", "smtp_password": "typed-4"})
    assert "typed-4" not in text(refused) and settings.get("smtp_password") == "smtp-Other-3"


SMS_ON = {"sms_enabled": "y", "sms_url": "https://sms.example.com/send"}


@pytest.mark.parametrize(("change", "field", "message"), [
    ({"smtp_port": "0"}, "smtp_port", "Enter a number from 1 to 65535."),
    ({"smtp_port": "70000"}, "smtp_port", "Enter a number from 1 to 65535."),
    ({"smtp_from_address": "billing-at-limon"}, "smtp_from_address", "Enter a valid e-mail address"),
    ({"smtp_from_address": ""}, "smtp_from_address", "Needed to send e-mail."),
    ({"sms_enabled": "y"}, "sms_url", "Needed to send SMS."),
    ({**SMS_ON, "sms_url": "ftp://sms.example.com"}, "sms_url", "Enter an address starting with https://"),
    ({**SMS_ON, "sms_parameters": "to={phone}\ntext=hello"}, "sms_parameters", "Put {message} where the text goes"),
    ({"sms_agent_phone": "12"}, "sms_agent_phone", "Enter a valid phone number"),
])
def test_bad_settings_show_the_error_at_the_field_and_store_nothing(admin, change, field, message):
    before = settings.get_all()
    response = admin.post(SETTINGS, data={**FORM, "smtp_password": "new-pass-1", **change})
    page = text(response)
    assert response.status_code == 200 and message in page and field in invalid_fields(page)
    db.session.expire_all()
    assert settings.get_all() == before


# --- 2. Test sends -----------------------------------------------------------------------------------------

def test_a_test_email_goes_straight_to_the_smtp_server_or_shows_its_error(admin, smtp_server):
    assert "A test was sent to Ops@Example.com." in shown(admin, TEST_EMAIL, {"email-recipient": "Ops@Example.com"})
    [mail] = smtp_server.received
    assert mail.rcpt_tos == ["ops@example.com"] and mail.subject == "Test e-mail from LimonBilling"
    assert "billing@limon.example" in mail.message["From"] and "127.0.0.1" in mail.text()
    assert rows() == []  # not through the outbox
    refused = shown(admin, TEST_EMAIL, {"email-recipient": "ops-at-example"})
    assert "Enter a valid e-mail address, like name@example.com." in refused
    assert "Enter where the test should go." in shown(admin, TEST_EMAIL, {"email-recipient": ""})
    smtp_server.stop()
    down = shown(admin, TEST_EMAIL, {"email-recipient": "ops@example.com"})
    assert "The test to ops@example.com failed: ConnectionRefusedError" in down
    assert len(smtp_server.received) == 1


def test_a_test_sms_reaches_the_provider(admin, sms_provider):
    assert "A test was sent to 0532 111 22 33." in shown(admin, TEST_SMS, {"sms-recipient": "0532 111 22 33"})
    [request] = sms_provider.requests
    assert (request["method"], request["to"], request["message"], request["sender"]) == (
        "POST", "905321112233", "Test SMS from LimonBilling", "LIMON")
    refused = shown(admin, TEST_SMS, {"sms-recipient": "12"})
    assert "Enter a valid phone number" in refused and len(sms_provider.requests) == 1


# --- 3. The outbox -----------------------------------------------------------------------------------------

def _order(customer, package, **options) -> Order:
    order = placement.place_agent_order(customer, package, payment_method="manual", actor=SYSTEM, **options)
    db.session.commit()
    return order


def test_the_outbox_lists_and_filters_and_counts_the_mails_waiting_for_smtp(admin, sms_provider):
    make_customer(email="first@example.com")
    buyer = make_customer(email="second@example.com", phone="0532 987 65 43")
    order = _order(buyer, make_package("credit", name="Gümüş"))
    page = text(admin.get("/admin/notifications"))
    assert "No SMTP server is set up: 3 e-mails are waiting." in page  # 2 welcomes + the purchase; not the SMS
    assert "first@example.com" in page and "SMS +905329876543" in page and "Waiting" in page

    def listed(**query) -> str:
        return text(admin.get("/admin/notifications", query_string=query)).split("<tbody>")[-1]

    assert "SMS +905329876543" in listed(channel="sms") and "first@example.com" not in listed(channel="sms")
    welcomes = listed(event="welcome")
    assert "first@example.com" in welcomes and "purchase_activated" not in welcomes
    assert "first@example.com" in listed(q="FIRST@") and "second@example.com" not in listed(q="first@")
    by_order = listed(q=order.number)
    assert "second@example.com" in by_order and "+905329876543" in by_order and "welcome" not in by_order
    assert "No messages match." in listed(state="sent") and "first@example.com" in listed(state="pending")


def test_saving_smtp_settings_on_the_page_releases_the_waiting_mail(admin):
    make_customer(email="early@example.com")
    assert "1 e-mail is waiting" in text(admin.get("/admin/notifications"))
    assert outbox.send_due().sent == 0 and rows()[0].state == "pending"
    server = SmtpServer().start()
    try:
        admin.post(SETTINGS, data={**FORM, "smtp_host": "127.0.0.1", "smtp_port": server.port,
                                   "smtp_security": "none", "smtp_username": ""})
        assert "No SMTP server is set up" not in text(admin.get("/admin/notifications"))
        assert outbox.send_due().sent == 1
        [mail] = server.to("early@example.com")
        assert mail.subject == "Welcome to LimonBilling" and "Limon Fatura" in mail.message["From"]
    finally:
        server.stop()
    assert "Sent" in text(admin.get("/admin/notifications?state=sent"))


def test_a_failed_message_is_retried_and_then_delivered(admin, smtp_server):
    order = _order(make_customer(email="late@example.com"), make_package("credit"))
    row = rows(event="purchase_activated")[0]
    row.state, row.attempts, row.last_error = "failed", 8, "SMTP 552: mailbox full"
    db.session.commit()
    outbox.send_due()  # delivers the welcome, not the failed row
    assert [mail.subject for mail in smtp_server.to("late@example.com")] == ["Welcome to LimonBilling"]
    listing = text(admin.get("/admin/notifications?state=failed"))
    assert "SMTP 552: mailbox full" in listing and "Retry" in listing and "welcome" not in listing.split("<tbody>")[1]
    detail = text(admin.get(f"/admin/notifications/{row.id}"))
    assert "Retry" in detail and order.number in detail
    assert admin.post(f"/admin/notifications/{row.id}/retry").headers["Location"] == f"/admin/notifications/{row.id}"
    assert "The message to late@example.com is queued again." in shown(admin, f"/admin/notifications/{row.id}")
    assert (rows(id=row.id)[0].state, rows(id=row.id)[0].attempts) == ("pending", 0)
    assert outbox.send_due().sent == 1
    assert rows(id=row.id)[0].state == "sent"
    assert any(order.number in mail.text() for mail in smtp_server.to("late@example.com")[1:])
    again = shown(admin, f"/admin/notifications/{row.id}/retry", {"back": "list"})
    assert "Only a failed message can be sent again." in again and rows(id=row.id)[0].state == "sent"


def test_the_detail_shows_ordinary_mail_but_never_a_personal_link(admin):
    customer = make_customer(email="reader@example.com")
    order = _order(customer, make_package("credit", name="Altın"), send_confirmation=True)
    confirmation = rows(event="order_confirmation")[0]
    page = text(admin.get(f"/admin/notifications/{confirmation.id}"))
    assert f"Order confirmation {order.number}" in page and "Plain text" in page and "Altın" in page
    assert f'<iframe class="mail-preview mb-4" sandbox src="/admin/notifications/{confirmation.id}/preview"' in page
    preview = admin.get(f"/admin/notifications/{confirmation.id}/preview")
    assert preview.status_code == 200 and order.number in text(preview)
    assert "sandbox" in preview.headers["Content-Security-Policy"]
    admin.post("/forgot-password", data={"email": "reader@example.com"})
    for event, link in (("welcome", "/verify-email/"), ("password_reset", "/reset-password/")):
        row = rows(event=event)[0]
        assert link in row.body_text and row.sensitive
        page = text(admin.get(f"/admin/notifications/{row.id}"))
        assert "its text is not shown here" in page and link not in page and "<iframe" not in page
        assert row.body_text.splitlines()[0] not in page
        assert admin.get(f"/admin/notifications/{row.id}/preview").status_code == 404


# --- 4. Password reset -------------------------------------------------------------------------------------

def test_a_customer_resets_the_password_by_the_mailed_link(client, smtp_server):
    customer = make_customer(email="ayse@example.com")
    known = client.post("/forgot-password", data={"email": "ayse@example.com"})
    unknown = client.post("/forgot-password", data={"email": "nobody@example.com"})
    assert known.status_code == unknown.status_code == 302
    assert known.headers["Location"] == unknown.headers["Location"] == "/login"
    flashed = text(client.get("/login"))
    assert "If ayse@example.com has an account, a link to choose a new password is on its way." in flashed
    assert "If nobody@example.com has an account" in flashed
    assert [(row.recipient, row.customer_id) for row in rows(event="password_reset")] == [
        ("ayse@example.com", customer.id)]
    outbox.send_due()
    [mail] = [mail for mail in smtp_server.received if mail.subject == "Choose a new password"]
    assert mail.rcpt_tos == ["ayse@example.com"] and not smtp_server.to("nobody@example.com")
    link = link_in(mail.text(), "/reset-password")
    assert link in mail.html()
    assert "For the account ayse@example.com." in text(client.get(link))
    assert "The two passwords differ." in text(client.post(link, data={"password": "new-pass-1", "confirm": "x"}))
    assert "Use at least 10 characters." in text(client.post(link, data={"password": "a1", "confirm": "a1"}))
    letters_only = {"password": "abcdefghij", "confirm": "abcdefghij"}
    assert "Use letters and at least one digit" in shown(client, link, letters_only)
    assert db.session.get(Customer, customer.id).check_password(PASSWORD)
    done = shown(client, link, {"password": "new-pass-1", "confirm": "new-pass-1"})
    assert "Your new password is set and you are signed in." in done and "ayse@example.com" in done
    client.post("/logout")
    old = client.post("/login", data={"email": "ayse@example.com", "password": PASSWORD})
    assert old.status_code == 200 and "The e-mail address or the password is wrong." in text(old)
    assert client.post("/login", data={"email": "ayse@example.com", "password": "new-pass-1"}).status_code == 302
    assert "This link has been used or is not valid; ask for a new one." in shown(client, link)
    token = link.rsplit("/", 1)[1]
    tampered = shown(client, f"/reset-password/{token[:-4]}{'AAAA' if token[-4:] != 'AAAA' else 'BBBB'}")
    assert "This link is not valid; check that it was copied whole." in tampered


def test_reset_and_confirmation_links_expire(client, smtp_server, clock, app):
    customer = make_customer(email="slow@example.com")
    link = mailed_reset_link(client, smtp_server, "slow@example.com")
    verify_link = link_in(smtp_server.to("slow@example.com")[0].text(), "/verify-email")
    clock.advance(seconds=app.config["PASSWORD_RESET_MAX_AGE"])
    assert "For the account slow@example.com." in text(client.get(link))  # exactly at the limit: still good
    clock.advance(seconds=1)
    expired = shown(client, link, {"password": "new-pass-1", "confirm": "new-pass-1"})
    assert "This link has expired; ask for a new one." in expired
    assert db.session.get(Customer, customer.id).check_password(PASSWORD)
    clock.advance(seconds=app.config["EMAIL_VERIFICATION_MAX_AGE"] - app.config["PASSWORD_RESET_MAX_AGE"])
    assert "This link has expired; ask for a new one." in shown(client, verify_link)
    assert db.session.get(Customer, customer.id).email_verified_at is None


def test_an_agent_resets_the_password_on_the_agent_pages(client, smtp_server):
    agent = make_agent("billing", email="zeynep@example.com")
    make_agent("billing", email="gone@example.com", active=False)
    for address in ("zeynep@example.com", "gone@example.com", "nobody@example.com"):
        response = client.post("/admin/forgot-password", data={"email": address})
        assert response.headers["Location"] == "/admin/login"
    client.post("/forgot-password", data={"email": "zeynep@example.com"})  # the customers' page: no such customer
    assert [row.recipient for row in rows(event="password_reset")] == ["zeynep@example.com"]
    outbox.send_due()
    link = link_in(smtp_server.to("zeynep@example.com")[0].text(), "/admin/reset-password")
    assert "For the account zeynep@example.com." in text(client.get(link))
    assert "The two passwords differ." in text(client.post(link, data={"password": "agent-pass-9", "confirm": "x"}))
    response = client.post(link, data={"password": "agent-pass-9", "confirm": "agent-pass-9"})
    assert response.headers["Location"] == "/admin/"
    assert client.get("/admin/").status_code == 200
    client.post("/admin/logout")
    assert client.post("/admin/login", data={"email": agent.email, "password": PASSWORD}).status_code == 200
    assert db.session.get(Agent, agent.id).check_password("agent-pass-9")
    assert client.get(link).headers["Location"] == "/admin/forgot-password"


def test_a_reset_link_works_only_in_its_own_area(client, smtp_server):
    customer = make_customer(email="mixed@example.com")
    token = mailed_reset_link(client, smtp_server, "mixed@example.com").rsplit("/", 1)[1]
    response = client.post(f"/admin/reset-password/{token}", data={"password": "new-pass-1", "confirm": "new-pass-1"})
    assert response.headers["Location"] == "/admin/forgot-password"
    assert db.session.get(Customer, customer.id).check_password(PASSWORD)


def test_an_account_opened_by_an_agent_gets_a_set_password_link_that_lasts_days(client, smtp_server, clock, app):
    sign_in(client, make_agent("customers"))
    client.post("/admin/customers/new", data={"account_type": "individual", "first_name": "Can", "last_name": "Ak",
                                              "email": "made@example.com", "phone": "0532 123 45 67", "language": ""})
    client.post("/admin/logout")
    outbox.send_due()
    [welcome] = smtp_server.to("made@example.com")
    assert "Our team opened this account for you. Choose your password here:" in welcome.text()
    link = link_in(welcome.text(), "/reset-password")
    clock.advance(seconds=app.config["PASSWORD_RESET_MAX_AGE"] * 5)  # an ordinary reset link would be dead
    done = shown(client, link, {"password": "chosen-pass-1", "confirm": "chosen-pass-1"})
    assert "Your new password is set and you are signed in." in done
    customer = db.session.scalars(db.select(Customer).where(Customer.email == "made@example.com")).one()
    assert customer.check_password("chosen-pass-1") and customer.email_verified_at == clock.now()


# --- 5. E-mail confirmation --------------------------------------------------------------------------------

REGISTRATION = {"account_type": "individual", "first_name": "Deniz", "last_name": "Kaya", "email": "deniz@example.com",
                "phone": "0532 123 45 67", "password": PASSWORD, "password_again": PASSWORD, "language": ""}


def test_registration_sends_a_welcome_whose_link_confirms_the_address(client, smtp_server, clock):
    client.post("/register", data=REGISTRATION)
    client.post("/login", data={"email": "deniz@example.com", "password": PASSWORD})
    customer = db.session.scalars(db.select(Customer).where(Customer.email == "deniz@example.com")).one()
    [welcome] = rows(event="welcome")
    assert (welcome.recipient, welcome.state, welcome.sensitive) == ("deniz@example.com", "pending", True)
    assert "Not confirmed yet" in text(client.get("/profile"))
    client.post("/profile/verify-email")
    assert [row.recipient for row in rows(event="email_verification")] == ["deniz@example.com"]
    assert "A new confirmation link is on its way to deniz@example.com." in text(client.get("/profile"))
    outbox.send_due()
    welcome_mail = [mail for mail in smtp_server.to("deniz@example.com") if mail.subject.startswith("Welcome")][0]
    link = link_in(welcome_mail.text(), "/verify-email")
    clock.advance(hours=2)
    confirmed = shown(client, link)
    assert "Thank you: your e-mail address is confirmed." in confirmed and "Not confirmed yet" not in confirmed
    assert db.session.get(Customer, customer.id).email_verified_at == clock.now()
    client.post("/profile/verify-email")
    assert len(rows(event="email_verification")) == 1  # confirmed: nothing more to send


def test_a_new_address_needs_a_new_link(client, smtp_server):
    customer = make_customer(email="old@example.com")
    outbox.send_due()
    old_link = link_in(smtp_server.to("old@example.com")[0].text(), "/verify-email")
    sign_in(client, customer)
    asked = shown(client, "/profile/email", {"email-new_email": "new@example.com", "email-password": PASSWORD})
    assert "A link to confirm new@example.com is on its way there" in asked
    outbox.send_due()
    [mail] = smtp_server.to("new@example.com")
    assert mail.subject == "Confirm your new e-mail address"
    [notice] = [mail for mail in smtp_server.to("old@example.com") if mail.subject != "Welcome to LimonBilling"]
    assert notice.subject == "Your e-mail address is being changed"
    assert "Your e-mail address is now new@example.com." in shown(client, link_in(mail.text(), "/confirm-email"))
    assert db.session.get(Customer, customer.id).email_verified_at is not None  # the link reached the inbox
    assert "This link is not valid any more; ask for a new one from your profile." in shown(client, old_link)


# --- 6. The order mails an agent or the API asks for ----------------------------------------------------------

ORDER_FORM = {"payment_method": "manual", "promo_code": "", "price_override": "", "create_invoice": "y"}


def _mail_subjects(smtp_server, address: str) -> list[str]:
    return [mail.subject for mail in smtp_server.to(address)]


def test_an_agent_places_an_order_with_or_without_the_mails(client, smtp_server):
    sign_in(client, make_agent("billing"))
    package = make_package("credit", name="Bronz")
    buyer = make_customer(email="buyer@example.com")
    placed = shown(client, f"/admin/billing/customers/{buyer.id}/orders/new",
                   {**ORDER_FORM, "package_id": package.id, "send_confirmation": "y", "send_invoice": "y"})
    number = db.session.scalars(db.select(Order.number).where(Order.customer_id == buyer.id)).one()
    assert f"Order {number} is placed." in placed
    outbox.send_due()
    subjects = _mail_subjects(smtp_server, "buyer@example.com")
    assert f"Order confirmation {number}" in subjects and f"Invoice for order {number}" in subjects
    invoice_mail = [mail for mail in smtp_server.to("buyer@example.com") if mail.subject.startswith("Invoice")][0]
    assert f"/orders/{number}/invoice" in invoice_mail.text()
    quiet = make_customer(email="quiet@example.com")
    client.post(f"/admin/billing/customers/{quiet.id}/orders/new", data={**ORDER_FORM, "package_id": package.id})
    no_invoice = make_customer(email="noinvoice@example.com")
    client.post(f"/admin/billing/customers/{no_invoice.id}/orders/new",
                data={"payment_method": "manual", "package_id": package.id, "send_invoice": "y"})
    outbox.send_due()
    for address in ("quiet@example.com", "noinvoice@example.com"):
        assert db.session.scalars(db.select(Order).join(Customer).where(Customer.email == address)).one()
        assert not [s for s in _mail_subjects(smtp_server, address) if s.startswith(("Order confirmation", "Invoice"))]


def test_the_api_queues_the_confirmation_when_asked_and_checks_the_flag(client, smtp_server):
    _record, plain = api_tokens.create_token("Help desk", ["read", "write"], SYSTEM)
    db.session.commit()
    auth = {"Authorization": f"Bearer {plain}"}
    customer = make_customer(email="api@example.com")
    package = make_package("credit")
    body = {"customer_id": customer.id, "package_id": package.id, "payment_method": "manual"}
    for flag, value in (("send_confirmation", "yes"), ("send_confirmation", 1), ("send_invoice", "true")):
        refused = client.post("/api/v1/orders", headers=auth, json={**body, flag: value})
        assert refused.status_code == 422 and flag in refused.json["error"]["fields"]
    assert db.session.scalar(db.select(db.func.count(Order.id))) == 0
    created = client.post("/api/v1/orders", headers=auth, json={**body, "send_confirmation": True})
    assert created.status_code == 201, created.json
    number = created.json["number"]
    assert [(row.recipient, row.order_number) for row in rows(event="order_confirmation")] == [
        ("api@example.com", number)]
    assert rows(event="invoice_issued") == []
    outbox.send_due()
    assert f"Order confirmation {number}" in _mail_subjects(smtp_server, "api@example.com")


# --- 7. The team hears of a bank transfer activation request ----------------------------------------------------

def test_an_activation_request_mails_the_team_with_cc_and_texts_the_agents_phone(client, smtp_server, sms_provider):
    sign_in(client, make_agent("settings"))
    assert "The settings are saved." in shown(client, "/admin/settings/general", {
        "company_name": "LimonBilling", "notification_email": "Billing@Limon.Example",
        "notification_email_cc": "boss@limon.example; audit@limon.example", "default_language": "en",
        "renewal_window_days": "30"})
    sms_provider.configure(sms_agent_phone="+905551112233")
    bank_transfer.add_account(bank_name="Ziraat", account_holder="Limon", iban="TR330006100519786457841326",
                              currency="TRY", actor=SYSTEM)
    db.session.commit()
    customer = make_customer(phone="0532 123 45 67")
    package = make_package("credit", price="150.00")
    client.post("/admin/logout")
    sign_in(client, customer)
    placed = client.post(f"/checkout/{package.id}/transfer", data={"accept_contracts": "y"})
    number = placed.headers["Location"].rsplit("/", 1)[1]
    for _ in range(2):  # asking twice tells the team once
        client.post(f"/orders/{number}/activation-request",
                    data={"email": customer.email, "phone": "0532 123 45 67", "note": "Gönderen: Ayşe"})
    outbox.send_due()
    [mail] = smtp_server.to("billing@limon.example")
    assert (mail.message["To"], mail.message["Cc"]) == ("billing@limon.example",
                                                        "boss@limon.example, audit@limon.example")
    assert sorted(mail.rcpt_tos) == ["audit@limon.example", "billing@limon.example", "boss@limon.example"]
    assert number in mail.subject and "Gönderen: Ayşe" in mail.text()
    assert len(smtp_server.to("boss@limon.example")) == 1  # one mail, not one per address
    [sms] = [request for request in sms_provider.requests if request["to"] == "905551112233"]
    assert number in sms["message"]


def test_the_order_page_lists_its_messages(client):
    sign_in(client, make_agent("billing", "settings"))
    customer = make_customer()
    order = placement.place_agent_order(customer, make_package("credit"), payment_method="manual",
                                actor=audit.Actor.system("test"))
    db.session.commit()
    page = client.get(f"/admin/billing/orders/{order.number}").get_data(as_text=True)
    assert "E-mails and SMS of this order" in page and customer.email in page.split("E-mails and SMS")[1]


def test_an_agent_sets_a_customers_own_low_credit_threshold(client):
    sign_in(client, make_agent("billing"))
    customer = make_customer()
    url = f"/admin/billing/subscriptions/{customer.id}/low-credit-threshold"
    assert "The low-credit warning threshold is saved." in shown(client, url, {"low_credit_threshold": "12"})
    assert db.session.get(Customer, customer.id).low_credit_threshold == 12
    refused = client.post(url, data={"low_credit_threshold": "-1"})
    assert refused.status_code == 422 and db.session.get(Customer, customer.id).low_credit_threshold == 12
    client.post(url, data={"low_credit_threshold": ""})
    assert db.session.get(Customer, customer.id).low_credit_threshold is None
    assert "Empty: the global setting (5)." in client.get(f"/admin/billing/subscriptions/{customer.id}").get_data(
        as_text=True)
