"""NestPay protocol: the worked examples of shared/docs/nestpay-3d-pay.md, the real callback, the API over HTTP."""
import base64
import hashlib
import json
import secrets
import socket
import threading
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from functools import cmp_to_key
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs

import pytest

from limonbilling.payments.nestpay import (
    Card,
    MerchantConfig,
    NestPayApiClient,
    NestPayProtocolError,
    NestPayUnavailable,
    PendingPayment,
    build_payment_form,
    decide_callback,
    format_amount,
    hash_v1_callback,
    hash_v1_request,
    hash_v3,
    looks_like_pan,
    luhn_valid,
    safe_raw_fields,
    strnatcasecmp,
    v1_hash_matches,
    verify_callback,
)

# A real ver3 callback (from shared/docs, copied here: the tests stand alone).
EXAMPLE_PATH = Path(__file__).resolve().parents[1] / "data" / "nestpay-callback-example.json"
TEST_CARD = "4355084355084358"
API_PASSWORD = "ZIRAAT19-s3cret"


def b64_sha512(text: str) -> str:
    return base64.b64encode(hashlib.sha512(text.encode("utf-8")).digest()).decode()


def b64_sha1(text: str) -> str:
    return base64.b64encode(hashlib.sha1(text.encode("utf-8")).digest()).decode()


def load_example() -> dict[str, str | None]:
    # A missing file fails the test (FileNotFoundError): the example is part of the specification.
    return json.loads(EXAMPLE_PATH.read_text(encoding="utf-8"))


def make_config(**overrides) -> MerchantConfig:
    values = dict(
        client_id="190200000",
        store_key="123456",
        store_type="3d_pay",
        hash_version="ver3",
        gate_url="https://entegrasyon.asseco-see.com.tr/fim/est3Dgate",
        api_url="https://entegrasyon.asseco-see.com.tr/fim/api",
        api_user="ZIRAATAPI",
        api_password=API_PASSWORD,
    )
    return MerchantConfig(**(values | overrides))


def example_names() -> list[str]:
    """The example's field names for parametrizing; a missing file yields one case that fails in load_example."""
    try:
        return list(load_example())
    except FileNotFoundError:
        return ["<example file missing>"]


def changed(value: str | None) -> str:
    """The value with one character flipped (an empty or missing value gains one)."""
    if not value:
        return "x"
    return value[:-1] + ("y" if value[-1] == "x" else "x")


# --- worked examples --------------------------------------------------------------------------------------------

V3_EXAMPLE_FIELDS = {
    "clientid": "190100000",
    "storetype": "3d_pay",
    "amount": "100.25",
    "oid": "order222",
    "okUrl": "https://domain.com/success",
    "failUrl": "https://domain.com/fail_url",
    "rnd": "rand",
    "lang": "tr",
    "currency": "949",
    "taksit": "",
    "islemtipi": "Auth",
    "firmaadi": "siparis veren",
    "Email": "test@test.com",
    "hashAlgorithm": "ver3",
}
V3_EXAMPLE_PLAINTEXT = (
    "100.25|190100000|949|test@test.com|https://domain.com/fail_url|siparis veren|ver3|Auth|tr|order222"
    "|https://domain.com/success|rand|3d_pay||123456"
)
V3_EXAMPLE_HASH = "/uPxhEKWCEGi3NsDOOQ4u8Hu5g71v5GWspOid70WehTWEz97PqxG3IN1Jv5jsbOXOw3Z3Rr/0UtywzEgbqFfdA=="


def test_ver3_request_worked_example():
    assert b64_sha512(V3_EXAMPLE_PLAINTEXT) == V3_EXAMPLE_HASH  # the page's plaintext is the one hashed
    assert hash_v3(V3_EXAMPLE_FIELDS, "123456") == V3_EXAMPLE_HASH
    assert len(V3_EXAMPLE_HASH) == 88


def test_ver3_request_worked_example_does_not_depend_on_field_order():
    shuffled = dict(reversed(list(V3_EXAMPLE_FIELDS.items())))
    assert hash_v3(shuffled, "123456") == V3_EXAMPLE_HASH


def test_ver1_request_worked_example():
    assert hash_v1_request(
        "700655000200", "order222", "100.25", "https://domain.com/success", "https://domain.com/fail_url",
        "Auth", "", "rand", "TRPS0200",
    ) == "S7UxUAohxaxzl35WxHyDfuQx0sg="


# One split of the page's HASHPARAMSVAL into fields; only the concatenation is hashed.
V1_CALLBACK = {
    "clientid": "990000000000001",
    "oid": "1291899411421",
    "AuthCode": "321654",
    "ProcReturnCode": "00",
    "Response": "Approved",
    "rnd": "asdf",
    "mdStatus": "1",
    "amount": "12.50",
    "currency": "949",
    "HASHPARAMS": "clientid:oid:AuthCode:ProcReturnCode:Response:rnd:",
    "HASHPARAMSVAL": "990000000000001129189941142132165400Approvedasdf",
    "HASH": "CVJssbkrhIzqZXVTwGobciDZI+A=",
}


def v1_signed(fields: dict[str, str], names: str, store_key: str = "123456") -> dict[str, str]:
    """A ver1 callback as the bank signs it: the values of `names` concatenated, then SHA-1 with the key."""
    value = "".join(fields.get(name, "") for name in names.split(":"))
    return fields | {"HASHPARAMS": names, "HASHPARAMSVAL": value, "HASH": b64_sha1(value + store_key)}


# The bank's list for a 3-D success (nestpay-3d-pay.md, "Hash version 1").
V1_BANK_NAMES = "clientid:oid:AuthCode:ProcReturnCode:Response:mdStatus:cavv:eci:md:rnd:"


def test_ver1_callback_worked_example():
    assert b64_sha1(V1_CALLBACK["HASHPARAMSVAL"] + "123456") == V1_CALLBACK["HASH"]
    assert hash_v1_callback(V1_CALLBACK["HASHPARAMSVAL"], "123456") == V1_CALLBACK["HASH"]
    assert v1_hash_matches(V1_CALLBACK, "123456") is True
    assert v1_hash_matches(V1_CALLBACK, "654321") is False


def test_ver1_callback_rejects_fields_that_differ_from_hashparamsval():
    # HASH still matches HASHPARAMSVAL, but the named fields no longer concatenate to it.
    assert v1_hash_matches(V1_CALLBACK | {"Response": "Declined"}, "123456") is False
    assert v1_hash_matches(V1_CALLBACK | {"HASHPARAMSVAL": "990000000000001129189941142132165400Declinedasdf"},
                           "123456") is False
    assert v1_hash_matches(V1_CALLBACK | {"HASH": "DVJssbkrhIzqZXVTwGobciDZI+A="}, "123456") is False
    assert v1_hash_matches({k: v for k, v in V1_CALLBACK.items() if k != "HASH"}, "123456") is False


def test_ver1_callback_missing_named_field_counts_as_empty():
    fields = {"a": "x", "HASHPARAMS": "a:missing:", "HASHPARAMSVAL": "x", "HASH": b64_sha1("xkey")}
    assert v1_hash_matches(fields, "key") is True


def test_ver1_callback_counts_only_when_it_signs_every_field_the_decision_reads():
    fields = V1_CALLBACK | {"md": "m", "cavv": "c", "eci": "05"}
    assert verify_callback(v1_signed(fields, V1_BANK_NAMES), "123456") is True
    # The page's own example leaves mdStatus unsigned: its hash matches, but it proves nothing about 3-D.
    assert verify_callback(V1_CALLBACK, "123456") is False
    for name in ("clientid", "oid", "Response", "ProcReturnCode", "mdStatus"):
        names = V1_BANK_NAMES.replace(f"{name}:", "")
        assert verify_callback(v1_signed(fields, names), "123456") is False, name


def test_forged_ver1_callback_from_the_request_hash_is_bad_hash():
    """Defect 1 of issue 14: the ver1 request hash the browser carries to the bank, replayed as a callback
    over the request fields, with an unsigned Approved outcome. It must never count as paid."""
    config = make_config(hash_version="ver1", store_type="3d_pay_hosting")
    _url, form = build_payment_form(config, oid="4829103744-1", amount_minor=12500, currency="TRY",
                                    ok_url="https://shop.example/ok", fail_url="https://shop.example/fail", lang="tr")
    names = "clientid:oid:amount:okUrl:failUrl:islemtipi:taksit:rnd:"
    forged = {name: value for name, value in form.items() if name != "hash"} | {
        "HASHPARAMS": names,
        "HASHPARAMSVAL": "".join(form.get(name, "") for name in names.split(":")),
        "HASH": form["hash"],
        "Response": "Approved", "ProcReturnCode": "00", "mdStatus": "1",
    }
    assert v1_hash_matches(forged, "123456")  # the request hash does verify over the request fields
    pending = PendingPayment(oid="4829103744-1", amount_minor=12500, currency="TRY")
    decision = decide_callback(forged, config=config, pending=pending)
    assert (decision.approved, decision.reason) == (False, "bad_hash")


# --- the real ver3 callback -------------------------------------------------------------------------------------

def test_real_callback_verifies():
    fields = load_example()
    assert len(fields) == 53
    assert verify_callback(fields, "123456") is True
    assert hash_v3(fields, "123456") == fields["HASH"]
    assert verify_callback(fields, "123457") is False


@pytest.mark.parametrize("name", example_names())
def test_real_callback_changing_any_field_breaks_verification(name):
    fields = load_example()
    fields[name] = changed(fields[name])
    # `encoding` is excluded from the ver3 hash by the specification; every other field is covered.
    assert verify_callback(fields, "123456") is (name == "encoding")


@pytest.mark.parametrize("name", [name for name in example_names() if name != "HASH"])
def test_real_callback_dropping_any_field_breaks_verification(name):
    fields = load_example()
    del fields[name]
    assert verify_callback(fields, "123456") is (name == "encoding")


def test_real_callback_with_wsgi_dotted_name_verifies():
    # A WSGI app receives EXTRA.TRXDATE; PHP (where the example was captured) saw EXTRA_TRXDATE.
    fields = {("EXTRA.TRXDATE" if name == "EXTRA_TRXDATE" else name): value for name, value in load_example().items()}
    assert hash_v3(fields, "123456") != fields["HASH"]  # the dot sorts before letters: another order
    assert verify_callback(fields, "123456") is True
    fields["EXTRA.TRXDATE"] = changed(fields["EXTRA.TRXDATE"])
    assert verify_callback(fields, "123456") is False


def test_callback_hash_only_under_uppercase_name():
    fields = load_example()
    fields["hash"] = fields.pop("HASH")
    assert verify_callback(fields, "123456") is False


def test_callback_extra_field_breaks_verification():
    assert verify_callback(load_example() | {"Amount2": "1000.00"}, "123456") is False


# --- ver3 details -----------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("smaller", "larger"), [
    ("id2", "id10"),
    ("x9", "x10"),
    ("id2b", "id10a"),
    ("ab", "a_b"),            # '_' (0x5F) after the folded letters
    ("az", "a_"),
    ("Z", "_"),
    ("a", "B"),               # case folded: a < B although 'B' < 'a' in ASCII
    ("Ecom_Payment_Card_ExpDate_Month", "Ecom_Payment_Card_ExpDate_Year"),
    ("Ecom_Payment_Card_ExpDate_Year", "Email"),
    ("a01", "a1"),            # a run starting with 0 compares digit by digit
    ("", "a"),
    ("a", "ab"),
    ("EXTRA.TRXDATE", "EXTRA_CARDBRAND"),
])
def test_strnatcasecmp_orders(smaller, larger):
    assert strnatcasecmp(smaller, larger) == -1
    assert strnatcasecmp(larger, smaller) == 1


@pytest.mark.parametrize(("left", "right"), [
    ("Email", "email"), ("HASH", "hash"), ("01", "1"), ("007", "7"), ("a b", "ab"), ("", ""),
])
def test_strnatcasecmp_equal(left, right):
    assert strnatcasecmp(left, right) == 0


def test_strnatcasecmp_sorts_like_php_natcasesort():
    names = ["id10", "ID1", "id2", "Id_x", "idz", "id", "ida"]
    assert sorted(names, key=cmp_to_key(strnatcasecmp)) == ["id", "ID1", "id2", "id10", "ida", "idz", "Id_x"]


def test_hash_v3_natural_order_and_empty_slots():
    fields = {"id10": "ten", "id2": "two", "b_x": None, "bx": "", "Ba": "ba"}
    # Ba < bx < b_x < id2 < id10; None and "" keep their slots
    assert hash_v3(fields, "k") == b64_sha512("ba|||two|ten|k")


def test_hash_v3_escapes_backslash_before_pipe():
    fields = {"a": "x|y", "b": "c\\d", "c": "\\|"}
    assert hash_v3(fields, "k|\\") == b64_sha512("x\\|y|c\\\\d|\\\\\\||k\\|\\\\")


@pytest.mark.parametrize("name", ["hash", "HASH", "Encoding", "countdown", "CountDown", "nationalidno", "NationalIdNo"])
def test_hash_v3_excluded_names(name):
    assert hash_v3({"a": "1", name: "anything"}, "k") == hash_v3({"a": "1"}, "k") == b64_sha512("1|k")


def test_hash_v3_is_utf8():
    assert hash_v3({"BillToName": "Şükrü Işık"}, "k") == b64_sha512("Şükrü Işık|k")


# --- the payment form -------------------------------------------------------------------------------------------

def make_card(**overrides) -> Card:
    return Card(**({"pan": TEST_CARD, "exp_month": 12, "exp_year": 30, "cvv": "000", "card_type": "visa"} | overrides))


def form(config=None, **overrides):
    values = dict(
        oid="4827163950", amount_minor=15000, currency="TRY", ok_url="https://billing.example/pay/ok",
        fail_url="https://billing.example/pay/fail", lang="tr", card=make_card(), rnd="fixedrandomvalue0001",
    )
    return build_payment_form(config or make_config(), **(values | overrides))


@pytest.mark.parametrize(("minor", "text"), [
    (5, "0.05"), (10, "0.10"), (99, "0.99"), (100, "1.00"), (10025, "100.25"), (15000, "150.00"),
    (123456789, "1234567.89"),
])
def test_amount_formatting_from_minor_units(minor, text):
    assert format_amount(minor) == text
    assert form(amount_minor=minor)[1]["amount"] == text


@pytest.mark.parametrize("bad", [1.5, 150.0, "15000", True])
def test_amount_must_be_integer_minor_units(bad):
    with pytest.raises(TypeError):
        form(amount_minor=bad)


@pytest.mark.parametrize("bad", [0, -100])
def test_amount_must_be_positive(bad):
    with pytest.raises(ValueError):
        form(amount_minor=bad)


@pytest.mark.parametrize(("currency", "code"), [("TRY", "949"), ("USD", "840"), ("EUR", "978")])
def test_currency_codes(currency, code):
    assert form(currency=currency)[1]["currency"] == code


def test_unknown_currency_refused():
    with pytest.raises(ValueError):
        form(currency="GBP")


def test_ver3_3d_pay_form():
    url, fields = form(email="ali@example.com", bill_to_name="Ali Veli")
    assert url == "https://entegrasyon.asseco-see.com.tr/fim/est3Dgate"
    assert fields == {
        "clientid": "190200000",
        "storetype": "3d_pay",
        "TranType": "Auth",
        "amount": "150.00",
        "currency": "949",
        "oid": "4827163950",
        "okUrl": "https://billing.example/pay/ok",
        "failUrl": "https://billing.example/pay/fail",
        "lang": "tr",
        "rnd": "fixedrandomvalue0001",
        "Instalment": "",
        "pan": TEST_CARD,
        "Ecom_Payment_Card_ExpDate_Month": "12",
        "Ecom_Payment_Card_ExpDate_Year": "30",
        "cv2": "000",
        "cardType": "1",
        "Email": "ali@example.com",
        "BillToName": "Ali Veli",
        "hashAlgorithm": "ver3",
        "hash": fields["hash"],
    }
    assert list(fields)[-1] == "hash"
    unhashed = {name: value for name, value in fields.items() if name != "hash"}
    assert fields["hash"] == hash_v3(unhashed, "123456")
    # What the bank echoes back verifies the same way (every posted field is hashed).
    assert verify_callback(unhashed | {"HASH": fields["hash"]}, "123456") is True


def test_card_fields_month_padding_and_mastercard():
    fields = form(card=make_card(exp_month=3, exp_year=7, card_type="mastercard", cvv="1234"))[1]
    assert (fields["Ecom_Payment_Card_ExpDate_Month"], fields["Ecom_Payment_Card_ExpDate_Year"]) == ("03", "07")
    assert (fields["cardType"], fields["cv2"]) == ("2", "1234")


def test_hosting_form_has_no_card_fields():
    url, fields = form(make_config(store_type="3d_pay_hosting"), card=None)
    assert fields["storetype"] == "3d_pay_hosting"
    assert not {"pan", "cv2", "Ecom_Payment_Card_ExpDate_Month", "Ecom_Payment_Card_ExpDate_Year", "cardType"} & set(
        fields)
    assert "Email" not in fields and "BillToName" not in fields
    assert fields["hash"] == hash_v3({k: v for k, v in fields.items() if k != "hash"}, "123456")


def test_card_belongs_to_3d_pay_only():
    with pytest.raises(ValueError, match="3d_pay_hosting"):
        form(make_config(store_type="3d_pay_hosting"))
    with pytest.raises(ValueError, match="3d_pay posts the card"):
        form(card=None)


def test_ver1_form():
    config = make_config(hash_version="ver1", store_type="3d_pay_hosting", client_id="700655000200",
                         store_key="TRPS0200")
    _, fields = build_payment_form(
        config, oid="order222", amount_minor=10025, currency="TRY", ok_url="https://domain.com/success",
        fail_url="https://domain.com/fail_url", lang="tr", rnd="rand",
    )
    assert fields["islemtipi"] == "Auth" and fields["taksit"] == ""
    assert "TranType" not in fields and "Instalment" not in fields and "hashAlgorithm" not in fields
    assert fields["hash"] == "S7UxUAohxaxzl35WxHyDfuQx0sg="  # the page's ver1 worked example


def test_rnd_is_fresh_each_time():
    first, second = form(rnd=None)[1], form(rnd=None)[1]
    assert first["rnd"] != second["rnd"]
    assert len(first["rnd"]) == 20
    assert first["hash"] != second["hash"]


@pytest.mark.parametrize("overrides", [{"oid": ""}, {"oid": "x" * 65}, {"lang": "de"}])
def test_form_refuses_bad_values(overrides):
    with pytest.raises(ValueError):
        form(**overrides)


# --- secrets stay out of reprs ----------------------------------------------------------------------------------

def test_card_repr_masks_pan_and_hides_cvv():
    card = make_card(cvv="987")
    for text in (repr(card), str(card), f"{card}", f"{card!r}", repr([card])):
        assert TEST_CARD not in text
        assert "435508" not in text
        assert "987" not in text
        assert "************4358" in text


@pytest.mark.parametrize("overrides", [
    {"pan": "4355 0843 5508 4358"}, {"pan": "12345"}, {"exp_month": 13}, {"exp_year": 2030}, {"cvv": "12"},
    {"card_type": "amex"},
])
def test_card_validation_does_not_quote_values(overrides):
    with pytest.raises(ValueError) as error:
        make_card(**overrides)
    assert TEST_CARD not in str(error.value) and "4355 0843" not in str(error.value)


def test_config_repr_hides_secrets():
    text = repr(make_config(store_key="my-store-key"))
    assert "my-store-key" not in text and API_PASSWORD not in text
    assert "190200000" in text


@pytest.mark.parametrize("overrides", [
    {"store_type": "3d"}, {"hash_version": "ver2"}, {"api_body": "json"}, {"api_url": "ftp://bank/fim/api"},
])
def test_config_validation(overrides):
    with pytest.raises(ValueError):
        make_config(**overrides)


# --- card data never reaches the stored answer ------------------------------------------------------------------

@pytest.mark.parametrize(("value", "expected"), [
    (TEST_CARD, True), ("4355 0843 5508 4358", True), ("4355-0843-5508-4358", True), ("4111111111111111", True),
    ("4355084355084357", False), ("1234567812345678", False), ("435508***4358", False), ("230317184784", False),
    ("43550843550843580000", False), ("", False),
])
def test_looks_like_pan(value, expected):
    assert looks_like_pan(value) is expected


def test_luhn_valid():
    assert luhn_valid(TEST_CARD) and luhn_valid("79927398713") and luhn_valid("0")
    assert not luhn_valid("79927398710") and not luhn_valid("4355084355084357")


def test_safe_raw_fields_drops_card_data():
    fields = {
        "pan": TEST_CARD, "PAN": TEST_CARD, "cv2": "000", "Ecom_Payment_Card_ExpDate_Month": "12",
        "Ecom_Payment_Card_ExpDate_Year": "30", "description": "4355-0843-5508-4358", "note": "4355 0843 5508 4358",
        "MaskedPan": "435508***4358", "maskedCreditCard": "4355 08** **** 4358", "HostRefNum": "230317184784",
        "oid": "4827163950", "reference": "1234567812345678", "ErrMsg": None,
    }
    assert safe_raw_fields(fields) == {
        "MaskedPan": "435508***4358", "maskedCreditCard": "4355 08** **** 4358", "HostRefNum": "230317184784",
        "oid": "4827163950", "reference": "1234567812345678",  # not a card number: fails the Luhn check
        "ErrMsg": "",
    }


def test_safe_raw_fields_keeps_the_real_callback_but_expiry():
    fields = load_example()
    safe = safe_raw_fields(fields)
    assert set(fields) - set(safe) == {"Ecom_Payment_Card_ExpDate_Month", "Ecom_Payment_Card_ExpDate_Year"}
    assert safe["MaskedPan"] == "435508***4358"


# --- deciding a callback ----------------------------------------------------------------------------------------

EXAMPLE_PENDING = PendingPayment(oid="202210308C0F", amount_minor=101, currency="TRY")


def signed(fields: dict[str, str | None], store_key: str = "123456") -> dict[str, str | None]:
    unsigned = {name: value for name, value in fields.items() if name != "HASH"}
    return unsigned | {"HASH": hash_v3(unsigned, store_key)}


def decide(fields, pending=EXAMPLE_PENDING, **config_overrides):
    return decide_callback(fields, config=make_config(**config_overrides), pending=pending)


def test_real_callback_is_approved_with_the_fields_to_keep():
    decision = decide(load_example())
    assert (decision.approved, decision.reason) == (True, None)
    assert decision.attempt_fields == {
        "Response": "Approved", "ProcReturnCode": "00", "mdStatus": "1", "TransId": "22303RqiC11252",
        "AuthCode": "216981", "HostRefNum": "230317184784", "MaskedPan": "435508***4358",
        "mdErrorMsg": load_example()["mdErrorMsg"],
    }
    assert "Ecom_Payment_Card_ExpDate_Month" not in decision.raw_fields
    assert decision.raw_fields["HASH"] == load_example()["HASH"]


def test_bad_hash_comes_first():
    # Unsigned tampering that would also fail every later check.
    fields = load_example() | {"amount": "0.01", "currency": "840", "mdStatus": "0", "Response": "Declined",
                               "ErrMsg": "Call +90 555 to confirm your card"}
    decision = decide(fields, pending=None)
    assert (decision.approved, decision.reason) == (False, "bad_hash")
    assert "Call" not in decision.message  # unverified text is not shown to the customer


def test_ver1_callback_refused_on_a_ver3_store():
    callback = v1_signed(V1_CALLBACK, V1_BANK_NAMES)
    assert verify_callback(callback, "123456") is True
    pending = PendingPayment(oid="1291899411421", amount_minor=1250, currency="TRY")
    assert decide(callback, pending, client_id="990000000000001").reason == "bad_hash"
    ver1 = decide(callback, pending, client_id="990000000000001", hash_version="ver1")
    assert (ver1.approved, ver1.reason) == (True, None)
    assert decide(load_example(), hash_version="ver1").reason == "bad_hash"


@pytest.mark.parametrize(("pending", "changes"), [
    (None, {}),
    (PendingPayment(oid="202210308C0E", amount_minor=101, currency="TRY"), {}),
    (EXAMPLE_PENDING, {"oid": "202210308C0E"}),
    (EXAMPLE_PENDING, {"ReturnOid": "202210308C0E"}),
])
def test_unknown_order(pending, changes):
    # Later checks fail too (amount, md status): the order check is reported first.
    decision = decide(signed(load_example() | changes | {"amount": "5.00", "mdStatus": "0"}), pending)
    assert (decision.approved, decision.reason) == (False, "unknown_order")


def test_empty_return_oid_is_ignored():
    assert decide(signed(load_example() | {"ReturnOid": ""})).approved is True


@pytest.mark.parametrize("amount", ["1.00", "10.1", "101", "1.011", "", "1,01", "1.01 ", "NaN", "-1.01"])
def test_amount_mismatch(amount):
    # The currency and client are wrong too: the amount is reported first.
    decision = decide(signed(load_example() | {"amount": amount, "currency": "978", "clientid": "1"}))
    assert (decision.approved, decision.reason) == (False, "amount_mismatch")


@pytest.mark.parametrize("amount", ["1.01", "1.010", "01.01"])
def test_amount_compared_as_a_number(amount):
    assert decide(signed(load_example() | {"amount": amount})).approved is True


def test_currency_mismatch():
    decision = decide(signed(load_example() | {"clientid": "190100000"}),
                      PendingPayment(oid="202210308C0F", amount_minor=101, currency="USD"))
    assert (decision.approved, decision.reason) == (False, "currency_mismatch")


def test_client_mismatch():
    decision = decide(signed(load_example() | {"clientid": "190100000", "mdStatus": "0"}))
    assert (decision.approved, decision.reason) == (False, "client_mismatch")
    assert decide(load_example(), client_id="190100000").reason == "client_mismatch"


@pytest.mark.parametrize("md_status", ["0", "2", "3", "4", "5", "6", "7", "8", "9", "", "01"])
def test_md_status_without_half_3d(md_status):
    decision = decide(signed(load_example() | {"mdStatus": md_status, "Response": "Declined"}))
    assert (decision.approved, decision.reason) == (False, "md_status")


@pytest.mark.parametrize(("md_status", "approved"), [("1", True), ("2", True), ("3", True), ("4", True),
                                                     ("0", False), ("5", False), ("9", False)])
def test_md_status_with_half_3d(md_status, approved):
    decision = decide(signed(load_example() | {"mdStatus": md_status}), accept_half_3d=True)
    assert decision.approved is approved
    assert decision.reason == (None if approved else "md_status")


def test_error_callback_without_md_status_shows_the_bank_message():
    fields = {name: value for name, value in load_example().items() if name != "mdStatus"}
    fields |= {"Response": "Error", "ProcReturnCode": "99", "ErrorCode": "HPP-1001",
               "ErrMsg": "Kart numarasi gecersiz.", "mdErrorMsg": None}
    decision = decide(signed(fields))
    assert (decision.approved, decision.reason, decision.message) == (False, "md_status", "Kart numarasi gecersiz.")
    assert decision.attempt_fields["ErrorCode"] == "HPP-1001"
    assert "mdStatus" not in decision.attempt_fields


def test_md_status_message_falls_back_to_md_error_message():
    decision = decide(signed(load_example() | {"mdStatus": "0", "mdErrorMsg": "Not authenticated"}))
    assert decision.message == "Not authenticated"


@pytest.mark.parametrize(("response", "code"), [("Declined", "05"), ("Approved", "99"), ("Error", "00"),
                                                ("approved", "00"), ("Approved", "")])
def test_declined(response, code):
    decision = decide(signed(load_example() | {"Response": response, "ProcReturnCode": code,
                                               "ErrMsg": "Red-Onaylanmadi"}))
    assert (decision.approved, decision.reason, decision.message) == (False, "declined", "Red-Onaylanmadi")
    assert decision.attempt_fields["ErrMsg"] == "Red-Onaylanmadi"


def test_declined_without_bank_message_has_ours():
    decision = decide(signed(load_example() | {"Response": "Declined", "ProcReturnCode": "05"}))
    assert decision.reason == "declined" and decision.message.startswith("The bank declined")


def test_callback_echoing_the_card_keeps_no_card_data():
    fields = signed(load_example() | {"pan": TEST_CARD, "cv2": "000"})
    decision = decide(fields)
    assert decision.approved is True
    stored = json.dumps([decision.attempt_fields, decision.raw_fields, decision.message])
    assert TEST_CARD not in stored and '"cv2"' not in stored


# --- the XML API over real HTTP ---------------------------------------------------------------------------------

@dataclass
class FakeBank:
    """A local HTTP server answering every POST with `status`/`body` after `delay` seconds; `echo` sends the
    request back."""

    url: str = ""
    status: int = 200
    body: bytes = b""
    delay: float = 0.0
    echo: bool = False
    received: list[tuple[str, dict[str, str], bytes]] = field(default_factory=list)
    release: threading.Event = field(default_factory=threading.Event)


@pytest.fixture
def bank():
    state = FakeBank()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            request_body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            state.received.append((self.path, dict(self.headers), request_body))
            state.release.wait(state.delay)
            answer = request_body if state.echo else state.body
            try:
                self.send_response(state.status)
                self.send_header("Content-Type", "text/xml")
                self.send_header("Content-Length", str(len(answer)))
                if 300 <= state.status < 400:
                    self.send_header("Location", state.url)
                self.end_headers()
                self.wfile.write(answer)
            except OSError:  # the client gave up (timeout test)
                pass

        do_GET = do_POST  # a followed redirect would come back as a GET

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{server.server_port}/fim/api"
    yield state
    state.release.set()
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


def api_client(bank: FakeBank, timeout: float = 5.0, **overrides) -> NestPayApiClient:
    return NestPayApiClient(make_config(api_url=bank.url, **overrides), timeout=timeout)


def sent_request(bank: FakeBank) -> ET.Element:
    path, headers, body = bank.received[-1]
    assert path == "/fim/api"
    assert headers["Content-Type"] == "text/xml; charset=utf-8"
    assert body.startswith(b'<?xml version="1.0" encoding="UTF-8"?>')
    return ET.fromstring(body)


def children(element: ET.Element) -> list[tuple[str, str | None]]:
    return [(child.tag, child.text) for child in element]


APPROVED_VOID = b"""<?xml version="1.0" encoding="ISO-8859-9"?>
<CC5Response>
  <OrderId>202210308C0F</OrderId>
  <GroupId>202210308C0F</GroupId>
  <Response>Approved</Response>
  <AuthCode>216981</AuthCode>
  <HostRefNum>230317184785</HostRefNum>
  <ProcReturnCode>00</ProcReturnCode>
  <TransId>22303RqiC11253</TransId>
  <ErrMsg></ErrMsg>
  <Extra><SETTLEID></SETTLEID><TRXDATE>20221030 17:50:02</TRXDATE><ERRORCODE></ERRORCODE></Extra>
</CC5Response>"""

REFUND_BEFORE_SETTLEMENT = """<?xml version="1.0" encoding="ISO-8859-9"?>
<CC5Response><OrderId>202210308C0F</OrderId><Response>Error</Response><AuthCode></AuthCode><HostRefNum></HostRefNum>
<ProcReturnCode>99</ProcReturnCode><TransId>22303RqiC11254</TransId>
<ErrMsg>İade yapılamaz, siparis gunsonuna girmemis.</ErrMsg>
<Extra><ERRORCODE>CORE-2508</ERRORCODE></Extra></CC5Response>""".encode("iso-8859-9")

ORDER_STATUS = b"""<CC5Response><ErrMsg>Record(s) found for 202210308C0F</ErrMsg><ProcReturnCode>00</ProcReturnCode>
<Response>Approved</Response><OrderId>202210308C0F</OrderId><TransId>22303RqiC11252</TransId>
<Extra><AUTH_CODE>216981</AUTH_CODE><TRANS_STAT>S</TRANS_STAT><CAPTURE_AMT>101</CAPTURE_AMT>
<ORIG_TRANS_AMT>101</ORIG_TRANS_AMT><CHARGE_TYPE_CD>S</CHARGE_TYPE_CD></Extra></CC5Response>"""


def test_void_approved(bank):
    bank.body = APPROVED_VOID
    answer = api_client(bank).void("202210308C0F")
    assert children(sent_request(bank)) == [
        ("Name", "ZIRAATAPI"), ("Password", API_PASSWORD), ("ClientId", "190200000"), ("Type", "Void"),
        ("OrderId", "202210308C0F"),
    ]
    assert (answer.response, answer.proc_return_code, answer.succeeded) == ("Approved", "00", True)
    assert (answer.order_id, answer.auth_code, answer.host_ref_num, answer.trans_id, answer.err_msg) == (
        "202210308C0F", "216981", "230317184785", "22303RqiC11253", "")
    assert answer.extra == {"SETTLEID": "", "TRXDATE": "20221030 17:50:02", "ERRORCODE": ""}


def test_refund_refused_before_settlement(bank):
    bank.body = REFUND_BEFORE_SETTLEMENT
    answer = api_client(bank).refund("202210308C0F", 1250, "EUR")
    assert children(sent_request(bank)) == [
        ("Name", "ZIRAATAPI"), ("Password", API_PASSWORD), ("ClientId", "190200000"), ("Type", "Credit"),
        ("OrderId", "202210308C0F"), ("Total", "12.50"), ("Currency", "978"),
    ]
    assert (answer.response, answer.proc_return_code, answer.succeeded) == ("Error", "99", False)
    assert answer.err_msg == "İade yapılamaz, siparis gunsonuna girmemis."  # decoded from ISO-8859-9
    assert answer.extra == {"ERRORCODE": "CORE-2508"}


def test_order_status(bank):
    bank.body = ORDER_STATUS
    answer = api_client(bank).order_status("202210308C0F")
    request = sent_request(bank)
    assert [tag for tag, _ in children(request)] == ["Name", "Password", "ClientId", "OrderId", "Extra"]
    assert children(request.find("Extra")) == [("ORDERSTATUS", "QUERY")]
    assert answer.succeeded
    assert answer.extra["TRANS_STAT"] == "S"
    assert (answer.extra["CAPTURE_AMT"], answer.extra["ORIG_TRANS_AMT"], answer.extra["AUTH_CODE"]) == (
        "101", "101", "216981")


def test_form_encoded_body(bank):
    bank.body = APPROVED_VOID
    api_client(bank, api_body="form", api_user="API&<user>").void("A&B")
    _, headers, body = bank.received[-1]
    assert headers["Content-Type"] == "application/x-www-form-urlencoded"
    document = parse_qs(body.decode("ascii"), strict_parsing=True)["DATA"]
    request = ET.fromstring(document[0].encode("utf-8"))
    assert request.findtext("Name") == "API&<user>"  # escaped in XML, not injected
    assert request.findtext("OrderId") == "A&B"


def test_declined_answer(bank):
    bank.body = (b"<CC5Response><OrderId>X1</OrderId><Response>Declined</Response><ProcReturnCode>05</ProcReturnCode>"
                 b"<ErrMsg>Islem onaylanmadi</ErrMsg></CC5Response>")
    answer = api_client(bank).void("X1")
    assert (answer.response, answer.proc_return_code, answer.succeeded, answer.err_msg) == (
        "Declined", "05", False, "Islem onaylanmadi")
    assert (answer.auth_code, answer.trans_id, answer.extra) == ("", "", {})


def test_timeout_is_unavailable(bank):
    bank.body, bank.delay = APPROVED_VOID, 3.0
    with pytest.raises(NestPayUnavailable) as error:
        api_client(bank, timeout=0.3).refund("202210308C0F", 101, "TRY")
    assert len(bank.received) == 1  # the request reached the bank: its outcome is unknown
    assert API_PASSWORD not in str(error.value) and API_PASSWORD not in repr(error.value)


def test_connection_refused_is_unavailable():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    client = NestPayApiClient(make_config(api_url=f"http://127.0.0.1:{port}/fim/api"), timeout=2)
    with pytest.raises(NestPayUnavailable):
        client.void("X1")


@pytest.mark.parametrize(("status", "body"), [
    (200, b"<html><body>Service Unavailable</body></html>"),
    (200, b"garbage \x00\xff"),
    (200, b""),
    (200, b"<CC5Response><OrderId>X1</OrderId></CC5Response>"),
    (200, b"<CC5Response><Response>Maybe</Response></CC5Response>"),
    # Well-formed and valid once the entity is expanded: refused for its DTD alone.
    (200, b'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY a "Approved">]><CC5Response><Response>&a;</Response>'
          b"<ProcReturnCode>00</ProcReturnCode></CC5Response>"),
    (500, APPROVED_VOID),
    (302, APPROVED_VOID),  # redirects are not followed (a POST would become a GET)
])
def test_garbage_is_a_protocol_error(bank, status, body):
    bank.status, bank.body = status, body
    with pytest.raises(NestPayProtocolError):
        api_client(bank).void("X1")


def test_errors_never_carry_the_password(bank):
    bank.echo = True  # the answer is our own request: not a CC5Response, and it contains the password
    with pytest.raises(NestPayProtocolError) as error:
        api_client(bank).void("X1")
    assert API_PASSWORD.encode() in bank.received[-1][2]
    assert API_PASSWORD not in str(error.value) and API_PASSWORD not in repr(error.value)
    assert API_PASSWORD not in repr(api_client(bank).config)


# --- instalments (taksit) ---------------------------------------------------------------------------------------

# The page's ver3 worked example with taksit 3: the count takes the empty slot after storetype.
V3_INSTALMENT_PLAINTEXT = (
    "100.25|190100000|949|test@test.com|https://domain.com/fail_url|siparis veren|ver3|Auth|tr|order222"
    "|https://domain.com/success|rand|3d_pay|3|123456"
)


def test_ver3_request_hash_with_a_count():
    fields = V3_EXAMPLE_FIELDS | {"taksit": "3"}
    assert hash_v3(fields, "123456") == b64_sha512(V3_INSTALMENT_PLAINTEXT)
    assert hash_v3(fields, "123456") != V3_EXAMPLE_HASH


def test_ver3_form_with_six_instalments_hashes_the_count():
    _, fields = form(make_config(store_type="3d_pay_hosting"), card=None, instalments=6)
    assert fields["Instalment"] == "6"
    # amount|clientid|currency|failUrl|hashAlgorithm|Instalment|lang|oid|okUrl|rnd|storetype|TranType|key
    plaintext = ("150.00|190200000|949|https://billing.example/pay/fail|ver3|6|tr|4827163950"
                 "|https://billing.example/pay/ok|fixedrandomvalue0001|3d_pay_hosting|Auth|123456")
    assert fields["hash"] == b64_sha512(plaintext)
    single = form(make_config(store_type="3d_pay_hosting"), card=None)[1]
    assert single["Instalment"] == "" and single["hash"] != fields["hash"]


def test_ver1_form_with_three_instalments_hashes_taksit():
    config = make_config(hash_version="ver1", store_type="3d_pay_hosting", client_id="700655000200",
                         store_key="TRPS0200")
    _, fields = build_payment_form(
        config, oid="order222", amount_minor=10025, currency="TRY", ok_url="https://domain.com/success",
        fail_url="https://domain.com/fail_url", lang="tr", rnd="rand", instalments=3,
    )
    assert fields["taksit"] == "3"
    assert fields["hash"] == b64_sha1(
        "700655000200order222100.25https://domain.com/successhttps://domain.com/fail_urlAuth3randTRPS0200")


@pytest.mark.parametrize("count", [0, -3, 13, 1.5, True, "3"])
def test_form_refuses_a_count_outside_2_to_12(count):
    with pytest.raises(ValueError, match="instalment"):
        form(instalments=count)


@pytest.mark.parametrize("count", [2, 12])
def test_form_takes_counts_2_to_12(count):
    assert form(instalments=count)[1]["Instalment"] == str(count)


def test_callback_with_the_orders_count_is_approved():
    pending = PendingPayment(oid="202210308C0F", amount_minor=101, currency="TRY", instalments=3)
    assert decide(signed(load_example() | {"Instalment": "3"}), pending).approved is True
    # The other name, when ours is not there (the real callback carries an empty taksit).
    assert decide(signed(load_example() | {"taksit": "3"}), pending).approved is True


@pytest.mark.parametrize(("changes", "instalments"), [
    ({"Instalment": "6"}, 3),  # another count, signed by the bank
    ({"Instalment": ""}, 3),  # a single payment for an instalment order
    ({"Instalment": "3"}, 1),  # instalments for a single-payment order
    ({"Instalment": "6", "taksit": "3"}, 3),  # ours counts
    ({"Instalment": "03x"}, 3),
    ({"Instalment": "13"}, 1),
])
def test_instalment_mismatch_is_refused_and_the_money_returned(changes, instalments):
    pending = PendingPayment(oid="202210308C0F", amount_minor=101, currency="TRY", instalments=instalments)
    decision = decide(signed(load_example() | changes), pending)
    assert (decision.approved, decision.reason, decision.money_taken) == (False, "instalment_mismatch", True)
    assert "instalments" in decision.message


def test_unsigned_count_change_is_a_bad_hash():
    pending = PendingPayment(oid="202210308C0F", amount_minor=101, currency="TRY", instalments=3)
    decision = decide(signed(load_example() | {"Instalment": "3"}) | {"Instalment": "6"}, pending)
    assert decision.reason == "bad_hash" and decision.money_taken is False


def test_ver1_callback_count_is_compared():
    callback = v1_signed(V1_CALLBACK | {"taksit": "3"}, V1_BANK_NAMES)
    pending = PendingPayment(oid="1291899411421", amount_minor=1250, currency="TRY", instalments=3)
    config = {"client_id": "990000000000001", "hash_version": "ver1"}
    assert decide(callback, pending, **config).approved is True
    wrong = decide(callback | {"taksit": "6"}, pending, **config)
    assert (wrong.reason, wrong.money_taken) == ("instalment_mismatch", True)


def test_a_ver1_forms_rnd_starts_with_a_letter(monkeypatch):
    """Attack pass 12: ver1's request hash joins islemtipi, taksit and rnd with no separator. With a rnd of
    "3...", a taksit of "3" and the rnd's rest sign as our single payment, and the bank splits it into 3
    instalments the store did not sell (the ver1 callback signs no count, so it is written back as empty)."""
    monkeypatch.setattr(secrets, "token_urlsafe", lambda size: "3" * (size * 4 // 3 + 1))
    _url, fields = form(make_config(hash_version="ver1"), rnd=None)
    assert fields["taksit"] == "" and fields["rnd"][0].isalpha() and len(fields["rnd"]) == 20
