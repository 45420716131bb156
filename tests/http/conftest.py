"""Fixtures of the HTTP tests: the NestPay simulator on a loopback port, and the app served beside it."""
import pytest

from limonbilling.extensions import db
from limonbilling.sandbox import TEST_MERCHANT, create_simulator
from limonbilling.services import audit, settings

from ..factories import make_customer, make_department, make_package
from .servers import LiveServer


@pytest.fixture
def simulator():
    with LiveServer(create_simulator()) as server:
        yield server


@pytest.fixture
def shop(make_app, app, simulator):
    """The app served with CSRF on, NestPay pointed at the simulator, a customer and a credit package."""
    settings.update({
        "nestpay_enabled": True,
        "nestpay_gate_url": f"{simulator.url}/fim/est3Dgate",
        "nestpay_api_url": f"{simulator.url}/fim/api",
        "nestpay_client_id": TEST_MERCHANT["client_id"],
        "nestpay_store_key": TEST_MERCHANT["store_key"],
        "nestpay_api_user": TEST_MERCHANT["api_user"],
        "nestpay_api_password": TEST_MERCHANT["api_password"],
    }, audit.Actor.system("test"))
    support = make_department("Support", credit_per_request=2)
    customer = make_customer()
    package = make_package("credit", [support], credits=10, price="150.00")
    ids = {"customer": customer.id, "email": customer.email, "package": package.id}
    db.session.commit()
    db.session.close()  # the test's transaction must not hold SQLite's lock while the servers work
    with LiveServer(make_app(WTF_CSRF_ENABLED=True)) as server:
        yield server, ids
