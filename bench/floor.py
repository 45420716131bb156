"""The floor of a bank callback on this stack, served as `gunicorn bench.floor:app` beside the real one.

`POST /bench/floor/ok` (callbacks.FLOOR_PATH) does the database work every approved callback must do, in the
same one transaction, as bare SQLAlchemy Core: read the settings, check the signature, lock the order and read
its attempt, count its refunds, confirm the attempt with the bank's fields, mark the order paid, lock the
customer, write the grant, the credits, the ledger row, the departments, the audit rows, the purchase e-mail (a
short template) and the invoice's number, one statement per write (14). It checks no purchase rule, loads no ORM
object and leaves out everything a real callback does besides: the ceiling of a callback that keeps this stack
(Flask, SQLAlchemy, the rules in Python, both databases).

`POST /bench/floor-sql/ok` (callbacks.FLOOR_SQL_PATH, PostgreSQL only) writes the same rows in 5 statements,
merged with data-modifying CTEs: what is left when the activation moves into PostgreSQL's SQL.

Measuring sticks for the bench, never part of the product.
"""
import json
from datetime import UTC, datetime

from flask import redirect, request
from sqlalchemy import func, insert, select, text, update
from sqlalchemy.dialects import postgresql, sqlite

from limonbilling import create_app
from limonbilling.extensions import csrf, db
from limonbilling.models import (
    ActorType,
    AuditEntry,
    Customer,
    CustomerDepartment,
    DepartmentSource,
    Grant,
    Invoice,
    InvoiceCounter,
    InvoiceState,
    LedgerEntry,
    LedgerKind,
    MoneyState,
    Notification,
    Order,
    OrderKind,
    PackageType,
    Payment,
    PaymentState,
    Refund,
    Setting,
)
from limonbilling.payments import nestpay
from limonbilling.sandbox import TEST_MERCHANT

from .callbacks import FLOOR_PATH, FLOOR_SQL_PATH

MAIL = ("Hello {{ name }},\n\nThank you for your purchase. Your {{ package }} package is active: {{ credits }} "
        "credits.\nOrder {{ number }}.\n")
_O, _P, _R, _C, _G, _L, _D, _A, _N, _I, _IC, _S = (model.__table__ for model in (
    Order, Payment, Refund, Customer, Grant, LedgerEntry, CustomerDepartment, AuditEntry, Notification, Invoice,
    InvoiceCounter, Setting))


def _upsert(connection, table):
    """INSERT … ON CONFLICT in the connection's dialect (both have it)."""
    return (postgresql if connection.dialect.name == "postgresql" else sqlite).insert(table)


def floor_callback():
    fields = request.form.to_dict()
    signature = fields.pop("HASH", "")
    connection = db.session.connection()
    dict(connection.execute(select(_S.c.key, _S.c.value)).all())
    if signature != nestpay.hash_v3(fields, TEST_MERCHANT["store_key"]):
        return "bad signature", 400
    moment = datetime.now(UTC)
    order = connection.execute(
        select(_O.c.id, _O.c.number, _O.c.customer_id, _O.c.package_snapshot, _P.c.id.label("payment_id"),
               _P.c.state).join(_P, _P.c.order_id == _O.c.id).where(_P.c.oid == fields["oid"])
        .with_for_update(of=_O)).one()
    connection.execute(select(func.count()).select_from(_R).where(_R.c.order_id == order.id))
    if order.state != PaymentState.PENDING:
        return redirect(f"/orders/{order.number}", 303)
    connection.execute(update(_P).where(_P.c.id == order.payment_id).values(
        state=PaymentState.CONFIRMED, updated_at=moment, confirmed_at=moment, trans_id=fields["TransId"],
        auth_code=fields["AuthCode"], host_ref_num=fields["HostRefNum"], masked_pan=fields["MaskedPan"],
        md_status=fields["mdStatus"], proc_return_code=fields["ProcReturnCode"], raw=fields))
    connection.execute(update(_O).where(_O.c.id == order.id).values(payment_status=MoneyState.PAID, paid_at=moment))
    customer = connection.execute(select(_C.c.id, _C.c.credits, _C.c.first_name, _C.c.email)
                                  .where(_C.c.id == order.customer_id).with_for_update()).one()
    package = order.package_snapshot
    grant_id = connection.execute(insert(_G).values(
        customer_id=customer.id, package_id=package.get("package_id"), package_type=PackageType.CREDIT,
        kind=OrderKind.NEW, snapshot=package, source=f"order {order.number}", created_at=moment, order_id=order.id,
    ).returning(_G.c.id)).scalar_one()
    credits = customer.credits + package["credits"]
    connection.execute(update(_C).where(_C.c.id == customer.id).values(package_type=PackageType.CREDIT,
                                                                        credits=credits))
    connection.execute(insert(_L).values(customer_id=customer.id, kind=LedgerKind.PURCHASE, amount=package["credits"],
                                         balance_after=credits, grant_id=grant_id, created_at=moment))
    connection.execute(_upsert(connection, _D).values([
        {"customer_id": customer.id, "department_id": department_id, "source": DepartmentSource.PACKAGE,
         "enabled_at": moment} for department_id in package["department_ids"]]).on_conflict_do_nothing())
    connection.execute(insert(_A), [
        {"at": moment, "actor_type": ActorType.SYSTEM, "actor_label": "bank", "action": action,
         "target_type": "order", "target_id": str(order.id), "details": {"number": order.number}}
        for action in ("order.paid", "entitlement.activate", "customer.departments.sync")])
    body = _mail().render(name=customer.first_name, package=package["name"], credits=package["credits"],
                          number=order.number)
    connection.execute(_upsert(connection, _N).values(
        event="purchase_activated", event_key=f"order:{order.number}:activated:{grant_id}", channel="email",
        recipient=customer.email, cc=[], language="en", subject="Your package is active", body_text=body,
        body_html=body, customer_id=customer.id, order_number=order.number, state="pending", attempts=0,
        next_attempt_at=moment, created_at=moment).on_conflict_do_nothing())
    counter = _upsert(connection, _IC).values(year=moment.year, last_number=1)
    sequence = connection.execute(counter.on_conflict_do_update(
        index_elements=[_IC.c.year], set_={"last_number": _IC.c.last_number + 1}).returning(_IC.c.last_number)
    ).scalar_one()
    connection.execute(update(_I).where(_I.c.order_id == order.id).values(
        number=f"FLOOR-{moment.year}-{sequence}", year=moment.year, sequence=sequence, issued_at=moment,
        status=InvoiceState.PAID))
    db.session.commit()
    return redirect(f"/orders/{order.number}", 303)


_LOCK = text("SELECT o.id, o.number, o.customer_id, o.package_snapshot, p.id AS payment_id, p.state FROM orders o "
             "JOIN payments p ON p.order_id = o.id WHERE p.oid = :oid FOR UPDATE OF o")
_PAID = text(
    "WITH p AS (UPDATE payments SET state = 'confirmed', updated_at = :now, confirmed_at = :now, trans_id = :trans_id, "
    "auth_code = :auth_code, host_ref_num = :host_ref, masked_pan = :pan, md_status = :md_status, "
    "proc_return_code = :code, raw = CAST(:raw AS JSON) WHERE id = :payment_id RETURNING order_id) "
    "UPDATE orders SET payment_status = 'paid', paid_at = :now WHERE id IN (SELECT order_id FROM p)")
_GRANTED = text(
    "WITH c AS (UPDATE customers SET package_type = 'credit', credits = credits + :credits WHERE id = :customer_id "
    "RETURNING id, credits, first_name, email), "
    "g AS (INSERT INTO grants (customer_id, package_id, package_type, kind, snapshot, source, created_at, order_id) "
    "SELECT c.id, :package_id, 'credit', 'new', CAST(:snapshot AS JSON), :source, :now, :order_id FROM c "
    "RETURNING id), "
    "l AS (INSERT INTO ledger_entries (customer_id, kind, amount, balance_after, grant_id, created_at) "
    "SELECT c.id, 'purchase', :credits, c.credits, g.id, :now FROM c, g), "
    "d AS (INSERT INTO customer_departments (customer_id, department_id, source, enabled_at) "
    "SELECT :customer_id, unnest(CAST(:departments AS INTEGER[])), 'package', :now ON CONFLICT DO NOTHING) "
    "SELECT g.id, c.first_name, c.email FROM g, c")
_TOLD = text(
    "WITH a AS (INSERT INTO audit_log (at, actor_type, actor_label, action, target_type, target_id, details) "
    "SELECT :now, 'system', 'bank', action, 'order', :target, CAST(:details AS JSON) FROM unnest(ARRAY["
    "'order.paid', 'entitlement.activate', 'customer.departments.sync']) AS action) "
    "INSERT INTO notifications (event, event_key, channel, recipient, cc, language, subject, body_text, body_html, "
    "sensitive, customer_id, order_number, state, attempts, next_attempt_at, created_at) VALUES ('purchase_activated', "
    ":key, 'email', :email, CAST('[]' AS JSON), 'en', 'Your package is active', :body, :body, false, :customer_id, "
    ":number, 'pending', 0, :now, :now) ON CONFLICT DO NOTHING")
_INVOICED = text(
    "WITH c AS (INSERT INTO invoice_counters (year, last_number) VALUES (:year, 1) ON CONFLICT (year) DO UPDATE "
    "SET last_number = invoice_counters.last_number + 1 RETURNING last_number) UPDATE invoices SET "
    "number = 'FLOORSQL-' || :year || '-' || c.last_number, year = :year, sequence = c.last_number, "
    "issued_at = :now, status = 'paid' FROM c WHERE invoices.order_id = :order_id")


def floor_sql_callback():
    """The same rows as floor_callback, in 5 PostgreSQL statements (the settings read left out too)."""
    fields = request.form.to_dict()
    if fields.pop("HASH", "") != nestpay.hash_v3(fields, TEST_MERCHANT["store_key"]):
        return "bad signature", 400
    connection = db.session.connection()
    moment = datetime.now(UTC)
    order = connection.execute(_LOCK, {"oid": fields["oid"]}).one()
    if order.state != PaymentState.PENDING:
        return redirect(f"/orders/{order.number}", 303)
    connection.execute(_PAID, {
        "now": moment, "trans_id": fields["TransId"], "auth_code": fields["AuthCode"],
        "host_ref": fields["HostRefNum"], "pan": fields["MaskedPan"], "md_status": fields["mdStatus"],
        "code": fields["ProcReturnCode"], "raw": json.dumps(fields), "payment_id": order.payment_id})
    package = order.package_snapshot
    granted = connection.execute(_GRANTED, {
        "credits": package["credits"], "customer_id": order.customer_id, "package_id": package.get("package_id"),
        "snapshot": json.dumps(package), "source": f"order {order.number}", "now": moment, "order_id": order.id,
        "departments": package["department_ids"]}).one()
    body = _mail().render(name=granted.first_name, package=package["name"], credits=package["credits"],
                          number=order.number)
    connection.execute(_TOLD, {
        "now": moment, "target": str(order.id), "details": json.dumps({"number": order.number}),
        "key": f"order:{order.number}:activated:{granted.id}", "email": granted.email, "body": body,
        "customer_id": order.customer_id, "number": order.number})
    connection.execute(_INVOICED, {"year": moment.year, "now": moment, "order_id": order.id})
    db.session.commit()
    return redirect(f"/orders/{order.number}", 303)


_compiled = []


def _mail():
    if not _compiled:
        _compiled.append(app.jinja_env.from_string(MAIL))
    return _compiled[0]


app = create_app()
app.add_url_rule(FLOOR_PATH, view_func=csrf.exempt(floor_callback), methods=["POST"])
app.add_url_rule(FLOOR_SQL_PATH, view_func=csrf.exempt(floor_sql_callback), methods=["POST"])
