"""The help-desk JSON API through the test client: shapes, errors, idempotency, the licence switch, OpenAPI."""
import re

import pytest

from limonbilling.extensions import db
from limonbilling.models import ApiIdempotencyKey, ApiToken, Customer, LedgerEntry, Order, Usage
from limonbilling.services import ServiceError, api_tokens, audit, ledger, placement, settings

from ..factories import (
    activate,
    make_agent,
    make_customer,
    make_department,
    make_package,
    make_transfer_account,
    sign_in,
)

SYSTEM = audit.Actor.system("test")


def _token(*scopes: str) -> dict:
    _record, plain = api_tokens.create_token("Help desk", list(scopes or ("read", "write")), SYSTEM)
    db.session.commit()
    return {"Authorization": f"Bearer {plain}"}


@pytest.fixture
def auth(app):
    return _token()


@pytest.fixture
def world(app):
    support = make_department("Support", credit_per_request=3)
    servers = make_department("Servers", credit_per_request=5)
    credits = make_package("credit", [support], credits=10, price="150.00", name="Ten")
    monthly = make_package("subscription", [servers], days=30, price="500.00", name="Monthly")
    customer = make_customer(email="ayse@example.com")
    activate(customer, credits)
    return {"support": support, "servers": servers, "credits": credits, "monthly": monthly, "customer": customer}


def _charge(client, auth, customer, department, reference="HD-1", kind="ticket"):
    return client.post("/api/v1/usage", headers=auth, json={
        "customer_id": customer.id, "department_id": department.id, "kind": kind, "reference": reference})


def test_departments_and_packages(client, auth, world):
    departments = client.get("/api/v1/departments", headers=auth).json
    assert {"id": world["support"].id, "name": "Support", "credit_per_request": 3, "active": True} in departments
    packages = client.get("/api/v1/packages", headers=auth).json
    assert {"id": world["credits"].id, "name": "Ten", "type": "credit", "price": "150.00", "currency": "TRY",
            "credits": 10, "days": None, "department_ids": [world["support"].id]} in packages
    assert any(p["type"] == "subscription" and p["days"] == 30 and p["credits"] is None for p in packages)


def test_find_and_create_customers(client, auth, world):
    found = client.get("/api/v1/customers?email=AYSE@example.com", headers=auth).json
    assert [c["id"] for c in found] == [world["customer"].id]
    assert client.get("/api/v1/customers?email=nobody@example.com", headers=auth).json == []
    assert client.get("/api/v1/customers", headers=auth).status_code == 400

    response = client.post("/api/v1/customers", headers=auth, json={
        "account_type": "corporate", "first_name": "Mehmet", "last_name": "Öztürk", "email": "Mehmet@Example.com",
        "phone": "0212 555 12 34", "company_name": "Öztürk A.Ş.", "tax_number": "4540536920",
        "tax_office": "Kadıköy", "billing_address": "Moda", "language": "tr"})
    assert response.status_code == 201
    body = response.json
    assert (body["email"], body["phone"], body["account_type"], body["company_name"]) == (
        "mehmet@example.com", "+902125551234", "corporate", "Öztürk A.Ş.")
    assert client.get(f"/api/v1/customers/{body['id']}", headers=auth).json["last_name"] == "Öztürk"

    invalid = client.post("/api/v1/customers", headers=auth, json={
        "account_type": "corporate", "first_name": "X", "last_name": "Y", "email": "ayse@example.com",
        "phone": "12", "tax_number": "4540536921"})
    assert invalid.status_code == 422
    fields = invalid.json["error"]["fields"]
    assert {"email", "phone", "tax_number", "company_name", "tax_office", "billing_address"} <= fields.keys()


def test_entitlement_and_ledger(client, auth, world):
    customer = world["customer"]
    held = client.get(f"/api/v1/customers/{customer.id}/entitlement", headers=auth).json
    assert held == {"customer_id": customer.id, "package_type": "credit", "credits": 10, "subscription": None,
                    "departments": [{"id": world["support"].id, "name": "Support", "source": "package",
                                     "usable": True, "cost": 3}]}
    _charge(client, auth, customer, world["support"])
    entries = client.get(f"/api/v1/customers/{customer.id}/ledger", headers=auth).json
    assert [(e["kind"], e["amount"], e["balance_after"]) for e in entries] == [("usage", -3, 7), ("purchase", 10, 10)]
    assert entries[0]["usage"] == {"kind": "ticket", "reference": "HD-1"}
    older = client.get(f"/api/v1/customers/{customer.id}/ledger?before_id={entries[0]['id']}&limit=1",
                       headers=auth).json
    assert [e["kind"] for e in older] == ["purchase"]

    subscriber = make_customer()
    activate(subscriber, world["monthly"])
    held = client.get(f"/api/v1/customers/{subscriber.id}/entitlement", headers=auth).json
    assert held["package_type"] == "subscription" and held["subscription"]["expires_at"].endswith("Z")
    assert held["departments"][0]["cost"] == 0 and held["departments"][0]["usable"]


def test_usage_is_charged_once_per_reference(client, auth, world):
    customer, support = world["customer"], world["support"]
    first = _charge(client, auth, customer, support)
    assert first.status_code == 201
    assert first.json == {"charged": 3, "credits": 7, "covered_by": "credits",
                          "usage_id": first.json["usage_id"], "repeated": False}
    again = _charge(client, auth, customer, support)
    assert again.status_code == 200 and again.json == {**first.json, "repeated": True}
    db.session.refresh(customer)
    assert customer.credits == 7
    assert db.session.scalar(db.select(db.func.count(Usage.id))) == 1


def test_usage_refusals(client, auth, world):
    customer = world["customer"]
    refused = _charge(client, auth, customer, world["servers"])
    assert refused.status_code == 403 and refused.json["error"]["code"] == "department_not_enabled"
    for n in range(3):
        _charge(client, auth, customer, world["support"], reference=f"T{n}")
    poor = _charge(client, auth, customer, world["support"], reference="T-last")
    assert poor.status_code == 402
    assert poor.json["error"] | {"message": ""} == {"code": "insufficient_credits", "message": "", "have": 1, "need": 3}
    other = make_customer()
    activate(other, world["credits"])
    conflict = _charge(client, auth, other, world["support"], reference="T0")
    assert conflict.status_code == 409 and conflict.json["error"]["code"] == "reference_conflict"
    assert _charge(client, auth, customer, world["support"], kind="email").status_code == 422
    missing = client.post("/api/v1/usage", headers=auth, json={"customer_id": 999999, "department_id": 1,
                                                                "kind": "ticket", "reference": "X"})
    assert missing.status_code == 404
    malformed = client.post("/api/v1/usage", headers=auth, data="{not json", content_type="application/json")
    assert malformed.status_code == 400 and malformed.json["error"]["code"] == "bad_request"


def test_credit_adjustments(client, auth, world):
    customer = world["customer"]
    url = f"/api/v1/customers/{customer.id}/credit-adjustments"
    response = client.post(url, headers=auth, json={"credits": 5, "reason": "Goodwill"})
    assert response.status_code == 201 and response.json["balance_after"] == 15
    assert client.post(url, headers=auth, json={"credits": 5, "reason": ""}).status_code == 422
    assert client.post(url, headers=auth, json={"credits": -99, "reason": "Too much"}).status_code == 402
    subscriber = make_customer()
    activate(subscriber, world["monthly"])
    refused = client.post(f"/api/v1/customers/{subscriber.id}/credit-adjustments", headers=auth,
                          json={"credits": 5, "reason": "Gift"})
    assert refused.status_code == 409 and refused.json["error"]["code"] == "not_a_credit_customer"
    entry = db.session.scalars(db.select(LedgerEntry).where(LedgerEntry.kind == "adjustment")).one()
    assert entry.reason == "Goodwill"


def test_no_adjustment_takes_the_balance_past_what_an_account_holds(client, auth, world):
    """The balance is a 32-bit integer: past 2,147,483,647 the answer is a refusal, never a database error."""
    customer = world["customer"]
    url = f"/api/v1/customers/{customer.id}/credit-adjustments"
    filled = client.post(url, headers=auth, json={"credits": ledger.MAX_BALANCE - 10, "reason": "Fill"})
    assert filled.status_code == 201 and filled.json["balance_after"] == ledger.MAX_BALANCE
    for credits in (1, 2**31, 2**40):
        refused = client.post(url, headers=auth, json={"credits": credits, "reason": "More"})
        assert refused.status_code == 409 and refused.json["error"]["code"] == "balance_limit", refused.json
    assert client.post(url, headers=auth, json={"credits": -(2**40), "reason": "Less"}).status_code == 402
    db.session.expire_all()
    assert db.session.get(Customer, customer.id).credits == ledger.MAX_BALANCE == ledger.ledger_sum(customer.id)


def test_tokens_missing_wrong_revoked_and_scopes(client, world):
    assert client.get("/api/v1/departments").status_code == 401
    wrong = client.get("/api/v1/departments", headers={"Authorization": "Bearer lb_wrong"})
    assert wrong.status_code == 401 and wrong.headers["WWW-Authenticate"].startswith("Bearer")
    reader = _token("read")
    assert client.get("/api/v1/departments", headers=reader).status_code == 200
    denied = _charge(client, reader, world["customer"], world["support"])
    assert denied.status_code == 403 and denied.json["error"]["code"] == "insufficient_scope"
    writer = _token("write")
    assert client.get("/api/v1/departments", headers=writer).status_code == 403
    token = db.session.scalars(db.select(ApiToken).order_by(ApiToken.id.desc())).first()
    api_tokens.revoke(token, SYSTEM)
    db.session.commit()
    assert client.get("/api/v1/departments", headers=writer).status_code == 401


def test_a_read_token_changes_nothing_through_any_write(app, client, world):
    """Every POST of the API, with real ids and a body that would act, is refused to a token holding only `read`
    (with an Idempotency-Key too), and nothing changes: no order, refund, charge, adjustment or customer."""
    from limonbilling.models import AuditEntry

    customer, package = world["customer"], world["credits"]
    order = placement.place_agent_order(customer, package, payment_method="manual", actor=SYSTEM)
    db.session.commit()
    number, reader = order.number, _token("read")
    body = {"customer_id": customer.id, "package_id": package.id, "department_id": world["support"].id,
            "payment_method": "manual", "kind": "ticket", "reference": "HD-9", "credits": 5, "reason": "x",
            "to": "balance", "email": "new@example.com", "first_name": "A", "last_name": "B",
            "phone": "0532 123 45 67", "account_type": "individual"}
    counted = (Order, LedgerEntry, Usage, Customer, AuditEntry, ApiIdempotencyKey)
    before = [db.session.scalar(db.select(db.func.count()).select_from(model)) for model in counted]
    checked = 0
    for rule in app.url_map.iter_rules():
        if not rule.endpoint.startswith("api.") or "POST" not in rule.methods:
            continue
        actions = sorted(rule._converters["action"].items) if "action" in rule.arguments else [None]
        for action in actions:
            values = {"customer_id": customer.id, "number": number, "action": action}
            url = rule.build({k: v for k, v in values.items() if k in rule.arguments}, append_unknown=False)[1]
            response = client.post(url, json=body, headers={**reader, "Idempotency-Key": f"k-{checked}"})
            assert response.status_code == 403 and response.json["error"]["code"] == "insufficient_scope", url
            checked += 1
    assert checked >= 9
    db.session.expire_all()
    assert [db.session.scalar(db.select(db.func.count()).select_from(model)) for model in counted] == before
    assert (db.session.get(Order, order.id).status, db.session.get(Order, order.id).payment_status) == (
        "active", "paid")


def test_licence_switch_hides_billing_endpoints_and_loses_nothing(client, auth, world):
    customer = world["customer"]
    settings.update({"vip_support_enabled": False}, SYSTEM)
    db.session.commit()
    off = _charge(client, auth, customer, world["support"])
    assert off.status_code == 404 and off.json["error"]["code"] == "module_disabled"
    for path in ("/api/v1/packages", f"/api/v1/customers/{customer.id}/entitlement",
                 f"/api/v1/customers/{customer.id}/ledger"):
        assert client.get(path, headers=auth).status_code == 404, path
    assert client.get("/api/v1/departments", headers=auth).status_code == 200
    settings.update({"vip_support_enabled": True}, SYSTEM)
    db.session.commit()
    assert client.get(f"/api/v1/customers/{customer.id}/entitlement", headers=auth).json["credits"] == 10


def test_unknown_routes_and_methods_answer_json(client, auth):
    assert client.get("/api/v1/nothing-here", headers=auth).json["error"]["code"] == "not_found"
    response = client.delete("/api/v1/departments", headers=auth)
    assert response.status_code == 405 and response.json["error"]["code"] == "method_not_allowed"


def test_every_route_is_in_the_openapi_document_and_back(app_without_database):
    client = app_without_database.test_client()
    document = client.get("/api/v1/openapi.json").json
    assert document["openapi"].startswith("3.")
    documented = {(path, method.upper()) for path, item in document["paths"].items() for method in item}
    served = set()
    for rule in app_without_database.url_map.iter_rules():
        if rule.endpoint.startswith("api.") and rule.endpoint != "api.openapi":
            path = rule.rule.removeprefix("/api/v1").replace("<int:customer_id>", "{customer_id}")
            path = path.replace("<number>", "{number}")
            actions = re.search(r"<any\(([^)]*)\):action>", path)
            paths = [path.replace(actions.group(0), a.strip()) for a in actions.group(1).split(",")] if actions \
                else [path]
            served |= {(p, method) for p in paths for method in rule.methods - {"HEAD", "OPTIONS"}}
            view = app_without_database.view_functions[rule.endpoint]
            assert getattr(view, "api_scope", None) in ("read", "write"), rule.endpoint
    assert served == documented


def test_token_pages_show_the_token_once(app, client):
    sign_in(client, make_agent(is_owner=True))
    created = client.post("/admin/settings/api-tokens/new", data={"name": "Zendesk", "scope_read": "y"})
    page = created.data.decode()
    plain = page.split('id="new-token" readonly value="')[1].split('"')[0]
    assert plain.startswith("lb_") and created.headers["Cache-Control"] == "no-store"
    assert client.get("/api/v1/departments", headers={"Authorization": f"Bearer {plain}"}).status_code == 200
    listing = client.get("/admin/settings/api-tokens").data.decode()
    assert "Zendesk" in listing and plain not in listing and plain[:10] in listing
    token = db.session.scalar(db.select(ApiToken))
    assert token.token_hash != plain and plain not in token.token_hash
    client.post(f"/admin/settings/api-tokens/{token.id}/revoke")
    assert client.get("/api/v1/departments", headers={"Authorization": f"Bearer {plain}"}).status_code == 401
    no_scope = client.post("/admin/settings/api-tokens/new", data={"name": "X"})
    assert "Choose at least one scope" in no_scope.data.decode()


def test_only_an_owner_makes_tokens_an_agent_with_settings_lists_and_revokes_them(app, client):
    """A token acts with billing and customer rights: an agent with only `settings` gave themselves both."""
    owner = app.test_client()
    sign_in(owner, make_agent(is_owner=True))
    owner.post("/admin/settings/api-tokens/new", data={"name": "Zendesk", "scope_read": "y", "scope_write": "y"})
    sign_in(client, make_agent("settings"))
    listing = client.get("/admin/settings/api-tokens")
    page = listing.data.decode()
    assert listing.status_code == 200 and "Zendesk" in page and "Create token" not in page
    refused = client.post("/admin/settings/api-tokens/new", data={"name": "Mine", "scope_read": "y",
                                                                  "scope_write": "y"})
    assert refused.status_code == 403
    with pytest.raises(ServiceError, match="Only an owner"):
        api_tokens.create_token("Mine", ["read", "write"], audit.Actor.of(make_agent("settings", "billing")))
    token = db.session.scalar(db.select(ApiToken))
    assert [token.name] == [t.name for t in db.session.scalars(db.select(ApiToken))]
    client.post(f"/admin/settings/api-tokens/{token.id}/revoke")
    db.session.expire_all()
    assert token.revoked_at is not None


def test_cli_create_token_prints_a_working_token(app, client):
    result = app.test_cli_runner().invoke(args=["billing", "create-token", "Help desk", "--scope", "read"])
    assert result.exit_code == 0
    plain = result.output.strip()
    assert plain.startswith("lb_") and "\n" not in plain
    assert client.get("/api/v1/departments", headers={"Authorization": f"Bearer {plain}"}).status_code == 200


def test_orders_manual_is_active_at_once_and_bank_transfer_waits_for_accept(client, auth, world):
    customer = world["customer"]
    body = {"customer_id": customer.id, "package_id": world["credits"].id, "payment_method": "manual",
            "price_override": "100,00"}
    created = client.post("/api/v1/orders", headers=auth, json=body)
    assert created.status_code == 201, created.json
    order = created.json
    assert re.fullmatch(r"[1-9]\d{9}", order["number"])
    assert (order["status"], order["payment_status"], order["kind"], order["amount"], order["currency"]) == (
        "active", "paid", "top-up", "100.00", "TRY")
    assert client.get(f"/api/v1/customers/{customer.id}/entitlement", headers=auth).json["credits"] == 20
    assert client.get(f"/api/v1/orders/{order['number']}", headers=auth).json == order

    make_transfer_account()
    switch = client.post("/api/v1/orders", headers=auth, json={
        "customer_id": customer.id, "package_id": world["monthly"].id, "payment_method": "bank_transfer"})
    number = switch.json["number"]
    assert (switch.json["status"], switch.json["payment_status"], switch.json["kind"]) == (
        "pending", "unpaid", "switch")
    second = client.post("/api/v1/orders", headers=auth, json={**body, "price_override": None})
    assert second.status_code == 409 and second.json["error"]["code"] == "open_order"  # rule 7
    accepted = client.post(f"/api/v1/orders/{number}/accept", headers=auth)
    assert (accepted.json["status"], accepted.json["payment_status"]) == ("active", "paid")
    assert client.get(f"/api/v1/customers/{customer.id}/entitlement", headers=auth).json["package_type"] == \
        "subscription"
    again = client.post(f"/api/v1/orders/{number}/accept", headers=auth)
    assert again.status_code == 409 and again.json["error"]["code"] == "already_active"


def test_order_actions_and_refund_to_balance(client, auth, world):
    customer = world["customer"]
    number = client.post("/api/v1/orders", headers=auth, json={
        "customer_id": customer.id, "package_id": world["credits"].id, "payment_method": "manual"}).json["number"]
    assert client.post(f"/api/v1/orders/{number}/fraud", headers=auth).json["status"] == "fraud"
    assert client.get(f"/api/v1/customers/{customer.id}/entitlement", headers=auth).json["credits"] == 10
    assert client.post(f"/api/v1/orders/{number}/pending", headers=auth).json["status"] == "pending"
    assert client.post(f"/api/v1/orders/{number}/accept", headers=auth).json["status"] == "active"
    refunded = client.post(f"/api/v1/orders/{number}/refund", headers=auth)
    assert refunded.status_code == 200
    assert (refunded.json["status"], refunded.json["payment_status"], refunded.json["refund"]) == (
        "cancelled", "refunded", "refunded")
    again = client.post(f"/api/v1/orders/{number}/refund", headers=auth)  # refused in its first step
    assert again.status_code == 409 and again.json["error"]["code"] == "nothing_to_refund"
    db.session.expire_all()
    from limonbilling.services import balance

    assert balance.amount(customer, "TRY") == 15000
    assert client.post(f"/api/v1/orders/{number}/cancel", headers=auth).status_code == 409
    assert client.get("/api/v1/orders/0000000000", headers=auth).status_code == 404


def test_a_write_sent_again_with_its_idempotency_key_gets_the_first_answer_and_acts_once(client, auth, world):
    """A help desk that retries a request after a timeout must not place a second order or refund twice."""
    customer = world["customer"]
    body = {"customer_id": customer.id, "package_id": world["credits"].id, "payment_method": "manual"}
    first = client.post("/api/v1/orders", headers={**auth, "Idempotency-Key": "order-1"}, json=body)
    again = client.post("/api/v1/orders", headers={**auth, "Idempotency-Key": "order-1"}, json=body)
    assert first.status_code == again.status_code == 201 and first.json == again.json
    assert "Idempotent-Replayed" not in first.headers and again.headers["Idempotent-Replayed"] == "true"
    assert db.session.scalar(db.select(db.func.count(Order.id))) == 1
    assert client.get(f"/api/v1/customers/{customer.id}/entitlement", headers=auth).json["credits"] == 20

    other = client.post("/api/v1/orders", headers={**auth, "Idempotency-Key": "order-1"},
                        json={**body, "quantity": 2})
    assert other.status_code == 422 and other.json["error"]["code"] == "idempotency_key_reused"
    another_token = client.post("/api/v1/orders", headers={**_token(), "Idempotency-Key": "order-1"}, json=body)
    assert another_token.status_code == 201 and another_token.json["number"] != first.json["number"]  # per token

    number = first.json["number"]
    for _attempt in range(2):
        part = client.post(f"/api/v1/orders/{number}/refund", headers={**auth, "Idempotency-Key": "refund-1"},
                           json={"to": "balance", "amount": "25.00"})
        assert part.status_code == 200
    from limonbilling.services import balance

    db.session.expire_all()
    assert balance.amount(customer, "TRY") == 2500  # refunded once
    assert client.post(f"/api/v1/orders/{number}/refund", headers=auth,
                       json={"to": "balance", "amount": "25.00"}).status_code == 200  # no key: a new refund
    db.session.expire_all()
    assert balance.amount(customer, "TRY") == 5000


def test_a_refused_write_keeps_no_key_and_a_bad_key_is_refused(client, auth, world):
    body = {"customer_id": world["customer"].id, "package_id": world["credits"].id, "payment_method": "manual",
            "promo_code": "NOPE"}
    refused = client.post("/api/v1/orders", headers={**auth, "Idempotency-Key": "k"}, json=body)
    assert refused.status_code == 409 and db.session.scalar(db.select(db.func.count(ApiIdempotencyKey.id))) == 0
    del body["promo_code"]
    assert client.post("/api/v1/orders", headers={**auth, "Idempotency-Key": "k"}, json=body).status_code == 201
    for bad in ("x" * 256, "ключ", "tab\there"):
        answer = client.post("/api/v1/orders", headers={**auth, "Idempotency-Key": bad}, json=body)
        assert answer.status_code == 400 and answer.json["error"]["code"] == "idempotency_key", bad
    assert client.post("/api/v1/orders", headers={**auth, "Idempotency-Key": "x" * 255}, json=body).status_code == 201


def test_an_answer_kept_for_retries_goes_when_its_customer_is_erased(client, auth, world):
    """POST /customers answers with the customer's details; kept for a retry, it must not outlive an erasure."""
    from limonbilling.services import ledger as ledger_service
    from limonbilling.services import privacy

    made = client.post("/api/v1/customers", headers={**auth, "Idempotency-Key": "new-customer"}, json={
        "account_type": "individual", "first_name": "Deniz", "last_name": "Kaya", "email": "deniz@example.com",
        "phone": "0532 765 43 21"})
    assert made.status_code == 201
    client.post("/api/v1/orders", headers={**auth, "Idempotency-Key": "other"}, json={
        "customer_id": world["customer"].id, "package_id": world["credits"].id, "payment_method": "manual"})
    privacy.erase(ledger_service.lock_customer(made.json["id"]))
    db.session.commit()
    assert db.session.scalars(db.select(ApiIdempotencyKey.key)).all() == ["other"]


def test_an_answer_kept_for_retries_goes_with_an_erasure_also_when_the_address_is_not_ascii(client, auth, world):
    """JSON answers write "ç" as \\u00e7: an address such as çağrı@example.com is not in the kept answer as it is
    written, so the erasure kept the answer (name, phone, address) and a retry still showed it."""
    from limonbilling.services import ledger as ledger_service
    from limonbilling.services import privacy

    made = client.post("/api/v1/customers", headers={**auth, "Idempotency-Key": "new-customer"}, json={
        "account_type": "individual", "first_name": "Çağrı", "last_name": "Kaya", "email": "çağrı@example.com",
        "phone": "0532 765 43 21"})
    assert made.status_code == 201 and made.json["email"] == "çağrı@example.com"
    privacy.erase(ledger_service.lock_customer(made.json["id"]))
    db.session.commit()
    assert db.session.scalars(db.select(ApiIdempotencyKey.key)).all() == []


def test_order_requests_are_validated(client, auth, world):
    bad = client.post("/api/v1/orders", headers=auth, json={
        "customer_id": "1", "package_id": world["credits"].id, "payment_method": "free", "price_override": "-5",
        "quantity": "2"})
    assert bad.status_code == 422
    assert set(bad.json["error"]["fields"]) == {"customer_id", "payment_method", "price_override", "quantity"}
    unknown = client.post("/api/v1/orders", headers=auth, json={
        "customer_id": 999999, "package_id": world["credits"].id, "payment_method": "manual"})
    assert unknown.status_code == 404
    promo = client.post("/api/v1/orders", headers=auth, json={
        "customer_id": world["customer"].id, "package_id": world["credits"].id, "payment_method": "manual",
        "promo_code": "NOPE"})
    assert promo.status_code == 409 and promo.json["error"]["code"] == "promo_unknown"
    read_only = _token("read")
    assert client.post("/api/v1/orders", headers=read_only, json={}).status_code == 403


def test_an_order_paid_from_the_account_balance_as_agents_can(client, auth, world):
    """The API offers the payment methods agents have (it kept its own shorter list): a balance order is paid
    from the balance and active at once, and refused while the balance does not cover it."""
    from limonbilling.services import balance

    document = client.get("/api/v1/openapi.json").json
    assert document["components"]["schemas"]["NewOrder"]["properties"]["payment_method"]["enum"] == list(
        placement.AGENT_PAYMENT_METHODS)
    customer = world["customer"]
    body = {"customer_id": customer.id, "package_id": world["credits"].id, "payment_method": "account_balance"}
    refused = client.post("/api/v1/orders", headers=auth, json=body)
    assert refused.status_code == 409 and refused.json["error"]["code"] == "insufficient_balance"
    balance.move(customer.id, "TRY", world["credits"].price_minor, "adjustment", reason="prepaid")
    db.session.commit()
    created = client.post("/api/v1/orders", headers=auth, json=body)
    assert created.status_code == 201, created.json
    assert (created.json["status"], created.json["payment_status"]) == ("active", "paid")
    db.session.expire_all()
    assert balance.amount(customer, "TRY") == 0
