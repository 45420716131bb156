"""1. The usage-charge API (POST /api/v1/usage) under concurrent clients, against GET /healthz in the same run,
then the exact balance: what the clients were told they were charged == what left each customer's credits,
and each customer's ledger sums to its balance."""
import itertools
import threading
from datetime import UTC, datetime

from sqlalchemy import create_engine, func, insert, select

from .common import Phase, credit_desk, ms, percentile, profile_request, run_load

START_CREDITS = 10_000_000
COST = 1


def seed(app, customers: int) -> dict:
    """A department costing COST credits, a credit package of START_CREDITS, `customers` customers holding it,
    and an API token (read, write)."""
    from limonbilling.extensions import db
    from limonbilling.models import Customer
    from limonbilling.services import api_tokens, audit, entitlements

    actor = audit.Actor.system("bench")
    with app.app_context():
        department, package = credit_desk("Bench help desk", COST, START_CREDITS, actor)
        first = (db.session.scalar(select(func.max(Customer.id))) or 0) + 1
        db.session.execute(insert(Customer), [customer_row(f"usage{n}") for n in range(customers + 1)])
        db.session.commit()
        ids = list(db.session.scalars(select(Customer.id).where(Customer.id >= first).order_by(Customer.id)))
        for customer in db.session.scalars(select(Customer).where(Customer.id.in_(ids))):
            entitlements.activate_package(customer, package, source="bench", actor=actor)
        _token, plain = api_tokens.create_token("Bench help desk", ["read", "write"], actor)
        db.session.commit()
        return {"department_id": department.id, "customer_ids": ids[:-1], "profile_customer_id": ids[-1],
                "token": plain}


def customer_row(tag: str, **changes) -> dict:
    row = {
        "account_type": "individual", "first_name": "Bench", "last_name": tag.title(), "email": f"{tag}@bench.example",
        "phone": "05321234567", "password_hash": "!", "credits": 0, "identity_verified": False,
        "language": "en", "created_at": datetime(2026, 1, 1, tzinfo=UTC),
    }
    row.update(changes)
    return row


class Charges:
    """What the clients were told: per customer, the credits charged and how many new charges."""

    def __init__(self):
        self.lock = threading.Lock()
        self.clear()

    def clear(self) -> None:
        self.charged: dict[int, int] = {}
        self.created: dict[int, int] = {}
        self.unexpected: dict[int, int] = {}

    def snapshot(self) -> tuple[dict, dict, dict]:
        return self.charged, self.created, self.unexpected

    def merge(self, snapshot: tuple[dict, dict, dict]) -> None:
        for mine, theirs in zip((self.charged, self.created, self.unexpected), snapshot, strict=True):
            for key, value in theirs.items():
                mine[key] = mine.get(key, 0) + value

    def add(self, customer_id: int, response) -> None:
        with self.lock:
            if response.status_code == 201:
                body = response.json()
                self.charged[customer_id] = self.charged.get(customer_id, 0) + body["charged"]
                self.created[customer_id] = self.created.get(customer_id, 0) + 1
            else:
                self.unexpected[response.status_code] = self.unexpected.get(response.status_code, 0) + 1


def load(server, seeded: dict, clients_list: list[int], seconds: float, warmup: float,
         tag: str, processes: int) -> tuple[list, Charges]:
    customers = seeded["customer_ids"]
    headers = {"Authorization": f"Bearer {seeded['token']}"}
    charges = Charges()
    run = itertools.count()
    phases = []

    for clients in clients_list:
        run_id = next(run)

        def charge(session, index, n, run_id=run_id, clients=clients):
            customer_id = customers[(index + n * clients) % len(customers)]
            response = session.post(server.base + "/api/v1/usage", headers=headers, timeout=30, json={
                "customer_id": customer_id, "department_id": seeded["department_id"], "kind": "ticket",
                "reference": f"{tag}-{run_id}-{index}-{n}",
            })
            charges.add(customer_id, response)
            return response

        noop = noop_load(server, clients, seconds, warmup, processes)
        usage = run_load("POST /api/v1/usage", clients, seconds, warmup, charge, 201, processes, charges)
        phases.append((noop, usage))
    return phases, charges


def noop_load(server, clients: int, seconds: float, warmup: float, processes: int) -> Phase:
    """The no-op every rate is compared with: GET /healthz (one SELECT 1), `clients` at a time."""
    def healthz(session, index, n):
        return session.get(server.base + "/healthz", timeout=30)

    return run_load("GET /healthz", clients, seconds, warmup, healthz, 200, processes)


def check_balances(url: str, seeded: dict, charges: Charges) -> dict:
    """Exact balance, straight from the database: every customer's credits taken == the sum of the charges the
    clients were answered, the usages recorded == the charges answered, and the ledger sums to the balance."""
    engine = create_engine(url)
    from limonbilling.models import Customer, LedgerEntry, Usage

    wrong = []
    with engine.connect() as conn:
        credits = dict(conn.execute(select(Customer.id, Customer.credits).where(
            Customer.id.in_(seeded["customer_ids"]))).all())
        ledger = dict(conn.execute(select(LedgerEntry.customer_id, func.sum(LedgerEntry.amount)).where(
            LedgerEntry.customer_id.in_(seeded["customer_ids"])).group_by(LedgerEntry.customer_id)).all())
        usages = dict(conn.execute(select(Usage.customer_id, func.count()).where(
            Usage.customer_id.in_(seeded["customer_ids"])).group_by(Usage.customer_id)).all())
    engine.dispose()
    for customer_id in seeded["customer_ids"]:
        taken = START_CREDITS - credits[customer_id]
        if taken != charges.charged.get(customer_id, 0):
            wrong.append(f"customer {customer_id}: {taken} credits taken, "
                         f"clients told {charges.charged.get(customer_id, 0)}")
        if ledger.get(customer_id, 0) != credits[customer_id]:
            wrong.append(f"customer {customer_id}: ledger sums to {ledger.get(customer_id)}, "
                         f"balance {credits[customer_id]}")
        if usages.get(customer_id, 0) != charges.created.get(customer_id, 0):
            wrong.append(f"customer {customer_id}: {usages.get(customer_id, 0)} usages, "
                         f"{charges.created.get(customer_id, 0)} charges answered 201")
    return {
        "customers": len(seeded["customer_ids"]), "charges": sum(charges.created.values()),
        "credits": sum(charges.charged.values()), "unexpected": dict(charges.unexpected), "wrong": wrong,
    }


def profile(app, seeded: dict) -> dict:
    """One charge in this process: total time, SQL statements and their time, the slowest statement."""
    counter = itertools.count()
    headers = {"Authorization": f"Bearer {seeded['token']}"}
    # A customer of its own, so the charges here never mix with the clients' figures.
    customer_id = seeded["profile_customer_id"]

    def send(client):
        return client.post("/api/v1/usage", headers=headers, json={
            "customer_id": customer_id, "department_id": seeded["department_id"], "kind": "ticket",
            "reference": f"profile-{next(counter)}"})

    return profile_request(app, send, repeat=9)


def rows(db_name: str, phases) -> list[list]:
    out = []
    for noop, usage in phases:
        for phase in (noop, usage):
            other = {k: v for k, v in phase.statuses.items() if k not in (200, 201)}
            out.append([
                db_name, phase.clients, phase.name, f"{phase.rate:.0f}", ms(percentile(phase.latencies, 50)),
                ms(percentile(phase.latencies, 99)),
                f"{usage.rate / noop.rate:.2f}" if phase is usage and noop.rate else "1.00",
                f"{phase.machine_busy:.0f}%", f"{phase.client_cores:.2f}",
                (", ".join(f"{k}×{v}" for k, v in other.items()) or "-") + (f", {phase.errors} failed" if phase.errors
                                                                           else ""),
            ])
    return out


HEADERS = ["db", "clients", "endpoint", "req/s", "p50 ms", "p99 ms", "÷ no-op", "machine CPU", "client cores",
           "other answers"]


def targets(phases: list[tuple[Phase, Phase]]) -> list[tuple[str, bool, str]]:
    found = []
    for noop, usage in phases:
        ratio = usage.rate / noop.rate if noop.rate else 0
        found.append((f"charges ≥ 0.5 × no-op at {usage.clients} clients", ratio >= 0.5, f"{ratio:.2f}"))
        if usage.clients == 16:
            p99 = percentile(usage.latencies, 99) or 0
            found.append(("charge p99 < 50 ms at 16 clients", p99 < 0.050, f"{p99 * 1000:.1f} ms"))
    return found
