"""config.py as a fresh process sees it (it reads the environment at import): secret keys and the database."""
import os
import subprocess
import sys
from pathlib import Path

import pytest

import config
from limonbilling import create_app

ROOT = Path(__file__).resolve().parents[2]
SHOW = "from limonbilling import create_app; a = create_app(); print(a.config['SECRET_KEY']); " \
       "print(a.config['SQLALCHEMY_DATABASE_URI'])"


def _start(tmp_path, **env):
    environment = {k: v for k, v in os.environ.items() if k not in ("SECRET_KEY", "DATABASE_URL")}
    environment.update(LIMONBILLING_INSTANCE=str(tmp_path / "instance"), **env)
    return subprocess.run([sys.executable, "-c", SHOW], cwd=ROOT, env=environment, capture_output=True, text=True,
                          timeout=60)


@pytest.mark.slow
def test_development_makes_a_secret_key_once_and_keeps_it(tmp_path):
    first = _start(tmp_path, LIMONBILLING_CONFIG="development")
    assert first.returncode == 0, first.stderr
    key, database = first.stdout.split()
    assert len(key) >= 64 and (tmp_path / "instance" / "secret_key").read_text().strip() == key
    assert database == f"sqlite:///{tmp_path / 'instance' / 'limonbilling.db'}"
    assert oct((tmp_path / "instance" / "secret_key").stat().st_mode)[-3:] == "600"
    assert _start(tmp_path, LIMONBILLING_CONFIG="development").stdout.split()[0] == key


@pytest.mark.slow
def test_production_refuses_a_missing_or_short_secret_key(tmp_path):
    for key in (None, "short-key"):
        env = {"LIMONBILLING_CONFIG": "production", **({"SECRET_KEY": key} if key else {})}
        refused = _start(tmp_path, **env)
        assert refused.returncode != 0 and "SECRET_KEY must be set" in refused.stderr
    assert not (tmp_path / "instance" / "secret_key").exists()
    good = "k" * 40
    started = _start(tmp_path, LIMONBILLING_CONFIG="production", SECRET_KEY=good,
                     DATABASE_URL="postgresql+psycopg://billing@db.example/limon",
                     PUBLIC_BASE_URL="https://billing.example.com")
    assert started.returncode == 0, started.stderr
    assert started.stdout.split() == [good, "postgresql+psycopg://billing@db.example/limon"]


@pytest.mark.slow
def test_development_uses_a_given_secret_key_and_database_url(tmp_path):
    started = _start(tmp_path, LIMONBILLING_CONFIG="development", SECRET_KEY="from-the-environment",
                     DATABASE_URL=f"sqlite:///{tmp_path / 'elsewhere' / 'billing.db'}")
    assert started.returncode == 0, started.stderr
    assert started.stdout.split() == ["from-the-environment", f"sqlite:///{tmp_path / 'elsewhere' / 'billing.db'}"]
    assert not (tmp_path / "instance" / "secret_key").exists()
    assert (tmp_path / "elsewhere").is_dir()  # create_app makes the SQLite file's folder


# In-process checks of the prepare() hooks and of create_app's choice of class. config.py reads the
# environment once, at import, so these patch the module's INSTANCE_DIR instead of the environment.

@pytest.fixture
def instance_dir(tmp_path, monkeypatch):
    folder = tmp_path / "instance"
    monkeypatch.setattr(config, "INSTANCE_DIR", folder)
    return folder


def test_development_prepare_makes_the_key_once(instance_dir):
    first, second = {"SECRET_KEY": None}, {"SECRET_KEY": ""}
    config.DevelopmentConfig.prepare(first)
    config.DevelopmentConfig.prepare(second)
    assert len(first["SECRET_KEY"]) == 64 and first["SECRET_KEY"] == second["SECRET_KEY"]
    assert (instance_dir / "secret_key").read_text() == first["SECRET_KEY"]
    given = {"SECRET_KEY": "chosen-by-the-admin"}
    config.DevelopmentConfig.prepare(given)
    assert given["SECRET_KEY"] == "chosen-by-the-admin"


def test_production_prepare_needs_32_characters():
    for key in (None, "", "k" * 31):
        with pytest.raises(RuntimeError, match="SECRET_KEY must be set"):
            config.ProductionConfig.prepare({"SECRET_KEY": key, "PUBLIC_BASE_URL": "https://billing.example.com"})
    config.ProductionConfig.prepare({"SECRET_KEY": "k" * 32, "PUBLIC_BASE_URL": "https://billing.example.com"})


def test_create_app_takes_the_class_from_limonbilling_config(instance_dir, monkeypatch, tmp_path):
    database = f"sqlite:///{tmp_path / 'db' / 'app.db'}"
    monkeypatch.setenv("LIMONBILLING_CONFIG", "production")
    with pytest.raises(RuntimeError, match="SECRET_KEY"):
        create_app({"SECRET_KEY": "too-short", "SQLALCHEMY_DATABASE_URI": database})
    app = create_app({"SECRET_KEY": "p" * 32, "SQLALCHEMY_DATABASE_URI": database,
                      "PUBLIC_BASE_URL": "https://billing.example.com"})
    assert app.config["SESSION_COOKIE_SECURE"] and not app.debug and app.config["WTF_CSRF_ENABLED"]
    assert app.config["SQLALCHEMY_DATABASE_URI"] == database and (tmp_path / "db").is_dir()

    monkeypatch.setenv("LIMONBILLING_CONFIG", "development")
    first = create_app({"SECRET_KEY": None, "SQLALCHEMY_DATABASE_URI": database})
    second = create_app({"SECRET_KEY": None, "SQLALCHEMY_DATABASE_URI": database})
    assert first.debug and first.config["SECRET_KEY"] == second.config["SECRET_KEY"]
    assert (instance_dir / "secret_key").read_text() == first.config["SECRET_KEY"]


def test_production_session_cookies_are_secure_httponly_and_lax(instance_dir, monkeypatch, tmp_path):
    from limonbilling.extensions import db

    from ..factories import PASSWORD, make_customer

    monkeypatch.setenv("LIMONBILLING_CONFIG", "production")
    app = create_app({"SECRET_KEY": "p" * 32, "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'prod.db'}",
                      "WTF_CSRF_ENABLED": False, "OUTBOX_SEND_AFTER_COMMIT": False,
                      "PUBLIC_BASE_URL": "https://billing.example.com"})
    with app.app_context():
        db.create_all()
        email = make_customer().email
        db.session.close()  # as a request's own session would be: the throttle counts before it starts
        response = app.test_client().post("/login", data={"email": email, "password": PASSWORD},
                                          base_url="https://billing.example.com")
        cookie = response.headers["Set-Cookie"]
        db.session.remove()
        db.engine.dispose()
    assert response.status_code == 302
    assert "Secure" in cookie and "HttpOnly" in cookie and "SameSite=Lax" in cookie
