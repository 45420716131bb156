"""Promo code days in local time

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-02 05:00:00

Promo codes kept the days an agent typed as UTC days (valid from 00:00 UTC, until
23:59:59.999999 UTC), so in Istanbul a code started and ended three hours late.
Boundaries that are still exactly such UTC day edges move to the same days'
edges in the display zone (BABEL_DEFAULT_TIMEZONE), as new codes are stored.
"""
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from alembic import op
from flask import current_app

# revision identifiers, used by Alembic.
revision = '0013'
down_revision = '0012'
branch_labels = None
depends_on = None

LAST_MOMENT = time(23, 59, 59, 999999)


def _local_start(day, zone) -> datetime:
    return datetime.combine(day, time.min, tzinfo=zone).astimezone(UTC).replace(tzinfo=None)


def _utc_start(day, _zone) -> datetime:
    return datetime.combine(day, time.min)


def _move(to_start) -> None:
    """Rewrite each boundary that is an edge of a day in the other reckoning as that day's edge by `to_start`."""
    zone = ZoneInfo(current_app.config["BABEL_DEFAULT_TIMEZONE"])
    from_start = _utc_start if to_start is _local_start else _local_start
    connection = op.get_bind()
    codes = sa.table('promo_codes', sa.column('id'), sa.column('valid_from', sa.DateTime),
                     sa.column('valid_until', sa.DateTime))
    for row in connection.execute(sa.select(codes.c.id, codes.c.valid_from, codes.c.valid_until)).all():
        changes = {}
        if row.valid_from is not None:
            day = (row.valid_from + timedelta(hours=12)).date()  # the day whichever reckoning wrote it
            if row.valid_from == from_start(day, zone):
                changes['valid_from'] = to_start(day, zone)
        if row.valid_until is not None:
            day = (row.valid_until - timedelta(hours=12)).date()
            if row.valid_until == from_start(day + timedelta(days=1), zone) - timedelta(microseconds=1):
                changes['valid_until'] = to_start(day + timedelta(days=1), zone) - timedelta(microseconds=1)
        if changes:
            connection.execute(codes.update().where(codes.c.id == row.id).values(**changes))


def upgrade():
    _move(_local_start)


def downgrade():
    _move(_utc_start)
