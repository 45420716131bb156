"""Fixtures: an app per test on SQLite and on a real PostgreSQL server, a test clock, clients.

Every test that uses `app` runs twice, once per database; one that never reaches a database uses
`app_without_database` and runs once. The schema is made once per database and emptied between tests; one app
per database serves every test, its configuration restored first (building an app compiles 130 URL rules). Set
TEST_DATABASES=sqlite to run only one locally; REQUIRE_POSTGRES=1 (CI) turns a missing PostgreSQL into a failure.
Tests marked `slow` are collected first, so that the xdist workers share them.
"""
import copy
import functools
import os
import sqlite3
from datetime import UTC, datetime

import pytest
from flask import g
from sqlalchemy import event
from sqlalchemy.engine import Engine

from limonbilling import create_app
from limonbilling.clock import FrozenClock
from limonbilling.extensions import db, limiter

from .factories import PASSWORD
from .postgres import PostgresServer, find_bin_dir

os.environ["LIMONBILLING_CONFIG"] = "testing"
DATABASES = [name for name in os.environ.get("TEST_DATABASES", "sqlite,postgresql").split(",") if name]
START = datetime(2026, 3, 1, 9, 0, 0, tzinfo=UTC)


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(items):
    """The slow tests first, in their order: xdist hands tests out in this order, and a slow test handed out
    last would keep its worker busy long after the other one had nothing left to do."""
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)


@pytest.fixture(scope="session", autouse=True)
def _password_hashes_worked_out_once():
    """scrypt costs a tenth of a second of CPU per hash and per check, and most tests make accounts and sign
    them in (thousands of each per run). A check is a pure function of (hash, password): its answers are kept.
    The factories' PASSWORD is hashed once and that hash shared; any other password gets its own salted hash,
    as in production."""
    from limonbilling.models import accounts

    make, check = accounts.generate_password_hash, accounts.check_password_hash
    password_hash = make(PASSWORD)

    def make_once_for_the_test_password(password, *args, **kwargs):
        return password_hash if password == PASSWORD and not (args or kwargs) else make(password, *args, **kwargs)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(accounts, "generate_password_hash", make_once_for_the_test_password)
        patch.setattr(accounts, "check_password_hash", functools.cache(check))
        yield


@pytest.fixture(scope="session", autouse=True)
def _sqlite_without_fsync():
    """Every SQLite connection the tests open skips fsync (PostgreSQL runs with fsync=off for the same reason):
    a commit to a WAL file otherwise waits for the disk, and the tests commit tens of thousands of times.
    Locking, WAL and the app's own pragmas are untouched; only durability after a power cut is given up."""

    def no_fsync(dbapi_connection, _record):
        if isinstance(dbapi_connection, sqlite3.Connection):
            dbapi_connection.execute("PRAGMA synchronous=OFF")

    event.listen(Engine, "connect", no_fsync)
    yield
    event.remove(Engine, "connect", no_fsync)


@pytest.fixture(scope="session")
def postgres_server():
    bin_dir = find_bin_dir()
    if bin_dir is None:
        reason = "PostgreSQL server binaries not found (looked in PG_BIN, /usr/lib/postgresql/*/bin, PATH)"
        if os.environ.get("REQUIRE_POSTGRES") == "1":
            pytest.fail(reason + " and REQUIRE_POSTGRES=1")
        pytest.skip(reason)
    server = PostgresServer(bin_dir)
    server.start()
    yield server
    server.stop()


def _make_app(database_url: str, **overrides):
    app = create_app({"SQLALCHEMY_DATABASE_URI": database_url, **overrides})

    @app.teardown_request
    def forget_request_globals(_error):
        """Tests keep one app context pushed, which requests then share; in production each
        request has its own. Clear `g` (Flask-Login's user, Babel's locale) as a new context would."""
        for name in list(g):
            g.pop(name)

    return app


_DATABASE_URLS: dict[str, str] = {}


@pytest.fixture(scope="session", params=DATABASES)
def database_url(request, tmp_path_factory):
    """A database with the current schema, made once per test session (per xdist worker). pytest sets this
    fixture up again whenever a worker's next test is on the other database (xdist hands tests out in any
    order): the database made the first time is reused, not made again beside the shared app's open pool."""
    if request.param not in _DATABASE_URLS:
        if request.param == "sqlite":
            url = f"sqlite:///{tmp_path_factory.mktemp('sqlite') / 'test.db'}"
        else:
            url = request.getfixturevalue("postgres_server").create_database("limonbilling_test")
        app = _make_app(url)
        with app.app_context():
            db.create_all()
            db.engine.dispose()
        _DATABASE_URLS[request.param] = url
    return _DATABASE_URLS[request.param]


def _empty_all_tables() -> None:
    """DELETE, not TRUNCATE: on PostgreSQL a TRUNCATE of every table costs ten times as much. The sequences a
    test used go back to their start with setval (ALTER SEQUENCE … RESTART costs ~30 ms a test). Plain SQL text:
    run before every test, the ORM's statement building would cost more than the deleting."""
    tables = [table.name for table in reversed(db.metadata.sorted_tables)]
    connection = db.session.connection()
    if db.engine.dialect.name == "postgresql":
        connection.exec_driver_sql("; ".join([
            *(f'DELETE FROM "{name}"' for name in tables),
            "SELECT setval(quote_ident(sequencename)::regclass, start_value, false) FROM pg_sequences"
            " WHERE schemaname = 'public' AND last_value IS NOT NULL",  # NULL: not used since its start
        ]))
    else:
        for name in tables:
            connection.exec_driver_sql(f'DELETE FROM "{name}"')
    db.session.commit()


_SHARED_APPS: dict[str, tuple] = {}


def _shared_app(database_url: str):
    """The app for this database, as new: its configuration restored and a fresh rate-limit store."""
    if database_url not in _SHARED_APPS:
        app = _make_app(database_url)
        _SHARED_APPS[database_url] = (app, copy.deepcopy(dict(app.config)))
    app, config = _SHARED_APPS[database_url]
    app.config.clear()
    app.config.update(copy.deepcopy(config))
    limiter.init_app(app)  # the limiter is one object; another app built since may have rebound it
    return app


@pytest.fixture
def clock():
    return FrozenClock(START)


@pytest.fixture
def app(database_url, clock, tmp_path):
    app = _shared_app(database_url)
    app.extensions["clock"] = clock
    app.config["ATTACHMENTS_FOLDER"] = str(tmp_path / "attachments")  # files sent with messages: the test's own
    with app.app_context():
        _empty_all_tables()
    ctx = app.app_context()
    ctx.push()
    yield app
    db.session.remove()
    ctx.pop()


NO_DATABASE = "sqlite://"  # empty, in memory: a test that reaches it after all fails on a missing table


@pytest.fixture
def app_without_database(clock):
    """For tests that never reach a database (formatting, routes, headers): they run once, not once per
    database, which would test the same thing twice."""
    app = _shared_app(NO_DATABASE)
    app.extensions["clock"] = clock
    with app.app_context():
        yield app
        db.session.remove()


@pytest.fixture
def make_app_without_database(clock):
    """Build an app for a test that never reaches the test databases (it names its own, or uses none)."""

    def build(**overrides):
        other = _make_app(NO_DATABASE, **overrides)
        other.extensions["clock"] = clock
        return other

    return build


@pytest.fixture
def make_app(database_url, clock):
    """Build another app on the same database with other settings (e.g. CSRF on)."""

    def build(**overrides):
        other = _make_app(database_url, **overrides)
        other.extensions["clock"] = clock
        return other

    return build


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def gateway(app):
    """NestPay configured with the published test merchant (its addresses lead nowhere)."""
    from .payment_support import configure_gateway

    return configure_gateway()


@pytest.fixture
def smtp_server(app):
    """A real SMTP server on loopback, set up in Settings → Notifications."""
    from .mail import SmtpServer

    server = SmtpServer().start()
    server.configure()
    yield server
    server.stop()


@pytest.fixture
def sms_provider(app):
    """A real HTTP SMS provider on loopback, switched on in Settings → Notifications."""
    from .mail import SmsProvider

    provider = SmsProvider().start()
    provider.configure()
    yield provider
    provider.stop()
