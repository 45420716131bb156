"""The one source of "now" for every rule, so tests can move time.

Like Kill Bill's and Stripe's test clocks: the app holds a clock object
(`app.extensions["clock"]`); production uses the system clock, tests install
a `FrozenClock` and advance it to make subscriptions expire or windows open.
Times are naive UTC everywhere in the database.
"""
from datetime import UTC, datetime, timedelta

from flask import current_app, has_app_context


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC).replace(tzinfo=None)


class FrozenClock:
    """A clock that stands still until a test moves it."""

    def __init__(self, start: datetime):
        self._now = start

    def now(self) -> datetime:
        return self._now

    def set(self, moment: datetime) -> None:
        self._now = moment

    def advance(self, **delta) -> datetime:
        self._now += timedelta(**delta)
        return self._now


_system_clock = SystemClock()


def now() -> datetime:
    if has_app_context():
        return current_app.extensions.get("clock", _system_clock).now()
    return _system_clock.now()
