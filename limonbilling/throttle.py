"""Throttle counts every gunicorn worker and app server shares, and the sign-in lock-out (issue 15).

Flask-Limiter keeps its counts in the `limits` storage named by RATELIMIT_STORAGE_URI: `database://`
(registered here, the default) keeps them in the app's own database (`RateLimitCounter`), so one machine
needs no extra server; several app servers may share `redis://…` instead. Memory is per process: with
four workers, four times the guesses.

The lock-out counts per (submitted account, client IP) pair, so a stranger failing an account's sign-in
from elsewhere cannot lock its owner out: SIGN_IN_FREE_ATTEMPTS attempts, then one attempt per window,
the window doubling with each attempt checked from SIGN_IN_LOCKOUT_SECONDS up to
SIGN_IN_LOCKOUT_MAX_SECONDS. An attempt is counted before its password is checked, with atomic
increments, so parallel requests cannot slip extra guesses through; a right password clears the pair.
Guessing across accounts is limited per IP by Flask-Limiter (`auth.throttled`).
"""
import hashlib
import math
import time

from flask import current_app
from limits.storage import Storage
from sqlalchemy import case, delete, event, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session
from werkzeug.exceptions import TooManyRequests

from . import clock
from .extensions import db, limiter
from .models import RateLimitCounter

PURGE_SECONDS = 60  # how often a process deletes expired counters
PURGE_ROWS = 1000
POSTPONED = "limonbilling.throttle.postponed"  # Session.info key: counter changes waiting for its transaction


_COUNTERS = RateLimitCounter.__table__


def _row_key(key: str) -> str:
    """The key as stored: one longer than the column (a long e-mail address) by its digest."""
    return key if len(key) <= 255 else "sha256:" + hashlib.sha256(key.encode()).hexdigest()


def _turn_held() -> bool:
    """Whether this request's session is in a transaction on SQLite, where every transaction holds the
    database's one writer's turn until it ends (sqlite.py): another connection would wait for it for ever."""
    return db.engine.dialect.name == "sqlite" and db.session().in_transaction()


class DatabaseStorage(Storage):
    """`database://`: counters in the app's database, each changed by one atomic statement in a transaction
    of its own, never the request's (which may roll back). A counter past its expiry counts from zero."""

    STORAGE_SCHEME = ["database"]

    def __init__(self, uri: str | None = None, wrap_exceptions: bool = False, **options):
        super().__init__(uri, wrap_exceptions=wrap_exceptions, **options)
        self._next_purge = 0.0

    @property
    def base_exceptions(self):
        return SQLAlchemyError

    @staticmethod
    def now() -> float:
        return clock.now().timestamp()

    def incr(self, key: str, expiry: int, amount: int = 1) -> int:
        """INSERT … ON CONFLICT DO UPDATE … RETURNING: one statement, so parallel increments each count once."""
        table, now = _COUNTERS, self.now()
        expired = table.c.expires_at <= now
        insert = (postgresql if db.engine.dialect.name == "postgresql" else sqlite).insert(table)
        statement = insert.values(key=_row_key(key), count=amount, expires_at=now + expiry).on_conflict_do_update(
            index_elements=[table.c.key],
            set_={"count": case((expired, amount), else_=table.c.count + amount),
                  "expires_at": case((expired, now + expiry), else_=table.c.expires_at)},
        )
        if _turn_held():  # Flask-Limiter's deduction after the view, which does not use the count
            _postpone(statement)
            return self.get(key) + amount
        with db.engine.begin() as connection:
            count = connection.execute(statement.returning(table.c.count)).scalar_one()
        if now >= self._next_purge:
            self._purge(now)
        return count

    def get(self, key: str) -> int:
        table = _COUNTERS
        return self._read(select(table.c.count).where(table.c.key == _row_key(key),
                                                      table.c.expires_at > self.now())) or 0

    def get_expiry(self, key: str) -> float:
        table, now = _COUNTERS, self.now()
        return self._read(select(table.c.expires_at).where(table.c.key == _row_key(key),
                                                           table.c.expires_at > now)) or now

    def check(self) -> bool:
        try:
            with db.engine.connect() as connection:
                connection.execute(select(1))
        except SQLAlchemyError:
            return False
        return True

    def reset(self) -> int | None:
        with db.engine.begin() as connection:
            return connection.execute(delete(_COUNTERS)).rowcount

    def clear(self, key: str) -> None:
        table = _COUNTERS
        statement = delete(table).where(table.c.key == _row_key(key))
        if _turn_held():
            _postpone(statement)
            return
        with db.engine.begin() as connection:
            connection.execute(statement)

    @staticmethod
    def _read(statement):
        if _turn_held():  # the request's transaction already holds SQLite's lock: read through it
            return db.session.connection().execute(statement).scalar()
        with db.engine.connect() as connection:
            return connection.execute(statement).scalar()

    def _purge(self, now: float) -> None:
        """Delete some expired counters, skipping rows another transaction holds (no waits, no deadlocks)."""
        self._next_purge = now + PURGE_SECONDS
        table = _COUNTERS
        expired = (select(table.c.key).where(table.c.expires_at <= now).limit(PURGE_ROWS)
                   .with_for_update(skip_locked=True))
        with db.engine.begin() as connection:
            connection.execute(delete(table).where(table.c.key.in_(expired)))


def _postpone(statement) -> None:
    db.session().info.setdefault(POSTPONED, []).append(statement)


@event.listens_for(Session, "after_transaction_end")
def _run_postponed(session: Session, transaction) -> None:
    """Counter changes made while the request's transaction held SQLite's lock, once it has let go of it."""
    if transaction.parent is None and (statements := session.info.pop(POSTPONED, None)):
        with db.engine.begin() as connection:
            for statement in statements:
                connection.execute(statement)


# --- the sign-in lock-out -----------------------------------------------------------------------

def _pair_key(kind: str, account: str, ip: str | None) -> str:
    return f"sign-in/{kind}/{ip}/{account.strip().lower()}"


def attempts_key(account: str, ip: str | None) -> str:
    """The counter of every sign-in attempt of the pair, refused ones too."""
    return _pair_key("attempts", account, ip)


def lockout_seconds(windows: int) -> int:
    config = current_app.config
    return min(config["SIGN_IN_LOCKOUT_SECONDS"] * 2 ** min(windows, 32), config["SIGN_IN_LOCKOUT_MAX_SECONDS"])


def _seconds_until(moment: float) -> int:
    now = DatabaseStorage.now() if isinstance(limiter.storage, DatabaseStorage) else time.time()
    return max(1, math.ceil(moment - now))


def reserve_sign_in(account: str, ip: str | None) -> None:
    """Count a sign-in attempt of the pair before its password is checked; TooManyRequests (429) when it
    must wait. The same for an account that does not exist."""
    storage, config = limiter.storage, current_app.config
    if isinstance(storage, DatabaseStorage) and _turn_held():
        # Only reads so far (e.g. loading whoever is signed in already): end that transaction, which holds
        # SQLite's one writer's turn the count needs. Changes would be lost, so they are refused instead.
        session = db.session()
        if session.new or session.dirty or session.deleted:
            raise RuntimeError("a sign-in attempt must be counted before the request changes anything")
        session.rollback()
    forget = config["SIGN_IN_LOCKOUT_RESET_SECONDS"]
    if storage.incr(attempts_key(account, ip), forget) < config["SIGN_IN_FREE_ATTEMPTS"]:
        return
    window = _pair_key("window", account, ip)  # its first attempt is checked, the others refused
    windows = _pair_key("windows", account, ip)  # how many the pair opened: the doubling's exponent
    if storage.incr(window, lockout_seconds(storage.get(windows))) > 1:
        raise TooManyRequests(retry_after=_seconds_until(storage.get_expiry(window)))
    storage.incr(windows, forget)


def clear_sign_in(account: str, ip: str | None) -> None:
    for kind in ("attempts", "window", "windows"):
        limiter.storage.clear(_pair_key(kind, account, ip))


def check_password(authenticate, email: str, password: str, ip: str | None):
    """`authenticate(email, password)` for a sign-in from `ip`, unless that pair must wait (429)."""
    reserve_sign_in(email, ip)
    user = authenticate(email, password)
    if user is not None:
        clear_sign_in(email, ip)
    return user


def retry_after(error: TooManyRequests) -> int:
    """Seconds until a refused request may be tried again: the lock-out's window, or Flask-Limiter's."""
    if error.retry_after:
        return int(error.retry_after)
    current = limiter.current_limit
    return _seconds_until(current.reset_at) if current else 60
