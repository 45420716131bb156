"""Extensions are created here once and bound to the app in create_app()."""
from flask_babel import Babel
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_login import LoginManager
from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy
from flask_wtf import CSRFProtect
from sqlalchemy import MetaData
from sqlalchemy.orm import DeclarativeBase

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


db = SQLAlchemy(model_class=Base)
migrate = Migrate()
login_manager = LoginManager()
csrf = CSRFProtect()
babel = Babel()
# Storage from RATELIMIT_STORAGE_URI: database:// (the app's database, see throttle.py) or redis://….
limiter = Limiter(key_func=get_remote_address)


def insert_ignoring_conflict(model, returning=None, **values):
    """INSERT … ON CONFLICT DO NOTHING in the session's dialect, e.g. to make sure a counter row exists.

    With `returning` (a column), the new row's value of it, or None when a row with
    the same unique key exists (or a concurrent transaction inserted one and committed).
    The statement is built once per table, dialect and returned column; the values are its parameters.
    """
    dialect = db.session.get_bind().dialect.name
    key = (model.__table__, dialect, returning)
    statement = _IGNORING_CONFLICT.get(key)
    if statement is None:
        from sqlalchemy.dialects.postgresql import insert as postgresql_insert
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert

        insert = postgresql_insert if dialect == "postgresql" else sqlite_insert
        statement = insert(model.__table__).on_conflict_do_nothing()
        if returning is not None:
            statement = statement.returning(returning)
        _IGNORING_CONFLICT[key] = statement
    result = db.session.execute(statement, values)
    return None if returning is None else result.scalar()


_IGNORING_CONFLICT: dict = {}  # insert_ignoring_conflict's statements
