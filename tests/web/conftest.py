"""Fixtures of the page tests."""
import pytest

from ..factories import make_agent, sign_in


@pytest.fixture
def billing_client(app):
    """A signed-in agent who may work on orders and customers."""
    client = app.test_client()
    sign_in(client, make_agent("billing", "customers"))
    return client
