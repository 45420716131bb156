"""NestPay as LimonBilling's card gateway: the protocol code of `nestpay.py` fed from Settings → Payment Systems."""
from collections.abc import Mapping

from flask import current_app
from flask_babel import gettext as _

from ..services import ServiceError, ValidationFailed, settings
from . import nestpay
from .base import AttemptDetails, CallbackDecision, PaymentGateway, RefundAnswer, SaleStatus

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
    def card_on_our_page(self) -> bool:
        return self.values["nestpay_store_type"] == "3d_pay"

    @property
    def config(self) -> nestpay.MerchantConfig:
        v = self.values
        return nestpay.MerchantConfig(
            client_id=v["nestpay_client_id"], store_key=v["nestpay_store_key"], store_type=v["nestpay_store_type"],
            hash_version=v["nestpay_hash_version"], gate_url=v["nestpay_gate_url"], api_url=v["nestpay_api_url"],
            api_user=v["nestpay_api_user"], api_password=v["nestpay_api_password"],
            accept_half_3d=bool(v["nestpay_accept_half_3d"]), api_body=v["nestpay_api_body"],
        )

    @property
    def callback_signs_amount(self) -> bool:
        """ver1 signs no amount in the callback, and its request hash joins clientid, oid, amount, okUrl... with no
        separator: an amount of "1" and an okUrl of "50.00https://..." sign as "150.00" and "https://...", so
        the bank takes 1.00 under a request we signed for 150.00."""
        return self.values["nestpay_hash_version"] == "ver3"

    def reference(self, fields):
        return str(fields.get("oid") or fields.get("ReturnOid") or "")

    def check_currency(self, currency):
        """ver1 signs the currency neither in the request nor in the callback, and the bank's status does not say
        it: a USD order sent in lira would be paid with as many lira. Only the lira a Turkish POS charges is
        taken then."""
        if self.values["nestpay_hash_version"] == "ver1" and currency != "TRY":
            raise ServiceError("card_currency", _(
                "Card payments are taken only in TRY at the moment; pay this order by bank transfer or from the "
                "account balance."))

    def payment_form(self, *, reference, amount_minor, currency, ok_url, fail_url, lang, card, email, name,
                     instalments=1):
        self.check_currency(currency)
        return nestpay.build_payment_form(
            self.config, oid=reference, amount_minor=amount_minor, currency=currency, ok_url=ok_url,
            fail_url=fail_url, lang=lang, card=card, email=email, bill_to_name=name, instalments=instalments,
        )

    def decide(self, fields, *, reference, amount_minor, currency, instalments=1):
        pending = (nestpay.PendingPayment(reference, amount_minor, currency, instalments)
                   if reference is not None else None)
        decision = nestpay.decide_callback(fields, config=self.config, pending=pending)
        said = decision.attempt_fields
        details = AttemptDetails(
            transaction_id=said.get("TransId"), auth_code=said.get("AuthCode"), host_reference=said.get("HostRefNum"),
            masked_pan=said.get("MaskedPan"), authentication_status=said.get("mdStatus"),
            return_code=said.get("ProcReturnCode"), amount=_amount_said(decision.raw_fields))
        return CallbackDecision(decision.approved, decision.reason, decision.message, details, decision.raw_fields,
                                money_taken=decision.money_taken)

    def _client(self) -> nestpay.NestPayApiClient:
        return nestpay.NestPayApiClient(self.config, timeout=current_app.config["NESTPAY_API_TIMEOUT"])

    def void(self, reference):
        return _refund_answer(self._client().void(reference), "void")

    def refund(self, reference, amount_minor, currency, *, operation, whole):
        """A Void the bank refuses means the sale was settled already: a Credit then. A Credit before the end of
        day (ProcReturnCode 99, CORE-2508) means not settled yet: a Void then, if the refund is of the whole sale."""
        client = self._client()
        if operation == "void":
            answer = client.void(reference)
            if answer.succeeded:
                return _refund_answer(answer, "void")
            return _refund_answer(client.refund(reference, amount_minor, currency), "credit")
        answer = client.refund(reference, amount_minor, currency)
        if _not_settled(answer) and whole:
            return _refund_answer(client.void(reference), "void")
        return _refund_answer(answer, "credit")

    def sale_status(self, reference):
        extra = self._client().order_status(reference).extra
        stat = extra.get("TRANS_STAT", "")
        state = {"S": "taken", "V": "voided", "CNCL": "voided", "D": "failed", "ERR": "failed"}.get(stat)
        answer = {"TRANS_STAT": stat, **{k: extra[k] for k in ("CAPTURE_AMT", "ORIG_TRANS_AMT", "AUTH_CODE")
                                         if k in extra}}
        return SaleStatus(state, original_minor=_whole_number(extra.get("ORIG_TRANS_AMT")),
                          captured_minor=_whole_number(extra.get("CAPTURE_AMT")), auth_code=extra.get("AUTH_CODE", ""),
                          answer=answer, summary=f"TRANS_STAT {stat or '(none)'}")


def _not_settled(answer: nestpay.ApiResponse) -> bool:
    return answer.proc_return_code == "99" and answer.extra.get("ERRORCODE") == "CORE-2508"


def _refund_answer(answer: nestpay.ApiResponse, operation: str) -> RefundAnswer:
    message = answer.err_msg
    if not answer.succeeded and _not_settled(answer):
        message = _("The bank takes a partial refund only after its end of day; try again tomorrow.")
    return RefundAnswer(answer.succeeded, operation, answer.proc_return_code, answer.trans_id or None, message)


def _whole_number(text: str | None) -> int | None:
    """The API's amounts in ORDERSTATUS are whole minor units ("101" for 1.01); None when absent. An amount that
    is not ASCII digits ("²", which `isdigit` passes and `int` refuses) is an answer we cannot read: unknown."""
    if not text:
        return None
    if not (text.isascii() and text.isdigit()):
        raise nestpay.NestPayProtocolError(f"the answer's amount {text[:20]!r} is not a number")
    return int(text)


def _amount_said(fields: Mapping) -> str | None:
    """The answer's amount with its currency's letters (the bank sends the ISO number), as written: for people."""
    amount = str(fields.get("amount") or "").strip()[:20]
    letters = {number: code for code, number in nestpay.CURRENCY_CODES.items()}
    return f"{amount} {letters.get(str(fields.get('currency') or ''), '')}".strip() or None


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
    if errors:
        raise ValidationFailed(errors)
    return settings.update({**clean, **extra}, actor)
