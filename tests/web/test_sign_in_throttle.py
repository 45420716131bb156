"""Failed sign-ins are throttled per (account, client IP) and per client IP; a working sign-in never counts.
tests/unit/test_throttle.py pins the lock-out's windows; tests/http/test_throttle_gunicorn.py its workers."""
import pytest

from ..factories import PASSWORD, make_agent, make_customer


@pytest.fixture
def strict(app):
    app.config.update(SIGN_IN_FREE_ATTEMPTS=3, SIGN_IN_LIMIT_PER_IP="5 per minute")
    return app


def attempt(client, path, email, password="wrong-pass-1", ip="198.51.100.1"):
    return client.post(path, data={"email": email, "password": password}, environ_base={"REMOTE_ADDR": ip})


@pytest.mark.parametrize("path", ["/login", "/admin/login"])
def test_an_account_is_locked_after_its_failed_attempts(app, strict, path):
    email = make_customer().email if path == "/login" else make_agent("billing").email
    client = strict.test_client()
    assert [attempt(client, path, email).status_code for _ in range(3)] == [200, 200, 200]
    locked = attempt(client, path, email, password=PASSWORD)  # even the right password waits now
    assert locked.status_code == 429 and "Try again in 30 seconds" in locked.get_data(as_text=True)
    assert locked.headers["Retry-After"] == "30"
    assert attempt(client, path, email, password=PASSWORD, ip="198.51.100.99").status_code == 302  # not elsewhere
    assert attempt(client, path, "someone-else@example.com").status_code == 200


def test_an_ip_is_throttled_across_accounts(app, strict):
    client = strict.test_client()
    answers = [attempt(client, "/login", f"guess{n}@example.com").status_code for n in range(6)]
    assert answers == [200] * 5 + [429]
    assert attempt(client, "/login", "guess9@example.com", ip="203.0.113.5").status_code == 200


def test_successful_sign_ins_do_not_count(app, strict):
    email = make_customer().email
    for _ in range(6):
        client = strict.test_client()
        assert attempt(client, "/login", email, password=PASSWORD).status_code == 302


def test_password_reset_requests_are_throttled_per_ip(app, strict):
    client = strict.test_client()
    answers = [client.post("/forgot-password", data={"email": f"a{n}@example.com"},
                           environ_base={"REMOTE_ADDR": "198.51.100.7"}).status_code for n in range(6)]
    assert answers[-1] == 429
