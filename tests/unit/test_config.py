"""config.py as a fresh process sees it (it reads the environment at import): secret keys and the database."""
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SHOW = "from limonbilling import create_app; a = create_app(); print(a.config['SECRET_KEY']); " \
       "print(a.config['SQLALCHEMY_DATABASE_URI'])"


def _start(tmp_path, **env):
    environment = {k: v for k, v in os.environ.items() if k not in ("SECRET_KEY", "DATABASE_URL")}
    environment.update(LIMONBILLING_INSTANCE=str(tmp_path / "instance"), **env)
    return subprocess.run([sys.executable, "-c", SHOW], cwd=ROOT, env=environment, capture_output=True, text=True,
                          timeout=60)


def test_development_makes_a_secret_key_once_and_keeps_it(tmp_path):
    first = _start(tmp_path, LIMONBILLING_CONFIG="development")
    assert first.returncode == 0, first.stderr
    key, database = first.stdout.split()
    assert len(key) >= 64 and (tmp_path / "instance" / "secret_key").read_text().strip() == key
    assert database == f"sqlite:///{tmp_path / 'instance' / 'limonbilling.db'}"
    assert oct((tmp_path / "instance" / "secret_key").stat().st_mode)[-3:] == "600"
    assert _start(tmp_path, LIMONBILLING_CONFIG="development").stdout.split()[0] == key


def test_production_refuses_a_missing_or_short_secret_key(tmp_path):
    for key in (None, "short-key"):
        env = {"LIMONBILLING_CONFIG": "production", **({"SECRET_KEY": key} if key else {})}
        refused = _start(tmp_path, **env)
        assert refused.returncode != 0 and "SECRET_KEY must be set" in refused.stderr
    assert not (tmp_path / "instance" / "secret_key").exists()
    good = "k" * 40
    started = _start(tmp_path, LIMONBILLING_CONFIG="production", SECRET_KEY=good,
                     DATABASE_URL="postgresql+psycopg://billing@db.example/limon")
    assert started.returncode == 0, started.stderr
    assert started.stdout.split() == [good, "postgresql+psycopg://billing@db.example/limon"]
