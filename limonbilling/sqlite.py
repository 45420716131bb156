"""SQLite settings that make it safe for a multi-threaded, multi-process web app.

Every transaction starts with BEGIN IMMEDIATE, so it takes SQLite's write
lock up front and waits for its turn, instead of reading a snapshot and
failing later with "database is locked" when it wants to write. This is
SQLAlchemy's documented recipe for pysqlite's transaction handling.

Waiting is done by `WriterQueue`, not by SQLite's busy handler: the busy
handler polls in growing sleeps of up to 100 ms, so under load a transaction
could sleep long after the lock was free (seconds at the 99th percentile with
16 clients). The queue hands the turn on as soon as the holder commits.
"""
import fcntl
import os
import sqlite3
import threading
import time
import weakref

from flask import Flask
from sqlalchemy import event

from .extensions import db

WAIT_SECONDS = 30  # as long as a writer waits for its turn before it gives up (as busy_timeout did)


def _unicode_lower(value):
    return fold_case(value) if isinstance(value, str) else value


def fold_case(text: str) -> str:
    """Lower case as PostgreSQL does it: Python turns İ into i + a combining dot (U+0307), PostgreSQL into i."""
    return text.lower().replace("\u0307", "")


class WriterQueue:
    """One writer at a time for a database file, across threads (a lock) and processes (flock on a
    `<database>.lock` file beside it; the kernel drops it if a process dies)."""

    _all: "weakref.WeakSet[WriterQueue]" = weakref.WeakSet()

    def __init__(self, lock_path: str):
        self.lock_path = lock_path
        self._file = None
        self._start_over()
        WriterQueue._all.add(self)

    def _start_over(self) -> None:
        """A forked process must not inherit the parent's turn or share its open lock file."""
        self._turn = threading.Lock()
        if self._file is not None:
            os.close(self._file)  # the parent's copy; this process opens its own on its first turn
            self._file = None

    def acquire(self) -> None:
        if not self._turn.acquire(timeout=WAIT_SECONDS):
            raise sqlite3.OperationalError("database is locked (waited for the writer's turn)")
        try:
            self._lock_file()
        except BaseException:
            self._turn.release()
            raise

    def release(self) -> None:
        fcntl.flock(self._file, fcntl.LOCK_UN)
        self._turn.release()

    def _lock_file(self) -> None:
        if self._file is None:
            self._file = os.open(self.lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        deadline = time.monotonic() + WAIT_SECONDS
        pause = 0.0002
        while True:
            try:
                fcntl.flock(self._file, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise sqlite3.OperationalError("database is locked (waited for the writer's turn)") from None
                time.sleep(pause)  # one thread per process polls; the others wait on `_turn`
                pause = min(pause * 2, 0.002)


os.register_at_fork(after_in_child=lambda: [queue._start_over() for queue in list(WriterQueue._all)])


def _queued_connection_class(queue: WriterQueue) -> type:
    class QueuedConnection(sqlite3.Connection):
        """Gives the writer's turn back right after COMMIT or ROLLBACK, or when closed mid-transaction."""

        holds_turn = False

        def begin_immediate(self) -> None:
            queue.acquire()
            self.holds_turn = True
            try:
                self.execute("BEGIN IMMEDIATE")
            except BaseException:
                self._give_back()
                raise

        def commit(self):
            try:
                super().commit()
            finally:
                self._give_back()

        def rollback(self):
            try:
                super().rollback()
            finally:
                self._give_back()

        def close(self):
            try:
                super().close()
            finally:
                self._give_back()

        def _give_back(self) -> None:
            if self.holds_turn:
                self.holds_turn = False
                queue.release()

    return QueuedConnection


def configure_sqlite(app: Flask) -> None:
    """Before the engine exists: file databases get connections that queue for the writer's turn."""
    uri = app.config["SQLALCHEMY_DATABASE_URI"]
    if not uri.startswith("sqlite:///") or uri == "sqlite:///:memory:":
        return
    path = uri.removeprefix("sqlite:///").split("?", 1)[0]
    queue = app.extensions["sqlite_writer_queue"] = WriterQueue(path + ".lock")
    options = dict(app.config.get("SQLALCHEMY_ENGINE_OPTIONS") or {})
    options["connect_args"] = {**options.get("connect_args", {}), "factory": _queued_connection_class(queue)}
    app.config["SQLALCHEMY_ENGINE_OPTIONS"] = options


def enable_sqlite_pragmas(app: Flask) -> None:
    uri = app.config["SQLALCHEMY_DATABASE_URI"]
    if not uri.startswith("sqlite"):
        return
    with app.app_context():
        engine = db.engine
    file_based = uri not in ("sqlite://", "sqlite:///:memory:")

    @event.listens_for(engine, "connect")
    def on_connect(dbapi_connection, _record):
        dbapi_connection.isolation_level = None  # we emit BEGIN ourselves
        # SQLite's lower() knows ASCII only; searches must match Ö, Ş, İ… as PostgreSQL does.
        dbapi_connection.create_function("lower", 1, _unicode_lower, deterministic=True)
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={WAIT_SECONDS * 1000}")  # other programs on the file
        if file_based:
            cursor.execute("PRAGMA journal_mode=WAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def on_begin(connection):
        dbapi_connection = connection.connection.dbapi_connection
        if hasattr(dbapi_connection, "begin_immediate"):
            dbapi_connection.begin_immediate()
        else:
            connection.exec_driver_sql("BEGIN IMMEDIATE")
