"""SQLite settings that make it safe for a multi-threaded web app.

Every transaction starts with BEGIN IMMEDIATE, so it takes SQLite's write
lock up front and waits (busy timeout) for its turn, instead of reading a
snapshot and failing later with "database is locked" when it wants to write.
This is SQLAlchemy's documented recipe for pysqlite's transaction handling.
"""
from flask import Flask
from sqlalchemy import event

from .extensions import db


def _unicode_lower(value):
    return fold_case(value) if isinstance(value, str) else value


def fold_case(text: str) -> str:
    """Lower case as PostgreSQL does it: Python turns İ into i + a combining dot (U+0307), PostgreSQL into i."""
    return text.lower().replace("\u0307", "")


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
        cursor.execute("PRAGMA busy_timeout=30000")
        if file_based:
            cursor.execute("PRAGMA journal_mode=WAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def on_begin(connection):
        connection.exec_driver_sql("BEGIN IMMEDIATE")
