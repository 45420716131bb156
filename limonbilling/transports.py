"""How a message leaves: e-mail through an SMTP server, SMS through an HTTP provider.

Each function takes the settings as a mapping (services/messaging.py reads and
validates them). Every failure is a DeliveryError whose text is safe to show
agents: it never holds a password.
"""
import smtplib
import ssl
from collections.abc import Mapping, Sequence
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid

import requests
from flask import current_app

from .clock import now

SMTP_SECURITY = ("starttls", "ssl", "none")
SMS_METHODS = ("POST", "GET")


class DeliveryError(Exception):
    pass


def _one_line(text: str) -> str:
    """A name or subject for a header: CR, LF and every other line break become single spaces."""
    return " ".join(text.split())


def build_email(values: Mapping, *, to: str, cc: list[str], subject: str, text: str, html: str | None,
                message_id: str | None = None, attachments: Sequence[tuple[str, bytes]] = ()) -> EmailMessage:
    """A plain-text mail with an HTML alternative and PDF `attachments` (file name, content); the Message-ID
    stays the same on every retry.

    Headers are built by the standard library's header classes: names and subjects are folded onto one
    line, and an address they refuse (e.g. one holding CR/LF) raises ValueError instead of injecting."""
    message = EmailMessage()
    message["From"] = Address(_one_line(values["smtp_from_name"] or values["company_name"]),
                              addr_spec=values["smtp_from_address"])
    message["To"] = Address(addr_spec=to)
    if cc:
        message["Cc"] = tuple(Address(addr_spec=address) for address in cc)
    message["Subject"] = _one_line(subject)
    message["Date"] = format_datetime(now())  # when it is sent
    domain = values["smtp_from_address"].rpartition("@")[2] or None
    message["Message-ID"] = f"<{message_id}@{domain}>" if message_id else make_msgid(domain=domain)
    message.set_content(text)
    if html:
        message.add_alternative(html, subtype="html")
    for filename, content in attachments:
        message.add_attachment(content, maintype="application", subtype="pdf", filename=filename)
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
