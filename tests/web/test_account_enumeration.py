"""Registration and sign-in do not tell which e-mail addresses have accounts; passwords are not the common ones.

Registration used to say "An account with this e-mail address already exists", and a sign-in for an
unknown address answered without computing a password hash (measurably faster than a wrong password).
"""
import re

import pytest
import werkzeug.security

from limonbilling.extensions import db
from limonbilling.models import Customer, Notification
from limonbilling.services import accounts

from ..factories import PASSWORD, make_agent, make_customer

NEW_PERSON = {"account_type": "individual", "first_name": "Deniz", "last_name": "Kaya", "phone": "0532 123 45 67",
              "password": "kendi-sifrem-7", "password_again": "kendi-sifrem-7", "language": ""}


@pytest.fixture
def hashing(monkeypatch):
    """Counts the password hashes computed or checked (the slow part whose absence gives an answer away)."""
    counts = {"checked": 0, "made": 0}
    check, make = werkzeug.security.check_password_hash, werkzeug.security.generate_password_hash

    def counting_check(*args):
        counts["checked"] += 1
        return check(*args)

    def counting_make(*args, **kwargs):
        counts["made"] += 1
        return make(*args, **kwargs)

    monkeypatch.setattr("limonbilling.models.accounts.check_password_hash", counting_check)
    monkeypatch.setattr("limonbilling.models.accounts.generate_password_hash", counting_make)
    return counts


def mails(event: str) -> list[Notification]:
    """In the order they were queued (without ORDER BY, PostgreSQL returns rows as they lie in the table)."""
    return db.session.scalars(db.select(Notification).where(Notification.event == event)
                              .order_by(Notification.id)).all()


def register(client, email: str):
    return client.post("/register", data={**NEW_PERSON, "email": email})


def test_registration_answers_alike_for_a_new_and_a_known_address(app, hashing):
    known = make_customer(email="ayse@example.com")
    hashing.update(checked=0, made=0)
    first, second = app.test_client(), app.test_client()

    for_new = register(first, "deniz@example.com")
    made_for_new = hashing["made"]
    for_known = register(second, "AYSE@example.com")
    assert (for_new.status_code, for_new.location) == (for_known.status_code, for_known.location) == (
        302, "/register/check-your-mail")
    pages = [re.sub(r'value="[A-Za-z0-9_.-]{40,}"', "", client.get(
        "/register/check-your-mail").data.decode()) for client in (first, second)]  # each session has its own token
    assert pages[0].replace("deniz@example.com", "ADDRESS") == pages[1].replace("AYSE@example.com", "ADDRESS")
    assert "Check your mail" in pages[0]
    assert hashing["made"] == 2 * made_for_new == 2  # the same work either way
    assert first.get("/profile").status_code == second.get("/profile").status_code == 302  # neither signed in

    db.session.expire_all()
    assert db.session.get(Customer, known.id).check_password(PASSWORD)  # the known account is untouched
    assert db.session.scalar(db.select(db.func.count(Customer.id))) == 2
    assert [row.recipient for row in mails("welcome")] == ["ayse@example.com", "deniz@example.com"]  # 1st: factory
    [exists] = mails("account_exists")
    assert exists.recipient == "ayse@example.com"
    assert "/forgot-password" in exists.body_text and "/login" in exists.body_text


def test_a_new_account_signs_in_with_its_password_after_registering(app):
    client = app.test_client()
    register(client, "deniz@example.com")
    assert client.post("/login", data={"email": "deniz@example.com", "password": "kendi-sifrem-7"}).status_code == 302


def test_registration_still_explains_every_other_mistake(app):
    make_customer(email="ayse@example.com")
    page = app.test_client().post("/register", data={**NEW_PERSON, "email": "ayse@example.com", "phone": "12"})
    text = page.data.decode()
    assert page.status_code == 200 and "Enter a valid phone number" in text
    assert "already exists" not in text and not mails("account_exists")


@pytest.mark.parametrize("kind", ["customer", "agent"])
def test_a_sign_in_checks_a_password_hash_whether_or_not_the_account_exists(app, hashing, kind):
    authenticate = accounts.authenticate_customer if kind == "customer" else accounts.authenticate_agent
    user = make_customer() if kind == "customer" else make_agent("billing")
    disabled = make_agent("billing", active=False)
    for email in (user.email, "nobody@example.com", disabled.email):
        hashing["checked"] = 0
        assert authenticate(email, "wrong-pass-12") is None
        assert hashing["checked"] == 1, email
    assert authenticate(disabled.email, PASSWORD) is None  # the right password of a disabled agent: still no


@pytest.mark.parametrize("password, problem", [
    ("abcdefgh1", "Use at least 10 characters."),
    ("abcdefgh12", None),
    ("password123", "This password is one of the most common ones; choose another."),
    ("PassWord123", "This password is one of the most common ones; choose another."),
    ("fenerbahce1907", "This password is one of the most common ones; choose another."),
    ("12345678901", "Use letters and at least one digit or symbol."),
    ("", "Use at least 10 characters."),
])
def test_passwords_are_ten_characters_and_not_a_common_one(app, password, problem):
    assert accounts.password_problem(password) == problem


def test_registration_refuses_a_common_password(app):
    page = app.test_client().post("/register", data={**NEW_PERSON, "email": "deniz@example.com",
                                                     "password": "qwerty123456", "password_again": "qwerty123456"})
    assert "one of the most common ones" in page.data.decode()
    assert db.session.scalar(db.select(db.func.count(Customer.id))) == 0


def test_registrations_from_one_address_are_throttled_and_the_owner_is_mailed_once_an_hour(app, clock):
    """An attack pass queued 100 "you already have an account" mails to one customer by registering 100 times."""
    app.config.update(SIGN_IN_LIMIT_PER_IP="5 per minute")
    make_customer(email="ayse@example.com")
    client = app.test_client()
    answers = [client.post("/register", data={**NEW_PERSON, "email": "ayse@example.com"},
                           environ_base={"REMOTE_ADDR": "198.51.100.7"}).status_code for _ in range(6)]
    assert answers == [302] * 5 + [429]
    assert len(mails("account_exists")) == 1  # five tries, one mail this hour
    clock.advance(hours=1)
    client.post("/register", data={**NEW_PERSON, "email": "ayse@example.com"},
                environ_base={"REMOTE_ADDR": "203.0.113.8"})
    assert len(mails("account_exists")) == 2
