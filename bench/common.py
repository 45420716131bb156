"""What every benchmark shares: the machine, the databases, the served app, load, statistics, tables.

Nothing here is a test: the app is served by gunicorn exactly as in production
(`gunicorn -c gunicorn.conf.py wsgi:app`, LIMONBILLING_CONFIG=production) on a
free loopback port, against a throw-away SQLite file or PostgreSQL server.
"""
import atexit
import os
import platform
import re
import resource
import secrets
import shutil
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = ROOT / ".venv" / "bin"
SECRET_KEY = secrets.token_hex(32)
WORKDIR = Path(tempfile.mkdtemp(prefix="limonbilling-bench-"))

# The in-process app (seeding, query profiles) and every child process run the production configuration.
os.environ.update({
    "LIMONBILLING_CONFIG": "production", "SECRET_KEY": SECRET_KEY, "SESSION_COOKIE_SECURE": "0",
    "PUBLIC_BASE_URL": "http://127.0.0.1",
    "LIMONBILLING_INSTANCE": str(WORKDIR / "instance"),
})
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


# --- printing ---------------------------------------------------------------------------------

def table(title: str, headers: list[str], rows: list[list], note: str | None = None) -> str:
    """A plain-text table (also valid Markdown), printed and returned."""
    cells = [[str(h) for h in headers]] + [["" if c is None else str(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]

    def line(row):
        padded = [c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(row, widths, strict=True))]
        return "| " + " | ".join(padded) + " |"

    out = [f"\n### {title}\n", line(cells[0]), "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
    out += [line(row) for row in cells[1:]]
    if note:
        out.append(f"\n{note}")
    text = "\n".join(out)
    print(text, flush=True)
    return text


def log(message: str) -> None:
    print(f"  · {message}", file=sys.stderr, flush=True)


def ms(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds * 1000:.1f}"


def percentile(values: list[float], p: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    k = max(0, min(len(ordered) - 1, round(p / 100 * len(ordered) + 0.5) - 1))
    return ordered[k]


def median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


# --- the machine ------------------------------------------------------------------------------

def machine(pg_version: str | None) -> list[list]:
    cpu = "?"
    try:
        found = re.search(r"model name\s*:\s*(.+)", Path("/proc/cpuinfo").read_text())
        cpu = found.group(1).strip() if found else platform.processor()
    except OSError:
        pass
    mem = "?"
    try:
        kb = int(re.search(r"MemTotal:\s+(\d+)", Path("/proc/meminfo").read_text()).group(1))
        mem = f"{kb / 1024 / 1024:.1f} GiB"
    except (OSError, AttributeError):
        pass
    import gunicorn
    import sqlalchemy

    return [
        ["CPUs (os.cpu_count)", os.cpu_count()], ["CPU", cpu], ["memory", mem],
        ["OS", f"{platform.system()} {platform.release()}"],
        ["Python", platform.python_version()], ["gunicorn", gunicorn.__version__],
        ["SQLAlchemy", sqlalchemy.__version__], ["SQLite", sqlite3.sqlite_version],
        ["PostgreSQL", pg_version or "not used"],
    ]


def cpu_times() -> tuple[float, float]:
    """(busy, total) jiffies of the whole machine, from /proc/stat."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]
    return sum(fields) - idle, sum(fields)


class CpuMeter:
    """Machine-wide busy % and this process's (the load client's) CPU, over a stretch of time."""

    def __enter__(self):
        self.machine0 = cpu_times()
        usage = resource.getrusage(resource.RUSAGE_SELF)
        self.self0 = usage.ru_utime + usage.ru_stime
        self.wall0 = time.perf_counter()
        return self

    def __exit__(self, *exc):
        busy, total = cpu_times()
        usage = resource.getrusage(resource.RUSAGE_SELF)
        wall = time.perf_counter() - self.wall0
        self.machine_busy = 100 * (busy - self.machine0[0]) / max(1, total - self.machine0[1])
        self.client_cores = (usage.ru_utime + usage.ru_stime - self.self0) / wall
        return False


def child_pids(parent: int) -> list[int]:
    """The processes whose parent is `parent` (gunicorn's workers, PostgreSQL's backends)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == parent:
            pids.append(int(entry.name))
    return sorted(pids)


def cpu_seconds(pids: list[int]) -> dict[int, float]:
    """User + system CPU each process has used so far (one that has exited is left out)."""
    ticks = os.sysconf("SC_CLK_TCK")
    found = {}
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        found[pid] = (int(fields[11]) + int(fields[12])) / ticks
    return found


class ProcessCpu:
    """CPU used over a stretch of time by groups of processes, each group named and listed by a function
    called at the start and at the end (a backend or a worker that appears meanwhile counts from zero)."""

    def __init__(self, **groups):
        self.groups = groups

    def __enter__(self):
        self.before = {name: cpu_seconds(list_pids()) for name, list_pids in self.groups.items()}
        return self

    def __exit__(self, *exc):
        self.used = {}
        for name, list_pids in self.groups.items():
            after = cpu_seconds(list_pids())
            self.used[name] = sum(seconds - self.before[name].get(pid, 0.0) for pid, seconds in after.items())
        return False


# --- databases --------------------------------------------------------------------------------

def durable_postgres(bin_dir, unsafe: bool = False):
    """tests/postgres.py's throw-away server, but durable as in production (fsync, synchronous_commit
    and full_page_writes on; the tests switch them off), unless `unsafe`."""
    from tests.postgres import PostgresServer

    return PostgresServer(bin_dir, durable=not unsafe, extra_options="-c shared_buffers=256MB")


def credit_desk(name: str, cost: int, credits: int, actor):
    """A department that costs `cost` credits per request and a credit package of `credits` over it
    (inside an app context; committed)."""
    from limonbilling.extensions import db
    from limonbilling.models import Department
    from limonbilling.services import packages

    department = Department(name=name, credit_per_request=cost, active=True)
    db.session.add(department)
    db.session.flush()
    package = packages.create_package({
        "name": f"{name} credits", "type": "credit", "price": "150.00", "currency": "TRY", "credits": credits,
        "days": None, "department_ids": [department.id], "on_sale": True,
    }, actor)
    db.session.commit()
    return department, package


class Databases:
    """SQLite files under the bench's temp folder; one PostgreSQL server (tests/postgres.py) when asked."""

    def __init__(self, want_postgres: bool, unsafe_postgres: bool = False):
        self.pg = None
        self.pg_version = None
        if want_postgres:
            from tests.postgres import find_bin_dir

            bin_dir = find_bin_dir()
            if bin_dir is None:
                raise SystemExit("PostgreSQL server binaries not found (PG_BIN, /usr/lib/postgresql/*/bin)")
            self.pg = durable_postgres(bin_dir, unsafe=unsafe_postgres)
            self.pg.start()
            import psycopg

            with psycopg.connect(f"host=127.0.0.1 port={self.pg.port} user=postgres dbname=postgres") as conn:
                self.pg_version = conn.execute("SHOW server_version").fetchone()[0]

    def postgres_pids(self) -> list[int]:
        """The PostgreSQL server's processes (the postmaster and its backends), none without a server."""
        if self.pg is None:
            return []
        postmaster = int((self.pg.data / "postmaster.pid").read_text().split()[0])
        return [postmaster, *child_pids(postmaster)]

    def url(self, kind: str, name: str) -> str:
        if kind == "sqlite":
            return f"sqlite:///{WORKDIR / (name + '.db')}"
        return self.pg.create_database(name)

    def stop(self) -> None:
        if self.pg is not None:
            self.pg.stop()


def migrate(url: str) -> None:
    """The schema as production makes it: `flask --app wsgi db upgrade`."""
    subprocess.run([str(VENV_BIN / "flask"), "--app", "wsgi", "db", "upgrade"], cwd=ROOT, check=True,
                   env={**os.environ, "DATABASE_URL": url}, capture_output=True)


def seeding_app(url: str, **overrides):
    """An app in this process on the same database, for seeding through the services and for query profiles."""
    from limonbilling import create_app

    # No CSRF tokens in this process only (it signs in with the test client); the served app keeps them.
    return create_app({"SQLALCHEMY_DATABASE_URI": url, "OUTBOX_SEND_AFTER_COMMIT": False,
                       "WTF_CSRF_ENABLED": False, **overrides})


# --- the served app ---------------------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Gunicorn:
    """`gunicorn -c gunicorn.conf.py wsgi:app` as production runs it, on a free loopback port (`app` names
    another WSGI app, e.g. the callback floor)."""

    def __init__(self, url: str, workers: int, name: str, app: str = "wsgi:app"):
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.log_path = WORKDIR / f"gunicorn-{name}.log"
        self.env = {
            **os.environ, "DATABASE_URL": url, "GUNICORN_BIND": f"127.0.0.1:{self.port}",
            "GUNICORN_WORKERS": str(workers), "GUNICORN_ACCESS_LOG": str(WORKDIR / f"access-{name}.log"),
        }
        self.workers = workers
        self.app = app
        self.process = None

    def start(self) -> "Gunicorn":
        import requests

        self._log = open(self.log_path, "ab")  # noqa: SIM115  closed in stop()
        self.process = subprocess.Popen(
            [str(VENV_BIN / "gunicorn"), "-c", "gunicorn.conf.py", self.app], cwd=ROOT, env=self.env,
            stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"gunicorn exited; see {self.log_path}")
            try:
                if requests.get(self.base + "/healthz", timeout=2).status_code == 200 and \
                        len(self.worker_pids()) >= self.workers:
                    return self
            except requests.RequestException:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"gunicorn did not answer; see {self.log_path}")

    def worker_pids(self) -> list[int]:
        return child_pids(self.process.pid)

    def pids(self) -> list[int]:
        """The master and its workers."""
        return [self.process.pid, *self.worker_pids()]

    def memory(self) -> list[dict]:
        """VmRSS and VmHWM (peak) of the master and each worker, in MiB."""
        found = []
        for role, pid in [("master", self.process.pid)] + [("worker", pid) for pid in self.worker_pids()]:
            try:
                status = Path(f"/proc/{pid}/status").read_text()
            except OSError:
                continue
            kib = {key: int(value) for key, value in re.findall(r"(VmRSS|VmHWM):\s+(\d+) kB", status)}
            found.append({"role": role, "pid": pid, "rss": kib.get("VmRSS", 0) / 1024,
                          "hwm": kib.get("VmHWM", 0) / 1024})
        return found

    def stop(self) -> None:
        if self.process is None:
            return
        if self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=35)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        self._log.close()
        self.process = None


# --- load -------------------------------------------------------------------------------------

@dataclass
class Phase:
    """What one timed stretch of load measured."""

    name: str
    clients: int
    seconds: float = 0.0
    latencies: list[float] = field(default_factory=list)
    statuses: dict[int, int] = field(default_factory=dict)
    errors: int = 0
    machine_busy: float = 0.0
    client_cores: float = 0.0

    @property
    def ok(self) -> int:
        return len(self.latencies)

    @property
    def rate(self) -> float:
        return self.ok / self.seconds if self.seconds else 0.0


def run_load(name: str, clients: int, seconds: float, warmup: float, make_request, expect: int,
             processes: int = 1, state=None) -> Phase:
    """`clients` client threads spread over `processes` forked processes (so one Python process's GIL does
    not cap the rate a fast endpoint can reach), each with its own requests.Session, calling
    `make_request(session, client, n)` back to back: `warmup` seconds unrecorded, then `seconds` recorded.
    A response with status `expect` counts, its latency is kept. `state` (with `clear()`, `snapshot()` and
    `merge(snapshot)`) is what `make_request` records; each process starts it empty and it is merged back here."""
    import multiprocessing

    processes = max(1, min(processes, clients))
    began = time.monotonic() + 0.5  # time for every process to start its threads
    times = {"record_from": began + warmup, "stop_at": began + warmup + seconds}
    context = multiprocessing.get_context("fork")
    results = context.Queue()
    shares = [list(range(clients))[p::processes] for p in range(processes)]
    children = [context.Process(target=_load_process, args=(share, times, make_request, expect, state, results))
                for share in shares]
    for child in children:
        child.start()
    time.sleep(max(0.0, times["record_from"] - time.monotonic()))
    phase = Phase(name, clients)
    with CpuMeter() as meter:
        found = [results.get(timeout=seconds + warmup + 120) for _ in children]
    for child in children:
        child.join()
    for latencies, statuses, errors, cpu_seconds, snapshot in found:
        phase.latencies.extend(latencies)
        phase.errors += errors
        for status, count in statuses.items():
            phase.statuses[status] = phase.statuses.get(status, 0) + count
        phase.client_cores += cpu_seconds / seconds
        if state is not None:
            state.merge(snapshot)
    phase.seconds = seconds
    phase.machine_busy = meter.machine_busy
    return phase


def _load_process(share: list[int], times: dict, make_request, expect: int, state, results) -> None:
    """One load process: a thread per client in `share`; reports what it measured and its own CPU seconds
    while recording."""
    import requests

    if state is not None:
        state.clear()  # the fork copied what the parent had already merged
    lock = threading.Lock()
    latencies, statuses, errors = [], {}, [0]

    def client(index: int):
        session = requests.Session()
        mine, seen, failed, n = [], {}, 0, 0
        record_from, stop_at = times["record_from"], times["stop_at"]
        while True:
            began = time.monotonic()
            if began >= stop_at:
                break
            try:
                status = make_request(session, index, n).status_code
            except requests.RequestException:
                failed += 1
                status = None
            took = time.monotonic() - began
            n += 1
            if began >= record_from:
                if status is not None:
                    seen[status] = seen.get(status, 0) + 1
                if status == expect:
                    mine.append(took)
        session.close()
        with lock:
            latencies.extend(mine)
            errors[0] += failed
            for status, count in seen.items():
                statuses[status] = statuses.get(status, 0) + count

    threads = [threading.Thread(target=client, args=(index,), daemon=True) for index in share]
    for thread in threads:
        thread.start()
    time.sleep(max(0.0, times["record_from"] - time.monotonic()))
    cpu_from = _cpu_seconds()
    for thread in threads:
        thread.join()
    results.put((latencies, statuses, errors[0], _cpu_seconds() - cpu_from,
                 state.snapshot() if state is not None else None))


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


# --- where the time goes inside one request ---------------------------------------------------

@contextmanager
def query_profile(engine):
    """Count and time every SQL statement run on `engine` while the block runs."""
    from sqlalchemy import event

    found = {"count": 0, "seconds": 0.0, "slowest": (0.0, "")}
    started = {}

    def before(conn, cursor, statement, parameters, context, executemany):
        started[id(cursor)] = time.perf_counter()

    def after(conn, cursor, statement, parameters, context, executemany):
        took = time.perf_counter() - started.pop(id(cursor), time.perf_counter())
        found["count"] += 1
        found["seconds"] += took
        if took > found["slowest"][0]:
            found["slowest"] = (took, " ".join(statement.split()))

    event.listen(engine, "before_cursor_execute", before)
    event.listen(engine, "after_cursor_execute", after)
    try:
        yield found
    finally:
        event.remove(engine, "before_cursor_execute", before)
        event.remove(engine, "after_cursor_execute", after)


def profile_request(app, send, repeat: int = 5, client=None) -> dict:
    """Run `send(client)` in this process (after one warm-up) and report the median request time,
    the SQL statements it ran and their time, and its slowest statement."""
    from limonbilling.extensions import db

    with app.app_context():
        engine = db.engine
    client = client or app.test_client()
    send(client)
    runs = []
    for _ in range(repeat):
        with query_profile(engine) as found:
            began = time.perf_counter()
            response = send(client)
            found["total"] = time.perf_counter() - began
            found["status"] = response.status_code
        runs.append(found)
    runs.sort(key=lambda r: r["total"])
    return runs[len(runs) // 2]


def shorten(statement: str, limit: int = 160) -> str:
    return statement if len(statement) <= limit else statement[:limit - 1] + "…"


def remove_workdir() -> None:
    shutil.rmtree(WORKDIR, ignore_errors=True)


atexit.register(remove_workdir)  # also after --help or an error
