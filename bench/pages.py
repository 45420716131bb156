"""3. Admin lists at 10^3, 10^5 and 10^6 rows: Billing → Orders, Customers, and one customer's ledger page
(Paid subscriptions → the customer), through a signed-in agent session, ~30 requests each.

The tables grow in place (bulk inserts, SQLAlchemy Core `insert` executemany) to exactly N customers, N orders
and N ledger entries, all N ledger entries on one customer (the page shown), then ANALYZE (PostgreSQL: VACUUM
ANALYZE, as autovacuum would) and the pages are timed."""
import re
import time
from datetime import UTC, datetime, timedelta

from sqlalchemy import create_engine, func, insert, select, text, update

from .common import log, ms, percentile, profile_request, shorten

BATCH = 20_000
PASSWORD = "bench-pass-1"
EPOCH = datetime(2020, 1, 1, tzinfo=UTC)
FIRST = ["Ayşe", "Mehmet", "Zeynep", "Ali", "Elif", "Mustafa", "Fatma", "Can", "Deniz", "Emre"]
LAST = ["Yılmaz", "Kaya", "Demir", "Şahin", "Çelik", "Yıldız", "Aydın", "Öztürk", "Arslan", "Doğan"]
SNAPSHOT = {"package_id": None, "name": "Bench 100 credits", "type": "credit", "price_minor": 15000,
            "currency": "TRY", "credits": 100, "days": None, "department_ids": [], "department_names": []}
# 70 % active, 15 % cancelled, 10 % pending, 5 % fraud: pending stays a tenth of the table as it grows.
STATUS_CYCLE = ["pending", "pending", "cancelled", "cancelled", "cancelled", "fraud"] + ["active"] * 14


def seed_agent(app) -> str:
    from limonbilling.extensions import db
    from limonbilling.models import Agent

    with app.app_context():
        agent = Agent(name="Bench Owner", email="owner@bench.example", is_owner=True, active=True)
        agent.set_password(PASSWORD)
        db.session.add(agent)
        db.session.commit()
        return agent.email


class Tables:
    """Grows customers, orders and one customer's ledger to N rows each."""

    def __init__(self, url: str):
        from limonbilling.models import Customer, LedgerEntry, Order

        self.url = url
        self.engine = create_engine(url)
        self.customers, self.orders, self.ledger = Customer.__table__, Order.__table__, LedgerEntry.__table__
        with self.engine.connect() as conn:
            self.counts = {name: conn.scalar(select(func.count()).select_from(table)) for name, table in
                           (("customers", self.customers), ("orders", self.orders), ("ledger", self.ledger))}
        self.ledger_customer = None

    def grow_to(self, n: int) -> float:
        began = time.perf_counter()
        self._fill("customers", n, self._customer)
        with self.engine.connect() as conn:
            if self.ledger_customer is None:
                self.ledger_customer = conn.scalar(select(func.min(self.customers.c.id)))
            self.max_customer = conn.scalar(select(func.max(self.customers.c.id)))
            self.min_customer = self.ledger_customer
        self._fill("orders", n, self._order)
        self._fill("ledger", n, self._entry)
        with self.engine.begin() as conn:  # the balance cache equals the ledger, as the app keeps it
            conn.execute(update(self.customers).where(self.customers.c.id == self.ledger_customer).values(
                package_type="credit", credits=self.counts["ledger"]))
        self.analyze()
        return time.perf_counter() - began

    def _fill(self, name: str, n: int, make) -> None:
        table = {"customers": self.customers, "orders": self.orders, "ledger": self.ledger}[name]
        while self.counts[name] < n:
            start = self.counts[name]
            stop = min(n, start + BATCH)
            with self.engine.begin() as conn:
                conn.execute(insert(table), [make(i) for i in range(start, stop)])
            self.counts[name] = stop

    @staticmethod
    def _customer(i: int) -> dict:
        return {
            "account_type": "corporate" if i % 7 == 0 else "individual", "first_name": FIRST[i % 10],
            "last_name": LAST[(i // 10) % 10], "email": f"customer{i}@bench.example",
            "phone": f"0532{i:07d}", "company_name": f"Şirket {i} A.Ş." if i % 7 == 0 else None,
            "password_hash": "!", "credits": 0, "identity_verified": i % 3 == 0, "language": "tr",
            "created_at": EPOCH + timedelta(minutes=i),
        }

    def _order(self, i: int) -> dict:
        status = STATUS_CYCLE[i % len(STATUS_CYCLE)]
        span = self.max_customer - self.min_customer + 1
        return {
            "number": f"{1_000_000_000 + i}", "customer_id": self.min_customer + (i * 7919) % span,
            "created_at": EPOCH + timedelta(minutes=i), "customer_was_new": i % 5 == 0, "kind": "new",
            "package_snapshot": SNAPSHOT, "discount_minor": 0, "amount_minor": 15000, "vat_minor": 2500,
            "vat_rate_percent": 20, "currency": "TRY", "payment_method": "card" if i % 2 else "bank_transfer",
            "payment_status": "paid" if status == "active" else "unpaid", "status": status,
            "price_overridden": False, "fraud_score": 10 if i % 2 else None, "fraud_checks": [],
        }

    def _entry(self, i: int) -> dict:
        return {"customer_id": self.ledger_customer, "kind": "adjustment", "amount": 1, "balance_after": i + 1,
                "reason": "bench", "created_at": EPOCH + timedelta(seconds=i)}

    def analyze(self) -> None:
        if self.engine.dialect.name == "postgresql":
            with self.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                conn.execute(text("VACUUM ANALYZE customers, orders, ledger_entries"))
        else:
            with self.engine.begin() as conn:
                conn.exec_driver_sql("ANALYZE")

    def dispose(self) -> None:
        self.engine.dispose()


def sign_in(server, email: str):
    """A requests.Session signed in through the /admin/login form with its csrf_token."""
    import requests

    session = requests.Session()
    page = session.get(server.base + "/admin/login", timeout=30)
    token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page.text).group(1)
    answer = session.post(server.base + "/admin/login", data={"csrf_token": token, "email": email,
                                                             "password": PASSWORD}, allow_redirects=False, timeout=30)
    if answer.status_code != 302:
        raise RuntimeError(f"agent sign-in failed: {answer.status_code}")
    return session


def pages(ledger_customer: int) -> list[tuple[str, str, bool]]:
    """(name, path, counts for the 1.5× target)."""
    return [
        ("orders", "/admin/billing/orders", True),
        ("customers", "/admin/customers", True),
        ("ledger", f"/admin/billing/subscriptions/{ledger_customer}", True),
        ("orders, status=pending", "/admin/billing/orders?status=pending", False),
        # One customer's e-mail: a single match, so the search reads the whole table (LIKE '%…%').
        ("customers, search", "/admin/customers?q=customer5%40bench.example", False),
        ("orders, search", "/admin/billing/orders?q=customer5%40bench.example", False),
    ]


def time_pages(session, server, ledger_customer: int, requests_per_page: int) -> dict:
    found = {}
    for name, path, _counted in pages(ledger_customer):
        for _ in range(3):
            session.get(server.base + path, timeout=120)
        latencies = []
        for _ in range(requests_per_page):
            began = time.perf_counter()
            response = session.get(server.base + path, timeout=120)
            latencies.append(time.perf_counter() - began)
            if response.status_code != 200:
                raise RuntimeError(f"{path}: {response.status_code}")
        found[name] = {"p50": percentile(latencies, 50), "p99": percentile(latencies, 99)}
    return found


def profile_pages(app, email: str, ledger_customer: int) -> dict:
    """Each page once more in this process: SQL statements, their time and the slowest, by page."""
    client = app.test_client()
    if client.post("/admin/login", data={"email": email, "password": PASSWORD}).status_code != 302:
        raise RuntimeError("agent sign-in failed in the bench process")
    return {name: profile_request(app, lambda c, path=path: c.get(path), repeat=3, client=client)
            for name, path, _counted in pages(ledger_customer)}


def run(server, app, url: str, email: str, levels: list[int], requests_per_page: int, db_name: str):
    tables = Tables(url)
    session = sign_in(server, email)
    results = {}
    for n in levels:
        took = tables.grow_to(n)
        log(f"{db_name}: {n:,} customers, orders and ledger entries ready ({took:.0f} s to insert and analyze)")
        results[n] = {"timing": time_pages(session, server, tables.ledger_customer, requests_per_page),
                      "profile": profile_pages(app, email, tables.ledger_customer), "load_seconds": took}
    tables.dispose()
    return results


def rows(db_name: str, results: dict) -> list[list]:
    out = []
    for n, found in results.items():
        for name, timing in found["timing"].items():
            prof = found["profile"][name]
            out.append([db_name, f"{n:,}", name, ms(timing["p50"]), ms(timing["p99"]), prof["count"],
                        ms(prof["seconds"]), ms(prof["slowest"][0])])
    return out


HEADERS = ["db", "rows", "page", "p50 ms", "p99 ms", "SQL statements", "SQL ms", "slowest SQL ms"]


def growth(db_name: str, results: dict) -> list[list]:
    """p50 at the largest level ÷ p50 at the smallest, per page; within 1.5× passes."""
    levels = sorted(results)
    low, high = levels[0], levels[-1]
    out = []
    for name, _path, counted in pages(0):
        a, b = results[low]["timing"][name]["p50"], results[high]["timing"][name]["p50"]
        ratio = b / a
        slowest = results[high]["profile"][name]["slowest"]
        out.append([db_name, name, f"{low:,} → {high:,}", ms(a), ms(b), f"{ratio:.2f}×",
                    ("yes" if ratio <= 1.5 else "NO") if counted else f"({'yes' if ratio <= 1.5 else 'no'}, extra)",
                    f"{slowest[0] * 1000:.1f} ms: {shorten(slowest[1], 110)}"])
    return out


GROWTH_HEADERS = ["db", "page", "rows", "p50 ms (small)", "p50 ms (large)", "growth", "within 1.5×",
                  "slowest SQL at the large size"]
