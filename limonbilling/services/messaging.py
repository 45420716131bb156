"""Settings → Notifications: the e-mail and SMS transports' settings, whether each is set up, test sends.

The settings are stored like every other (passwords write-only); transports.py only moves messages.
"""
from collections.abc import Mapping

from flask_babel import gettext as _

from ..transports import SMS_METHODS, SMTP_SECURITY, DeliveryError, SmtpConnection, build_email, send_sms
from . import ValidationFailed, settings
from .contacts import normalize_email, normalize_phone


def smtp_configured(values: Mapping | None = None) -> bool:
    values = values or settings.get_all()
    return bool(values["smtp_host"] and values["smtp_from_address"])


def sms_configured(values: Mapping | None = None) -> bool:
    values = values or settings.get_all()
    return bool(values["sms_enabled"] and values["sms_url"])


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
    if clean.get("smtp_security") not in SMTP_SECURITY:
        errors["smtp_security"] = [_("Choose how the connection is secured.")]
    errors.update(settings.bound_errors(clean))  # the port, the attempts, the low-credit threshold
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
