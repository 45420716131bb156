"""The throttle's shared storage (`database://`) and the sign-in lock-out per (account, address) pair.

Issue 15: counts lived in each gunicorn worker's memory (defect 3), and anyone could lock any account
out by failing its sign-in (defect 10). Time is the test clock; the storage reads it too.
"""
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import delete, func, select
from werkzeug.exceptions import TooManyRequests

from config import ProductionConfig
from limonbilling import throttle
from limonbilling.extensions import db, limiter
from limonbilling.models import RateLimitCounter
from limonbilling.services.accounts import authenticate_customer

from ..factories import PASSWORD, make_customer

IP, OTHER_IP = "198.51.100.1", "203.0.113.9"


@pytest.fixture
def shared(app, make_app):
    """An app whose throttle counts in its database (the production default), its context pushed."""
    other = make_app(RATELIMIT_STORAGE_URI="database://")
    with other.app_context():
        assert isinstance(limiter.storage, throttle.DatabaseStorage)
        yield other
        db.session.remove()


@pytest.fixture
def email(shared):
    """A customer's address; the session is then closed, as a request's is before its sign-in is counted."""
    address = make_customer().email
    db.session.close()
    return address


def guess(email: str, password: str = "wrong-pass-1", ip: str = IP):
    """One sign-in attempt as the sign-in page makes it: "checked" (wrong), "signed in", or the seconds to wait."""
    try:
        user = throttle.check_password(authenticate_customer, email, password, ip)
    except TooManyRequests as refusal:
        return refusal.retry_after
    finally:
        db.session.close()  # the request ends (on SQLite a right password's clearing waits for that)
    return "signed in" if user else "checked"


def rows() -> dict:
    try:
        return dict(db.session.execute(select(RateLimitCounter.key, RateLimitCounter.count)).all())
    finally:
        db.session.close()


def test_the_storage_counts_in_the_database_and_a_window_past_its_end_starts_from_zero(shared, clock):
    storage = limiter.storage
    assert [storage.incr("k", 60) for _ in range(3)] == [1, 2, 3]
    assert storage.get("k") == 3 and rows() == {"k": 3}
    assert storage.get_expiry("k") == throttle.DatabaseStorage.now() + 60
    clock.advance(seconds=59)
    assert storage.incr("k", 60) == 4
    clock.advance(seconds=1)  # the window's end
    assert storage.get("k") == 0
    assert storage.incr("k", 60) == 1 and storage.get_expiry("k") == throttle.DatabaseStorage.now() + 60
    storage.clear("k")
    assert storage.get("k") == 0 and rows() == {}
    long_key = "x" * 300  # longer than the column: kept under its digest
    assert storage.incr(long_key, 60, amount=5) == 5 and storage.get(long_key) == 5


def test_expired_rows_are_deleted_now_and_then(shared, clock):
    storage = limiter.storage
    storage.incr("old", 10)
    storage.incr("lasting", 3600)
    clock.advance(seconds=throttle.PURGE_SECONDS)
    storage.incr("new", 10)
    assert rows() == {"lasting": 1, "new": 1}


def test_the_fifth_failure_is_checked_the_sixth_waits_even_with_the_right_password(shared, email):
    assert [guess(email) for _ in range(5)] == ["checked"] * 5
    assert guess(email, PASSWORD) == 30
    assert guess(email) == 30
    assert rows()[throttle.attempts_key(email, IP)] == 7  # every attempt counts, the refused ones too


def test_the_window_doubles_after_each_checked_failure_up_to_an_hour(shared, email, clock):
    assert [guess(email) for _ in range(5)] == ["checked"] * 5
    waits = []
    for _ in range(9):
        wait = guess(email)
        waits.append(wait)
        clock.advance(seconds=wait - 1)
        assert guess(email) == 1  # a second early: still refused, and the window does not move
        clock.advance(seconds=1)
        assert guess(email) == "checked"
    assert waits == [30, 60, 120, 240, 480, 960, 1920, 3600, 3600]


def test_a_right_password_clears_the_pair(shared, email):
    assert [guess(email) for _ in range(4)] == ["checked"] * 4
    assert guess(email, PASSWORD) == "signed in"
    assert rows() == {}
    assert [guess(email) for _ in range(5)] == ["checked"] * 5
    assert guess(email) == 30


def test_a_stranger_elsewhere_cannot_lock_the_owner_out(shared, email):
    assert [guess(email, ip=OTHER_IP) for _ in range(5)] == ["checked"] * 5
    assert guess(email, ip=OTHER_IP) == 30
    assert guess(email, PASSWORD) == "signed in"
    assert guess(email, ip=OTHER_IP) == 30  # the owner's success is not the stranger's


def test_the_pair_is_forgotten_a_day_after_its_first_attempt(shared, email, clock):
    assert [guess(email) for _ in range(5)] == ["checked"] * 5
    clock.advance(seconds=shared.config["SIGN_IN_LOCKOUT_RESET_SECONDS"] - 1)
    assert guess(email) == "checked"  # its 30-second wait has long passed
    assert guess(email) == 60  # but the count goes on
    clock.advance(seconds=60)
    assert [guess(email) for _ in range(5)] == ["checked"] * 5
    assert guess(email) == 30


def test_an_unknown_account_is_refused_alike(shared, email):
    stranger = "nobody@example.com"
    assert [guess(stranger) for _ in range(5)] == [guess(email) for _ in range(5)] == ["checked"] * 5
    assert guess(stranger) == guess(email) == 30


def test_the_lock_out_settings_come_from_the_config(shared, email):
    shared.config.update(SIGN_IN_FREE_ATTEMPTS=2, SIGN_IN_LOCKOUT_SECONDS=10, SIGN_IN_LOCKOUT_MAX_SECONDS=15)
    assert [guess(email) for _ in range(2)] == ["checked"] * 2
    assert guess(email) == 10
    assert throttle.lockout_seconds(0) == 10 and throttle.lockout_seconds(1) == throttle.lockout_seconds(10_000) == 15


@pytest.mark.parametrize("threads", [10, 20])
def test_parallel_increments_each_count_once(shared, threads):
    barrier = threading.Barrier(threads)

    def increment(_n):
        with shared.app_context():
            barrier.wait()
            return limiter.storage.incr("parallel", 60)

    with ThreadPoolExecutor(threads) as pool:
        assert sorted(pool.map(increment, range(threads))) == list(range(1, threads + 1))
    assert limiter.storage.get("parallel") == threads


def test_parallel_guesses_get_exactly_the_free_attempts(shared, email):
    threads = 20
    barrier = threading.Barrier(threads)

    def attempt(_n):
        with shared.app_context():
            barrier.wait()
            return guess(email)

    with ThreadPoolExecutor(threads) as pool:
        answers = list(pool.map(attempt, range(threads)))
    assert sorted(answers, key=str) == [30] * (threads - 5) + ["checked"] * 5
    assert rows()[throttle.attempts_key(email, IP)] == threads


def test_a_counter_is_not_written_into_the_requests_transaction(shared, email):
    """On SQLite a request's transaction holds the one writer's turn: the lock-out ends a transaction that
    only read (it could only wait for itself) and refuses one with changes; a clearing waits until the
    request's transaction ends."""
    db.session.scalar(select(func.count(RateLimitCounter.key)))  # the request's session is in a transaction
    if db.engine.dialect.name == "sqlite":
        assert throttle.check_password(authenticate_customer, email, "wrong-pass-1", IP) is None
        db.session.add(RateLimitCounter(key="pending", count=1, expires_at=0))
        with pytest.raises(RuntimeError, match="before the request changes anything"):
            throttle.check_password(authenticate_customer, email, "wrong-pass-1", IP)
        db.session.rollback()
        db.session.execute(delete(RateLimitCounter))
        db.session.commit()
        db.session.scalar(select(func.count(RateLimitCounter.key)))
        limiter.storage.incr("after-the-view", 60)
        limiter.storage.clear("also-after")
        assert db.session.info[throttle.POSTPONED]
        db.session.rollback()  # the request ends without committing: the counts are kept all the same
    else:
        limiter.storage.incr("after-the-view", 60)
        db.session.rollback()
    assert rows() == {"after-the-view": 1}


def test_a_sign_in_page_works_for_a_visitor_who_is_signed_in_already(shared):
    """The area's guard loads the signed-in user before the sign-in is counted (on SQLite that read used
    to hold the writer's turn the count needed: a 500)."""
    email, other = make_customer().email, make_customer().email
    db.session.close()
    client = shared.test_client()
    assert client.post("/login", data={"email": email, "password": PASSWORD}).status_code == 302
    db.session.close()
    assert client.post("/admin/login", data={"email": other, "password": "wrong-pass-1"}).status_code == 200
    db.session.close()
    assert client.post("/login", data={"email": email, "password": PASSWORD}).status_code == 302


def test_production_refuses_counts_kept_in_one_process():
    safe = {"SECRET_KEY": "k" * 40, "PUBLIC_BASE_URL": "https://billing.example.com"}
    with pytest.raises(RuntimeError, match="RATELIMIT_STORAGE_URI"):
        ProductionConfig.prepare({**safe, "RATELIMIT_STORAGE_URI": "memory://"})
    for shared in ("database://", "redis://cache.internal:6379"):
        ProductionConfig.prepare({**safe, "RATELIMIT_STORAGE_URI": shared})
