"""The migrations build exactly the schema the models describe, on SQLite and PostgreSQL, and go back down.

The test databases are made with `db.create_all()` for speed; this proves a
real install (`flask db upgrade`, as `make run` does) ends up the same.
"""
import pytest
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


# The trigram search indexes exist on PostgreSQL only (models/accounts.py); on SQLite alembic says it skips them.
@pytest.mark.filterwarnings("ignore:autogenerate skipping metadata-specified expression-based index")
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
