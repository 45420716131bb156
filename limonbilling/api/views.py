"""API handlers: read the JSON, call one service, answer JSON. Rules live in the services.

Every handler runs as one unit of work (`committed`, through `scope`): committed when it answers, rolled back
when it refuses, with the refusal in the JSON error shape."""
from datetime import date
from functools import wraps

from flask import g, jsonify, make_response, request
from sqlalchemy import func, select

from .. import pagination
from ..extensions import csrf, db
from ..formatting import plain_amount, utc_timestamp
from ..labels import ledger_reason
from ..models import MAX_RECORD_ID, Customer, Department, LedgerEntry, Order, Package, RefundDestination
from ..payments import gateways
from ..services import (
    ServiceError,
    audit,
    charging,
    customers,
    entitlements,
    idempotency,
    invoices,
    ledger,
    order_actions,
    placement,
    refunds,
    settings,
)
from ..services import api_tokens as tokens
from ..services import packages as catalog
from . import bp
from .errors import ApiError, error_response
from .openapi import document

csrf.exempt(bp)


def scope(needed: str, *, billing: bool = False):
    """Declare what a handler needs: a token with the `read` or `write` scope, and for billing
    handlers the Paid VIP Support System switched on (otherwise they do not exist: 404)."""

    def decorate(view):
        @wraps(view)
        def wrapper(*args, **kwargs):
            header = request.headers.get("Authorization", "")
            kind, _, plain = header.partition(" ")
            token = tokens.authenticate(plain.strip()) if kind.lower() == "bearer" else None
            if token is None:
                return error_response(401, "unauthorized", "A valid API token is required (Authorization: Bearer …).")
            if needed not in token.scopes:
                return error_response(403, "insufficient_scope", f"This token lacks the '{needed}' scope.")
            if billing and not settings.vip_support_enabled():
                return error_response(404, "module_disabled", "The Paid VIP Support System is switched off.")
            g.api_token = token
            try:
                return committed(answered_once, view, *args, **kwargs)  # also keeps the token's last use
            except ApiError as error:
                return error.response()

        wrapper.api_scope = needed
        return wrapper

    return decorate


def committed(action, /, *args, **kwargs):
    """The API's one way to change data: run `action` and commit; a refusal (a ServiceError, or an ApiError
    for a bad request) rolls back and is raised as an ApiError, which `scope` answers as JSON."""
    try:
        result = action(*args, **kwargs)
    except ApiError:
        db.session.rollback()
        raise
    except ServiceError as error:
        db.session.rollback()
        raise ApiError.refusal(error) from error
    db.session.commit()
    return result


def answered_once(view, /, *args, **kwargs):
    """A write sent with an `Idempotency-Key` header is answered once: sent again, it gets the first answer
    (services/idempotency.py). The key is claimed in the view's first transaction, so it is committed with the
    view's first effect (a refund commits before the bank is asked), and the answer is written last."""
    key = request.headers.get("Idempotency-Key")
    if key is None or request.method in ("GET", "HEAD", "OPTIONS"):
        return view(*args, **kwargs)
    claimed = idempotency.claim(g.api_token.id, key, idempotency.fingerprint(request.method, request.path,
                                                                             request.get_data()))
    if isinstance(claimed, idempotency.Answer):
        if claimed.status_code is None:
            raise ApiError(409, "idempotency_key_in_progress", "A request with this Idempotency-Key is still "
                           "running, or ended without an answer; read the order to see where it stands.")
        response = make_response(claimed.body, claimed.status_code)
        response.mimetype = "application/json"
        response.headers["Idempotent-Replayed"] = "true"
        return response
    response = make_response(view(*args, **kwargs))
    idempotency.record(claimed, idempotency.Answer(response.status_code, response.get_data(as_text=True)))
    return response


def _actor() -> audit.Actor:
    return audit.Actor("api", g.api_token.id, f"api token {g.api_token.name}", request.remote_addr)


def _body() -> dict:
    data = request.get_json(silent=True)
    if not isinstance(data, dict):
        raise ApiError(400, "bad_request", "Send a JSON object with Content-Type: application/json.")
    return data


def _get(model, record_id: int, name: str):
    record = db.session.get(model, record_id) if 0 < record_id <= MAX_RECORD_ID else None
    if record is None:
        raise ApiError(404, "not_found", f"No {name} with id {record_id}.")
    return record



def _customer_json(customer: Customer) -> dict:
    return {
        "id": customer.id, "account_type": customer.account_type, "first_name": customer.first_name,
        "last_name": customer.last_name, "email": customer.email, "phone": customer.phone,
        "company_name": customer.company_name, "tax_number": customer.tax_number,
        "tax_office": customer.tax_office, "billing_address": customer.billing_address,
        "language": customer.language, "created_at": utc_timestamp(customer.created_at),
    }


@bp.get("/openapi.json")
def openapi():
    return jsonify(document())


@bp.get("/departments")
@scope("read")
def departments():
    rows = db.session.scalars(select(Department).order_by(Department.name))
    return jsonify([{"id": d.id, "name": d.name, "credit_per_request": d.credit_per_request, "active": d.active}
                    for d in rows])


@bp.get("/packages")
@scope("read", billing=True)
def packages():
    return jsonify([{
        "id": p.id, "name": p.name, "type": p.type, "price": plain_amount(p.price_minor),
        "currency": p.currency, "credits": p.credits, "days": p.days, "department_ids": p.department_ids,
    } for p in catalog.on_sale()])


@bp.get("/customers")
@scope("read")
def find_customers():
    email = request.args.get("email", "").strip().lower()
    if not email:
        raise ApiError(400, "bad_request", "Give ?email= to find a customer.")
    found = db.session.scalars(select(Customer).where(func.lower(Customer.email) == email))
    return jsonify([_customer_json(customer) for customer in found])


@bp.post("/customers")
@scope("write")
def create_customer():
    data = _body()
    password = data.get("password")
    if password is not None and not isinstance(password, str):
        raise ApiError(422, "validation_failed", "Some fields are not valid.", fields={"password": ["Must be text."]})
    details = {field: data.get(field) for field in customers.DETAIL_FIELDS}
    customer = customers.register_customer(details, password, actor=_actor())
    return jsonify(_customer_json(customer)), 201


@bp.get("/customers/<int:customer_id>")
@scope("read")
def customer(customer_id: int):
    return jsonify(_customer_json(_get(Customer, customer_id, "customer")))


@bp.get("/customers/<int:customer_id>/entitlement")
@scope("read", billing=True)
def entitlement(customer_id: int):
    held = entitlements.entitlement(_get(Customer, customer_id, "customer"))
    return jsonify({
        "customer_id": customer_id,
        "package_type": held.package_type,
        "credits": held.credits,
        "subscription": {"expires_at": utc_timestamp(held.expires_at),
                         "renewable_from": utc_timestamp(held.renewable_from)} if held.expires_at else None,
        "departments": [{"id": a.department.id, "name": a.department.name, "source": a.source,
                         "usable": a.usable, "cost": a.cost} for a in held.departments],
    })


def _ledger_json(entry: LedgerEntry) -> dict:
    return {
        "id": entry.id, "kind": entry.kind, "amount": entry.amount, "balance_after": entry.balance_after,
        "reason": ledger_reason(entry) or None, "reason_code": entry.reason_code,
        "created_at": utc_timestamp(entry.created_at),
        "usage": {"kind": entry.usage.kind, "reference": entry.usage.reference} if entry.usage else None,
    }


@bp.post("/customers/<int:customer_id>/credit-adjustments")
@scope("write", billing=True)
def credit_adjustment(customer_id: int):
    data = _body()
    entry = ledger.adjust_credits(_get(Customer, customer_id, "customer"), data.get("credits"),
                                  data.get("reason") if isinstance(data.get("reason"), str) else "", _actor())
    return jsonify(_ledger_json(entry)), 201


@bp.get("/customers/<int:customer_id>/ledger")
@scope("read", billing=True)
def customer_ledger(customer_id: int):
    _get(Customer, customer_id, "customer")
    limit = min(max(request.args.get("limit", 100, type=int), 1), 500)
    statement = ledger.entries(customer_id).limit(limit)
    before = request.args.get("before_id", type=int)
    if before:
        statement = statement.where(pagination.below(LedgerEntry.id, before))
    return jsonify([_ledger_json(entry) for entry in db.session.scalars(statement)])


@bp.post("/usage")
@scope("write", billing=True)
def usage():
    """Charge a new ticket or chat once per (kind, reference): a repeat answers 200 with the first result."""
    data = _body()
    errors = {}
    if data.get("kind") not in ("ticket", "chat"):
        errors["kind"] = ["Use 'ticket' or 'chat'."]
    reference = data.get("reference")
    if not isinstance(reference, str) or not 1 <= len(reference.strip()) <= 120:
        errors["reference"] = ["Give the help desk's id of the ticket or chat (1 to 120 characters)."]
    for field in ("customer_id", "department_id"):
        if not isinstance(data.get(field), int) or isinstance(data.get(field), bool):
            errors[field] = ["Give the id as a whole number."]
    if errors:
        raise ApiError(422, "validation_failed", "Some fields are not valid.", fields=errors)
    for field, name in (("customer_id", "customer"), ("department_id", "department")):
        if not 0 < data[field] <= MAX_RECORD_ID:
            raise ApiError(404, "not_found", f"No {name} with id {data[field]}.")
    try:
        result = charging.charge_usage(data["customer_id"], data["department_id"], data["kind"], reference.strip())
    except charging.NotFound as missing:
        raise ApiError(404, "not_found", str(missing)) from None
    body = {"charged": result.charged, "credits": result.credits, "covered_by": result.covered_by,
            "usage_id": result.usage_id, "repeated": result.repeated}
    return jsonify(body), 200 if result.repeated else 201


def _order_json(order: Order) -> dict:
    invoice = order.invoice
    if invoice is not None:
        invoices.number_now(invoice)  # an invoice issued in this request shows its number in the answer
    return {
        "id": order.id, "number": order.number, "customer_id": order.customer_id, "package_id": order.package_id,
        "package_name": order.package_name, "kind": order.kind, "status": order.status,
        "custom_status": order.custom_status.name if order.custom_status else None,
        "payment_status": order.payment_status, "payment_method": order.payment_method,
        "amount": plain_amount(order.amount_minor), "currency": order.currency,
        "discount": plain_amount(order.discount_minor), "promo_code": order.promo_code,
        "promo_forced": order.promo_forced, "quantity": order.quantity, "instalments": order.instalments,
        "surcharge": plain_amount(order.surcharge_minor),
        "invoice_number": invoice.number if invoice else None, "created_at": utc_timestamp(order.created_at),
        "invoice": {"number": invoice.number, "status": invoice.status} if invoice else None,
        "payments": [{
            "reference": payment.oid or f"P{payment.id}", "method": payment.method, "state": payment.state,
            "amount": plain_amount(payment.amount_minor),
            "refunded": plain_amount(payment.refunded_minor), "created_at": utc_timestamp(payment.created_at),
        } for payment in order.payments],
        "refunds": [{
            "id": refund.id, "payment_reference": refund.payment.oid or f"P{refund.payment_id}",
            "to": "bank" if refund.destination == RefundDestination.CARD else "balance", "state": refund.state,
            "amount": plain_amount(refund.amount_minor), "automatic": refund.automatic,
            "created_at": utc_timestamp(refund.created_at),
        } for refund in order.refunds],
    }


def _order(number: str) -> Order:
    order = db.session.scalar(select(Order).where(Order.number == number))
    if order is None:
        raise ApiError(404, "not_found", f"No order with number {number}.")
    return order


@bp.post("/orders")
@scope("write", billing=True)
def create_order():
    """Place an order for a customer as an agent would (`quantity` × the package, the promo code applied whatever
    its terms): manual or from the account balance (paid and activated at once), bank transfer (waits for
    accept), or card (the customer is mailed a payment link)."""
    data = _body()
    errors = {}
    for field in ("customer_id", "package_id"):
        if not isinstance(data.get(field), int) or isinstance(data.get(field), bool):
            errors[field] = ["Give the id as a whole number."]
    if data.get("payment_method") not in placement.AGENT_PAYMENT_METHODS:
        errors["payment_method"] = ["Use one of: " + ", ".join(placement.AGENT_PAYMENT_METHODS) + "."]
    for field in ("send_confirmation", "send_invoice"):
        if not isinstance(data.get(field, False), bool):
            errors[field] = ["Use true or false."]
    quantity = data.get("quantity", 1)
    if not isinstance(quantity, int) or isinstance(quantity, bool):
        errors["quantity"] = ["Give the quantity as a whole number."]
    for field in ("promo_code", "price_override"):
        if data.get(field) is not None and not isinstance(data.get(field), str):
            errors[field] = ["Give it as text, e.g. \"150.00\"." if field == "price_override" else "Must be text."]
    override = None
    if "price_override" not in errors:
        try:
            override = catalog.parse_price_override(data.get("price_override"))
        except ValueError as error:
            errors["price_override"] = [str(error)]
    if errors:
        raise ApiError(422, "validation_failed", "Some fields are not valid.", fields=errors)
    order = placement.place_agent_order(
        _get(Customer, data["customer_id"], "customer"), _get(Package, data["package_id"], "package"),
        payment_method=data["payment_method"], actor=_actor(), ip=request.remote_addr,
        promo_code=data.get("promo_code"), price_override_minor=override, quantity=quantity,
        send_confirmation=data.get("send_confirmation", False), send_invoice=data.get("send_invoice", False),
    )
    return jsonify(_order_json(order)), 201


@bp.get("/orders/<number>")
@scope("read", billing=True)
def get_order(number: str):
    return jsonify(_order_json(_order(number)))


ORDER_ACTIONS = {"cancel": order_actions.cancel_order, "fraud": order_actions.set_fraud,
                 "pending": order_actions.back_to_pending}


@bp.post("/orders/<number>/accept")
@scope("write", billing=True)
def accept_order(number: str):
    """Accept. Optional JSON: `received_on` (YYYY-MM-DD, the day a bank transfer arrived) and `free_reason`
    (give an order whose card payment never came, explicitly, with the reason). A card order with no payment
    and no `free_reason` answers 409 `payment_required`."""
    order = _order(number)
    data = request.get_json(silent=True) if request.content_length else {}
    if not isinstance(data, dict):
        raise ApiError(400, "bad_request", "Send a JSON object with Content-Type: application/json, or no body.")
    errors, received_on = {}, None
    if data.get("received_on") is not None:
        try:
            received_on = date.fromisoformat(str(data["received_on"]))
        except ValueError:
            errors["received_on"] = ["Give the day as YYYY-MM-DD."]
    reason = data.get("free_reason")
    if reason is not None and (not isinstance(reason, str) or not reason.strip() or len(reason) > 500):
        errors["free_reason"] = ["Give the reason as text of 1 to 500 characters."]
    if errors:
        raise ApiError(422, "validation_failed", "Some fields are not valid.", fields=errors)
    order = order_actions.accept_order(order, _actor(), received_on=received_on, free_reason=reason)
    return jsonify(_order_json(order))


@bp.post("/orders/<number>/<any(cancel, fraud, pending):action>")
@scope("write", billing=True)
def order_action(number: str, action: str):
    order = ORDER_ACTIONS[action](_order(number), _actor())
    return jsonify(_order_json(order))


@bp.post("/orders/<number>/refund")
@scope("write", billing=True)
def refund_order(number: str):
    """Refund to the card through the bank ("bank", card orders) or to the account balance: all that can be
    refunded (the order is then cancelled) or an `amount` ("25.00", a partial refund).

    A bank that does not answer leaves the refund unknown: 202, and a later call or `billing reconcile` asks
    the bank first."""
    order = _order(number)
    data = request.get_json(silent=True) or {}
    if not isinstance(data, dict):
        raise ApiError(400, "bad_request", "Send a JSON object with Content-Type: application/json.")
    errors, amount = {}, None
    to = data.get("to", "bank" if order.payment_method == "card" else "balance")
    if to not in ("bank", "balance"):
        errors["to"] = ["Use 'bank' or 'balance'."]
    if data.get("amount") is not None:
        try:
            amount = catalog.parse_price(data["amount"]) if isinstance(data["amount"], str) else None
        except ValueError as error:
            errors["amount"] = [str(error)]
        else:
            if amount is None:
                errors["amount"] = ["Give the amount as text, e.g. \"25.00\"."]
    if errors:
        raise ApiError(422, "validation_failed", "Some fields are not valid.", fields=errors)
    destination = RefundDestination.BALANCE if to == "balance" else RefundDestination.CARD
    # Recorded and committed before the bank is asked: a crash or timeout cannot refund twice.
    committed(refunds.start, order, to=destination, actor=_actor(), amount_minor=amount)
    outcome = "refunded"
    if destination == RefundDestination.CARD:
        outcome = refunds.send(order, gateways.gateway(), _actor())
    order = _order(number)
    if outcome == "failed":
        answer = next((r.answer for r in reversed(order.refunds) if r.troubled), "")
        return error_response(409, "refund_declined", f"The bank refused the refund: {answer}")
    return jsonify({**_order_json(order), "refund": outcome}), 200 if outcome == "refunded" else 202
