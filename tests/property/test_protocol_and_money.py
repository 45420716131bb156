"""Hypothesis over the NestPay hash (field order, escaping, tampering) and over money formatting."""
import re
from decimal import Decimal

from flask_babel import force_locale
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from limonbilling.formatting import format_money
from limonbilling.payments import nestpay

STORE_KEY = "TEST1234"
names = st.from_regex(r"[A-Za-z][A-Za-z0-9]{0,11}", fullmatch=True).filter(
    lambda name: name.lower() not in ("hash", "encoding", "countdown", "nationalidno", "hashalgorithm"))
values = st.text(alphabet=st.sampled_from("abcXYZ019 |\\çğıöşüÇĞİÖŞÜ.-_:;/"), max_size=12)
field_sets = st.dictionaries(names, values, min_size=1, max_size=8).filter(
    lambda fields: len({name.lower() for name in fields}) == len(fields))  # names differ beyond their case


@given(field_sets, st.randoms())
def test_the_hash_does_not_depend_on_the_order_of_the_fields(fields, random):
    shuffled = list(fields.items())
    random.shuffle(shuffled)
    assert nestpay.hash_v3(fields, STORE_KEY) == nestpay.hash_v3(dict(shuffled), STORE_KEY)


@given(field_sets, st.data())
def test_any_change_of_a_value_changes_the_hash(fields, data):
    name = data.draw(st.sampled_from(sorted(fields)))
    other = data.draw(values.filter(lambda value: value != fields[name]))
    assert nestpay.hash_v3(fields, STORE_KEY) != nestpay.hash_v3({**fields, name: other}, STORE_KEY)


@given(values, values, values, values)
def test_escaping_keeps_the_boundaries_between_values(a, b, c, d):
    """`a|b` must not hash like `a` + `|b`: the escaping of | and \\ keeps each value whole."""
    assume((a, b) != (c, d))
    assert nestpay.hash_v3({"a": a, "b": b}, STORE_KEY) != nestpay.hash_v3({"a": c, "b": d}, STORE_KEY)


@given(field_sets, st.data())
def test_a_signed_callback_verifies_and_any_tampering_breaks_it(fields, data):
    signed = {**fields, "hashAlgorithm": "ver3"}
    signed["HASH"] = nestpay.hash_v3(signed, STORE_KEY)
    assert nestpay.verify_callback(signed, STORE_KEY)
    name = data.draw(st.sampled_from(sorted(fields)))
    tampered = {**signed, name: data.draw(values.filter(lambda value: value != fields[name]))}
    assert not nestpay.verify_callback(tampered, STORE_KEY)
    assert not nestpay.verify_callback({**signed, "HASH": nestpay.hash_v3(signed, "OTHERKEY")}, STORE_KEY)


def _parse(shown: str, language: str) -> Decimal:
    group, decimal = (".", ",") if language == "tr" else (",", ".")
    digits = re.sub(r"[^\d\-" + re.escape(decimal) + "]", "", shown.replace(group, ""))
    return Decimal(digits.replace(decimal, "."))


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(minor=st.integers(-10**12, 10**12), currency=st.sampled_from(["TRY", "USD", "EUR"]),
       language=st.sampled_from(["tr", "en"]))
def test_money_reads_back_exactly_with_two_decimals(app_without_database, minor, currency, language):
    with app_without_database.test_request_context(), force_locale(language):
        shown = format_money(minor, currency)
    assert re.search(r"[.,]\d{2}$", shown), shown
    assert _parse(shown, language) == Decimal(minor) / 100, shown
    assert ("₺" in shown) == (currency == "TRY" and language == "tr")


# --- card instalments: the surcharge arithmetic (services/instalments.py) ------------------------------------

@given(price=st.integers(1, 10**11), count=st.integers(2, 12), points=st.integers(0, 10_000))
def test_instalments_add_up_to_the_price_and_its_surcharge(price, count, points):
    from limonbilling.services.instalments import split, surcharge

    plan = split(price, count, points)
    exact = Decimal(price) * points / 10_000
    assert plan.surcharge_minor == surcharge(price, points)
    assert abs(plan.surcharge_minor - exact) <= Decimal("0.5")  # rounded to the kuruş…
    assert plan.surcharge_minor - exact != Decimal("-0.5")  # …half up
    assert plan.total_minor == price + plan.surcharge_minor
    assert len(plan.parts) == count and sum(plan.parts) == plan.total_minor
    assert max(plan.parts) - min(plan.parts) <= 1 and list(plan.parts) == sorted(plan.parts, reverse=True)


@given(count=st.integers(2, 12), data=st.data())
def test_the_bank_form_carries_the_instalment_count_inside_the_hash(count, data):
    config = nestpay.MerchantConfig(client_id="190100000", store_key=STORE_KEY, store_type="3d_pay_hosting",
                                    gate_url="https://bank.example/fim/est3Dgate",
                                    api_url="https://bank.example/fim/api", api_user="u", api_password="p")
    values = dict(oid="1-1", amount_minor=data.draw(st.integers(1, 10**9)), currency="TRY",
                  ok_url="https://shop.example/ok", fail_url="https://shop.example/fail", lang="tr", rnd="r")
    _url, fields = nestpay.build_payment_form(config, instalments=count, **values)
    other = data.draw(st.sampled_from([n for n in range(1, 13) if n != count]))
    assert fields["Instalment"] == str(count)
    assert fields["hash"] != nestpay.build_payment_form(config, instalments=other, **values)[1]["hash"]
