"""/healthz answers 200 while the database answers, 503 when it does not; it needs no sign-in."""
from limonbilling.extensions import db


def test_healthy(client):
    response = client.get("/healthz")
    assert response.status_code == 200 and response.json == {"status": "ok", "database": "ok"}


def test_the_database_gone_is_503(make_app_without_database):
    broken = make_app_without_database(
        SQLALCHEMY_DATABASE_URI="postgresql+psycopg://nobody@127.0.0.1:9/none?connect_timeout=2")
    response = broken.test_client().get("/healthz")
    assert response.status_code == 503 and response.json["database"] == "unreachable"
    with broken.app_context():
        db.engine.dispose()


def test_behind_a_proxy_the_forwarded_scheme_and_client_count(make_app_without_database):
    proxied = make_app_without_database(TRUSTED_PROXIES=1)
    seen = {}

    @proxied.get("/whoami")
    def whoami():
        from flask import request

        seen.update(scheme=request.scheme, ip=request.remote_addr)
        return ""

    proxied.test_client().get("/whoami", headers={"X-Forwarded-For": "203.0.113.7", "X-Forwarded-Proto": "https"})
    assert seen == {"scheme": "https", "ip": "203.0.113.7"}
