"""The sign-in throttle under real gunicorn workers (issue 15, defects 3 and 10).

`gunicorn -w 4` serves the production configuration on a database made by `flask db upgrade`; 40 wrong
guesses at one account from one address (one after another, and all at once) are counted as 40 by
every worker together: exactly the free attempts are checked, the rest refused. The same account still
signs in from another address.
"""
import os
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests
from sqlalchemy import create_engine, text

from limonbilling import create_app
from limonbilling.extensions import db

from ..conftest import DATABASES
from ..factories import PASSWORD, make_customer
from .servers import form_with_field

ROOT = Path(__file__).resolve().parents[2]
GUESSES = 40
FREE = 5  # SIGN_IN_FREE_ATTEMPTS
WRONG = "The e-mail address or the password is wrong."


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module", params=DATABASES)
def database(request, tmp_path_factory):
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path_factory.mktemp('gunicorn') / 'billing.db'}"
    return request.getfixturevalue("postgres_server").create_database("limonbilling_gunicorn")


@pytest.fixture(scope="module")
def gunicorn(database, tmp_path_factory):
    """Four gunicorn workers with the production settings (throttle storage left at its default), behind
    one trusted proxy, and two customers' e-mail addresses. Started once for both tests (a migration and five
    Python processes: the slowest setup of the suite); each test guesses at its own account from its own addresses."""
    tmp_path = tmp_path_factory.mktemp("gunicorn")
    port = _free_port()
    env = {key: value for key, value in os.environ.items() if key != "RATELIMIT_STORAGE_URI"}
    env.update(LIMONBILLING_CONFIG="production", SECRET_KEY="gunicorn-throttle-test-" * 2, DATABASE_URL=database,
               PUBLIC_BASE_URL="https://billing.example.com", SESSION_COOKIE_SECURE="0", TRUSTED_PROXIES="1",
               LIMONBILLING_INSTANCE=str(tmp_path / "instance"), GUNICORN_BIND=f"127.0.0.1:{port}")
    upgrade = subprocess.run([sys.executable, "-m", "flask", "--app", "wsgi", "db", "upgrade"], cwd=ROOT, env=env,
                             capture_output=True, text=True, timeout=120)
    assert upgrade.returncode == 0, upgrade.stderr
    setup = create_app({"SQLALCHEMY_DATABASE_URI": database})
    with setup.app_context():
        emails = [make_customer().email, make_customer().email]
        db.session.remove()
        db.engine.dispose()
    log = (tmp_path / "gunicorn.log").open("w")
    server = subprocess.Popen([sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", "-w", "4", "wsgi:app"],
                              cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    engine = create_engine(database)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if requests.get(f"{base}/healthz", timeout=5).status_code == 200:
                    break
            except requests.RequestException:
                pass
            assert server.poll() is None and time.monotonic() < deadline, (tmp_path / "gunicorn.log").read_text()
            time.sleep(0.2)
        yield base, emails, engine
    finally:
        server.terminate()
        server.wait(30)
        log.close()
        engine.dispose()


def _sign_in_form(base: str):
    page = requests.get(f"{base}/login", timeout=10)
    return page.cookies.get_dict(), form_with_field(page, "password")


def _attempt(base: str, email: str, password: str, ip: str, form=None):
    cookies, form = form or _sign_in_form(base)
    return requests.post(form["action"], data={**form["fields"], "email": email, "password": password},
                         cookies=cookies, headers={"X-Forwarded-For": ip}, allow_redirects=False, timeout=60)


def _pair_count(engine, email: str, ip: str):
    """What the (account, address) pair's attempts counter row says, or None when it has none."""
    from limonbilling.throttle import attempts_key

    with engine.connect() as connection:
        return connection.execute(text("SELECT count FROM rate_limit_counters WHERE key = :key"),
                                  {"key": attempts_key(email, ip)}).scalar()


def _outcomes(responses) -> dict:
    checked = [r for r in responses if r.status_code == 200 and WRONG in r.text]
    refused = [r for r in responses if r.status_code == 429 and "Try again in" in r.text
               and int(r.headers["Retry-After"]) > 0]
    return {"checked": len(checked), "refused": len(refused), "other": len(responses) - len(checked) - len(refused)}


def test_guesses_one_after_another_are_counted_by_all_workers_together(gunicorn):
    base, (email, _other), engine = gunicorn
    form = _sign_in_form(base)
    answers = [_attempt(base, email, f"wrong-guess-{n}", "198.51.100.1", form) for n in range(GUESSES)]
    assert [r.status_code for r in answers] == [200] * FREE + [429] * (GUESSES - FREE)
    assert _outcomes(answers) == {"checked": FREE, "refused": GUESSES - FREE, "other": 0}
    assert _pair_count(engine, email, "198.51.100.1") == GUESSES
    assert _attempt(base, email, PASSWORD, "198.51.100.1", form).status_code == 429  # even the right one waits

    # The owner, elsewhere, is not locked out; a right password clears that address's own count.
    assert [_attempt(base, email, "typo-1", "203.0.113.9", form).status_code for _ in range(3)] == [200] * 3
    assert _pair_count(engine, email, "203.0.113.9") == 3
    assert _attempt(base, email, PASSWORD, "203.0.113.9", form).status_code == 302
    assert _pair_count(engine, email, "203.0.113.9") is None


def test_guesses_all_at_once_are_counted_by_all_workers_together(gunicorn):
    base, (_email, email), engine = gunicorn
    form = _sign_in_form(base)
    with ThreadPoolExecutor(max_workers=GUESSES) as pool:
        answers = list(pool.map(lambda n: _attempt(base, email, f"wrong-guess-{n}", "198.51.100.2", form),
                                range(GUESSES)))
    assert _outcomes(answers) == {"checked": FREE, "refused": GUESSES - FREE, "other": 0}
    assert _pair_count(engine, email, "198.51.100.2") == GUESSES
    with engine.connect() as connection:  # Flask-Limiter's per-IP count (failed sign-ins) is shared as well
        per_ip = connection.execute(text("SELECT count FROM rate_limit_counters WHERE key LIKE :key"),
                                    {"key": "%/198.51.100.2/%sign-in-ip/%"}).scalar()
    assert per_ip == GUESSES
    assert _attempt(base, email, PASSWORD, "192.0.2.44", form).status_code == 302
