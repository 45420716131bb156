"""The OpenAPI 3 description of /api/v1, kept as data beside the handlers (a test checks they match)."""
from ..models import (
    AccountType,
    Choice,
    CoveredBy,
    Currency,
    DepartmentSource,
    InvoiceState,
    Language,
    LedgerKind,
    MoneyState,
    OrderKind,
    OrderState,
    PackageType,
    PaymentMethod,
    PaymentState,
    RefundState,
    RequestKind,
)
from ..services.placement import AGENT_PAYMENT_METHODS, MAX_QUANTITY


def _enum(choice: type[Choice], *, nullable: bool = False, excluding=(), **extra) -> dict:
    """A string property holding one of an enum's stored values (models/choices.py)."""
    values = [member.value for member in choice if member not in excluding]
    if nullable:
        return {"type": ["string", "null"], "enum": [*values, None], **extra}
    return {"type": "string", "enum": values, **extra}


def _ref(name: str) -> dict:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict, description: str) -> dict:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _errors(*statuses: int) -> dict:
    """The error answers of an operation; every one may answer 400 to a request it cannot read."""
    statuses = sorted({400, *statuses})
    texts = {
        400: "Malformed request", 401: "Missing, wrong or revoked token", 402: "Not enough credits",
        403: "Token lacks the scope, or the department is not enabled", 404: "Unknown record, or module off",
        409: "Refused by a rule", 422: "Invalid fields",
    }
    return {str(status): _json(_ref("Error"), texts[status]) for status in statuses}


RECORD_ID = {"type": "integer", "minimum": 1, "maximum": 2**31 - 1}
ID = {"name": "customer_id", "in": "path", "required": True, "schema": RECORD_ID}
NUMBER = {"name": "number", "in": "path", "required": True, "schema": {"type": "string"}}
NULLABLE_STRING = {"type": ["string", "null"]}

SCHEMAS = {
    "Error": {
        "type": "object", "required": ["error"],
        "properties": {"error": {
            "type": "object", "required": ["code", "message"],
            "properties": {
                "code": {"type": "string"}, "message": {"type": "string"},
                "fields": {"type": "object", "additionalProperties": {"type": "array", "items": {"type": "string"}}},
                "have": {"type": "integer"}, "need": {"type": "integer"},
            },
        }},
    },
    "Department": {
        "type": "object", "required": ["id", "name", "credit_per_request", "active"],
        "properties": {"id": {"type": "integer"}, "name": {"type": "string"},
                       "credit_per_request": {"type": "integer", "minimum": 0}, "active": {"type": "boolean"}},
    },
    "Package": {
        "type": "object", "required": ["id", "name", "type", "price", "currency", "credits", "days", "department_ids"],
        "properties": {
            "id": {"type": "integer"}, "name": {"type": "string"},
            "type": _enum(PackageType),
            "price": {"type": "string", "pattern": r"^[0-9]+\.[0-9]{2}$", "example": "150.00"},
            "currency": _enum(Currency),
            "credits": {"type": ["integer", "null"]}, "days": {"type": ["integer", "null"]},
            "department_ids": {"type": "array", "items": {"type": "integer"}},
        },
    },
    "Customer": {
        "type": "object",
        "required": ["id", "account_type", "first_name", "last_name", "email", "phone", "created_at"],
        "properties": {
            "id": {"type": "integer"}, "account_type": _enum(AccountType),
            "first_name": {"type": "string"}, "last_name": {"type": "string"}, "email": {"type": "string"},
            "phone": {"type": "string"}, "company_name": NULLABLE_STRING, "tax_number": NULLABLE_STRING,
            "tax_office": NULLABLE_STRING, "billing_address": NULLABLE_STRING, "language": NULLABLE_STRING,
            "created_at": {"type": "string", "format": "date-time"},
        },
    },
    "NewCustomer": {
        "type": "object", "required": ["first_name", "last_name", "email", "phone"],
        "properties": {
            "account_type": _enum(AccountType, default=AccountType.INDIVIDUAL),
            "first_name": {"type": "string"}, "last_name": {"type": "string"},
            "email": {"type": "string", "format": "email"}, "phone": {"type": "string"},
            "company_name": {"type": "string"}, "tax_number": {"type": "string"}, "tax_office": {"type": "string"},
            "billing_address": {"type": "string"}, "language": _enum(Language),
            "password": {"type": "string", "minLength": 8},
        },
    },
    "Entitlement": {
        "type": "object", "required": ["customer_id", "package_type", "credits", "subscription", "departments"],
        "properties": {
            "customer_id": {"type": "integer"},
            "package_type": _enum(PackageType, nullable=True),
            "credits": {"type": "integer", "minimum": 0},
            "subscription": {"oneOf": [{"type": "null"}, {
                "type": "object", "required": ["expires_at", "renewable_from"],
                "properties": {"expires_at": {"type": "string", "format": "date-time"},
                               "renewable_from": {"type": "string", "format": "date-time"}},
            }]},
            "departments": {"type": "array", "items": {
                "type": "object", "required": ["id", "name", "source", "usable", "cost"],
                "properties": {"id": {"type": "integer"}, "name": {"type": "string"},
                               "source": _enum(DepartmentSource),
                               "usable": {"type": "boolean"}, "cost": {"type": "integer", "minimum": 0}},
            }},
        },
    },
    "LedgerEntry": {
        "type": "object",
        "required": ["id", "kind", "amount", "balance_after", "reason", "reason_code", "usage", "created_at"],
        "properties": {
            "id": {"type": "integer"},
            "kind": _enum(LedgerKind),
            "amount": {"type": "integer"}, "balance_after": {"type": "integer", "minimum": 0},
            "reason": NULLABLE_STRING, "created_at": {"type": "string", "format": "date-time"},
            "reason_code": NULLABLE_STRING,  # why the system wrote it (reason: its words; an agent's own words)
            "usage": {"oneOf": [{"type": "null"}, {
                "type": "object", "required": ["kind", "reference"],
                "properties": {"kind": {"type": "string"}, "reference": {"type": "string"}},
            }]},
        },
    },
    "CreditAdjustment": {
        "type": "object", "required": ["credits", "reason"],
        "properties": {"credits": {"type": "integer", "description": "negative takes credits away"},
                       "reason": {"type": "string", "minLength": 1}},
    },
    "UsageRequest": {
        "type": "object", "required": ["customer_id", "department_id", "kind", "reference"],
        "properties": {"customer_id": RECORD_ID, "department_id": RECORD_ID,
                       "kind": _enum(RequestKind),
                       "reference": {"type": "string", "minLength": 1, "maxLength": 120}},
    },
    "UsageResult": {
        "type": "object", "required": ["charged", "credits", "covered_by", "usage_id", "repeated"],
        "properties": {"charged": {"type": "integer", "minimum": 0}, "credits": {"type": "integer", "minimum": 0},
                       "covered_by": _enum(CoveredBy),
                       "usage_id": {"type": "integer"}, "repeated": {"type": "boolean"}},
    },
    "NewOrder": {
        "type": "object", "required": ["customer_id", "package_id", "payment_method"],
        "properties": {
            "customer_id": RECORD_ID, "package_id": RECORD_ID,
            "payment_method": {"type": "string", "enum": list(AGENT_PAYMENT_METHODS),
                               "description": "manual (money received outside) and account_balance (debited now): "
                                              "paid and activated at once; bank_transfer: waits for accept; "
                                              "card: the customer is e-mailed a payment link"},
            "quantity": {"type": "integer", "minimum": 1, "maximum": max(MAX_QUANTITY.values()), "default": 1,
                         "description": "n × the package: n × the credits (at most "
                                        f"{MAX_QUANTITY['credit']}) or n consecutive periods (at most "
                                        f"{MAX_QUANTITY['subscription']}), at n × the price"},
            "promo_code": {"type": ["string", "null"],
                           "description": "applied whatever its dates, use limit or packages (promo_forced)"},
            "price_override": {"type": ["string", "null"], "pattern": r"^[0-9]+([.,][0-9]{1,2})?$",
                               "description": "the price of one package instead of the package's; 0 makes it "
                                              "free"},
            "send_confirmation": {"type": "boolean", "default": False,
                                  "description": "e-mail the order confirmation to the customer"},
            "send_invoice": {"type": "boolean", "default": False,
                             "description": "e-mail the invoice to the customer"},
        },
    },
    "Order": {
        "type": "object",
        "required": ["id", "number", "customer_id", "package_id", "package_name", "kind", "status", "custom_status",
                     "payment_status", "payment_method", "amount", "currency", "discount", "promo_code",
                     "invoice_number", "created_at"],
        "properties": {
            "id": {"type": "integer"}, "number": {"type": "string", "pattern": "^[1-9][0-9]{9}$"},
            "customer_id": {"type": "integer"}, "package_id": {"type": ["integer", "null"]},
            "package_name": {"type": "string"},
            "kind": _enum(OrderKind),
            "status": _enum(OrderState),
            "custom_status": NULLABLE_STRING,
            "payment_status": _enum(MoneyState, description="derived from the payments and refunds"),
            "payment_method": _enum(PaymentMethod, excluding={PaymentMethod.FREE}),
            "amount": {"type": "string", "pattern": r"^[0-9]+\.[0-9]{2}$"},
            "currency": _enum(Currency),
            "discount": {"type": "string", "pattern": r"^[0-9]+\.[0-9]{2}$"},
            "promo_code": NULLABLE_STRING, "invoice_number": NULLABLE_STRING,
            "promo_forced": {"type": "boolean", "description": "an agent applied the code whatever its terms"},
            "quantity": {"type": "integer", "minimum": 1},
            "instalments": {"type": "integer", "minimum": 1, "maximum": 12,
                            "description": "card instalments (taksit); 1 is a single payment"},
            "surcharge": {"type": "string", "pattern": r"^[0-9]+\.[0-9]{2}$",
                          "description": "the instalment surcharge (vade farkı), VAT included, part of amount"},
            "created_at": {"type": "string", "format": "date-time"},
            "invoice": {"type": ["object", "null"], "required": ["number", "status"], "properties": {
                "number": NULLABLE_STRING,
                "status": _enum(InvoiceState),
            }},
            "payments": {"type": "array", "items": _ref("Payment")},
            "refunds": {"type": "array", "items": _ref("Refund")},
            "refund": {"type": "string", "enum": ["refunded", "unknown"],
                       "description": "only in the answer of a refund request"},
        },
    },
    "Payment": {
        "type": "object",
        "required": ["reference", "method", "state", "amount", "refunded", "created_at"],
        "properties": {
            "reference": {"type": "string", "description": "the bank's order id for a card attempt"},
            "method": _enum(PaymentMethod),
            "state": _enum(PaymentState),
            "amount": {"type": "string", "pattern": r"^[0-9]+\.[0-9]{2}$"},
            "refunded": {"type": "string", "pattern": r"^[0-9]+\.[0-9]{2}$"},
            "created_at": {"type": "string", "format": "date-time"},
        },
    },
    "Refund": {
        "type": "object",
        "required": ["id", "payment_reference", "to", "state", "amount", "automatic", "created_at"],
        "properties": {
            "id": {"type": "integer"}, "payment_reference": {"type": "string"},
            "to": {"type": "string", "enum": ["bank", "balance"]},
            "state": _enum(RefundState),
            "amount": {"type": "string", "pattern": r"^[0-9]+\.[0-9]{2}$"},
            "automatic": {"type": "boolean", "description": "money the bank took that we did not accept"},
            "created_at": {"type": "string", "format": "date-time"},
        },
    },
    "RefundRequest": {
        "type": "object",
        "properties": {
            "to": {"type": "string", "enum": ["bank", "balance"],
                   "description": "default: bank for card orders, balance otherwise"},
            "amount": {"type": "string", "pattern": r"^[0-9]+([.,][0-9]{1,2})?$",
                       "description": "a partial refund; without it, all that can be refunded, and the order is "
                                      "cancelled"},
        },
    },
    "AcceptRequest": {
        "type": "object",
        "properties": {
            "received_on": {"type": "string", "format": "date",
                            "description": "the day a bank transfer arrived (default: today)"},
            "free_reason": {"type": "string", "minLength": 1, "maxLength": 500, "pattern": "\\S",
                            "description": "give a card order whose payment never came, with this reason"},
        },
    },
}


def _array(name: str) -> dict:
    return {"type": "array", "items": _ref(name)}


def _body(name: str) -> dict:
    return {"required": True, "content": {"application/json": {"schema": _ref(name)}}}


PATHS = {
    "/departments": {"get": {
        "summary": "All departments with their cost per new ticket or chat", "x-scope": "read",
        "responses": {"200": _json(_array("Department"), "Departments"), **_errors(401, 403)},
    }},
    "/packages": {"get": {
        "summary": "Packages on sale", "x-scope": "read",
        "responses": {"200": _json(_array("Package"), "Packages"), **_errors(401, 403, 404)},
    }},
    "/customers": {
        "get": {
            "summary": "Find customers by e-mail (exact, case-insensitive)", "x-scope": "read",
            "parameters": [{"name": "email", "in": "query", "required": True,
                            "schema": {"type": "string", "minLength": 1, "pattern": "\\S"}}],
            "responses": {"200": _json(_array("Customer"), "Matching customers (0 or 1)"), **_errors(400, 401, 403)},
        },
        "post": {
            "summary": "Register a customer (the portal's validation)", "x-scope": "write",
            "requestBody": _body("NewCustomer"),
            "responses": {"201": _json(_ref("Customer"), "Created"), **_errors(400, 401, 403, 422)},
        },
    },
    "/customers/{customer_id}": {"get": {
        "summary": "One customer", "x-scope": "read", "parameters": [ID],
        "responses": {"200": _json(_ref("Customer"), "The customer"), **_errors(401, 403, 404)},
    }},
    "/customers/{customer_id}/entitlement": {"get": {
        "summary": "What the customer holds now and which departments are usable", "x-scope": "read",
        "parameters": [ID],
        "responses": {"200": _json(_ref("Entitlement"), "The entitlement"), **_errors(401, 403, 404)},
    }},
    "/customers/{customer_id}/credit-adjustments": {"post": {
        "summary": "Add or take away credits, with a reason", "x-scope": "write", "parameters": [ID],
        "requestBody": _body("CreditAdjustment"),
        "responses": {"201": _json(_ref("LedgerEntry"), "The ledger entry"),
                      **_errors(400, 401, 402, 403, 404, 409, 422)},
    }},
    "/customers/{customer_id}/ledger": {"get": {
        "summary": "The customer's credit ledger, newest first", "x-scope": "read",
        "parameters": [ID,
                       {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 500}},
                       {"name": "before_id", "in": "query", "schema": {"type": "integer"}}],
        "responses": {"200": _json(_array("LedgerEntry"), "Ledger entries"), **_errors(401, 403, 404)},
    }},
    "/usage": {"post": {
        "summary": "Charge a new ticket or chat (idempotent by kind and reference)", "x-scope": "write",
        "requestBody": _body("UsageRequest"),
        "responses": {"201": _json(_ref("UsageResult"), "Charged"),
                      "200": _json(_ref("UsageResult"), "Already charged before: the first result"),
                      **_errors(400, 401, 402, 403, 404, 409, 422)},
    }},
    "/orders": {"post": {
        "summary": "Place an order for a customer (the rules of the portal apply)", "x-scope": "write",
        "requestBody": _body("NewOrder"),
        "responses": {"201": _json(_ref("Order"), "Created"), **_errors(400, 401, 403, 404, 409, 422)},
    }},
    "/orders/{number}": {"get": {
        "summary": "One order by its number", "x-scope": "read", "parameters": [NUMBER],
        "responses": {"200": _json(_ref("Order"), "The order"), **_errors(401, 403, 404)},
    }},
    "/orders/{number}/accept": {"post": {
        "summary": "Accept: paid and active. A card order needs its payment (409 payment_required) or a "
                   "free_reason; a bank-transfer order is paid by it", "x-scope": "write", "parameters": [NUMBER],
        "requestBody": {"required": False, "content": {"application/json": {"schema": _ref("AcceptRequest")}}},
        "responses": {"200": _json(_ref("Order"), "The order after the action"),
                      **_errors(400, 401, 403, 404, 409, 422)},
    }},
    **{f"/orders/{{number}}/{action}": {"post": {
        "summary": summary, "x-scope": "write", "parameters": [NUMBER],
        "responses": {"200": _json(_ref("Order"), "The order after the action"), **_errors(401, 403, 404, 409)},
    }} for action, summary in (
        ("cancel", "Cancel: take back what the order granted, as far as it remains"),
        ("fraud", "Set as fraud: take back what the order granted"),
        ("pending", "Back to pending, from fraud or cancelled"),
    )},
    "/orders/{number}/refund": {"post": {
        "summary": "Cancel & refund (all) or a partial refund (amount), to the card through the bank or to the "
                   "account balance", "x-scope": "write",
        "parameters": [NUMBER],
        "requestBody": {"required": False, "content": {"application/json": {"schema": _ref("RefundRequest")}}},
        "responses": {"200": _json(_ref("Order"), "Refunded (and cancelled when all was refunded)"),
                      "202": _json(_ref("Order"), "The bank did not answer: the refund is unknown; it is settled "
                                                  "by asking the bank (billing reconcile), never sent twice"),
                      **_errors(400, 401, 403, 404, 409, 422)},
    }},
}


def document() -> dict:
    return {
        "openapi": "3.1.0",
        "info": {"title": "LimonBilling help-desk API", "version": "1.0.0",
                 "description": "Entitlements and usage charging for an external help desk. "
                                "Billing endpoints answer 404 while the Paid VIP Support System is off. "
                                "A POST sent with an Idempotency-Key header (1-255 printable ASCII characters, "
                                "per token) acts once: sent again with the same body it gets the first answer "
                                "(header Idempotent-Replayed: true), with another body 422 "
                                "idempotency_key_reused, while the first still runs 409 "
                                "idempotency_key_in_progress. Keys are kept for at least a day."},
        "servers": [{"url": "/api/v1"}],
        "security": [{"bearerAuth": []}],
        "paths": PATHS,
        "components": {
            "securitySchemes": {"bearerAuth": {"type": "http", "scheme": "bearer"}},
            "schemas": SCHEMAS,
        },
    }
