"""The migrations build exactly the schema the models describe, on SQLite and PostgreSQL, and go back down.

The test databases are made with `db.create_all()` for speed; this proves a
real install (`flask db upgrade`, as `make run` does) ends up the same.
"""
import re
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from flask_migrate import downgrade, upgrade
from sqlalchemy import inspect

from limonbilling import create_app
from limonbilling.extensions import db

from ..conftest import DATABASES


@pytest.fixture(params=DATABASES)
def empty_database(request, tmp_path):
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'migrations.db'}"
    return request.getfixturevalue("postgres_server").create_database("limonbilling_migrations")


def _differences() -> list:
    with db.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        return compare_metadata(context, db.metadata)


# The trigram search indexes exist on PostgreSQL only (models/accounts.py), and SQLAlchemy cannot read SQLite's
# expression indexes back: alembic says it skips them there (test_the_case_insensitive_unique_indexes_… checks them).
@pytest.mark.filterwarnings("ignore:autogenerate skipping metadata-specified expression-based index")
@pytest.mark.filterwarnings("ignore:Skipped unsupported reflection of expression-based index")
@pytest.mark.slow
def test_upgrade_matches_the_models_and_downgrade_undoes_it(empty_database):
    app = create_app({"SQLALCHEMY_DATABASE_URI": empty_database})
    with app.app_context():
        upgrade()
        assert _differences() == []
        downgrade(revision="base")
        assert set(inspect(db.engine).get_table_names()) <= {"alembic_version"}
        upgrade()
        assert _differences() == []
        db.engine.dispose()


def _insert(connection, table_name: str, **values) -> int:
    """A row with the given values; other required columns get a plain value of their type."""
    table = sa.Table(table_name, sa.MetaData(), autoload_with=connection)
    row = dict(values)
    for column in table.columns:
        if column.name in row or column.nullable or column.primary_key:
            continue
        python_type = column.type.python_type
        row[column.name] = {bool: False, int: 0, str: "x", datetime: datetime(2026, 1, 5, 10)}.get(
            python_type, {} if python_type is dict else [])
    return connection.execute(table.insert().values(**row).returning(table.c.id)).scalar_one()


def test_upgrade_to_0009_turns_attempts_and_refunds_into_rows(empty_database):
    """Nothing is lost on the way: card attempts, refunds made (to the card, to the balance, unknown), orders
    paid another way, and the link from each grant to its order."""
    app = create_app({"SQLALCHEMY_DATABASE_URI": empty_database})
    with app.app_context():
        upgrade(revision="0008")
        with db.engine.begin() as conn:
            customer = _insert(conn, "customers", email="a@example.com", account_type="individual")
            grant = _insert(conn, "grants", customer_id=customer, source="order 1000000002", snapshot={},
                            package_type="credit", kind="new")

            def order(number, method, payment_status, status="pending", grant_id=None):
                return _insert(conn, "orders", number=number, customer_id=customer, payment_method=method,
                               payment_status=payment_status, status=status, amount_minor=10000, currency="TRY",
                               grant_id=grant_id, package_snapshot={}, fraud_checks=[], kind="new")

            def attempt(order_id, oid, state, refund_status=None):
                _insert(conn, "payment_attempts", order_id=order_id, gateway="nestpay", oid=oid, state=state,
                        amount_minor=10000, currency="TRY", refund_status=refund_status)

            card_refunded = order("1000000001", "card", "refunded", "cancelled")
            attempt(card_refunded, "1000000001-1", "failed")
            attempt(card_refunded, "1000000001-2", "refunded")
            card_unknown = order("1000000002", "card", "paid", grant_id=grant)
            attempt(card_unknown, "1000000002-1", "confirmed", refund_status="unknown")
            card_to_balance = order("1000000003", "card", "refunded", "cancelled")
            attempt(card_to_balance, "1000000003-1", "confirmed")
            order("1000000004", "bank_transfer", "paid", "active")
            order("1000000005", "bank_transfer", "unpaid")
        upgrade()
        with db.engine.connect() as conn:
            payments = conn.execute(sa.text("SELECT o.number, p.method, p.oid, p.state FROM payments p "
                                            "JOIN orders o ON o.id = p.order_id ORDER BY p.id")).all()
            refunds = conn.execute(sa.text("SELECT o.number, p.oid, r.destination, r.state, r.amount_minor "
                                           "FROM refunds r JOIN orders o ON o.id = r.order_id "
                                           "JOIN payments p ON p.id = r.payment_id ORDER BY o.number")).all()
            grant_order = conn.execute(sa.text("SELECT order_id FROM grants")).scalar_one()
        assert payments == [
            ("1000000001", "card", "1000000001-1", "failed"), ("1000000001", "card", "1000000001-2", "refunded"),
            ("1000000002", "card", "1000000002-1", "confirmed"), ("1000000003", "card", "1000000003-1", "refunded"),
            ("1000000004", "bank_transfer", None, "confirmed"),
        ]
        assert refunds == [
            ("1000000001", "1000000001-2", "card", "done", 10000),
            ("1000000002", "1000000002-1", "card", "unknown", 10000),
            ("1000000003", "1000000003-1", "balance", "done", 10000),
        ]
        assert grant_order == card_unknown
        db.engine.dispose()


def test_upgrade_to_0013_moves_promo_days_to_istanbul_and_back(empty_database):
    """A code stored with UTC day edges (valid 5–31 March) gets Istanbul's edges of the same days; a boundary
    that is no day edge (typed through the API with a time) stays as it is."""
    app = create_app({"SQLALCHEMY_DATABASE_URI": empty_database})
    with app.app_context():
        upgrade(revision="0012")
        with db.engine.begin() as conn:
            _insert(conn, "promo_codes", code="MARCH", kind="percent", value=10, valid_from=datetime(2026, 3, 5),
                    valid_until=datetime(2026, 3, 31, 23, 59, 59, 999999))
            _insert(conn, "promo_codes", code="ODD", kind="percent", value=10, valid_from=datetime(2026, 3, 5, 9, 30))

        codes = sa.table("promo_codes", sa.column("code"), sa.column("valid_from", sa.DateTime),
                         sa.column("valid_until", sa.DateTime))

        def stored():
            with db.engine.connect() as conn:
                return conn.execute(sa.select(codes).order_by(codes.c.code)).all()

        upgrade(revision="0013")
        march, odd = stored()
        assert (march.valid_from, march.valid_until) == (datetime(2026, 3, 4, 21), datetime(2026, 3, 31, 20, 59, 59,
                                                                                            999999))
        assert odd.valid_from == datetime(2026, 3, 5, 9, 30)
        downgrade(revision="0012")
        march, _odd = stored()
        assert (march.valid_from, march.valid_until) == (datetime(2026, 3, 5), datetime(2026, 3, 31, 23, 59, 59,
                                                                                        999999))
        db.engine.dispose()


def test_upgrade_to_0018_keeps_every_moment_in_utc_whatever_the_session_zone(empty_database):
    """A naive timestamp held UTC; after 0018 the same moment reads back aware in UTC, even when the database's
    own zone is Istanbul's (PostgreSQL would otherwise read the old value as Istanbul time, three hours off)."""
    from limonbilling.models import Package

    app = create_app({"SQLALCHEMY_DATABASE_URI": empty_database})
    with app.app_context():
        if db.engine.dialect.name == "postgresql":
            with db.engine.begin() as conn:
                conn.execute(sa.text(f"ALTER DATABASE {db.engine.url.database} SET timezone TO 'Europe/Istanbul'"))
            db.engine.dispose()
        upgrade(revision="0017")
        with db.engine.begin() as conn:
            _insert(conn, "packages", name="Gold", type="credit", price_minor=100, credits=5, currency="TRY",
                    created_at=datetime(2026, 3, 1, 9, 0))
        upgrade(revision="0018")
        assert db.session.scalar(sa.select(Package.created_at)) == datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
        db.session.remove()
        downgrade(revision="0017")
        with db.engine.connect() as conn:
            assert conn.execute(sa.text("SELECT created_at FROM packages")).scalar() in (
                datetime(2026, 3, 1, 9, 0), "2026-03-01 09:00:00.000000")
        db.engine.dispose()


def test_every_foreign_key_has_an_index():
    """A delete of the row a key points at (RESTRICT or SET NULL) finds the rows that point at it by the index."""
    unindexed = []
    for table in db.metadata.sorted_tables:
        leading = {index.columns[0].name for index in table.indexes if index.columns}
        leading |= {constraint.columns[0].name for constraint in table.constraints
                    if isinstance(constraint, sa.UniqueConstraint | sa.PrimaryKeyConstraint) and constraint.columns}
        unindexed += [f"{table.name}.{key.parent.name}" for key in table.foreign_keys if key.parent.name not in leading]
    assert unindexed == []


def _values(condition: str) -> set[str]:
    """The quoted values a CHECK lets through, however the database rewrote it ('a'::character varying …)."""
    return set(re.findall(r"'([^']*)'", condition))


@pytest.mark.filterwarnings("ignore:Skipped unsupported reflection of expression-based index")
def test_the_migrations_make_every_check_of_the_models_with_the_same_values(empty_database):
    """Alembic's comparison does not look at CHECK constraints: a value added to an enum (models/choices.py)
    without a migration, or a migration that forgot a column, is found here."""
    app = create_app({"SQLALCHEMY_DATABASE_URI": empty_database})
    with app.app_context():
        upgrade()
        inspector = inspect(db.engine)
        for table in db.metadata.sorted_tables:
            checks = inspector.get_check_constraints(table.name)
            migrated = {check["name"]: _values(check["sqltext"]) for check in checks}
            modelled = {constraint.name: _values(str(constraint.sqltext)) for constraint in table.constraints
                        if isinstance(constraint, sa.CheckConstraint)}
            assert migrated == modelled, table.name
        db.engine.dispose()


@pytest.mark.filterwarnings("ignore:Skipped unsupported reflection of expression-based index")
def test_the_case_insensitive_unique_indexes_refuse_the_same_name_in_other_letters(empty_database):
    app = create_app({"SQLALCHEMY_DATABASE_URI": empty_database})
    with app.app_context():
        upgrade()
        with db.engine.begin() as connection:
            _insert(connection, "departments", name="Teknik Destek")
            _insert(connection, "order_statuses", name="Waiting", colour="#000000", counts_as="pending")
            _insert(connection, "promo_codes", code="SPRING", kind="percent", value=10)
            _insert(connection, "affiliates", name="Blog", code="BLOG", commission_percent=10)
            _insert(connection, "agents", name="A", email="ayse@example.com")
            _insert(connection, "customers", email="mehmet@example.com", account_type="individual")
        for table, values in [("departments", {"name": "TEKNIK destek"}),
                              ("order_statuses", {"name": "waiting", "colour": "#000000", "counts_as": "pending"}),
                              ("promo_codes", {"code": "spring", "kind": "percent", "value": 10}),
                              ("affiliates", {"name": "Other", "code": "blog", "commission_percent": 10}),
                              ("agents", {"name": "B", "email": "Ayse@Example.com"}),
                              ("customers", {"email": "MEHMET@example.com", "account_type": "individual"})]:
            with pytest.raises(sa.exc.IntegrityError), db.engine.begin() as connection:
                _insert(connection, table, **values)
        db.engine.dispose()
