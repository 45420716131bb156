"""The outbox's edges (issue 15, item 4): retry delays at any attempt count, the bound on attempts in Settings,
and headers built by the mail classes with CR/LF folded away."""
from datetime import timedelta

import pytest

from limonbilling.services import ValidationFailed, settings
from limonbilling.services.messaging import save_settings
from limonbilling.services.outbox import retry_delay
from limonbilling.transports import build_email

from ..payment_support import AGENT


@pytest.mark.parametrize(("attempts", "minutes"), [
    (1, 1), (2, 2), (9, 256), (10, 360), (41, 360), (42, 360), (1000, 360), (10**9, 360)])
def test_the_retry_delay_doubles_up_to_six_hours_for_any_attempt(attempts, minutes):
    assert retry_delay(attempts) == timedelta(minutes=minutes)


@pytest.mark.parametrize(("value", "stored"), [(0, False), (1, True), (50, True), (51, False), (10**6, False),
                                               ("8", False), (True, False)])
def test_the_maximum_attempts_are_bounded_whoever_stores_them(app, value, stored):
    if stored:
        settings.update({"notification_max_attempts": value}, AGENT)
        assert settings.get("notification_max_attempts") == value
    else:
        with pytest.raises(ValidationFailed) as refused:
            settings.update({"notification_max_attempts": value}, AGENT)
        assert list(refused.value.errors) == ["notification_max_attempts"]
        assert settings.get("notification_max_attempts") == 8


def test_the_settings_page_names_the_bound_next_to_the_field(app):
    values = {**settings.get_all(), "notification_max_attempts": 51, "smtp_port": 0}
    with pytest.raises(ValidationFailed) as refused:
        save_settings(values, AGENT)
    assert refused.value.errors["notification_max_attempts"] == ["Enter a number from 1 to 50."]
    assert "smtp_port" in refused.value.errors  # shown together with the other fields' errors


def test_names_and_subjects_are_folded_onto_one_header_line(app):
    values = {**settings.get_all(), "smtp_from_name": "Limon\r\nBcc: x@evil.example",
              "smtp_from_address": "billing@limon.example"}
    message = build_email(values, to="a@example.com", cc=["b@example.com", "c@example.com"],
                          subject="Order by Evil\r\n\r\nBcc: y@evil.example\u2028", text="Hi", html=None)
    assert message["Subject"] == "Order by Evil Bcc: y@evil.example"
    assert message["From"] == '"Limon Bcc: x@evil.example" <billing@limon.example>'
    assert (message["To"], message["Cc"]) == ("a@example.com", "b@example.com, c@example.com")
    head = message.as_bytes().partition(b"\n\n")[0]
    names = [line.partition(b":")[0] for line in head.splitlines() if not line.startswith((b" ", b"\t"))]
    assert sorted(names) == sorted([b"From", b"To", b"Cc", b"Subject", b"Date", b"Message-ID", b"MIME-Version",
                                    b"Content-Type", b"Content-Transfer-Encoding"])


def test_an_address_with_cr_lf_is_refused_not_folded(app):
    values = {**settings.get_all(), "smtp_from_address": "billing@limon.example"}
    with pytest.raises(ValueError, match="CR or LF"):
        build_email(values, to="a@example.com\r\nBcc: x@evil.example", cc=[], subject="Hi", text="Hi", html=None)
