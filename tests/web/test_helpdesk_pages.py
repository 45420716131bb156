"""Tickets and chats through the test client: charged once when opened, never for replies (rule 6)."""
import pytest

from limonbilling.extensions import db
from limonbilling.models import Conversation, Usage
from limonbilling.services import audit, customers, settings

from ..factories import activate, make_agent, make_customer, make_department, make_package, sign_in


@pytest.fixture
def desk(app):
    support = make_department("Support", credit_per_request=3)
    servers = make_department("Servers", credit_per_request=5)
    customer = make_customer()
    client = app.test_client()
    sign_in(client, customer)
    return {"support": support, "servers": servers, "customer": customer, "client": client,
            "credits": make_package("credit", [support], credits=10, name="Ten credits"),
            "servers_pack": make_package("credit", [servers], credits=10, name="Server pack")}


def _open(client, department, section="tickets", subject="Mail is down", body="Since this morning."):
    return client.post(f"/{section}/new", data={"department_id": department.id, "subject": subject, "body": body})


def _credits(customer) -> int:
    db.session.refresh(customer)
    return customer.credits


def test_opening_a_ticket_charges_once_and_replies_are_free(app, desk):
    customer, client = desk["customer"], desk["client"]
    activate(customer, desk["credits"])
    response = _open(client, desk["support"])
    assert response.status_code == 302
    ticket = db.session.scalar(db.select(Conversation))
    assert _credits(customer) == 7
    page = client.get(response.location).data.decode()
    assert "3 credits spent" in page and "Mail is down" in page
    client.post(response.location, data={"body": "Any news?"})
    agent = app.test_client()
    sign_in(agent, make_agent("support"))
    agent.post(f"/admin/tickets/{ticket.id}", data={"body": "Fixed."})
    db.session.refresh(ticket)
    assert ticket.status == "answered" and len(ticket.messages) == 3
    assert _credits(customer) == 7
    assert "Credits spent" in client.get("/tickets").data.decode()


def test_chat_is_charged_once_and_messages_are_free(desk):
    customer, client = desk["customer"], desk["client"]
    activate(customer, desk["credits"])
    response = _open(client, desk["support"], section="chats", subject="", body="Hello")
    assert response.status_code == 302
    for text in ("one", "two", "three"):
        client.post(response.location, data={"body": text})
    assert _credits(customer) == 7
    chat = db.session.scalar(db.select(Conversation))
    assert chat.kind == "chat" and chat.subject == "Chat in Support" and len(chat.messages) == 4


def test_subscription_makes_it_free_but_recorded(desk):
    customer = desk["customer"]
    activate(customer, make_package("subscription", [desk["support"]], days=30))
    _open(desk["client"], desk["support"])
    usage = db.session.scalar(db.select(Usage))
    assert (usage.cost, usage.covered_by) == (0, "subscription")


def test_department_not_enabled_is_refused_with_covering_packages(desk):
    customer, client = desk["customer"], desk["client"]
    activate(customer, desk["credits"])
    page = _open(client, desk["servers"], subject="Disk full", body="Please help").data.decode()
    assert "Servers is not enabled for your account" in page
    assert "Server pack" in page and "/packages" in page
    assert 'value="Disk full"' in page and "Please help" in page  # what was typed is kept
    assert db.session.scalar(db.select(db.func.count(Conversation.id))) == 0


def test_not_enough_credits_says_have_and_need(desk):
    customer, client = desk["customer"], desk["client"]
    activate(customer, make_package("credit", [desk["support"]], credits=2))
    page = _open(client, desk["support"]).data.decode()
    assert "you have 2, this needs 3" in page and "Ten credits" in page
    assert db.session.scalar(db.select(db.func.count(Conversation.id))) == 0
    assert _credits(customer) == 2


def test_manual_department_is_free(desk):
    customers.set_department(desk["customer"], desk["servers"], True, audit.Actor.system("t"))
    db.session.commit()
    _open(desk["client"], desk["servers"])
    assert db.session.scalar(db.select(Usage)).covered_by == "manual"


def test_missing_subject_and_message(desk):
    activate(desk["customer"], desk["credits"])
    page = _open(desk["client"], desk["support"], subject="", body="").data.decode()
    assert "Write a subject." in page and "Write your message." in page


def test_another_customers_conversation_is_not_found(app, desk):
    activate(desk["customer"], desk["credits"])
    location = _open(desk["client"], desk["support"]).location
    stranger = app.test_client()
    sign_in(stranger, make_customer())
    assert stranger.get(location).status_code == 404
    assert stranger.post(location + "/close").status_code == 404
    assert stranger.get(location.replace("/tickets/", "/chats/")).status_code == 404


def test_agent_lists_filter_and_close(app, desk):
    activate(desk["customer"], desk["credits"])
    _open(desk["client"], desk["support"], subject="First")
    _open(desk["client"], desk["support"], subject="Second")
    first, second = db.session.scalars(db.select(Conversation).order_by(Conversation.id)).all()
    agent = app.test_client()
    sign_in(agent, make_agent("support"))
    agent.post(f"/admin/tickets/{second.id}/close")
    open_page = agent.get("/admin/tickets?status=open").data.decode()
    assert "First" in open_page and "Second" not in open_page
    assert "Second" in agent.get("/admin/tickets?status=closed").data.decode()
    assert agent.get(f"/admin/chats/{first.id}").status_code == 404
    app.config["ITEMS_PER_PAGE"] = 1
    first_page = agent.get("/admin/tickets").data.decode()
    assert "Second" in first_page and "First" not in first_page and "page=2" in first_page


def test_customer_reply_reopens_a_closed_ticket(desk):
    activate(desk["customer"], desk["credits"])
    location = _open(desk["client"], desk["support"]).location
    desk["client"].post(location + "/close")
    desk["client"].post(location, data={"body": "Still broken"})
    assert db.session.scalar(db.select(Conversation)).status == "open"
    assert _credits(desk["customer"]) == 7


def test_licence_off_makes_every_active_department_free(desk):
    settings.update({"vip_support_enabled": False}, audit.Actor.system("t"))
    db.session.commit()
    page = desk["client"].get("/tickets/new").data.decode()
    assert "Servers — free" in page
    assert _open(desk["client"], desk["servers"]).status_code == 302
    assert db.session.scalar(db.select(db.func.count(Usage.id))) == 0
