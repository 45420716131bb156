"""NestPay (EST / Asseco / Payten) 3D_PAY: hashes, the payment form, callback decisions and the XML API.

Pure protocol code: no Flask, no database. The specification is
`shared/docs/nestpay-3d-pay.md`; section names quoted below refer to it.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
import xml.etree.ElementTree as ET
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from functools import cmp_to_key
from typing import Literal

import requests

from .base import Card, DeclineReason, GatewayError, luhn_valid

Currency = Literal["TRY", "USD", "EUR"]
StoreType = Literal["3d_pay", "3d_pay_hosting"]
HashVersion = Literal["ver3", "ver1"]
ApiBody = Literal["raw", "form"]
Language = Literal["tr", "en"]

CURRENCY_CODES: dict[str, str] = {"TRY": "949", "USD": "840", "EUR": "978"}
CARD_TYPE_CODES: dict[str, str] = {"visa": "1", "mastercard": "2"}
MIN_INSTALMENTS, MAX_INSTALMENTS = 2, 12  # an instalment sale; 1 is a single payment (the field sent empty)
FULL_3D_MD_STATUSES = frozenset({"1"})
HALF_3D_MD_STATUSES = frozenset({"2", "3", "4"})

# Callback fields kept with the payment attempt ("Deciding the result").
ATTEMPT_FIELDS = (
    "Response", "ProcReturnCode", "mdStatus", "TransId", "AuthCode", "HostRefNum", "MaskedPan",
    "ErrMsg", "mdErrorMsg", "ErrorCode",
)

# What the decision reads to call a payment made; a ver1 callback must sign every one of them.
V1_SIGNED_DECISION_FIELDS = frozenset({"clientid", "oid", "Response", "ProcReturnCode", "mdStatus"})

_V3_EXCLUDED = frozenset({"hash", "encoding", "countdown", "nationalidno"})
_CARD_FIELD_NAMES = frozenset({"pan", "cv2", "ecom_payment_card_expdate_month", "ecom_payment_card_expdate_year"})
_AMOUNT = re.compile(r"[0-9]+(?:\.[0-9]+)?")
_API_RESPONSES = frozenset({"Approved", "Declined", "Error"})


# --- PHP strnatcasecmp ------------------------------------------------------------------------------------------

_ZERO = ord("0")
_C_SPACE = frozenset(b" \t\n\v\f\r")


def _is_digit(byte: int) -> bool:
    return 0x30 <= byte <= 0x39


def _upper(byte: int) -> int:
    return byte - 0x20 if 0x61 <= byte <= 0x7A else byte


def _byte_at(s: bytes, i: int) -> int:
    """C strings end with NUL: reading one past the end gives 0, as in PHP's zend_string."""
    return s[i] if i < len(s) else 0


def _compare_digit_runs(a: bytes, ai: int, b: bytes, bi: int, *, left_aligned: bool) -> tuple[int, int, int]:
    """PHP's compare_left (a run starting with 0, compared digit by digit) / compare_right (longer run wins)."""
    bias = 0
    while True:
        a_digit = ai < len(a) and _is_digit(a[ai])
        b_digit = bi < len(b) and _is_digit(b[bi])
        if not a_digit and not b_digit:
            return bias, ai, bi
        if not a_digit:
            return -1, ai, bi
        if not b_digit:
            return 1, ai, bi
        if a[ai] != b[bi]:
            order = -1 if a[ai] < b[bi] else 1
            if left_aligned:
                return order, ai, bi
            bias = bias or order
        ai += 1
        bi += 1


def strnatcasecmp(left: str, right: str) -> int:
    """PHP 8 `strnatcasecmp` (ext/standard/strnatcmp.c) over UTF-8 bytes: -1, 0 or 1.

    Digit runs compare as numbers (leading zeros skipped only at the start of the string, a run starting with 0
    compares digit by digit), whitespace is skipped, ASCII letters fold with toupper, so `_` sorts after letters.
    """
    a, b = left.encode("utf-8"), right.encode("utf-8")
    if not a or not b:
        return (len(a) > len(b)) - (len(a) < len(b))
    ai = bi = 0
    while a[ai] == _ZERO and ai + 1 < len(a) and _is_digit(a[ai + 1]):
        ai += 1
    while b[bi] == _ZERO and bi + 1 < len(b) and _is_digit(b[bi + 1]):
        bi += 1
    while True:
        ca, cb = _byte_at(a, ai), _byte_at(b, bi)
        while ca in _C_SPACE:
            ai += 1
            ca = _byte_at(a, ai)
        while cb in _C_SPACE:
            bi += 1
            cb = _byte_at(b, bi)
        if _is_digit(ca) and _is_digit(cb):
            result, ai, bi = _compare_digit_runs(a, ai, b, bi, left_aligned=_ZERO in (ca, cb))
            if result:
                return result
            if ai == len(a) and bi == len(b):
                return 0
            if ai == len(a):
                return -1
            if bi == len(b):
                return 1
            ca, cb = a[ai], b[bi]
        ca, cb = _upper(ca), _upper(cb)
        if ca != cb:
            return -1 if ca < cb else 1
        ai += 1
        bi += 1
        if ai >= len(a) and bi >= len(b):
            return 0
        if ai >= len(a):
            return -1
        if bi >= len(b):
            return 1


# --- hashes -----------------------------------------------------------------------------------------------------

def _b64(digest: bytes) -> str:
    return base64.b64encode(digest).decode("ascii")


def _escape_v3(value: str) -> str:
    return value.replace("\\", "\\\\").replace("|", "\\|")


def _same(received: str, expected: str) -> bool:
    # compare_digest refuses non-ASCII str; the received value is attacker-controlled.
    return hmac.compare_digest(received.encode("utf-8"), expected.encode("utf-8"))


def hash_v3(fields: Mapping[str, str | None], store_key: str) -> str:
    """Hash version 3 over every field but hash/encoding/countdown/nationalidno, in `strnatcasecmp` order of names.

    The sort is stable, so names that compare equal (`Email`, `email`) keep the mapping's order, as PHP 8's ksort.
    """
    names = sorted((name for name in fields if name.lower() not in _V3_EXCLUDED), key=cmp_to_key(strnatcasecmp))
    values = [_escape_v3(fields[name] or "") for name in names]
    plaintext = "|".join([*values, _escape_v3(store_key)])
    return _b64(hashlib.sha512(plaintext.encode("utf-8")).digest())


def hash_v1_request(
    clientid: str, oid: str, amount: str, ok_url: str, fail_url: str, tran_type: str, instalment: str, rnd: str,
    store_key: str,
) -> str:
    """Hash version 1 of a payment request: base64(SHA-1) of the values concatenated without separators."""
    plaintext = clientid + oid + amount + ok_url + fail_url + tran_type + instalment + rnd + store_key
    return _b64(hashlib.sha1(plaintext.encode("utf-8")).digest())


def callback_hash_version(fields: Mapping[str, str | None]) -> HashVersion:
    """A callback with `HASHPARAMS` is ver1; otherwise ver3."""
    return "ver1" if "HASHPARAMS" in fields else "ver3"


def _php_names(fields: Mapping[str, str | None]) -> dict[str, str | None]:
    """The fields as PHP names them in $_POST: `.` and space become `_` (`EXTRA.TRXDATE` -> `EXTRA_TRXDATE`)."""
    return {name.replace(".", "_").replace(" ", "_"): value for name, value in fields.items()}


def _v3_candidates(fields: Mapping[str, str | None]) -> Iterator[Mapping[str, str | None]]:
    """The received names, then PHP's, when they differ.

    The gateway's comparator is undocumented; the only callback known to verify (the mewebstudio/pos test data)
    was checked with PHP's names, and a WSGI app receives the dotted ones. Either view needs the store key.
    """
    yield fields
    if any("." in name or " " in name for name in fields):
        yield _php_names(fields)


def hash_v1_callback(hash_params_value: str, store_key: str) -> str:
    """ver1 callback hash: base64(SHA-1(HASHPARAMSVAL + store key))."""
    return _b64(hashlib.sha1((hash_params_value + store_key).encode("utf-8")).digest())


def v1_hash_matches(fields: Mapping[str, str | None], store_key: str) -> bool:
    """The ver1 check alone: the fields `HASHPARAMS` names concatenate to `HASHPARAMSVAL`, whose hash is `HASH`.

    It proves only that those named fields are the bank's: see `verify_callback` for which must be named.
    """
    names = (fields.get("HASHPARAMS") or "").split(":")
    params_value = "".join(fields.get(name) or "" for name in names)
    if not _same(fields.get("HASHPARAMSVAL") or "", params_value):
        return False
    return _same(fields.get("HASH") or "", hash_v1_callback(params_value, store_key))


def verify_callback(fields: Mapping[str, str | None], store_key: str) -> bool:
    """Check a callback's `HASH`: ver1 when `HASHPARAMS` is present, otherwise ver3 over all received fields.

    A ver1 callback counts only when its `HASHPARAMS` names every field the decision reads
    (`V1_SIGNED_DECISION_FIELDS`): the ver1 *request* hash, which the customer's browser carries, verifies over
    `clientid:oid:amount:okUrl:failUrl:islemtipi:taksit:rnd:` and would leave the outcome unsigned.
    """
    if not fields.get("HASH"):
        return False
    if callback_hash_version(fields) == "ver1":
        named = set((fields.get("HASHPARAMS") or "").split(":"))
        return V1_SIGNED_DECISION_FIELDS <= named and v1_hash_matches(fields, store_key)
    return any(_same(fields["HASH"], hash_v3(candidate, store_key)) for candidate in _v3_candidates(fields))


# --- merchant configuration and the payment form ----------------------------------------------------------------

@dataclass(frozen=True, kw_only=True)
class MerchantConfig:
    """What the bank issues to the merchant, plus the gateway addresses. Secrets stay out of repr."""

    client_id: str
    store_key: str = field(repr=False)
    store_type: StoreType
    hash_version: HashVersion = "ver3"
    gate_url: str
    api_url: str
    api_user: str
    api_password: str = field(repr=False)
    accept_half_3d: bool = False
    api_body: ApiBody = "raw"

    def __post_init__(self) -> None:
        if self.store_type not in ("3d_pay", "3d_pay_hosting"):
            raise ValueError(f"unknown store type {self.store_type!r}")
        if self.hash_version not in ("ver3", "ver1"):
            raise ValueError(f"unknown hash version {self.hash_version!r}")
        if self.api_body not in ("raw", "form"):
            raise ValueError(f"unknown API body {self.api_body!r}")
        for name in ("gate_url", "api_url"):
            if not getattr(self, name).startswith(("https://", "http://")):
                raise ValueError(f"{name} must be an http(s) URL")


def format_amount(amount_minor: int) -> str:
    """Integer minor units to the bank's amount: 15000 -> "150.00", 5 -> "0.05"."""
    if isinstance(amount_minor, bool) or not isinstance(amount_minor, int):
        raise TypeError("amounts are integer minor units")
    if amount_minor <= 0:
        raise ValueError("the amount must be positive")
    return f"{amount_minor // 100}.{amount_minor % 100:02d}"


def format_instalments(count: int) -> str:
    """The instalment count as the bank wants it: empty for a single payment, "2" to "12" otherwise."""
    if isinstance(count, bool) or not isinstance(count, int) or not (count == 1 or MIN_INSTALMENTS <= count
                                                                     <= MAX_INSTALMENTS):
        raise ValueError("the instalment count must be 1 (single payment) or 2 to 12")
    return "" if count == 1 else str(count)


def received_instalments(fields: Mapping[str, str | None], hash_version: HashVersion) -> int | None:
    """The count a callback carries back (empty or absent: 1); None when unreadable.

    ver3 signs every field: the count is under the name we post (`Instalment`), else under `taksit` (which
    clients such as mewebstudio/pos post, and which the bank's own callbacks may carry empty). ver1's callback
    signs neither, but its request hash covers `taksit` (the bank refuses a request whose count was changed;
    our rnd, which follows it, starts with a letter), so an unsigned ver1 count can only make us refuse our own
    sale."""
    name = "Instalment" if hash_version == "ver3" and "Instalment" in fields else "taksit"
    return _instalment_count((fields.get(name) or "").strip())


def _instalment_count(text: str) -> int | None:
    if not text:
        return 1
    return int(text) if text.isascii() and text.isdigit() and MIN_INSTALMENTS <= int(text) <= MAX_INSTALMENTS \
        else None


def _amount_minor(text: str) -> int | None:
    """The bank's amount ("1.01") in minor units; None when it is not a plain decimal or has sub-cent digits."""
    if not _AMOUNT.fullmatch(text):
        return None
    minor = Decimal(text) * 100
    return int(minor) if minor == minor.to_integral_value() else None


def build_payment_form(
    config: MerchantConfig,
    *,
    oid: str,
    amount_minor: int,
    currency: Currency,
    ok_url: str,
    fail_url: str,
    lang: Language,
    card: Card | None = None,
    email: str | None = None,
    bill_to_name: str | None = None,
    rnd: str | None = None,
    instalments: int = 1,
) -> tuple[str, dict[str, str]]:
    """The gate URL and the fields the browser posts to it, hash last.

    For 3d_pay the fields hold the card: render them into the auto-submitting form and nowhere else.
    `instalments` is the count (taksit), 1 for a single payment, which the bank wants as an empty field.
    """
    if currency not in CURRENCY_CODES:
        raise ValueError(f"unsupported currency {currency!r}")
    if not 0 < len(oid) <= 64:
        raise ValueError("the order id must have 1 to 64 characters")
    if lang not in ("tr", "en"):
        raise ValueError(f"unsupported language {lang!r}")
    if config.store_type == "3d_pay" and card is None:
        raise ValueError("storetype 3d_pay posts the card with the form")
    if config.store_type == "3d_pay_hosting" and card is not None:
        raise ValueError("storetype 3d_pay_hosting: the bank's page asks for the card, do not pass it")
    amount = format_amount(amount_minor)
    instalment = format_instalments(instalments)
    # 20 characters, a letter first: ver1's request hash joins taksit and rnd with no separator, and a rnd of
    # "3..." would sign a taksit of "3" with the rest of it as our single payment.
    rnd = rnd if rnd is not None else "r" + secrets.token_urlsafe(14)
    ver1 = config.hash_version == "ver1"
    tran_type_name, instalment_name = ("islemtipi", "taksit") if ver1 else ("TranType", "Instalment")

    fields: dict[str, str] = {
        "clientid": config.client_id,
        "storetype": config.store_type,
        tran_type_name: "Auth",
        "amount": amount,
        "currency": CURRENCY_CODES[currency],
        "oid": oid,
        "okUrl": ok_url,
        "failUrl": fail_url,
        "lang": lang,
        "rnd": rnd,
        instalment_name: instalment,
    }
    if card is not None:
        fields |= {
            "pan": card.pan,
            "Ecom_Payment_Card_ExpDate_Month": f"{card.exp_month:02d}",
            "Ecom_Payment_Card_ExpDate_Year": f"{card.exp_year:02d}",
            "cv2": card.cvv,
            "cardType": CARD_TYPE_CODES[card.card_type],
        }
    if email:
        fields["Email"] = email
    if bill_to_name:
        fields["BillToName"] = bill_to_name
    if ver1:
        fields["hash"] = hash_v1_request(
            config.client_id, oid, amount, ok_url, fail_url, "Auth", instalment, rnd, config.store_key
        )
    else:
        fields["hashAlgorithm"] = "ver3"
        fields["hash"] = hash_v3(fields, config.store_key)
    return config.gate_url, fields


# --- the callback -----------------------------------------------------------------------------------------------

def looks_like_pan(value: str) -> bool:
    """13 to 19 digits (spaces and dashes ignored) that pass the Luhn check."""
    digits = re.sub(r"[ -]", "", value)
    return bool(re.fullmatch(r"[0-9]{13,19}", digits)) and luhn_valid(digits)


def safe_raw_fields(fields: Mapping[str, str | None]) -> dict[str, str]:
    """The callback without card data (pan, cv2, expiry, any value that is a full card number); MaskedPan stays."""
    return {
        name: value or ""
        for name, value in fields.items()
        if name.lower() not in _CARD_FIELD_NAMES and not looks_like_pan(value or "")
    }


@dataclass(frozen=True)
class PendingPayment:
    """The order a callback's `oid` names, as the caller found it awaiting payment, with what was sent for it."""

    oid: str
    amount_minor: int
    currency: Currency
    instalments: int = 1


@dataclass(frozen=True)
class CallbackDecision:
    """approved, or the first failed check as `reason`; `message` is for the customer.

    `attempt_fields` and `raw_fields` are kept with the payment attempt; they are card-free, and unverified
    when the reason is bad_hash.
    """

    approved: bool
    reason: DeclineReason | None
    message: str
    attempt_fields: dict[str, str]
    raw_fields: dict[str, str]
    # The bank's signed word that it took the money for this order of this merchant, whether or not we accept
    # it (half 3-D refused, amount not ours): money taken and not accepted must be returned.
    money_taken: bool = False


_MESSAGES: dict[str, str] = {
    "bad_hash": "The bank's answer could not be verified. The payment was not accepted; please try again.",
    "unknown_order": "The bank's answer does not match an order awaiting payment.",
    "amount_mismatch": "The bank's answer does not match the order amount. The payment was not accepted.",
    "currency_mismatch": "The bank's answer does not match the order currency. The payment was not accepted.",
    "instalment_mismatch": "The bank's answer does not match the order's number of instalments. The payment was not "
                           "accepted.",
    "client_mismatch": "The bank's answer is for another merchant account. The payment was not accepted.",
    "md_status": "3-D Secure authentication failed. Please try again or use another card.",
    "declined": "The bank declined the payment. Please try again or use another card.",
}


def _md_status_accepted(md_status: str, config: MerchantConfig) -> bool:
    if md_status in FULL_3D_MD_STATUSES:
        return True
    return config.accept_half_3d and md_status in HALF_3D_MD_STATUSES


def _failed_check(fields: Mapping[str, str | None], config: MerchantConfig, pending: PendingPayment | None
                  ) -> DeclineReason | None:
    def value(name: str) -> str:
        return fields.get(name) or ""

    # A ver1 callback on a ver3 store is refused: ver1 hashes only the fields the sender names in HASHPARAMS.
    if callback_hash_version(fields) != config.hash_version or not verify_callback(fields, config.store_key):
        return "bad_hash"
    return_oid = value("ReturnOid")
    if pending is None or value("oid") != pending.oid or (return_oid and return_oid != pending.oid):
        return "unknown_order"
    if _amount_minor(value("amount")) != pending.amount_minor:
        return "amount_mismatch"
    if value("currency") != CURRENCY_CODES[pending.currency]:
        return "currency_mismatch"
    if received_instalments(fields, config.hash_version) != pending.instalments:
        return "instalment_mismatch"
    if value("clientid") != config.client_id:
        return "client_mismatch"
    if not _md_status_accepted(value("mdStatus"), config):
        return "md_status"
    if value("Response") != "Approved" or value("ProcReturnCode") != "00":
        return "declined"
    return None


def decide_callback(
    fields: Mapping[str, str | None], *, config: MerchantConfig, pending: PendingPayment | None
) -> CallbackDecision:
    """The four checks of "Deciding the result", in order; the first failure is the reason.

    `pending` is the attempt the caller found for `fields["oid"]`, None when nothing here has that reference (an
    order deleted after a decline): a signed approval for it then counts as money taken, for the team to return.
    """
    raw = safe_raw_fields(fields)
    attempt = {name: raw[name] for name in ATTEMPT_FIELDS if raw.get(name)}
    reason = _failed_check(fields, config, pending)
    if reason is None:
        return CallbackDecision(True, None, "Payment approved.", attempt, raw, money_taken=True)
    # Signed by the bank and approved, but refused here: the bank holds money that is to go back. An approval for
    # a reference nothing here waits for (an order deleted after a decline) too; one that names another attempt
    # than its ReturnOid is not known to be for either, and is not counted.
    mismatched = reason in ("amount_mismatch", "currency_mismatch", "instalment_mismatch", "md_status")
    taken = (mismatched or (reason == "unknown_order" and pending is None)) and (
        fields.get("Response") == "Approved" and fields.get("ProcReturnCode") == "00"
        and fields.get("clientid") == config.client_id)
    # The bank's own words only for the bank's refusals: before that, the text is not known to come from the bank.
    bank_message = ""
    if reason == "md_status":
        bank_message = raw.get("ErrMsg") or raw.get("mdErrorMsg") or ""
    elif reason == "declined":
        bank_message = raw.get("ErrMsg") or ""
    return CallbackDecision(False, reason, bank_message or _MESSAGES[reason], attempt, raw, money_taken=taken)


# --- the XML API (void, refund, status) -------------------------------------------------------------------------

class NestPayError(GatewayError):
    """Base of the API client's errors. Messages never carry the API password."""


class NestPayUnavailable(NestPayError):
    """No answer (timeout, connection error): the outcome is unknown, query the order status before retrying."""


class NestPayProtocolError(NestPayError):
    """An answer that is not a CC5Response: the outcome is unknown as well."""


@dataclass(frozen=True)
class ApiResponse:
    """A parsed `CC5Response`; absent elements are empty strings."""

    response: str
    proc_return_code: str
    order_id: str = ""
    auth_code: str = ""
    host_ref_num: str = ""
    trans_id: str = ""
    err_msg: str = ""
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def succeeded(self) -> bool:
        return self.proc_return_code == "00"


def build_api_request(
    config: MerchantConfig,
    *,
    oid: str,
    tran_type: Literal["Void", "Credit"] | None = None,
    amount_minor: int | None = None,
    currency: Currency | None = None,
    extra: Mapping[str, str] | None = None,
) -> str:
    """A `CC5Request` document (it contains the API password)."""
    root = ET.Element("CC5Request")
    elements = {"Name": config.api_user, "Password": config.api_password, "ClientId": config.client_id}
    if tran_type is not None:
        elements["Type"] = tran_type
    elements["OrderId"] = oid
    if amount_minor is not None:
        if currency not in CURRENCY_CODES:
            raise ValueError("a Total needs its currency")
        elements["Total"] = format_amount(amount_minor)
        elements["Currency"] = CURRENCY_CODES[currency]
    for name, text in elements.items():
        ET.SubElement(root, name).text = text
    if extra:
        extra_element = ET.SubElement(root, "Extra")
        for name, text in extra.items():
            ET.SubElement(extra_element, name).text = text
    return '<?xml version="1.0" encoding="UTF-8"?>' + ET.tostring(root, encoding="unicode")


def parse_api_response(body: bytes) -> ApiResponse:
    """Parse a `CC5Response` (any encoding its XML declaration names, e.g. ISO-8859-9)."""
    if b"<!doctype" in body.lower():
        raise NestPayProtocolError("the answer declares a DTD; refused")
    try:
        root = ET.fromstring(body)
    except (ET.ParseError, LookupError) as exc:  # LookupError: an encoding the declaration names that is unknown
        raise NestPayProtocolError(f"the answer is not XML ({exc})") from None
    if root.tag != "CC5Response":
        raise NestPayProtocolError(f"the answer is <{root.tag}>, not <CC5Response>")

    def text(name: str) -> str:
        return (root.findtext(name) or "").strip()

    if text("Response") not in _API_RESPONSES:
        raise NestPayProtocolError("the answer has no Approved/Declined/Error Response")
    extra_element = root.find("Extra")
    extra = {child.tag: (child.text or "").strip() for child in extra_element} if extra_element is not None else {}
    return ApiResponse(
        response=text("Response"),
        proc_return_code=text("ProcReturnCode"),
        order_id=text("OrderId"),
        auth_code=text("AuthCode"),
        host_ref_num=text("HostRefNum"),
        trans_id=text("TransId"),
        err_msg=text("ErrMsg"),
        extra=extra,
    )


class NestPayApiClient:
    """Void, refund (Credit) and status (ORDERSTATUS) over the bank's XML API."""

    def __init__(self, config: MerchantConfig, *, timeout: float | tuple[float, float] = (5.0, 30.0)) -> None:
        self.config = config
        self.timeout = timeout  # (connect, read) seconds

    def void(self, oid: str) -> ApiResponse:
        """Cancel a same-day sale, before end-of-day settlement."""
        return self._call(build_api_request(self.config, oid=oid, tran_type="Void"))

    def refund(self, oid: str, amount_minor: int, currency: Currency) -> ApiResponse:
        """Refund after settlement, partial allowed; before it the bank answers ProcReturnCode 99 (use void)."""
        return self._call(build_api_request(
            self.config, oid=oid, tran_type="Credit", amount_minor=amount_minor, currency=currency
        ))

    def order_status(self, oid: str) -> ApiResponse:
        """The order's state; `extra` holds TRANS_STAT, CAPTURE_AMT, ORIG_TRANS_AMT, AUTH_CODE..."""
        return self._call(build_api_request(self.config, oid=oid, extra={"ORDERSTATUS": "QUERY"}))

    def _call(self, document: str) -> ApiResponse:
        if self.config.api_body == "form":
            body: bytes | dict[str, str] = {"DATA": document}
            headers: dict[str, str] = {}
        else:
            body = document.encode("utf-8")
            headers = {"Content-Type": "text/xml; charset=utf-8"}
        try:
            answer = requests.post(
                self.config.api_url, data=body, headers=headers, timeout=self.timeout, allow_redirects=False
            )
        except (requests.Timeout, requests.ConnectionError, requests.exceptions.ChunkedEncodingError) as exc:
            raise NestPayUnavailable(f"NestPay API did not answer ({type(exc).__name__})") from exc
        except requests.RequestException as exc:  # e.g. a body that is not the gzip its header says: unreadable
            raise NestPayProtocolError(f"NestPay API answered something unreadable ({type(exc).__name__})") from exc
        if answer.status_code != 200:
            raise NestPayProtocolError(f"NestPay API answered HTTP {answer.status_code}")
        return parse_api_response(answer.content)
