"""Links in e-mails cannot be redirected by the request's Host header, and production states its address."""
import pytest

from limonbilling import create_app
from limonbilling.extensions import db
from limonbilling.models import Notification

from ..factories import make_agent, make_customer


def reset_mails() -> list[Notification]:
    return db.session.scalars(db.select(Notification).where(Notification.event == "password_reset")).all()


@pytest.mark.parametrize("area, make", [("", make_customer), ("/admin", make_agent)])
def test_a_forged_host_header_never_reaches_a_reset_link(app, make_app, area, make):
    app = make_app(PUBLIC_BASE_URL=None, TRUSTED_HOSTS=["localhost"])
    with app.app_context():
        user = make()
        response = app.test_client().post(f"{area}/forgot-password", data={"email": user.email},
                                          headers={"Host": "evil.example"})
        assert response.status_code == 400 and b"does not answer for that host" in response.data
        assert all("evil.example" not in row.body_text for row in reset_mails())
        app.test_client().post(f"{area}/forgot-password", data={"email": user.email})
        [mail] = reset_mails()
        assert f"http://localhost{area}/reset-password/" in mail.body_text
        db.session.remove()


def test_without_trusted_hosts_links_use_the_fallback_address_not_the_request_host(app, make_app):
    app = make_app(PUBLIC_BASE_URL=None, TRUSTED_HOSTS=None)
    with app.app_context():
        customer = make_customer()
        app.test_client().post("/forgot-password", data={"email": customer.email}, headers={"Host": "evil.example"})
        [mail] = reset_mails()
        assert "evil.example" not in mail.body_text
        assert "http://127.0.0.1:5000/reset-password/" in mail.body_text
        db.session.remove()


def test_the_public_base_url_wins_over_any_host(app, make_app):
    app = make_app(PUBLIC_BASE_URL="https://billing.example.com/", TRUSTED_HOSTS=["localhost", "evil.example"])
    with app.app_context():
        customer = make_customer()
        app.test_client().post("/forgot-password", data={"email": customer.email}, headers={"Host": "evil.example"})
        [mail] = reset_mails()
        assert "https://billing.example.com/reset-password/" in mail.body_text and "evil" not in mail.body_text
        db.session.remove()


def test_production_refuses_to_start_without_its_public_address(tmp_path, monkeypatch):
    monkeypatch.setenv("LIMONBILLING_CONFIG", "production")
    database = f"sqlite:///{tmp_path / 'prod.db'}"
    for missing in (None, "", "billing.example.com", "ftp://billing.example.com"):
        with pytest.raises(RuntimeError, match="PUBLIC_BASE_URL"):
            create_app({"SECRET_KEY": "p" * 32, "SQLALCHEMY_DATABASE_URI": database, "PUBLIC_BASE_URL": missing})
    app = create_app({"SECRET_KEY": "p" * 32, "SQLALCHEMY_DATABASE_URI": database,
                      "PUBLIC_BASE_URL": "https://billing.example.com"})
    assert app.config["PUBLIC_BASE_URL"] == "https://billing.example.com"


def test_production_answers_with_hsts_and_development_does_not(tmp_path, monkeypatch):
    monkeypatch.setenv("LIMONBILLING_CONFIG", "production")
    app = create_app({"SECRET_KEY": "p" * 32, "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'prod.db'}",
                      "PUBLIC_BASE_URL": "https://billing.example.com"})
    response = app.test_client().get("/healthz", base_url="https://billing.example.com")
    assert response.headers["Strict-Transport-Security"] == "max-age=31536000; includeSubDomains"
    monkeypatch.setenv("LIMONBILLING_CONFIG", "development")
    development = create_app({"SECRET_KEY": "d" * 32, "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'dev.db'}"})
    assert "Strict-Transport-Security" not in development.test_client().get("/healthz").headers


def test_the_bank_returns_the_customer_to_the_public_address_not_the_request_host(app, make_app, gateway):
    """okUrl and failUrl were built from the request's Host: the bank would post the answer there."""
    from ..factories import make_package, sign_in

    db.session.commit()  # the gateway's settings; on SQLite the other app's session waits for this one
    public_app = make_app(PUBLIC_BASE_URL="https://billing.example.com", TRUSTED_HOSTS=["localhost"])
    with public_app.app_context():
        customer, package = make_customer(), make_package("credit", credits=5)
        client = public_app.test_client()
        sign_in(client, customer)
        page = client.post(f"/checkout/{package.id}", data={
            "card_number": "4355 0843 5508 4358", "card_expiry": "12/30", "card_cvv": "000",
            "accept_contracts": "y"}).data.decode()
        assert 'name="okUrl" value="https://billing.example.com/payments/nestpay/ok"' in page
        assert 'name="failUrl" value="https://billing.example.com/payments/nestpay/fail"' in page
        db.session.remove()
