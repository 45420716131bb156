"""My usage: the customer's credit ledger with the ticket, chat or order each movement came from."""
import re

from limonbilling.extensions import db
from limonbilling.models import Department
from limonbilling.services import helpdesk, placement

from ..factories import make_customer, make_department, make_package, sign_in
from ..payment_support import AGENT


def buy_and_open(customer, department, subject):
    order = placement.place_agent_order(customer, make_package("credit", [department], credits=10),
                                        payment_method="manual",
                                actor=AGENT)
    db.session.commit()
    department = db.session.get(Department, department.id)
    ticket = helpdesk.open_conversation(customer, department, "ticket", subject, "Merhaba")
    db.session.commit()
    return order, ticket


def test_usage_lists_the_purchase_and_each_charge_with_its_ticket_and_nothing_of_others(app, client):
    department = make_department("Teknik Destek", credit_per_request=3)
    customer, other = make_customer(), make_customer()
    order, ticket = buy_and_open(customer, department, "Sunucum yanıt vermiyor")
    others_order, others_ticket = buy_and_open(other, department, "Başkasının talebi")
    sign_in(client, customer)
    page = client.get("/usage").get_data(as_text=True)
    assert "You have 7 credits." in page
    assert f"/orders/{order.number}" in page and "+10" in page
    assert f"/tickets/{ticket.id}" in page and "Ticket: Sunucum yanıt vermiyor" in page and "-3" in page
    assert others_order.number not in page and "Başkasının talebi" not in page


def test_usage_pages_newest_first_and_has_an_empty_state(app, client):
    app.config["ITEMS_PER_PAGE"] = 2
    department = make_department(credit_per_request=1)
    customer = make_customer()
    small_pages = client
    sign_in(small_pages, customer)
    assert "Nothing yet." in small_pages.get("/usage").get_data(as_text=True)
    order, _ticket = buy_and_open(customer, department, "Bir")
    for subject in ("İki", "Üç"):
        helpdesk.open_conversation(customer, db.session.get(Department, department.id), "ticket", subject, "…")
        db.session.commit()
    first = small_pages.get("/usage").get_data(as_text=True)
    assert "Ticket: Üç" in first and "Ticket: İki" in first and "Ticket: Bir" not in first
    older = re.search(r'href="(/usage\?before=\d+)"', first).group(1)
    second = small_pages.get(older).get_data(as_text=True)
    assert "Ticket: Bir" in second and order.number in second and "Ticket: Üç" not in second
