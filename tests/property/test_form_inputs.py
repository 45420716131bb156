"""Hypothesis posts generated numbers and text to every agent and customer form that takes a number, and to
the list filters, through the Flask test client: whatever is typed, the answer is never a 500 (issue 15,
defect 9). Run on SQLite and PostgreSQL, where a number past a 32-bit column used to fail only in the database.

Testing propagates exceptions, so an unexpected error fails the example with its traceback.
"""
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from limonbilling.extensions import db
from limonbilling.models import Order
from limonbilling.services import audit, bank_transfer, order_actions

from ..factories import activate, make_agent, make_customer, make_department, make_package, sign_in
from ..payment_support import configure_gateway, paid_by_card

SYSTEM = audit.Actor.system("test")
RUNS = settings(max_examples=200, deadline=None, database=None, derandomize=True,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])

# What a person may type where a number is asked: whole numbers of any size, decimals and floats as Python
# writes them (1E+30, NaN, sNaN, -Infinity, 5e-324), Turkish decimal commas, digits of other scripts,
# thousands of digits, and any text.
numbers = st.one_of(
    st.integers().map(str),
    st.integers(-(2**80), 2**80).map(str),
    st.decimals(allow_nan=True, allow_infinity=True).map(str),
    st.floats().map(repr),
    st.decimals(-(10**12), 10**12, places=2).map(lambda value: str(value).replace(".", ",")),
    st.sampled_from(["", " ", "-0", "0", "1", "²", "٣", "١٢٣", "1e999999999", "9" * 5000, "0x10", "1_000",
                     "10.000.000,00", "10000000.00", "10000000.01", "2147483647", "2147483648", "21474836.48",
                     "-2147483649", "1e-30", "NaN", "inf", "²" * 16, "٤٣٥٥٠٨٤٣٥٥٠٨٤٣٥٨"]),
    st.text(max_size=40),
)


@pytest.fixture
def world(app):
    """An owner agent, a customer with credits and a paid order, a customer signed in to the portal."""
    configure_gateway()
    support = make_department("Support", credit_per_request=1)
    credits = make_package("credit", [support], credits=10)
    monthly = make_package("subscription", [support], days=30)
    holder = make_customer()
    activate(holder, credits)
    bank_transfer.add_account(bank_name="Ziraat", account_holder="Limon A.Ş.", iban="TR330006100519786457841326",
                              currency="TRY", actor=SYSTEM)
    db.session.commit()
    agent = app.test_client()
    sign_in(agent, make_agent(is_owner=True))
    shopper = make_customer()
    portal = app.test_client()
    sign_in(portal, shopper)
    return {"support": support, "credits": credits, "monthly": monthly, "holder": holder, "agent": agent,
            "portal": portal, "shopper": shopper, "order": paid_by_card(make_customer(), credits)}


def _agent_forms(w) -> dict:
    """Each agent form with numbers: its address and the fields, `N` where a generated number goes."""
    holder, order = w["holder"], w["order"]
    return {
        "package": ("/admin/billing/packages/new", {
            "name": "P", "type": ("credit", "subscription"), "price": "{n}", "currency": "TRY", "credits": "{n}",
            "days": "{n}", "department_ids": "{n}", "on_sale": "y"}),
        "department": ("/admin/departments/new", {"name": "D", "credit_per_request": "{n}", "active": "y"}),
        "promo code": ("/admin/billing/promo-codes", {
            "code": "C", "kind": ("percent", "fixed"), "value": "{n}", "currency": "TRY", "max_uses": "{n}",
            "package_ids": "{n}"}),
        "credits": (f"/admin/billing/subscriptions/{holder.id}", {"credits": "{n}", "reason": "r"}),
        "balance": (f"/admin/billing/subscriptions/{holder.id}/balance", {
            "amount": "{n}", "currency": "TRY", "reason": "r"}),
        "low-credit threshold": (f"/admin/billing/subscriptions/{holder.id}/low-credit-threshold",
                                 {"low_credit_threshold": "{n}"}),
        "place order": (f"/admin/billing/customers/{holder.id}/orders/new", {
            "package_id": "{n}", "payment_method": ("manual", "bank_transfer", "account_balance"),
            "price_override": "{n}", "create_invoice": "y"}),
        "refund": (f"/admin/billing/orders/{order.number}/refund", {"to": "balance", "amount": "{n}"}),
        "general": ("/admin/settings/general", {"company_name": "L", "default_language": "en",
                                                "renewal_window_days": "{n}"}),
        "invoices": ("/admin/settings/invoices", {"vat_rate_percent": "{n}", "vat_inclusive": ("y", ""),
                                                  "retention_years": "{n}"}),
        "payments": ("/admin/settings/payments", {
            "nestpay_bank": "asseco_test", "nestpay_store_type": "3d_pay", "nestpay_hash_version": "ver3",
            "nestpay_api_body": "raw", "card_checkout_minutes": "{n}"}),
        "orders and fraud": ("/admin/settings/orders", {name: "{n}" for name in (
            "fraud_threshold", "fraud_failed_cards_points", "fraud_failed_cards_limit", "fraud_many_orders_points",
            "fraud_many_orders_limit", "fraud_many_orders_minutes", "fraud_ip_failed_customers_points",
            "fraud_ip_failed_customers_limit", "fraud_unverified_email_points", "fraud_price_points",
            "fraud_price_factor")}),
        "notifications": ("/admin/settings/notifications", {
            "smtp_port": "{n}", "smtp_security": "none", "notification_max_attempts": "{n}",
            "low_credit_threshold": "{n}", "sms_method": "POST"}),
        "bulk status": ("/admin/billing/orders/bulk", {"numbers": order.number, "status": "custom:{n}"}),
    }


def _typed(draw, template: str, label: str, quoted: bool = False) -> str:
    """The template with a generated number for each {n}."""
    parts = template.split("{n}")
    drawn = [draw(numbers, label=label) for _ in parts[1:]]
    return parts[0] + "".join((quote(value, safe="") if quoted else value) + part
                              for value, part in zip(drawn, parts[1:], strict=True))


def _fill(draw, fields: dict) -> dict:
    """The fields with generated numbers where the template says {n}, and one of each tuple of choices."""
    return {name: draw(st.sampled_from(value)) if isinstance(value, tuple) else _typed(draw, value, name)
            for name, value in fields.items()}


@pytest.mark.slow
@RUNS
@given(data=st.data())
def test_no_agent_form_answers_500_whatever_number_is_typed(world, data):
    name, (url, fields) = data.draw(st.sampled_from(sorted(_agent_forms(world).items())), label="form")
    answer = world["agent"].post(url, data=_fill(data.draw, fields))
    db.session.rollback()
    assert answer.status_code < 500, (name, answer.status_code)


def _portal_forms(w) -> dict:
    return {
        "card checkout": (f"/checkout/{w['credits'].id}", {
            "card_number": "{n}", "card_expiry": "{n}/{n}", "card_cvv": "{n}", "promo_code": "{n}",
            "accept_contracts": "y"}),
        "card for a renewal": (f"/checkout/{w['monthly'].id}", {
            "card_number": "4355084355084358", "card_expiry": "{n}", "card_cvv": "{n}", "accept_contracts": "y"}),
        "transfer checkout": (f"/checkout/{w['credits'].id}/transfer", {"promo_code": "{n}", "accept_contracts": "y"}),
        "balance checkout": (f"/checkout/{w['credits'].id}/balance", {"promo_code": "{n}", "accept_contracts": "y"}),
        "ticket": ("/tickets/new", {"department_id": "{n}", "subject": "S", "body": "{n}"}),
        "chat": ("/chats/new", {"department_id": "{n}", "subject": "", "body": "{n}"}),
        "profile": ("/profile", {"account_type": ("individual", "corporate"), "first_name": "Ayşe",
                                 "last_name": "Yılmaz", "email": w["shopper"].email, "phone": "{n}",
                                 "national_id": "{n}", "company_name": "Limon", "tax_number": "{n}",
                                 "tax_office": "Kadıköy", "billing_address": "Moda", "language": ""}),
    }


@pytest.mark.slow
@RUNS
@given(data=st.data())
def test_no_customer_form_answers_500_whatever_number_is_typed(world, data):
    name, (url, fields) = data.draw(st.sampled_from(sorted(_portal_forms(world).items())), label="form")
    answer = world["portal"].post(url, data=_fill(data.draw, fields))
    db.session.rollback()
    assert answer.status_code < 500, (name, answer.status_code)
    for order in db.session.scalars(db.select(Order).where(Order.customer_id == world["shopper"].id)):
        if order.awaiting_payment:  # one unpaid order at a time: clear the way for the next example
            order_actions.cancel_unpaid_order(order, SYSTEM)
    db.session.commit()


@pytest.mark.slow
@RUNS
@given(data=st.data())
def test_no_list_filter_answers_500_whatever_number_is_typed(world, data):
    holder, package = world["holder"].id, world["credits"].id
    lists = ["/admin/billing/orders?status=custom:{n}&before={n}&from={n}",
             "/admin/billing/orders.csv?status=custom:{n}", "/admin/billing/orders?after={n}&sort=oldest&to={n}",
             "/admin/customers?before={n}&after={n}", "/admin/billing/subscriptions?before={n}",
             f"/admin/billing/subscriptions/{holder}?after={{n}}", "/admin/notifications?per_page={n}&before={n}",
             "/admin/tickets?page={n}", "/admin/cancellations?page={n}", "/orders?page={n}", "/tickets?page={n}",
             "/chats?page={n}", f"/checkout/{package}?promo={{n}}"]
    url = _typed(data.draw, data.draw(st.sampled_from(lists), label="list"), "value", quoted=True)
    answer = world["agent" if url.startswith("/admin") else "portal"].get(url)
    db.session.rollback()
    assert answer.status_code < 500, (url[:200], answer.status_code)
