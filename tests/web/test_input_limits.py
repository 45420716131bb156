"""Issue 15, defects 8 and 9: how much a visitor may send, and numbers nobody can store.

Defect 8: a body over MAX_CONTENT_LENGTH answers 413 with the error page (JSON under /api/), the bank's
callback address takes a few kilobytes only, and ticket and chat messages have a length limit.
Defect 9: every number a person can type (amounts, whole numbers, ids in filters, card fields) is refused
with a clear message when nothing can hold it, on SQLite and on PostgreSQL (where most of them were 500s),
and an unexpected error in the API answers the API's JSON shape.
"""
import os
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlencode

import pytest
import requests

from limonbilling.extensions import db
from limonbilling.forms import MAX_MESSAGE_LENGTH
from limonbilling.models import (
    BalanceEntry,
    Conversation,
    Customer,
    Department,
    LedgerEntry,
    Message,
    Order,
    OrderStatus,
    Package,
    PromoCode,
    Refund,
)
from limonbilling.services import api_tokens, audit, balance, settings
from limonbilling.services.packages import MAX_MONEY_MINOR

from ..factories import activate, make_agent, make_customer, make_department, make_package, sign_in
from ..http.servers import LiveServer
from ..payment_support import bank_answer, card_order, configure_gateway, paid_by_card

ROOT = Path(__file__).resolve().parents[2]
SYSTEM = audit.Actor.system("test")
LIMIT = 1024 * 1024  # MAX_CONTENT_LENGTH by default
CALLBACK_LIMIT = 16 * 1024  # NESTPAY_CALLBACK_MAX_LENGTH by default
TOO_LARGE = "What you sent is larger than this site accepts"


def _count(model) -> int:
    db.session.rollback()  # see what the requests committed
    return db.session.scalar(db.select(db.func.count()).select_from(model))


@pytest.fixture
def desk(app):
    support = make_department("Support", credit_per_request=1)
    customer = make_customer()
    activate(customer, make_package("credit", [support], credits=10))
    client = app.test_client()
    sign_in(client, customer)
    return {"support": support, "customer": customer, "client": client}


# --- defect 8: request size ---------------------------------------------------------------------------------

def _form_of_length(length: int, **fields) -> str:
    """An urlencoded body of exactly `length` bytes: the fields, then a padding field."""
    head = urlencode(fields) + "&pad="
    return head + "x" * (length - len(head))


@pytest.mark.slow
def test_the_limits_come_from_the_environment(tmp_path):
    show = "from limonbilling import create_app; a = create_app(); " \
           "print(a.config['MAX_CONTENT_LENGTH'], a.config['NESTPAY_CALLBACK_MAX_LENGTH'])"
    environment = {key: value for key, value in os.environ.items()
                   if key not in ("MAX_CONTENT_LENGTH", "NESTPAY_CALLBACK_MAX_LENGTH")}
    environment.update(LIMONBILLING_INSTANCE=str(tmp_path), LIMONBILLING_CONFIG="testing")
    default = subprocess.run([sys.executable, "-c", show], cwd=ROOT, env=environment, capture_output=True,
                             text=True, timeout=60)
    assert default.stdout.split() == [str(LIMIT), str(CALLBACK_LIMIT)], default.stderr
    environment.update(MAX_CONTENT_LENGTH="5000000", NESTPAY_CALLBACK_MAX_LENGTH="8192")
    changed = subprocess.run([sys.executable, "-c", show], cwd=ROOT, env=environment, capture_output=True,
                             text=True, timeout=60)
    assert changed.stdout.split() == ["5000000", "8192"], changed.stderr


def test_a_form_over_the_size_limit_is_refused_with_the_error_page(app, desk):
    client, support = desk["client"], desk["support"]
    refused = client.post("/tickets/new", data={"department_id": support.id, "subject": "Big",
                                                "body": "x" * (2 * 1024 * 1024)})
    assert refused.status_code == 413
    page = refused.data.decode()
    assert TOO_LARGE in page and "Go to the start page" in page
    assert _count(Conversation) == 0 and desk["customer"].credits == 10
    # The edge: a body of exactly the limit is read (the long message is refused by its own rule), one byte more is not.
    fields = {"department_id": support.id, "subject": "Edge", "body": "y" * (MAX_MESSAGE_LENGTH + 1)}
    at_limit = client.post("/tickets/new", data=_form_of_length(LIMIT, **fields),
                           content_type="application/x-www-form-urlencoded")
    assert at_limit.status_code == 200 and "at most 20000 characters" in at_limit.data.decode()
    over = client.post("/tickets/new", data=_form_of_length(LIMIT + 1, **fields),
                       content_type="application/x-www-form-urlencoded")
    assert over.status_code == 413
    assert _count(Conversation) == 0
    agent = app.test_client()
    sign_in(agent, make_agent("customers"))
    refused = agent.post("/admin/customers/new", data={"first_name": "x" * (2 * 1024 * 1024)})
    assert refused.status_code == 413 and TOO_LARGE in refused.data.decode() and "Sign out" in refused.data.decode()
    assert _count(Customer) == 1


def test_an_anonymous_sign_in_form_over_the_limit_is_refused(app, client):
    refused = client.post("/login", data={"email": "a@example.com", "password": "p" * (2 * 1024 * 1024)})
    assert refused.status_code == 413 and TOO_LARGE in refused.data.decode()


def test_the_bank_callback_takes_a_few_kilobytes_only(app, client):
    """Anyone can post to the callback address: a signed, approved answer padded past the callback's limit is
    refused before it is read, and the order stays unpaid; at the limit it is processed."""
    configure_gateway()
    customer = make_customer()
    package = make_package("credit", credits=10)
    order, attempt = card_order(customer, package)
    signed = bank_answer(attempt)

    def padded(length: int) -> str:
        """The signed answer padded to `length` bytes in `countdown`, a field the signature leaves out."""
        head = urlencode({**signed, "countdown": ""})
        return head + "p" * (length - len(head))

    for length in (50 * 1024, CALLBACK_LIMIT + 1):
        refused = client.post("/payments/nestpay/ok", data=padded(length),
                              content_type="application/x-www-form-urlencoded")
        assert refused.status_code == 413 and TOO_LARGE in refused.data.decode()
        db.session.expire_all()
        assert db.session.get(Order, order.id).payment_status == "unpaid"
    processed = client.post("/payments/nestpay/ok", data=padded(CALLBACK_LIMIT),
                            content_type="application/x-www-form-urlencoded")
    assert processed.status_code == 303
    db.session.expire_all()
    assert db.session.get(Order, order.id).payment_status == "paid"
    # Other pages keep the general limit: 50 KB is an ordinary form there.
    assert client.post("/login", data={"email": "a@example.com", "password": "p" * 50 * 1024}).status_code == 200


def test_over_real_http_the_sender_gets_the_413_page(app, make_app):
    """The app answers without reading the body: the client must still get the answer, not a reset connection."""
    db.session.close()
    with LiveServer(make_app()) as server:
        for path, size in (("/payments/nestpay/ok", 50 * 1024), ("/login", 2 * 1024 * 1024)):
            answer = requests.post(f"{server.url}{path}", data={"x": "y" * size}, timeout=30)
            assert answer.status_code == 413 and TOO_LARGE in answer.text, path


@pytest.fixture
def api(app, client):
    _token, plain = api_tokens.create_token("limits", ["read", "write"], SYSTEM)
    db.session.commit()
    return client, {"Authorization": f"Bearer {plain}"}


def test_an_api_body_over_the_limit_answers_the_json_error(api):
    client, headers = api

    def body_of(length: int) -> str:
        head = '{"first_name": "'
        return head + "x" * (length - len(head) - 2) + '"}'

    at_limit = client.post("/api/v1/customers", headers=headers, data=body_of(LIMIT), content_type="application/json")
    assert at_limit.status_code == 422 and at_limit.json["error"]["code"] == "validation_failed"
    over = client.post("/api/v1/customers", headers=headers, data=body_of(LIMIT + 1), content_type="application/json")
    assert over.status_code == 413 and over.content_type == "application/json"
    assert over.json["error"]["code"] == "request_entity_too_large" and TOO_LARGE in over.json["error"]["message"]
    assert _count(Customer) == 0


def test_ticket_and_chat_messages_have_a_length_limit(app, desk):
    client, support = desk["client"], desk["support"]
    for section in ("tickets", "chats"):
        refused = client.post(f"/{section}/new", data={"department_id": support.id, "subject": "Long",
                                                       "body": "z" * (MAX_MESSAGE_LENGTH + 1)})
        assert refused.status_code == 200 and "Write at most 20000 characters." in refused.data.decode()
    assert _count(Conversation) == 0 and _count(LedgerEntry) == 1  # only the purchase: nothing charged
    opened = client.post("/tickets/new", data={"department_id": support.id, "subject": "Long",
                                               "body": "z" * MAX_MESSAGE_LENGTH})
    assert opened.status_code == 302
    refused = client.post(opened.location, data={"body": "r" * (MAX_MESSAGE_LENGTH + 1)})
    assert "Write at most 20000 characters." in refused.data.decode()
    agent = app.test_client()
    sign_in(agent, make_agent("support"))
    ticket = db.session.scalar(db.select(Conversation))
    refused = agent.post(f"/admin/tickets/{ticket.id}", data={"body": "a" * (MAX_MESSAGE_LENGTH + 1)})
    assert "Write at most 20000 characters." in refused.data.decode()
    assert _count(Message) == 1
    assert agent.post(f"/admin/tickets/{ticket.id}", data={"body": "a" * MAX_MESSAGE_LENGTH}).status_code == 302
    assert _count(Message) == 2


# --- defect 9: numbers --------------------------------------------------------------------------------------

TOO_MUCH = "At most 10,000,000.00."
AMOUNTS = {  # what a person types → the refusal
    str(2**31): TOO_MUCH, "21474836.48": TOO_MUCH, "10000000.01": TOO_MUCH, "9" * 5000: TOO_MUCH,
    "-1": "The price must be more than 0.", "NaN": "Enter a price like 150.00.",
    "inf": "Enter a price like 150.00.", "-Infinity": "Enter a price like 150.00.", "abc": "Enter a price like 150.00.",
    # exponents are not how people write money: refused, never read (1e2 used to be 100.00)
    "1e30": "Enter a price like 150.00.", "1e999999999": "Enter a price like 150.00.",
    "1e-30": "Enter a price like 150.00.", "0.001": "Use at most 2 decimals.",
}


@pytest.fixture
def office(app):
    support = make_department("Support", credit_per_request=1)
    customer = make_customer()
    package = make_package("credit", [support], credits=10)
    activate(customer, package)
    client = app.test_client()
    sign_in(client, make_agent(is_owner=True))
    return {"client": client, "support": support, "customer": customer, "package": package}


def _amount_forms(office) -> dict:
    """Each form that takes an amount: (address, form fields around the amount, the table it would write)."""
    customer, package = office["customer"], office["package"]
    order = paid_by_card(make_customer(), package)
    return {
        "package price": ("/admin/billing/packages/new", lambda v: {
            "name": "X", "type": "credit", "price": v, "currency": "TRY", "credits": "5",
            "department_ids": [office["support"].id]}, Package),
        "fixed promo code": ("/admin/billing/promo-codes", lambda v: {
            "code": "A", "kind": "fixed", "value": v, "currency": "TRY"}, PromoCode),
        "balance adjustment": (f"/admin/billing/subscriptions/{customer.id}/balance", lambda v: {
            "amount": v, "currency": "TRY", "reason": "r"}, BalanceEntry),
        "price override": (f"/admin/billing/customers/{customer.id}/orders/new", lambda v: {
            "package_id": package.id, "payment_method": "manual", "price_override": v}, Order),
        "refund": (f"/admin/billing/orders/{order.number}/refund", lambda v: {"to": "balance", "amount": v}, Refund),
    }


def test_amounts_nobody_can_store_are_refused_clearly(office):
    client = office["client"]
    for name, (url, fields, model) in _amount_forms(office).items():
        before = _count(model)
        for typed, refusal in AMOUNTS.items():
            if (name, typed) == ("balance adjustment", "-1"):  # takes 1.00 away from an empty balance
                refusal = "The balance would go below zero."
            if name == "refund":  # the refund page does not show its amount field, only that a field is wrong
                refusal = "Please correct the fields marked below."
            answer = client.post(url, data=fields(typed))
            assert answer.status_code in (200, 422), (name, typed)
            assert refusal in answer.data.decode(), (name, typed)
            assert _count(model) == before, (name, typed)


def test_the_largest_amount_fits_every_column_with_vat_on_top(office):
    """10,000,000.00 with 100% VAT added is an order of 20,000,000.00: it fits every column, and so do two of
    them refunded to one balance (40,000,000.00, past what the 32-bit columns held)."""
    client = office["client"]
    settings.update({"vat_rate_percent": 100, "vat_inclusive": False}, SYSTEM)
    db.session.commit()
    answer = client.post("/admin/billing/packages/new", data={
        "name": "Largest", "type": "credit", "price": "10000000.00", "currency": "TRY", "credits": "5",
        "department_ids": [office["support"].id], "on_sale": "y"})
    assert answer.status_code == 302
    package = db.session.scalar(db.select(Package).where(Package.name == "Largest"))
    assert package.price_minor == MAX_MONEY_MINOR
    orders = []
    for _ in range(2):
        buyer = make_customer()
        placed = client.post(f"/admin/billing/customers/{buyer.id}/orders/new",
                             data={"package_id": package.id, "payment_method": "manual", "create_invoice": "y"})
        assert placed.status_code == 302
        orders.append(db.session.scalar(db.select(Order).where(Order.customer_id == buyer.id)))
    assert orders[0].amount_minor == 2 * MAX_MONEY_MINOR and orders[0].invoice.total_minor == 2 * MAX_MONEY_MINOR
    assert client.post(f"/admin/billing/orders/{orders[0].number}/refund", data={"to": "balance"}).status_code == 302
    orders[1].customer_id = orders[0].customer_id
    db.session.commit()
    assert client.post(f"/admin/billing/orders/{orders[1].number}/refund", data={"to": "balance"}).status_code == 302
    assert _count(Refund) == 2
    assert balance.amounts(db.session.get(Customer, orders[0].customer_id)) == {"TRY": 4 * MAX_MONEY_MINOR}


WHOLE_NUMBERS = ["1e30", str(2**31), str(2**63), "9" * 5000, "-1", "NaN", "inf", "1e-30", "1.5", "²"]


def _whole_number_forms(office) -> dict:
    """Each form that takes a whole number: (address, fields around it, the table it would write or None,
    the refusal it shows)."""
    customer, support = office["customer"], office["support"]
    return {
        "package credits": ("/admin/billing/packages/new", lambda v: {
            "name": "X", "type": "credit", "price": "5", "currency": "TRY", "credits": v,
            "department_ids": [support.id]}, Package, "Enter a whole number from 1 to 1,000,000,000."),
        "package days": ("/admin/billing/packages/new", lambda v: {
            "name": "X", "type": "subscription", "price": "5", "currency": "TRY", "days": v,
            "department_ids": [support.id]}, Package, "Enter a whole number from 1 to 36,500."),
        "credit per request": ("/admin/departments/new", lambda v: {"name": "Y", "credit_per_request": v},
                               Department, "Enter a whole number of credits from 0 to 1000000."),
        "promo percent": ("/admin/billing/promo-codes", lambda v: {"code": "A", "kind": "percent", "value": v},
                          PromoCode, "A percentage from 1 to 99."),
        "promo uses": ("/admin/billing/promo-codes", lambda v: {"code": "A", "kind": "percent", "value": "5",
                                                                "max_uses": v}, PromoCode, None),
        "credit adjustment": (f"/admin/billing/subscriptions/{customer.id}", lambda v: {"credits": v, "reason": "r"},
                              LedgerEntry, None),
        "low-credit threshold": (f"/admin/billing/subscriptions/{customer.id}/low-credit-threshold",
                                 lambda v: {"low_credit_threshold": v}, None, None),
        "VAT rate": ("/admin/settings/invoices", lambda v: {"vat_rate_percent": v, "retention_years": "10"}, None,
                     None),
        "invoice retention": ("/admin/settings/invoices", lambda v: {"vat_rate_percent": "20", "retention_years": v},
                              None, None),
        "renewal window": ("/admin/settings/general", lambda v: {
            "company_name": "L", "default_language": "en", "renewal_window_days": v}, None, None),
        "global low-credit threshold": ("/admin/settings/notifications", lambda v: {
            "smtp_port": "25", "smtp_security": "none", "notification_max_attempts": "3",
            "low_credit_threshold": v, "sms_method": "POST"}, None, None),
    }


@pytest.mark.parametrize("typed", WHOLE_NUMBERS)
def test_whole_numbers_nobody_can_store_are_refused_clearly(office, typed):
    client = office["client"]
    before = settings.get_all()
    for name, (url, fields, model, refusal) in _whole_number_forms(office).items():
        count = _count(model) if model else None
        answer = client.post(url, data=fields(typed))
        if (name, typed) == ("credit adjustment", "-1"):  # takes one credit away: a real adjustment
            assert answer.status_code == 302
            continue
        page = answer.data.decode()
        assert answer.status_code in (200, 422), (name, typed)
        assert 'class="invalid-feedback"' in page or "alert-danger" in page, (name, typed)
        assert refusal is None or refusal in page, (name, typed)
        if model:
            assert _count(model) == count, (name, typed)
    assert settings.get_all() == before


def test_promo_code_uses_are_bounded(office):
    client = office["client"]
    refused = client.post("/admin/billing/promo-codes", data={"code": "A", "kind": "percent", "value": "5",
                                                              "max_uses": str(2**31)})
    assert "From 1 to 1,000,000, or leave it empty for no limit." in refused.data.decode()
    assert _count(PromoCode) == 0
    made = client.post("/admin/billing/promo-codes", data={"code": "A", "kind": "percent", "value": "5",
                                                           "max_uses": "1000000"})
    assert made.status_code == 302 and db.session.scalar(db.select(PromoCode)).max_uses == 1_000_000


@pytest.mark.parametrize("typed", ["9" * 5000, str(2**31), str(2**63), "-1", "0", "²", "1e3", ""])
def test_ids_in_filters_beyond_any_record_are_ignored_or_refused(office, typed):
    client = office["client"]
    order = paid_by_card(make_customer(), office["package"])
    status = OrderStatus(name="Waiting", colour="#112233", counts_as="pending")
    db.session.add(status)
    db.session.commit()
    listed = client.get(f"/admin/billing/orders?status=custom:{typed}")
    assert listed.status_code == 200 and order.number in listed.data.decode()
    exported = client.get(f"/admin/billing/orders.csv?status=custom:{typed}")
    assert exported.status_code == 200 and order.number in exported.data.decode("utf-8-sig")
    bulk = client.post("/admin/billing/orders/bulk", data={"numbers": [order.number], "status": f"custom:{typed}"},
                       follow_redirects=True)
    assert bulk.status_code == 200 and "Choose a status from the list." in bulk.data.decode()
    db.session.expire_all()
    assert db.session.get(Order, order.id).custom_status_id is None
    made = client.post("/admin/billing/packages/new", data={
        "name": "X", "type": "credit", "price": "5", "currency": "TRY", "credits": "5", "department_ids": [typed]})
    assert made.status_code == 200 and _count(Package) == 1
    page = made.data.decode()  # a number no id can be, or no number at all
    assert "Choose at least one department." in page or "Invalid choice(s)" in page
    # A real custom status still filters.
    assert order.number not in client.get(f"/admin/billing/orders?status=custom:{status.id}").data.decode()


def test_card_fields_with_digits_of_other_scripts_are_refused(app):
    configure_gateway()
    customer = make_customer()
    package = make_package("credit", credits=10)
    client = app.test_client()
    sign_in(client, customer)
    for number, expiry, cvv in (("4355084355084358", "²/30", "123"), ("4355084355084358", "12/" + "9" * 5000, "123"),
                                ("٤٣٥٥٠٨٤٣٥٥٠٨٤٣٥٨", "12/30", "١٢٣"), ("²" * 16, "12/30", "²²²")):
        answer = client.post(f"/checkout/{package.id}", data={"card_number": number, "card_expiry": expiry,
                                                              "card_cvv": cvv, "accept_contracts": "y"})
        assert answer.status_code == 422, (number, expiry, cvv)
        page = answer.data.decode()
        assert "Check the card number." in page or "Write the expiry as MM/YY" in page or "3 or 4 digits" in page
    assert _count(Order) == 0


def test_api_numbers_nobody_can_store_answer_422(api):
    client, headers = api
    support = make_department("Support", credit_per_request=1)
    customer = make_customer()
    package = make_package("credit", [support], credits=10)
    activate(customer, package)
    order = paid_by_card(make_customer(), package)
    url = f"/api/v1/customers/{customer.id}/credit-adjustments"
    for credits in (1e30, 1.5, "10", None, True, "NaN"):
        answer = client.post(url, headers=headers, json={"credits": credits, "reason": "r"})
        assert answer.status_code == 422 and "credits" in answer.json["error"]["fields"], credits
    for raw in ('{"credits": NaN, "reason": "r"}', '{"credits": Infinity, "reason": "r"}',
                '{"credits": 1' + "0" * 5000 + ', "reason": "r"}'):
        answer = client.post(url, headers=headers, data=raw, content_type="application/json")
        assert answer.status_code in (400, 409, 422) and answer.json["error"]["code"], raw[:30]
    for credits, status in ((2**31, 409), (-(2**31), 402), (2**63, 409)):
        answer = client.post(url, headers=headers, json={"credits": credits, "reason": "r"})
        assert answer.status_code == status, credits
    for typed, refusal in AMOUNTS.items():
        answer = client.post("/api/v1/orders", headers=headers, json={
            "customer_id": customer.id, "package_id": package.id, "payment_method": "manual",
            "price_override": typed})
        assert answer.status_code == 422 and answer.json["error"]["fields"]["price_override"] == [refusal], typed
        answer = client.post(f"/api/v1/orders/{order.number}/refund", headers=headers,
                             json={"to": "balance", "amount": typed})
        assert answer.status_code == 422 and answer.json["error"]["fields"]["amount"] == [refusal], typed
    for amount in (1e30, 2**31, float("inf")):
        answer = client.post(f"/api/v1/orders/{order.number}/refund", headers=headers,
                             json={"to": "balance", "amount": amount})
        assert answer.status_code == 422, amount
    for limit in ("1e30", "9" * 5000, str(2**63), "-1", "NaN"):
        assert client.get(f"/api/v1/customers/{customer.id}/ledger?limit={limit}&before_id={limit}",
                          headers=headers).status_code == 200
    assert _count(Refund) == 0 and _count(Order) == 1


def test_an_unexpected_api_error_answers_json_without_detail(make_app_without_database, caplog):
    """A database that cannot be reached is an error no handler expects: the API answers its JSON shape with
    a 500 and no traceback or connection detail; the log keeps the traceback."""
    broken = make_app_without_database(SQLALCHEMY_DATABASE_URI="postgresql+psycopg://nobody@127.0.0.1:9/none",
                      PROPAGATE_EXCEPTIONS=False)
    answer = broken.test_client().get("/api/v1/departments", headers={"Authorization": "Bearer lb_x"})
    assert answer.status_code == 500 and answer.content_type == "application/json"
    error = answer.json["error"]
    assert error["code"] == "internal_server_error" and set(error) == {"code", "message"}
    assert "127.0.0.1" not in answer.text and "Traceback" not in answer.text and "psycopg" not in answer.text
    assert any(record.exc_info for record in caplog.records if record.levelname == "ERROR")


def test_http_errors_under_the_api_keep_their_codes(api):
    client, headers = api
    answer = client.get("/api/v1/no-such-thing", headers=headers)
    assert answer.status_code == 404 and answer.json["error"]["code"] == "not_found"
    answer = client.put("/api/v1/usage", headers=headers, json={})
    assert answer.status_code == 405 and answer.json["error"]["code"] == "method_not_allowed"
