"""Attachments and Account verification through the test client: uploading, who may download and with which
headers, the agent's "Mark identity verified", the settings, and checkout's pointer to the channel."""
import io
import os

import pytest
from sqlalchemy import func, select

from limonbilling.extensions import db
from limonbilling.models import Attachment, AuditEntry, Conversation, Customer
from limonbilling.services import audit, settings
from limonbilling.services.attachments import MEGABYTE

from ..factories import make_agent, make_customer, make_department, make_package, sign_in

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 24
PDF = b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n"
AGENT = audit.Actor("agent", None, "agent@example.com")


@pytest.fixture
def customer_client(app):
    customer = make_customer()
    client = app.test_client()
    sign_in(client, customer)
    return customer, client


def _send(client, *files, url="/verification/new", **fields):
    data = {"subject": "Identity verification", "body": "My ID card.", **fields,
            "attachments": [(io.BytesIO(content), name) for name, content in files]}
    return client.post(url, data=data, content_type="multipart/form-data")


def _agent_client(app, *permissions):
    client = app.test_client()
    sign_in(client, make_agent(*permissions))
    return client


def test_a_customer_sends_documents_and_only_they_and_support_agents_get_them(app, customer_client):
    customer, client = customer_client
    response = _send(client, ("kimlik ön.png", PNG), ("pasaport.pdf", PDF))
    assert response.status_code == 302
    page = client.get(response.location).data.decode()
    assert "Account verification" in page and "kimlik ön.png" in page and "pasaport.pdf" in page
    image, document = db.session.scalars(select(Attachment).order_by(Attachment.id)).all()

    own = client.get(f"/attachments/{image.id}")
    assert own.status_code == 200 and own.data == PNG
    assert own.headers["Content-Type"] == "image/png"
    assert own.headers["Content-Disposition"].startswith("inline;")
    assert own.headers["X-Content-Type-Options"] == "nosniff"
    assert "sandbox" in own.headers["Content-Security-Policy"]
    assert "no-store" in own.headers["Cache-Control"]
    pdf = client.get(f"/attachments/{document.id}")
    assert pdf.headers["Content-Type"] == "application/pdf"
    assert pdf.headers["Content-Disposition"] == "attachment; filename=pasaport.pdf"

    other = app.test_client()
    sign_in(other, make_customer())
    assert other.get(f"/attachments/{image.id}").status_code == 404
    assert other.get(f"/attachments/{image.id + 100}").status_code == 404
    for permissions in [(), ("billing", "customers", "settings")]:
        assert _agent_client(app, *permissions).get(f"/admin/attachments/{image.id}").status_code == 404
    agent = _agent_client(app, "support").get(f"/admin/attachments/{document.id}")
    assert agent.status_code == 200 and agent.data == PDF
    assert agent.headers["Content-Disposition"] == "attachment; filename=pasaport.pdf"
    assert agent.headers["X-Content-Type-Options"] == "nosniff"
    assert app.test_client().get(f"/attachments/{image.id}").status_code == 302  # to the sign-in page


def test_an_html_page_called_png_is_refused_and_nothing_is_kept(app, customer_client, tmp_path):
    _customer, client = customer_client
    response = _send(client, ("photo.png", b"<html><body onload=alert(1)></body></html>"))
    assert response.status_code == 200
    assert "photo.png is not a PNG, JPEG or WebP image or a PDF document." in response.data.decode()
    assert db.session.scalar(select(func.count(Conversation.id))) == 0
    folder = tmp_path / "attachments"
    assert not folder.exists() or os.listdir(folder) == []


def test_one_file_too_many_and_one_byte_too_large_are_refused_with_the_reason(app, customer_client):
    _customer, client = customer_client
    page = _send(client, *[(f"{n}.png", PNG) for n in range(4)]).data.decode()
    assert "Attach at most 3 files to a message." in page
    exactly = PNG + b"\x00" * (5 * MEGABYTE - len(PNG))  # more than the site's usual 1 MB request limit
    assert _send(client, ("big.png", exactly + b"\x00")).status_code == 200
    response = _send(client, *[(f"{n}.png", exactly) for n in range(3)])
    assert response.status_code == 302
    assert db.session.scalar(select(func.count(Attachment.id))) == 3
    one_more = _send(client, *[(f"{n}.png", exactly) for n in range(4)])  # one too many, each as large as allowed
    assert one_more.status_code == 200 and "Attach at most 3 files to a message." in one_more.data.decode()
    assert _send(client, *[(f"{n}.png", exactly) for n in range(5)]).status_code == 413  # past (3 + 1) × 5 MB + 1 MB
    text_only = client.post("/verification/new", data={"subject": "Big", "body": "x" * (2 * MEGABYTE)})
    assert text_only.status_code == 413  # a form without files keeps the site's usual limit
    big_text = client.post("/verification/new", data={"subject": "Big", "body": "x" * (2 * MEGABYTE),
                                                      "attachments": [(io.BytesIO(PNG), "a.png")]},
                           content_type="multipart/form-data")
    assert big_text.status_code == 413  # a text field never gets the files' allowance


def test_replies_with_files_on_both_sides_and_the_agent_marks_the_identity_verified(app, customer_client):
    customer, client = customer_client
    location = _send(client, ("front.png", PNG)).location
    ticket = db.session.scalar(select(Conversation))
    reply = client.post(location, data={"body": "", "attachments": [(io.BytesIO(PNG), "back.png")]},
                        content_type="multipart/form-data")
    assert reply.status_code == 302
    agent = _agent_client(app, "support")
    listing = agent.get("/admin/tickets?channel=verification").data.decode()
    assert "Account verification" in listing and "Identity verification" in listing
    page = agent.get(f"/admin/tickets/{ticket.id}").data.decode()
    assert "back.png" in page and "Mark identity verified" in page
    answer = agent.post(f"/admin/tickets/{ticket.id}", data={"body": "Thanks",
                                                              "attachments": [(io.BytesIO(PDF), "receipt.pdf")]},
                        content_type="multipart/form-data")
    assert answer.status_code == 302
    assert agent.post(f"/admin/tickets/{ticket.id}/verify-identity").status_code == 302
    assert agent.post(f"/admin/tickets/{ticket.id}/verify-identity").status_code == 302
    db.session.expire_all()
    assert db.session.get(Customer, customer.id).identity_verified
    assert db.session.scalar(select(func.count(AuditEntry.id)).where(
        AuditEntry.action == "customer.identity_verified")) == 1
    assert "Your identity is verified." in client.get(location).data.decode()
    assert "receipt.pdf" in client.get(location).data.decode()
    assert _agent_client(app, "customers").post(f"/admin/tickets/{ticket.id}/verify-identity").status_code == 403


def test_only_verification_tickets_carry_the_button(app, customer_client):
    customer, client = customer_client
    settings.update({"vip_support_enabled": False}, AGENT)
    db.session.commit()
    department = make_department()
    client.post("/tickets/new", data={"department_id": department.id, "subject": "Help", "body": "Please",
                                      "attachments": [(io.BytesIO(PNG), "error.png")]},
                content_type="multipart/form-data")
    ticket = db.session.scalar(select(Conversation))
    assert ticket.messages[0].attachments[0].original_name == "error.png"
    agent = _agent_client(app, "support")
    assert "Mark identity verified" not in agent.get(f"/admin/tickets/{ticket.id}").data.decode()
    agent.post(f"/admin/tickets/{ticket.id}/verify-identity")
    db.session.expire_all()
    assert not db.session.get(Customer, customer.id).identity_verified


def test_the_limits_are_set_on_the_modules_settings_page(app):
    agent = _agent_client(app, "settings")
    assert "Files per message" in agent.get("/admin/settings/modules").data.decode()
    response = agent.post("/admin/settings/modules", data={"vip_support_enabled": "y", "attachment_max_mb": "2",
                                                           "attachment_max_count": "11"})
    assert response.status_code == 200 and settings.get("attachment_max_count") == 3
    response = agent.post("/admin/settings/modules", data={"vip_support_enabled": "y", "attachment_max_mb": "2",
                                                           "attachment_max_count": "1"})
    assert response.status_code == 302
    db.session.rollback()
    assert (settings.get("attachment_max_mb"), settings.get("attachment_max_count")) == (2, 1)


def test_a_new_customer_is_pointed_to_the_verification_channel_at_checkout(app, customer_client):
    _customer, client = customer_client
    package = make_package("credit")
    settings.update({"require_identity_verification": True}, AGENT)
    db.session.commit()
    page = client.get(f"/checkout/{package.id}").data.decode()
    assert "Open an Account verification ticket" in page and 'href="/verification/new"' in page
    assert 'href="/verification/new"' in client.get("/").data.decode()
