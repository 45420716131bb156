"""NestPay as LimonBilling's card gateway: the protocol code of `nestpay.py` fed from Settings → Payment Systems."""
import re
from collections.abc import Mapping

from flask import current_app
from flask_babel import gettext as _

from ..clock import now
from ..services import ValidationFailed, settings
from ..services.refunds import bank_day
from . import nestpay
from .base import PaymentGateway

# Gateway addresses per bank (nestpay-3d-pay.md, "Gateway hosts"); the settings page fills them in, editable.
BANK_PRESETS: dict[str, tuple[str, str]] = {
    "asseco_test": ("Asseco test", "https://entegrasyon.asseco-see.com.tr"),
    "isbank": ("İş Bankası", "https://sanalpos.isbank.com.tr"),
    "akbank": ("Akbank", "https://www.sanalakpos.com"),
    "halkbank": ("Halkbank", "https://sanalpos.halkbank.com.tr"),
    "ziraat": ("Ziraat Bankası", "https://sanalpos2.ziraatbank.com.tr"),
}
REQUIRED_SETTINGS = (
    "nestpay_gate_url", "nestpay_api_url", "nestpay_client_id", "nestpay_store_key",
    "nestpay_api_user", "nestpay_api_password",
)


def preset_urls(bank: str) -> tuple[str, str]:
    """The 3-D gate and API addresses of a bank preset."""
    host = BANK_PRESETS[bank][1]
    return f"{host}/fim/est3Dgate", f"{host}/fim/api"


class NestPayGateway(PaymentGateway):
    name = "nestpay"

    def __init__(self, values: Mapping | None = None):
        self.values = dict(values) if values is not None else settings.get_all()

    def is_available(self) -> bool:
        return bool(self.values["nestpay_enabled"]) and self.is_set_up()

    def is_set_up(self) -> bool:
        """Set up at some time (it may be switched off now): its callbacks can be verified and must count."""
        return all(self.values[key] for key in REQUIRED_SETTINGS)

    @property
    def store_type(self) -> str:
        return self.values["nestpay_store_type"]

    @property
    def config(self) -> nestpay.MerchantConfig:
        v = self.values
        return nestpay.MerchantConfig(
            client_id=v["nestpay_client_id"], store_key=v["nestpay_store_key"], store_type=v["nestpay_store_type"],
            hash_version=v["nestpay_hash_version"], gate_url=v["nestpay_gate_url"], api_url=v["nestpay_api_url"],
            api_user=v["nestpay_api_user"], api_password=v["nestpay_api_password"],
            accept_half_3d=bool(v["nestpay_accept_half_3d"]), api_body=v["nestpay_api_body"],
        )

    def payment_form(self, *, oid, amount_minor, currency, ok_url, fail_url, lang, card, email, name):
        return nestpay.build_payment_form(
            self.config, oid=oid, amount_minor=amount_minor, currency=currency, ok_url=ok_url, fail_url=fail_url,
            lang=lang, card=card, email=email, bill_to_name=name,
        )

    def decide(self, fields, *, oid, amount_minor, currency):
        pending = nestpay.PendingPayment(oid, amount_minor, currency) if oid is not None else None
        return nestpay.decide_callback(fields, config=self.config, pending=pending)

    def _client(self) -> nestpay.NestPayApiClient:
        return nestpay.NestPayApiClient(self.config, timeout=current_app.config["NESTPAY_API_TIMEOUT"])

    def void(self, oid):
        return self._client().void(oid)

    def refund(self, oid, amount_minor, currency):
        return self._client().refund(oid, amount_minor, currency)

    def status(self, oid):
        return self._client().order_status(oid)


def parse_card(number: str, expiry: str, cvv: str) -> nestpay.Card:
    """The card as the customer typed it; errors name the field, never the value (nothing to leak)."""
    digits = "".join(ch for ch in (number or "") if ch in "0123456789")  # ASCII: "²".isdigit() is true
    errors: dict[str, list[str]] = {}
    if not 12 <= len(digits) <= 19 or not nestpay.luhn_valid(digits):
        errors["card_number"] = [_("Check the card number.")]
    month, _sep, year = (expiry or "").replace(" ", "").partition("/")
    if not (re.fullmatch(r"[0-9]{1,2}", month) and re.fullmatch(r"[0-9]{2}|[0-9]{4}", year) and 1 <= int(month) <= 12):
        errors["card_expiry"] = [_("Write the expiry as MM/YY, e.g. 12/30.")]
    elif _expired(int(month), int(year)):
        errors["card_expiry"] = [_("This card has expired. Check the expiry date or use another card.")]
    if not re.fullmatch(r"[0-9]{3,4}", cvv or ""):
        errors["card_cvv"] = [_("The security code has 3 or 4 digits.")]
    if errors:
        raise ValidationFailed(errors)
    card_type = "mastercard" if digits[0] in "25" else "visa"
    return nestpay.Card(pan=digits, exp_month=int(month), exp_year=int(year[-2:]), cvv=cvv, card_type=card_type)


def _expired(month: int, year: int) -> bool:
    """A card is valid through the last day of its expiry month, by the bank's (Istanbul) calendar."""
    today = bank_day(now())
    return (year if year >= 100 else 2000 + year, month) < (today.year, today.month)


def save_settings(values: Mapping, actor) -> list[str]:
    """Settings → Payment Systems. Blank secrets keep the stored ones (they are never shown back).

    Switching card payments on needs every address and credential; addresses must be http(s) URLs.
    """
    current = settings.get_all()
    clean = {key: values[key] for key in values if key in settings.DEFAULTS and key.startswith("nestpay_")}
    for key in settings.SECRET_KEYS & clean.keys():
        if not clean[key]:
            clean[key] = current[key]
    for key in ("nestpay_gate_url", "nestpay_api_url", "nestpay_client_id", "nestpay_api_user"):
        clean[key] = (clean.get(key) or "").strip()
    errors: dict[str, list[str]] = {}
    for key in ("nestpay_gate_url", "nestpay_api_url"):
        if clean[key] and not clean[key].startswith(("https://", "http://")):
            errors[key] = [_("Enter an address starting with https://")]
    if clean.get("nestpay_enabled"):
        for key in REQUIRED_SETTINGS:
            if not clean[key] and key not in errors:
                errors[key] = [_("Needed to take card payments.")]
    if clean.get("nestpay_bank") not in BANK_PRESETS:
        errors["nestpay_bank"] = [_("Choose a bank from the list.")]
    if clean.get("nestpay_store_type") not in ("3d_pay", "3d_pay_hosting"):
        errors["nestpay_store_type"] = [_("Choose a store type from the list.")]
    if clean.get("nestpay_hash_version") not in ("ver3", "ver1"):
        errors["nestpay_hash_version"] = [_("Choose a hash version from the list.")]
    if clean.get("nestpay_api_body") not in ("raw", "form"):
        errors["nestpay_api_body"] = [_("Choose how the API request is sent.")]
    extra = {key: values[key] for key in ("auto_activate_card", "card_checkout_minutes", "card_attempts_per_order",
                                          "card_attempts_per_customer_hour") if key in values}
    errors |= settings.bound_errors(extra)
    minutes = extra.get("card_checkout_minutes", current["card_checkout_minutes"])
    if not isinstance(minutes, int) or not 5 <= minutes <= 1440:
        errors["card_checkout_minutes"] = [_("Enter a number of minutes from 5 to 1440.")]
    if errors:
        raise ValidationFailed(errors)
    return settings.update({**clean, **extra}, actor)
