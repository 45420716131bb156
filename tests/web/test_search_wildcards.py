"""The admin searches take the agent's text literally: `%`, `_` and `\\` match themselves in the customer
list, the order list and the notifications outbox, never any text or any one character."""
import pytest

from limonbilling.extensions import db
from limonbilling.services import audit, placement

from ..factories import make_agent, make_corporate_customer, make_customer, make_package, sign_in

ACTOR = audit.Actor.system("test")


@pytest.fixture
def people(app):
    """Customers whose details differ from a look-alike only where a wildcard would stand in."""
    return {
        "a_b": make_customer(email="a_b@example.com"),
        "axb": make_customer(email="axb@example.com"),
        "fifty": make_corporate_customer(email="fifty@example.com", company_name="50% Off Ltd"),
        "five_hundred": make_corporate_customer(email="five-hundred@example.com", company_name="500 Off Ltd"),
        "slash": make_customer(email="slash@example.com", last_name="Ba\\ck"),
        "back": make_customer(email="back@example.com", last_name="Back"),
    }


@pytest.fixture
def agent(app):
    client = app.test_client()
    sign_in(client, make_agent("customers", "billing", "settings"))
    return client


def rows(client, path: str, query: str) -> str:
    """The table of results of a search (empty when nothing matches)."""
    page = client.get(path, query_string={"q": query}).get_data(as_text=True)
    return page.split("<tbody>", 1)[1].split("</tbody>", 1)[0] if "<tbody>" in page else ""


@pytest.mark.parametrize("query, found", [
    ("a_b", {"a_b"}),
    ("_", {"a_b"}),
    ("a%b", set()),
    ("%", {"fifty"}),
    ("50%", {"fifty"}),
    ("a\\c", {"slash"}),
    ("\\", {"slash"}),
])
def test_the_customer_list_matches_wildcards_literally(agent, people, query, found):
    table = rows(agent, "/admin/customers", query)
    assert {key for key, customer in people.items() if customer.email in table} == found, query


@pytest.mark.parametrize("query, found", [
    ("a_b", {"a_b"}),
    ("_", {"a_b"}),
    ("a%b", set()),
    ("50%", {"fifty"}),
    ("a\\c", {"slash"}),
    ("\\", {"slash"}),
])
def test_the_order_search_matches_wildcards_literally(agent, people, query, found):
    package = make_package("credit")
    numbers = {key: placement.place_agent_order(customer, package, payment_method="manual", actor=ACTOR).number
               for key, customer in people.items()}
    db.session.commit()
    table = rows(agent, "/admin/billing/orders", query)
    assert {key for key, number in numbers.items() if number in table} == found, query


@pytest.mark.parametrize("query, found", [
    ("a_b", {"a_b"}),
    ("_", {"a_b"}),
    ("a%b", set()),
    ("%", set()),
    ("\\", set()),
])
def test_the_outbox_search_matches_wildcards_literally(agent, people, query, found):
    everything = rows(agent, "/admin/notifications", "")
    assert all(customer.email in everything for customer in people.values())  # each has a welcome mail
    table = rows(agent, "/admin/notifications", query)
    assert {key for key, customer in people.items() if customer.email in table} == found, query
