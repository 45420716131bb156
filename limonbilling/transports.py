"""How a message leaves: e-mail through an SMTP server, SMS through an HTTP provider.

Settings → Notifications keeps their settings (passwords write-only). Every
failure is a DeliveryError whose text is safe to show agents: it never holds
a password.
"""
import smtplib
import ssl
from collections.abc import Mapping
from datetime import UTC
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid

import requests
from flask import current_app
from flask_babel import gettext as _

from .services import ValidationFailed, settings
from .services.accounts import normalize_email
from .services.clock import now
from .services.customers import normalize_phone

SMTP_SECURITY = ("starttls", "ssl", "none")
SMS_METHODS = ("POST", "GET")


class DeliveryError(Exception):
    pass


def smtp_configured(values: Mapping | None = None) -> bool:
    values = values or settings.get_all()
    return bool(values["smtp_host"] and values["smtp_from_address"])


def sms_configured(values: Mapping | None = None) -> bool:
    values = values or settings.get_all()
    return bool(values["sms_enabled"] and values["sms_url"])


def _one_line(text: str) -> str:
    """A name or subject for a header: CR, LF and every other line break become single spaces."""
    return " ".join(text.split())


def build_email(values: Mapping, *, to: str, cc: list[str], subject: str, text: str, html: str | None,
                message_id: str | None = None) -> EmailMessage:
    """A plain-text mail with an HTML alternative; the Message-ID stays the same on every retry.

    Headers are built by the standard library's header classes: names and subjects are folded onto one
    line, and an address they refuse (e.g. one holding CR/LF) raises ValueError instead of injecting."""
    message = EmailMessage()
    message["From"] = Address(_one_line(values["smtp_from_name"] or values["company_name"]),
                              addr_spec=values["smtp_from_address"])
    message["To"] = Address(addr_spec=to)
    if cc:
        message["Cc"] = tuple(Address(addr_spec=address) for address in cc)
    message["Subject"] = _one_line(subject)
    message["Date"] = format_datetime(now().replace(tzinfo=UTC))  # when it is sent (the app clock is UTC)
    domain = values["smtp_from_address"].rpartition("@")[2] or None
    message["Message-ID"] = f"<{message_id}@{domain}>" if message_id else make_msgid(domain=domain)
    message.set_content(text)
    if html:
        message.add_alternative(html, subtype="html")
    return message


class SmtpConnection:
    """One connection to the SMTP server, opened on the first mail and reused for a batch."""

    def __init__(self, values: Mapping):
        self.values = values
        self.smtp: smtplib.SMTP | None = None

    def _connect(self) -> smtplib.SMTP:
        values, timeout = self.values, current_app.config["SMTP_TIMEOUT"]
        host, port = values["smtp_host"], int(values["smtp_port"])
        if values["smtp_security"] == "ssl":
            smtp = smtplib.SMTP_SSL(host, port, timeout=timeout, context=ssl.create_default_context())
        else:
            smtp = smtplib.SMTP(host, port, timeout=timeout)
            if values["smtp_security"] == "starttls":
                smtp.starttls(context=ssl.create_default_context())
        if values["smtp_username"]:
            smtp.login(values["smtp_username"], values["smtp_password"])
        return smtp

    def send(self, message: EmailMessage) -> None:
        try:
            if self.smtp is None:
                self.smtp = self._connect()
            self.smtp.send_message(message)
        except (smtplib.SMTPException, OSError) as error:
            self.close()
            raise DeliveryError(_describe_smtp_error(error)) from error

    def close(self) -> None:
        if self.smtp is not None:
            try:
                self.smtp.quit()
            except (smtplib.SMTPException, OSError):
                pass
            self.smtp = None

    def __enter__(self):
        return self

    def __exit__(self, *_exc):
        self.close()


def _describe_smtp_error(error: Exception) -> str:
    if isinstance(error, smtplib.SMTPRecipientsRefused):
        return "recipient refused: " + "; ".join(
            f"{address} ({code} {reply.decode(errors='replace')})"
            for address, (code, reply) in error.recipients.items()
        )
    if isinstance(error, smtplib.SMTPResponseException):
        return f"SMTP {error.smtp_code}: {error.smtp_error.decode(errors='replace')}"
    return f"{type(error).__name__}: {error}"


def sms_request(values: Mapping, phone: str, text: str) -> tuple[str, dict[str, str]]:
    """The provider's parameters, one `name=value` per line, with {phone}, {phone_digits} and {message}."""
    params = {}
    for line in values["sms_parameters"].splitlines():
        name, sep, template = line.partition("=")
        if sep and name.strip():
            params[name.strip()] = template.strip().replace("{phone}", phone).replace(
                "{phone_digits}", phone.lstrip("+")).replace("{message}", text)
    return values["sms_method"], params


def send_sms(values: Mapping, phone: str, text: str) -> None:
    method, params = sms_request(values, phone, text)
    auth = (values["sms_username"], values["sms_password"]) if values["sms_username"] else None
    where = {"params": params} if method == "GET" else {"data": params}
    try:
        answer = requests.request(method, values["sms_url"], auth=auth, timeout=current_app.config["SMS_TIMEOUT"],
                                  **where)
    except requests.RequestException as error:
        raise DeliveryError(f"{type(error).__name__}: SMS provider not reachable") from error
    if not 200 <= answer.status_code < 300:
        raise DeliveryError(f"SMS provider answered HTTP {answer.status_code}: {answer.text[:200]}")


def send_test_email(address: str) -> None:
    """Settings → Notifications "Send a test e-mail": straight to the server, so an error shows at once."""
    values = settings.get_all()
    if not smtp_configured(values):
        raise DeliveryError(_("Fill in and save the SMTP server and the sender address first."))
    try:
        address = normalize_email(address)
    except ValueError as error:
        raise DeliveryError(_("Enter a valid e-mail address, like name@example.com.")) from error
    message = build_email(
        values, to=address, cc=[], subject=_("Test e-mail from %(name)s", name=values["company_name"]),
        text=_("The SMTP settings work: this message went through %(host)s.", host=values["smtp_host"]), html=None)
    with SmtpConnection(values) as connection:
        connection.send(message)


def send_test_sms(phone: str) -> None:
    values = settings.get_all()
    if not sms_configured(values):
        raise DeliveryError(_("Switch SMS on and save the provider's address first."))
    try:
        phone = normalize_phone(phone)
    except ValueError as error:
        raise DeliveryError(_("Enter a valid phone number: 0532 123 45 67 or +44 20 7946 0958.")) from error
    send_sms(values, phone, _("Test SMS from %(name)s", name=values["company_name"]))


def save_settings(values: Mapping, actor) -> list[str]:
    """Settings → Notifications. Blank passwords keep the stored ones; switching SMS on needs its address."""
    current = settings.get_all()
    clean = {key: values[key] for key in values if key in settings.DEFAULTS and key != "company_name"}
    for key in ("smtp_password", "sms_password"):
        if not clean.get(key):
            clean[key] = current[key]
    for key in ("smtp_host", "smtp_username", "smtp_from_name", "sms_url", "sms_username", "sms_parameters"):
        clean[key] = (clean.get(key) or "").strip()
    errors: dict[str, list[str]] = {}
    if clean.get("smtp_from_address"):
        try:
            clean["smtp_from_address"] = normalize_email(clean["smtp_from_address"])
        except ValueError:
            errors["smtp_from_address"] = [_("Enter a valid e-mail address, like name@example.com.")]
    elif clean["smtp_host"]:
        errors["smtp_from_address"] = [_("Needed to send e-mail.")]
    if not isinstance(clean.get("smtp_port"), int) or not 1 <= clean["smtp_port"] <= 65535:
        errors["smtp_port"] = [_("Enter a port from 1 to 65535.")]
    if clean.get("smtp_security") not in SMTP_SECURITY:
        errors["smtp_security"] = [_("Choose how the connection is secured.")]
    errors.update(settings.bound_errors(clean))
    if not isinstance(clean.get("low_credit_threshold"), int) or clean["low_credit_threshold"] < 0:
        errors["low_credit_threshold"] = [_("Enter a whole number, 0 or more (0 sends no warning).")]
    if clean["sms_url"] and not clean["sms_url"].startswith(("https://", "http://")):
        errors["sms_url"] = [_("Enter an address starting with https://")]
    elif clean.get("sms_enabled") and not clean["sms_url"]:
        errors["sms_url"] = [_("Needed to send SMS.")]
    if clean.get("sms_method") not in SMS_METHODS:
        errors["sms_method"] = [_("Choose POST or GET.")]
    if clean.get("sms_enabled") and "{message}" not in clean["sms_parameters"]:
        errors["sms_parameters"] = [_("Put {message} where the text goes and {phone} where the number goes.")]
    if clean.get("sms_agent_phone"):
        try:
            clean["sms_agent_phone"] = normalize_phone(clean["sms_agent_phone"])
        except ValueError:
            errors["sms_agent_phone"] = [_("Enter a valid phone number: 0532 123 45 67 or +44 20 7946 0958.")]
    if errors:
        raise ValidationFailed(errors)
    return settings.update(clean, actor)
