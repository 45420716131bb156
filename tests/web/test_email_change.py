"""Changing a customer's e-mail address: the password first, the new address confirmed, the old one told.

A stolen session used to be a permanent takeover: the profile form changed the
address (the key to password resets) with no password and no word to the owner.
"""
import re

from limonbilling.extensions import db
from limonbilling.models import AuditEntry, Customer, Notification
from limonbilling.services import accounts

from ..factories import PASSWORD, make_agent, make_customer, sign_in

NEW = "yeni@example.com"


def mails(event: str) -> list[Notification]:
    return db.session.scalars(db.select(Notification).where(Notification.event == event)
                              .order_by(Notification.id)).all()


def link_in(row: Notification) -> str:
    return re.search(r"http://localhost(/confirm-email/\S+)", row.body_text).group(1)


def fresh(customer: Customer) -> Customer:
    db.session.expire_all()
    return db.session.get(Customer, customer.id)


def ask(client, email: str = NEW, password: str = PASSWORD):
    return client.post("/profile/email", data={"email-new_email": email, "email-password": password})


def test_the_profile_form_no_longer_changes_the_address(app):
    customer = make_customer(email="eski@example.com")
    client = app.test_client()
    sign_in(client, customer)
    client.post("/profile", data={"account_type": "individual", "first_name": "Ayşe", "last_name": "Yılmaz",
                                  "email": NEW, "phone": "0532 123 45 67", "language": ""})
    assert fresh(customer).email == "eski@example.com"
    assert not mails("email_verification") and not mails("email_change")


def test_the_change_needs_the_current_password(app):
    customer = make_customer(email="eski@example.com")
    client = app.test_client()
    sign_in(client, customer)
    refused = ask(client, password="not-my-password-1")
    assert refused.status_code == 422 and "This is not your current password." in refused.data.decode()
    assert fresh(customer).email == "eski@example.com" and not mails("email_change")


def test_the_new_address_is_confirmed_before_it_counts_and_the_old_one_is_told(app, clock):
    customer = make_customer(email="eski@example.com")
    here, elsewhere = app.test_client(), app.test_client()
    sign_in(here, customer)
    sign_in(elsewhere, customer)
    response = ask(here)
    assert response.status_code == 302
    assert "A link to confirm yeni@example.com is on its way" in here.get("/profile").data.decode()
    assert fresh(customer).email == "eski@example.com"  # not yet
    [confirmation] = mails("email_change")
    [notice] = mails("email_change_notice")
    assert (confirmation.recipient, confirmation.sensitive) == (NEW, True)
    assert notice.recipient == "eski@example.com" and "yeni@example.com" in notice.body_text
    assert "/confirm-email/" not in notice.body_text and "/forgot-password" in notice.body_text

    clock.advance(hours=1)
    confirmed = here.get(link_in(confirmation), follow_redirects=True)
    assert "Your e-mail address is now yeni@example.com. Sign in with it." in confirmed.data.decode()
    changed = fresh(customer)
    assert (changed.email, changed.email_verified_at) == (NEW, clock.now())
    # every session ends, and the link signs no one in: whoever holds it is not proven to hold the password
    assert here.get("/profile").status_code == elsewhere.get("/profile").status_code == 302
    assert here.post("/login", data={"email": NEW, "password": PASSWORD}).status_code == 302
    assert db.session.query(AuditEntry).filter_by(action="customer.email_changed").one().details == {
        "old": "eski@example.com", "new": NEW}

    again = app.test_client().get(link_in(confirmation), follow_redirects=True)
    assert "This link is not valid any more" in again.data.decode()  # it worked once


def test_a_link_expires_with_the_confirmation_lifetime(app, clock):
    customer = make_customer(email="eski@example.com")
    client = app.test_client()
    sign_in(client, customer)
    ask(client)
    [confirmation] = mails("email_change")
    clock.advance(seconds=app.config["EMAIL_VERIFICATION_MAX_AGE"] + 1)
    expired = client.get(link_in(confirmation), follow_redirects=True)
    assert "This link has expired" in expired.data.decode() and fresh(customer).email == "eski@example.com"


def test_an_address_of_another_account_gets_the_same_answer_and_no_link(app):
    make_customer(email="taken@example.com")
    customer = make_customer(email="eski@example.com")
    client = app.test_client()
    sign_in(client, customer)
    answer = ask(client, email="Taken@Example.com")
    assert answer.status_code == 302
    assert "A link to confirm taken@example.com is on its way" in client.get("/profile").data.decode()
    assert not mails("email_change") and [row.recipient for row in mails("email_change_notice")] == [
        "eski@example.com"]


def test_an_address_taken_between_the_request_and_the_click_is_refused(app):
    customer = make_customer(email="eski@example.com")
    client = app.test_client()
    sign_in(client, customer)
    ask(client)
    make_customer(email=NEW)
    [confirmation] = mails("email_change")
    page = client.get(link_in(confirmation), follow_redirects=True).data.decode()
    assert "already belongs to another account" in page and fresh(customer).email == "eski@example.com"


def test_an_agent_changing_a_customers_address_tells_the_old_one_and_ends_the_sessions(app):
    customer = make_customer(email="eski@example.com")
    customer_client, agent_client = app.test_client(), app.test_client()
    sign_in(customer_client, customer)
    sign_in(agent_client, make_agent("customers"))
    response = agent_client.post(f"/admin/customers/{customer.id}/edit", data={
        "account_type": "individual", "first_name": customer.first_name, "last_name": customer.last_name,
        "email": NEW, "phone": customer.phone, "language": ""})
    assert response.status_code == 302
    assert fresh(customer).email == NEW and fresh(customer).email_verified_at is None
    assert [row.recipient for row in mails("email_change_notice")] == ["eski@example.com"]
    assert [row.recipient for row in mails("email_verification")] == [NEW]
    assert customer_client.get("/profile").status_code == 302


def test_a_new_password_voids_the_pending_change_the_notice_warned_of(app):
    """The notice to the old address says: not you? choose a new password. The attacker's pending link must die
    with the old password (it used to survive it, and opening it signed its holder in)."""
    customer = make_customer(email="eski@example.com")
    attacker = app.test_client()
    sign_in(attacker, customer)
    ask(attacker, email="attacker@evil.example")
    [confirmation] = mails("email_change")
    assert accounts.request_password_reset("customer", "eski@example.com") is None
    [reset] = mails("password_reset")
    token = re.search(r"/reset-password/(\S+)", reset.body_text).group(1)
    owner = app.test_client()
    assert owner.post(f"/reset-password/{token}", data={"password": "owner-again-7", "confirm": "owner-again-7"}
                      ).status_code == 302
    opened = app.test_client().get(link_in(confirmation), follow_redirects=True).data.decode()
    assert "This link is not valid any more" in opened
    assert fresh(customer).email == "eski@example.com"
