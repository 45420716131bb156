"""Run the benchmarks and print their figures as tables: `python -m bench` or `python bench/run.py`.

    --quick               short phases, fewer callbacks, lists up to 10^5 rows (about 3 minutes)
    --db sqlite|postgresql|both
    --save FILE           also write every table to FILE (Markdown)
See bench/README.md for what each figure measures.
"""
import argparse
import os
import sys
import time
from pathlib import Path

if __package__ in (None, ""):  # `python bench/run.py`
    ROOT = Path(__file__).resolve().parent.parent
    venv_python = ROOT / ".venv" / "bin" / "python"
    try:
        import importlib

        for needed in ("flask", "gunicorn", "psycopg", "requests", "sqlalchemy"):
            importlib.import_module(needed)
    except ImportError:
        if venv_python.exists() and Path(sys.executable) != venv_python:
            os.execv(str(venv_python), [str(venv_python), "-m", "bench", *sys.argv[1:]])
        raise
    sys.path.insert(0, str(ROOT))
    __package__ = "bench"  # noqa: A001

from bench import callbacks, pages, usage  # noqa: E402
from bench.common import Databases, Gunicorn, log, machine, migrate, ms, remove_workdir, seeding_app, shorten, table  # noqa: E402,I001


def options(argv=None):
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="short run (about 3 minutes)")
    parser.add_argument("--db", choices=("sqlite", "postgresql", "both"), default="both")
    parser.add_argument("--only", default="usage,callbacks,pages", help="comma list of usage, callbacks, pages")
    parser.add_argument("--clients", default="16,64", help="concurrent API clients, comma list (default 16,64)")
    parser.add_argument("--seconds", type=float, help="recorded seconds per load phase (default 8, quick 3)")
    parser.add_argument("--warmup", type=float, help="unrecorded seconds before each phase (default 2, quick 1)")
    parser.add_argument("--customers", type=int, default=200, help="customers the API clients charge")
    parser.add_argument("--callbacks", type=int, help="card orders paid by bank callbacks (default 400, quick 100)")
    parser.add_argument("--callback-clients", type=int, default=16)
    parser.add_argument("--client-processes", type=int, default=os.cpu_count() or 1,
                        help="processes the API clients are spread over (default: one per CPU)")
    parser.add_argument("--max-rows", type=int,
                        help="largest list size (default: PostgreSQL 10^6, SQLite 10^5; quick: 10^5)")
    parser.add_argument("--page-requests", type=int, default=30, help="timed requests per page and size")
    parser.add_argument("--workers", type=int, default=(os.cpu_count() or 1) * 2 + 1,
                        help="GUNICORN_WORKERS (default as gunicorn.conf.py: 2 × CPUs + 1)")
    parser.add_argument("--pg-unsafe", action="store_true",
                        help="PostgreSQL with fsync/synchronous_commit off, as the tests run it")
    parser.add_argument("--save", help="also write the tables to this Markdown file")
    args = parser.parse_args(argv)
    args.seconds = args.seconds or (3 if args.quick else 8)
    args.warmup = args.warmup if args.warmup is not None else (1 if args.quick else 2)
    args.callbacks = args.callbacks or (100 if args.quick else 400)
    args.client_counts = [int(c) for c in args.clients.split(",")]
    args.only = set(args.only.split(","))
    return args


def levels(args, db_name: str) -> list[int]:
    top = args.max_rows or (10**5 if args.quick or db_name == "sqlite" else 10**6)
    return [n for n in (10**3, 10**4, 10**5, 10**6, 10**7) if n <= top and (n != 10**4 or top == 10**4)] or [top]


def bench_api(args, dbs, db_name: str, out: dict) -> None:
    url = dbs.url(db_name, "bench_api")
    migrate(url)
    app = seeding_app(url)
    log(f"{db_name}: seeding {args.customers} customers and {args.callbacks} card orders")
    seeded = usage.seed(app, args.customers)
    sets = 3 if db_name == "postgresql" else 2  # the real callback, the floor, the SQL floor (PostgreSQL only)
    items = callbacks.seed(app, sets * args.callbacks + callbacks.PROFILE_ORDERS) if "callbacks" in args.only else []
    served, floor_items, sql_floor_items = (items[n * args.callbacks:(n + 1) * args.callbacks] if n < sets else []
                                            for n in range(3))
    profiled = items[sets * args.callbacks:]
    noop_rate = None
    server = Gunicorn(url, args.workers, f"{db_name}-api").start()
    before = set(server.worker_pids())
    try:
        if "usage" in args.only:
            log(f"{db_name}: charging at {args.clients} clients, {args.seconds:g} s each (+{args.warmup:g} s warm-up)")
            phases, charges = usage.load(server, seeded, args.client_counts, args.seconds, args.warmup,
                                         tag=f"{db_name}-{int(time.time())}", processes=args.client_processes)
            out["usage"] += usage.rows(db_name, phases)
            noop_rate = next((noop.rate for noop, _ in phases if noop.clients == args.callback_clients), None)
            out["targets"] += [(f"{db_name}: {name}", ok, value) for name, ok, value in usage.targets(phases)]
            balance = usage.check_balances(url, seeded, charges)
            out["balance"].append([db_name, balance["customers"], balance["charges"], balance["credits"],
                                   "yes" if not balance["wrong"] else f"NO: {len(balance['wrong'])} wrong",
                                   ", ".join(f"{k}×{v}" for k, v in balance["unexpected"].items()) or "-"])
            for line in balance["wrong"][:10]:
                print("   balance:", line)
        if served:
            if noop_rate is None:
                noop_rate = usage.noop_load(server, args.callback_clients, args.seconds, args.warmup,
                                       args.client_processes).rate
            log(f"{db_name}: posting {len(served)} bank callbacks, {args.callback_clients} at a time")
            real = callback_pass(args, dbs, url, server, served, noop_rate, out, db_name, "POST " + callbacks.PATH)
        after = set(server.worker_pids())
        out["memory"] += memory_rows(db_name, "API + callbacks", server, len(after - before))
    finally:
        server.stop()
    if floor_items:
        floor = Gunicorn(url, args.workers, f"{db_name}-floor", app="bench.floor:app").start()
        try:
            log(f"{db_name}: posting {len(floor_items)} bank callbacks to the floor (bench/floor.py)")
            ceiling = callback_pass(args, dbs, url, floor, floor_items, noop_rate, out, db_name,
                                    "floor: the same transaction in bare Core", path=callbacks.FLOOR_PATH)
            reached = f"{real:.2f} (the floor reaches {ceiling:.2f}"
            if sql_floor_items:
                log(f"{db_name}: posting {len(sql_floor_items)} bank callbacks to the SQL floor")
                sql_ceiling = callback_pass(args, dbs, url, floor, sql_floor_items, noop_rate, out, db_name,
                                            "SQL floor: the same rows in 5 statements", path=callbacks.FLOOR_SQL_PATH)
                reached += f", the SQL floor {sql_ceiling:.2f}"
        finally:
            floor.stop()
        out["targets"].append((f"{db_name}: callbacks ≥ 0.25 × no-op at {args.callback_clients} clients",
                               real >= 0.25, reached + ")"))
    if "usage" in args.only:
        found = usage.profile(app, seeded)
        out["profile"].append(profile_row(db_name, "POST /api/v1/usage", found))
        found = pages_profile_healthz(app)
        out["profile"].append(profile_row(db_name, "GET /healthz", found))
    if profiled:
        out["profile"].append(profile_row(db_name, "POST /payments/nestpay/ok", callbacks.profile(app, profiled)))
    dispose(app)


def callback_pass(args, dbs, url: str, server, items: list[dict], noop_rate: float, out: dict, db_name: str,
                  endpoint: str, path: str = callbacks.PATH) -> float:
    """Post every callback, check each order was activated once, replay a tenth and check again; one row of the
    callbacks table. Returns the rate as a share of the no-op's."""
    first = callbacks.post_all(server, items, args.callback_clients, postgres_pids=dbs.postgres_pids, path=path)
    wrong = callbacks.check(url, items)
    callbacks.post_all(server, items[::10], args.callback_clients, path=path)
    wrong_after = callbacks.check(url, items)
    for line in (wrong + wrong_after)[:10]:
        print("   callbacks:", line)
    ratio = first["rate"] / noop_rate if noop_rate else 0.0
    out["callbacks"].append([
        db_name, endpoint, len(items), args.callback_clients, f"{first['rate']:.1f}", f"{ratio:.2f}",
        ms(first["p50"]), ms(first["p99"]), f"{first['machine_busy']:.0f}%",
        " / ".join(f"{first['cpu_ms'][name]:.1f}" if first["cpu_ms"][name] else "-"
                   for name in ("app", "postgres", "client")),
        ", ".join(f"{k}×{v}" for k, v in first["statuses"].items()),
        "yes" if not wrong else f"NO: {len(wrong)}",
        f"{len(items[::10])} replayed: " + ("still once" if not wrong_after else f"NO: {len(wrong_after)}"),
    ])
    return ratio


def pages_profile_healthz(app):
    from bench.common import profile_request

    return profile_request(app, lambda c: c.get("/healthz"), repeat=9)


def bench_pages(args, dbs, db_name: str, out: dict) -> None:
    url = dbs.url(db_name, "bench_pages")
    migrate(url)
    app = seeding_app(url)
    email = pages.seed_agent(app)
    server = Gunicorn(url, args.workers, f"{db_name}-pages").start()
    before = set(server.worker_pids())
    try:
        results = pages.run(server, app, url, email, levels(args, db_name), args.page_requests, db_name)
        out["pages"] += pages.rows(db_name, results)
        growth = pages.growth(db_name, results)
        out["growth"] += growth
        high = max(results)
        for row in growth:
            if not row[6].startswith("("):
                out["targets"].append((f"{db_name}: {row[1]} p50 within 1.5× from {min(results):,} to {high:,}",
                                       row[6] == "yes", row[5]))
        out["memory"] += memory_rows(db_name, "admin pages", server, len(set(server.worker_pids()) - before))
    finally:
        server.stop()
    dispose(app)


def dispose(app) -> None:
    from limonbilling.extensions import db

    with app.app_context():
        db.engine.dispose()


def memory_rows(db_name: str, load: str, server, recycled: int) -> list[list]:
    found = server.memory()
    workers = [m for m in found if m["role"] == "worker"]
    master = next((m for m in found if m["role"] == "master"), None)
    rss = [m["rss"] for m in workers]
    return [[db_name, load, len(workers), f"{min(rss):.0f}", f"{sum(rss) / len(rss):.0f}", f"{max(rss):.0f}",
             f"{max(m['hwm'] for m in workers):.0f}", f"{master['rss']:.0f}" if master else "-",
             f"{sum(rss) + (master['rss'] if master else 0):.0f}", recycled]]


def profile_row(db_name: str, name: str, found: dict) -> list:
    return [db_name, name, found["status"], ms(found["total"]), found["count"], ms(found["seconds"]),
            f"{100 * found['seconds'] / found['total']:.0f}%" if found["total"] else "-",
            f"{found['slowest'][0] * 1000:.1f} ms: {shorten(found['slowest'][1], 100)}"]


def main(argv=None) -> None:
    args = options(argv)
    names = ["sqlite", "postgresql"] if args.db == "both" else [args.db]
    began = time.perf_counter()
    dbs = Databases("postgresql" in names, unsafe_postgres=args.pg_unsafe)
    out = {key: [] for key in ("usage", "balance", "callbacks", "pages", "growth", "memory", "profile", "targets")}
    printed = []
    try:
        printed.append(table("Machine", ["what", "value"], machine(dbs.pg_version),
                             note="PostgreSQL: " + ("fsync/synchronous_commit off (--pg-unsafe)" if args.pg_unsafe
                                                    else "durable defaults (fsync, synchronous_commit on)")
                             + f"; gunicorn gthread, {args.workers} workers × 4 threads"
                             + "; SQLite: WAL, BEGIN IMMEDIATE per transaction, writers queued by a lock file"
                             + f"; API clients spread over {args.client_processes} processes"))
        for db_name in names:
            if args.only & {"usage", "callbacks"}:
                bench_api(args, dbs, db_name, out)
            if "pages" in args.only:
                bench_pages(args, dbs, db_name, out)
    finally:
        dbs.stop()
        remove_workdir()
    if out["usage"]:
        printed.append(table("1. Usage-charge API against the no-op (GET /healthz), same server, same run",
                             usage.HEADERS, out["usage"],
                             note=f"{args.seconds:g} s recorded per row after {args.warmup:g} s warm-up; req/s counts "
                                  "201 (charges) or 200 (no-op) answers. client cores: CPU the load-generating "
                                  "processes used together (1.00 = one core), on the same machine as the server."))
        printed.append(table("1b. Exact balance after the load", ["db", "customers", "charges answered 201",
                                                                  "credits charged", "exact", "other answers"],
                             out["balance"],
                             note="Per customer: credits taken == sum of `charged` answered to the clients; "
                                  "usages recorded == 201 answers; ledger sum == balance."))
    if out["callbacks"]:
        printed.append(table("2. Bank callback → activation", [
            "db", "endpoint", "orders", "clients", "callbacks/s", "÷ no-op", "p50 ms", "p99 ms", "machine CPU",
            "CPU ms per callback: app / PostgreSQL / client", "answers", "each activated once", "replay"],
            out["callbacks"], note="÷ no-op: against GET /healthz at as many clients on the same server. CPU ms per "
                                   "callback: user + system time of gunicorn (master and workers), of the "
                                   "PostgreSQL server's processes and of the load clients, over the first pass, "
                                   "divided by the callbacks. The floor (bench/floor.py) does the same transaction "
                                   "in bare SQLAlchemy Core with no rule checked, one statement per write: the "
                                   "ceiling of a callback with the rules in Python on both databases. The SQL floor "
                                   "(PostgreSQL) writes the same rows in 5 statements."))
    if out["pages"]:
        printed.append(table("3. Admin pages by table size (signed-in agent, one client)", pages.HEADERS,
                             out["pages"], note=f"{args.page_requests} timed requests per row after 3 unrecorded. "
                                                "SQL columns: one request profiled in the bench process on the same "
                                                "database (statements, their total time, the slowest one)."))
        printed.append(table("3b. Does p50 stay within 1.5× as the tables grow?", pages.GROWTH_HEADERS, out["growth"]))
    if out["memory"]:
        printed.append(table("4. Memory per gunicorn worker after the load (MiB)",
                             ["db", "after", "workers", "min RSS", "mean RSS", "max RSS", "max peak (VmHWM)",
                              "master RSS", "total RSS", "workers recycled"], out["memory"],
                             note="VmRSS from /proc/<pid>/status; workers recycled: new worker pids seen after the "
                                  "load (gunicorn.conf.py max_requests=5000 ± 500)."))
    if out["profile"]:
        printed.append(table("Where the time goes in one request (in-process, SQL statements timed)",
                             ["db", "request", "status", "total ms", "SQL statements", "SQL ms", "SQL share",
                              "slowest statement"], out["profile"]))
    if out["targets"]:
        printed.append(table("Targets", ["target", "met", "figure"],
                             [[name, "yes" if ok else "NO", value] for name, ok, value in out["targets"]]))
    print(f"\nTotal run time: {time.perf_counter() - began:.0f} s", flush=True)
    if args.save:
        Path(args.save).write_text("\n\n".join(printed) + f"\n\nTotal run time: {time.perf_counter() - began:.0f} s\n")


if __name__ == "__main__":
    main()
