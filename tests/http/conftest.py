"""Fixtures of the HTTP tests: the NestPay simulator on a loopback port, and the app served beside it."""
import pytest

from limonbilling.extensions import db
from limonbilling.sandbox import create_simulator

from ..factories import make_customer, make_department, make_package
from ..payment_support import configure_gateway
from .servers import LiveServer


@pytest.fixture
def simulator():
    with LiveServer(create_simulator()) as server:
        yield server


@pytest.fixture
def shop(make_app, app, simulator):
    """The app served with CSRF on, NestPay pointed at the simulator, a customer and a credit package."""
    configure_gateway(simulator.url)
    support = make_department("Support", credit_per_request=2)
    customer = make_customer()
    package = make_package("credit", [support], credits=10, price="150.00")
    ids = {"customer": customer.id, "email": customer.email, "package": package.id}
    db.session.commit()
    db.session.close()  # the test's transaction must not hold SQLite's lock while the servers work
    with LiveServer(make_app(WTF_CSRF_ENABLED=True)) as server:
        yield server, ids
