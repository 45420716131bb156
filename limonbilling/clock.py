"""The one source of "now" for every rule, so tests can move time.

Like Kill Bill's and Stripe's test clocks: the app holds a clock object
(`app.extensions["clock"]`); production uses the system clock, tests install
a `FrozenClock` and advance it to make subscriptions expire or windows open.
Moments are time-zone-aware, in UTC (models/columns.py stores them so). People count days in the
display zone (BABEL_DEFAULT_TIMEZONE, Istanbul): a day an agent types, the
bank's business day and the invoice year are all local days, converted here.
"""
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from flask import current_app, has_app_context


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


class FrozenClock:
    """A clock that stands still until a test moves it."""

    def __init__(self, start: datetime):
        self.set(start)

    def now(self) -> datetime:
        return self._now

    def set(self, moment: datetime) -> None:
        if moment.tzinfo is None:
            raise ValueError("the clock tells aware moments: give it a time zone")
        self._now = moment.astimezone(UTC)

    def advance(self, **delta) -> datetime:
        self._now += timedelta(**delta)
        return self._now


_system_clock = SystemClock()


def now() -> datetime:
    if has_app_context():
        return current_app.extensions.get("clock", _system_clock).now()
    return _system_clock.now()


def _local_zone() -> ZoneInfo:
    return ZoneInfo(current_app.config["BABEL_DEFAULT_TIMEZONE"])


def local_day(moment: datetime) -> date:
    """The local day a moment falls on."""
    return moment.astimezone(_local_zone()).date()


def local_today() -> date:
    return local_day(now())


def day_start(day: date) -> datetime:
    """The moment (in UTC) a local day begins; the day after's start is where it ends."""
    return datetime.combine(day, time.min, tzinfo=_local_zone()).astimezone(UTC)
