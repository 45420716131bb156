"""Where the Python time of one charge and one bank callback goes: `python -m bench.profile`.

Each request runs in this process (Flask test client) against a fresh SQLite file or a throw-away PostgreSQL
server, seeded as `python -m bench` seeds them. It prints the SQL statements of one request, then a
timing of many without a profiler, and a pyinstrument profile of as many again (the charges: `--charges`, the
callbacks: one fresh order each, `--callbacks`), with the frames below `--min-percent` of the time left out.
"""
import argparse
import itertools
import time

from . import callbacks, usage
from .common import Databases, log, migrate, query_profile, seeding_app, shorten


def options(argv=None):
    parser = argparse.ArgumentParser(prog="python -m bench.profile", description=__doc__)
    parser.add_argument("--db", choices=("sqlite", "postgresql", "both"), default="both")
    parser.add_argument("--charges", type=int, default=300, help="charges profiled (default 300)")
    parser.add_argument("--callbacks", type=int, default=60, help="bank callbacks profiled (default 60)")
    parser.add_argument("--min-percent", type=float, default=3.0, help="hide frames below this share of the time")
    return parser.parse_args(argv)


def _statements(app, send, client) -> list[str]:
    from limonbilling.extensions import db

    with app.app_context():
        engine = db.engine
    with query_profile(engine) as found, _listing(engine) as listed:
        response = send(client)
    assert response.status_code in (201, 303), response.status_code
    return [f"{ms:5.2f} ms  {shorten(statement, 150)}" for ms, statement in listed] + [
        f"{found['count']} statements, {found['seconds'] * 1000:.1f} ms"]


class _listing:
    """Every statement run on `engine` with its time, in order."""

    def __init__(self, engine):
        self.engine, self.listed, self.started = engine, [], {}

    def __enter__(self):
        from sqlalchemy import event

        event.listen(self.engine, "before_cursor_execute", self._before)
        event.listen(self.engine, "after_cursor_execute", self._after)
        return self.listed

    def __exit__(self, *exc):
        from sqlalchemy import event

        event.remove(self.engine, "before_cursor_execute", self._before)
        event.remove(self.engine, "after_cursor_execute", self._after)
        return False

    def _before(self, conn, cursor, statement, *args):
        self.started[id(cursor)] = time.perf_counter()

    def _after(self, conn, cursor, statement, *args):
        took = time.perf_counter() - self.started.pop(id(cursor), time.perf_counter())
        self.listed.append((took * 1000, " ".join(statement.split())))


def _timed(send, client, times: int) -> str:
    """Wall time, and CPU time of this process (which leaves out waiting for the disk and for other programs on
    a shared machine)."""
    wall, cpu = [], []
    for _ in range(times):
        began, began_cpu = time.perf_counter(), time.process_time()
        send(client)
        wall.append(time.perf_counter() - began)
        cpu.append(time.process_time() - began_cpu)
    wall.sort()
    cpu.sort()
    return (f"{times} requests without the profiler: median {wall[times // 2] * 1000:.2f} ms "
            f"(fastest {wall[0] * 1000:.2f} ms), CPU median {cpu[times // 2] * 1000:.2f} ms")


def _profiled(send, client, times: int, min_percent: float) -> str:
    from pyinstrument import Profiler

    profiler = Profiler(interval=0.0002)
    began = time.perf_counter()
    with profiler:
        for _ in range(times):
            send(client)
    took = (time.perf_counter() - began) / times
    text = profiler.output_text(unicode=True, color=False, show_all=False, timeline=False,
                                processor_options={"filter_threshold": min_percent / 100})
    return f"{times} requests, {took * 1000:.2f} ms each (profiler running)\n{text}"


def run(db_name: str, dbs, args) -> None:
    url = dbs.url(db_name, "bench_profile")
    migrate(url)
    app = seeding_app(url)
    log(f"{db_name}: seeding")
    seeded = usage.seed(app, 2)
    items = iter(callbacks.seed(app, 2 * args.callbacks + 3))
    headers = {"Authorization": f"Bearer {seeded['token']}"}
    counter = itertools.count()
    client = app.test_client()

    def charge(client):
        return client.post("/api/v1/usage", headers=headers, json={
            "customer_id": seeded["profile_customer_id"], "department_id": seeded["department_id"],
            "kind": "ticket", "reference": f"profile-{next(counter)}"})

    def callback(client):
        return client.post("/payments/nestpay/ok", data=next(items)["fields"])

    for name, send, times in (("POST /api/v1/usage", charge, args.charges),
                              ("POST /payments/nestpay/ok", callback, args.callbacks)):
        send(client)  # warm: imports, compiled statements, the connection pool
        print(f"\n## {db_name}: {name}\n")
        print("\n".join(_statements(app, send, client)))
        print()
        print(_timed(send, client, times))
        print(_profiled(send, client, times, args.min_percent))
    with app.app_context():
        from limonbilling.extensions import db

        db.engine.dispose()


def main(argv=None) -> None:
    args = options(argv)
    names = ["sqlite", "postgresql"] if args.db == "both" else [args.db]
    dbs = Databases("postgresql" in names)
    try:
        for db_name in names:
            run(db_name, dbs, args)
    finally:
        dbs.stop()


if __name__ == "__main__":
    main()
