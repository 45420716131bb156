"""The API's idempotency keys under load (PostgreSQL only, as in test_lifecycle_races.py): sixteen copies of one
write with one Idempotency-Key, sent at the same instant over real HTTP to a threaded server, act once, and
every copy gets the first answer (or, while it still runs, is told so)."""
import threading
from concurrent.futures import ThreadPoolExecutor

import requests
from sqlalchemy import func, select

from limonbilling.extensions import db
from limonbilling.models import ApiIdempotencyKey, BalanceEntry, Order, Refund
from limonbilling.services import api_tokens, audit, placement

from ..factories import make_customer, make_package
from ..http.servers import LiveServer
from .test_lifecycle_races import THREADS, _postgresql_only, worker  # noqa: F401 (fixtures)


def _send_at_once(url: str, headers: dict, body: dict) -> list[requests.Response]:
    barrier = threading.Barrier(THREADS, timeout=30)

    def send(_n):
        barrier.wait()
        return requests.post(url, headers=headers, json=body, timeout=60)

    with ThreadPoolExecutor(max_workers=THREADS) as pool:
        return list(pool.map(send, range(THREADS)))


def _token() -> dict:
    _record, plain = api_tokens.create_token("Help desk", ["read", "write"], audit.Actor.system("test"))
    db.session.commit()
    return {"Authorization": f"Bearer {plain}"}


def _answered_once(answers: list[requests.Response], status: int) -> dict:
    first = [a for a in answers if a.status_code == status]
    waiting = [a for a in answers if a.status_code == 409]
    assert len(first) + len(waiting) == THREADS, [(a.status_code, a.text[:200]) for a in answers]
    assert all(a.json()["error"]["code"] == "idempotency_key_in_progress" for a in waiting)
    assert len({a.text for a in first}) == 1  # the same answer, replayed
    return first[0].json()


def test_sixteen_copies_of_an_order_with_one_key_place_one_order(app, worker):  # noqa: F811
    customer = make_customer()
    package = make_package("credit", credits=10, price="150.00")
    headers = {**_token(), "Idempotency-Key": "order-7"}
    with LiveServer(worker) as server:
        answers = _send_at_once(f"{server.url}/api/v1/orders", headers, {
            "customer_id": customer.id, "package_id": package.id, "payment_method": "manual"})
    order = _answered_once(answers, 201)
    db.session.expire_all()
    assert db.session.scalar(select(func.count(Order.id))) == 1
    assert db.session.scalar(select(Order.number)) == order["number"]
    assert db.session.scalar(select(func.count(ApiIdempotencyKey.id))) == 1


def test_sixteen_copies_of_a_partial_refund_with_one_key_refund_once(app, worker):  # noqa: F811
    customer = make_customer()
    order = placement.place_agent_order(customer, make_package("credit", credits=10, price="150.00"),
                                        payment_method="manual", actor=audit.Actor.system("test"))
    db.session.commit()
    headers = {**_token(), "Idempotency-Key": "refund-7"}
    with LiveServer(worker) as server:
        answers = _send_at_once(f"{server.url}/api/v1/orders/{order.number}/refund", headers,
                                {"to": "balance", "amount": "25.00"})
    answer = _answered_once(answers, 200)
    assert answer["refund"] == "refunded"
    db.session.expire_all()
    assert [r.amount_minor for r in db.session.scalars(select(Refund))] == [2500]
    assert [e.amount_minor for e in db.session.scalars(select(BalanceEntry))] == [2500]
