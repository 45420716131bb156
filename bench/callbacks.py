"""2. Bank callback to activation: signed NestPay 3D_PAY answers (as the bank posts them to okUrl) for many card
orders, posted to /payments/nestpay/ok through the served app; then every order must be paid and activated
exactly once, also after a replay of some of the callbacks."""
import threading
import time

from sqlalchemy import create_engine, func, insert, select

from .common import CpuMeter, ProcessCpu, credit_desk, percentile
from .usage import customer_row

PACKAGE_CREDITS = 100
PATH = "/payments/nestpay/ok"
FLOOR_PATH = "/bench/floor/ok"  # bench/floor.py: the same transaction in bare Core, the ceiling of PATH
FLOOR_SQL_PATH = "/bench/floor-sql/ok"  # the same rows in 5 PostgreSQL statements


def seed(app, orders_wanted: int) -> list[dict]:
    """The gateway set up with the published test merchant; `orders_wanted` customers, each with one card order
    awaiting the bank (a customer may have one open order at a time, rule 7)."""
    from limonbilling.extensions import db
    from limonbilling.models import Customer
    from limonbilling.payments import nestpay
    from limonbilling.sandbox import TEST_MERCHANT
    from limonbilling.services import audit, card_payments, placement, settings

    actor = audit.Actor.system("bench")
    with app.app_context():
        settings.update({
            "nestpay_enabled": True, "nestpay_gate_url": "http://127.0.0.1:9/fim/est3Dgate",
            "nestpay_api_url": "http://127.0.0.1:9/fim/api", "nestpay_client_id": TEST_MERCHANT["client_id"],
            "nestpay_store_key": TEST_MERCHANT["store_key"], "nestpay_api_user": "u", "nestpay_api_password": "p",
        }, actor)
        _department, package = credit_desk("Bench card desk", 1, PACKAGE_CREDITS, actor)
        first = (db.session.scalar(select(func.max(Customer.id))) or 0) + 1
        db.session.execute(insert(Customer), [customer_row(f"card{n}") for n in range(orders_wanted)])
        db.session.commit()
        made = []
        for customer in db.session.scalars(select(Customer).where(Customer.id >= first).order_by(Customer.id)).all():
            order = placement.place_customer_order(customer, package, payment_method="card",
                                        actor=audit.Actor.of(customer, "127.0.0.1"), ip=None, contracts_accepted=True)
            attempt = card_payments.start_card_payment(order, "nestpay")
            made.append({"customer_id": customer.id, "number": order.number, "oid": attempt.oid,
                         "amount_minor": attempt.amount_minor, "currency": attempt.currency, "status": order.status})
            if len(made) % 100 == 0:
                db.session.commit()
        db.session.commit()
        for item in made:
            item["fields"] = bank_answer(item, nestpay, TEST_MERCHANT)
        return made


def bank_answer(item: dict, nestpay, merchant: dict) -> dict:
    """The approved callback the bank would send for the attempt, signed (ver3) with the store key
    (as tests/payment_support.py bank_answer)."""
    fields = {
        "clientid": merchant["client_id"], "oid": item["oid"], "ReturnOid": item["oid"],
        "amount": nestpay.format_amount(item["amount_minor"]), "currency": nestpay.CURRENCY_CODES[item["currency"]],
        "mdStatus": "1", "Response": "Approved", "ProcReturnCode": "00", "ErrMsg": "",
        "MaskedPan": "435508***4358", "TransId": f"T{item['number']}", "AuthCode": "123456",
        "HostRefNum": f"H{item['number']}", "hashAlgorithm": "ver3", "rnd": item["number"],
    }
    fields["HASH"] = nestpay.hash_v3(fields, merchant["store_key"])
    return fields


def post_all(server, items: list[dict], clients: int, postgres_pids=list, path: str = PATH) -> dict:
    """Post every callback once to `path`, `clients` at a time (threads with requests.Session), as fast as
    answered; with the CPU that gunicorn, PostgreSQL (`postgres_pids` lists its processes) and the clients used
    per callback."""
    import requests

    latencies, statuses, lock = [], {}, threading.Lock()
    chunks = [items[i::clients] for i in range(clients)]

    def client(chunk):
        session = requests.Session()
        mine, seen = [], {}
        for item in chunk:
            began = time.perf_counter()
            response = session.post(server.base + path, data=item["fields"],
                                    allow_redirects=False, timeout=60)
            mine.append(time.perf_counter() - began)
            ok = response.status_code == 303 and f"/orders/{item['number']}" in response.headers.get("Location", "")
            key = "303 to the order" if ok else str(response.status_code)
            seen[key] = seen.get(key, 0) + 1
        with lock:
            latencies.extend(mine)
            for key, count in seen.items():
                statuses[key] = statuses.get(key, 0) + count

    threads = [threading.Thread(target=client, args=(chunk,)) for chunk in chunks if chunk]
    began = time.perf_counter()
    with CpuMeter() as meter, ProcessCpu(app=server.pids, postgres=postgres_pids) as by_process:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    seconds = time.perf_counter() - began
    cpu_ms = {name: used * 1000 / len(items) for name, used in by_process.used.items()}
    cpu_ms["client"] = meter.client_cores * seconds * 1000 / len(items)
    return {"seconds": seconds, "rate": len(items) / seconds, "p50": percentile(latencies, 50),
            "p99": percentile(latencies, 99), "statuses": statuses, "machine_busy": meter.machine_busy,
            "client_cores": meter.client_cores, "cpu_ms": cpu_ms}


def check(url: str, items: list[dict]) -> list[str]:
    """Every order paid and activated once: one grant from this order, one purchase in the ledger, the credits."""
    from limonbilling.models import Customer, Grant, LedgerEntry, Order, Payment

    engine = create_engine(url)
    wrong = []
    ids = [item["customer_id"] for item in items]
    with engine.connect() as conn:
        granted = select(func.count(Grant.id)).where(Grant.order_id == Order.id).scalar_subquery()
        orders = {row.number: row for row in conn.execute(
            select(Order.number, Order.payment_status, granted.label("grants"), Order.status)
            .where(Order.customer_id.in_(ids)))}
        attempts = dict(conn.execute(select(Payment.oid, Payment.state).join(Order).where(
            Order.customer_id.in_(ids))).all())
        grants = dict(conn.execute(select(Grant.customer_id, func.count()).where(Grant.customer_id.in_(ids))
                                   .group_by(Grant.customer_id)).all())
        purchases = dict(conn.execute(select(LedgerEntry.customer_id, func.count()).where(
            LedgerEntry.customer_id.in_(ids), LedgerEntry.kind == "purchase").group_by(LedgerEntry.customer_id)).all())
        credits = dict(conn.execute(select(Customer.id, Customer.credits).where(Customer.id.in_(ids))).all())
    engine.dispose()
    for item in items:
        order = orders.get(item["number"])
        if order is None or order.payment_status != "paid" or order.grants != 1:
            wrong.append(f"order {item['number']}: not paid and activated ({order})")
        if attempts.get(item["oid"]) != "confirmed":
            wrong.append(f"attempt {item['oid']}: {attempts.get(item['oid'])}")
        customer = item["customer_id"]
        if grants.get(customer, 0) != 1 or purchases.get(customer, 0) != 1 or credits.get(customer) != PACKAGE_CREDITS:
            wrong.append(f"customer {customer}: {grants.get(customer, 0)} grants, {purchases.get(customer, 0)} "
                         f"purchases, {credits.get(customer)} credits")
    return wrong


PROFILE_ORDERS = 6


def profile(app, items: list[dict]):
    """Callbacks in this process, each for a fresh order (PROFILE_ORDERS of them: one warm-up, the median of
    the rest): total time, SQL statements, the slowest."""
    from .common import profile_request

    queue = iter(items)

    def send(client):
        return client.post("/payments/nestpay/ok", data=next(queue)["fields"])

    return profile_request(app, send, repeat=len(items) - 1)
