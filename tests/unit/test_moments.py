"""Moments are aware datetimes in UTC, stored so on both databases (models/columns.py UtcDateTime)."""
from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy.exc import StatementError

from limonbilling.extensions import db
from limonbilling.models import Package

from ..factories import make_package


def test_a_moment_in_another_zone_is_stored_as_the_same_instant_and_read_back_in_utc(app):
    package = make_package()
    package.created_at = datetime(2026, 3, 1, 12, 0, tzinfo=timezone(timedelta(hours=3)))  # noon in Istanbul
    db.session.commit()
    db.session.expire_all()
    assert db.session.get(Package, package.id).created_at == datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
    assert db.session.get(Package, package.id).created_at.tzinfo is UTC


def test_a_naive_moment_is_refused_rather_than_guessed(app):
    package = make_package()
    package.created_at = datetime(2026, 3, 1, 12, 0)
    with pytest.raises(StatementError, match="naive datetime"):
        db.session.commit()
    db.session.rollback()


def test_a_query_compares_aware_moments_at_the_microsecond(app, clock):
    package = make_package()
    db.session.commit()
    stored = package.created_at
    assert db.session.scalar(db.select(Package.id).where(Package.created_at <= stored)) == package.id
    assert db.session.scalar(db.select(Package.id).where(Package.created_at < stored)) is None
    assert db.session.scalar(db.select(Package.id).where(Package.created_at > stored - timedelta(microseconds=1))) == (
        package.id)
