"""Settings → Payment Systems: presets, write-only secrets, and card payment offered only when complete."""
import pytest

from limonbilling.extensions import db
from limonbilling.payments.nestpay_gateway import NestPayGateway
from limonbilling.services import audit, settings

from ..factories import make_agent, make_customer, make_department, make_package, sign_in

COMPLETE = {
    "nestpay_enabled": "y", "nestpay_bank": "ziraat",
    "nestpay_gate_url": "https://sanalpos2.ziraatbank.com.tr/fim/est3Dgate",
    "nestpay_api_url": "https://sanalpos2.ziraatbank.com.tr/fim/api",
    "nestpay_client_id": "190100000", "nestpay_store_key": "store-key-secret-1",
    "nestpay_api_user": "ZIRAATAPI", "nestpay_api_password": "api-password-secret-1",
    "nestpay_store_type": "3d_pay", "nestpay_hash_version": "ver3", "nestpay_api_body": "raw",
    "auto_activate_card": "y", "card_checkout_minutes": "30",
}


@pytest.fixture
def settings_client(app):
    client = app.test_client()
    sign_in(client, make_agent("settings"))
    return client


def test_secrets_are_write_only(settings_client):
    response = settings_client.post("/admin/settings/payments", data=COMPLETE, follow_redirects=True)
    page = response.data.decode()
    assert "Payment settings are saved" in page and "Card payments are offered" in page
    assert "store-key-secret-1" not in page and "api-password-secret-1" not in page
    assert "A key is stored" in page
    # Saving again with the secret fields blank keeps them.
    settings_client.post("/admin/settings/payments", data={
        **COMPLETE, "nestpay_store_key": "", "nestpay_api_password": "", "nestpay_client_id": "700655000200"})
    assert settings.get("nestpay_store_key") == "store-key-secret-1"
    assert settings.get("nestpay_api_password") == "api-password-secret-1"
    assert settings.get("nestpay_client_id") == "700655000200"
    assert NestPayGateway().is_available()


def test_bank_preset_fills_the_addresses(settings_client):
    response = settings_client.post("/admin/settings/payments", data={
        **COMPLETE, "nestpay_bank": "akbank", "nestpay_gate_url": "", "nestpay_api_url": "", "fill_preset": "1"})
    page = response.data.decode()
    assert "https://www.sanalakpos.com/fim/est3Dgate" in page and "https://www.sanalakpos.com/fim/api" in page
    assert settings.get("nestpay_gate_url") == ""  # filled in the form only, not saved yet


def test_switching_on_needs_every_field(settings_client):
    response = settings_client.post("/admin/settings/payments", data={
        **COMPLETE, "nestpay_client_id": "", "nestpay_gate_url": "ftp://bank.example/"})
    page = response.data.decode()
    assert "Needed to take card payments." in page and "starting with https://" in page
    assert not NestPayGateway().is_available()


def test_checkout_offers_the_card_only_when_the_gateway_is_complete(app):
    package = make_package("credit", [make_department("Support")])
    client = app.test_client()
    sign_in(client, make_customer())
    page = client.get(f"/checkout/{package.id}").data.decode()
    assert "Card payment is not available" in page and "card_number" not in page
    stored = {key: True if value == "y" else value for key, value in COMPLETE.items() if key.startswith("nestpay_")}
    settings.update(stored, audit.Actor.system("t"))
    db.session.commit()
    page = client.get(f"/checkout/{package.id}").data.decode()
    assert "card_number" in page and "Pay securely" in page
