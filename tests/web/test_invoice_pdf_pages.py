"""The invoice PDF through the test client: who may download it, and the links to it on the order and invoice
pages of customers and agents."""
import io

import pypdf
import pytest

from limonbilling.extensions import db
from limonbilling.models import Customer
from limonbilling.services import card_payments, placement

from ..factories import make_agent, make_corporate_customer, make_customer, make_department, make_package, sign_in
from ..payment_support import AGENT, BANK, bank_answer, card_order


@pytest.fixture
def order(gateway):
    customer = make_corporate_customer(first_name="Çağrı Şahin", last_name="Öztürk İğdır", email="owner@example.com")
    order, attempt = card_order(customer, make_package("credit", [make_department()]))
    card_payments.apply_card_callback(gateway, bank_answer(attempt), BANK)
    db.session.commit()
    return order


def signed_in(app, user):
    client = app.test_client()
    sign_in(client, user)
    return client


def assert_the_invoice_pdf(response, number: str) -> None:
    assert response.status_code == 200 and response.mimetype == "application/pdf"
    assert response.headers["Content-Disposition"] == f'attachment; filename="invoice-{number}.pdf"'
    assert response.headers["Cache-Control"] == "private, no-store"
    text = pypdf.PdfReader(io.BytesIO(response.data)).pages[0].extract_text()
    assert number in text and "Öztürk Yazılım A.Ş." in text and "Çağrı Şahin Öztürk İğdır" in text


def test_the_owner_downloads_it_and_another_customer_gets_404(app, order):
    owner = signed_in(app, db.session.get(Customer, order.customer_id))
    page = owner.get(f"/orders/{order.number}").get_data(as_text=True)
    assert f'href="/orders/{order.number}/invoice.pdf"' in page
    invoice_page = owner.get(f"/orders/{order.number}/invoice").get_data(as_text=True)
    assert f'href="/orders/{order.number}/invoice.pdf">Download PDF</a>' in invoice_page
    assert_the_invoice_pdf(owner.get(f"/orders/{order.number}/invoice.pdf"), "2026-000001")
    stranger = signed_in(app, make_customer(email="stranger@example.com"))
    for path in (f"/orders/{order.number}/invoice", f"/orders/{order.number}/invoice.pdf"):
        assert stranger.get(path).status_code == 404
    assert app.test_client().get(f"/orders/{order.number}/invoice.pdf").status_code == 302  # to the sign-in page


def test_agents_need_the_billing_permission_as_for_the_invoice_page(app, order):
    admin_pdf = f"/admin/billing/orders/{order.number}/invoice.pdf"
    without = signed_in(app, make_agent("customers", "support"))
    html_status = without.get(f"/admin/billing/orders/{order.number}/invoice").status_code
    assert html_status in (403, 404) and without.get(admin_pdf).status_code == html_status
    agent = signed_in(app, make_agent("billing"))
    page = agent.get(f"/admin/billing/orders/{order.number}").get_data(as_text=True)
    assert f'href="{admin_pdf}"' in page
    invoice_page = agent.get(f"/admin/billing/orders/{order.number}/invoice").get_data(as_text=True)
    assert f'href="{admin_pdf}">Download PDF</a>' in invoice_page
    assert_the_invoice_pdf(agent.get(admin_pdf), "2026-000001")
    assert agent.get("/admin/billing/orders/0000000000/invoice.pdf").status_code == 404


def test_an_order_without_an_invoice_has_no_pdf(billing_client):
    order = placement.place_agent_order(make_customer(), make_package("credit"), payment_method="manual",
                                        actor=AGENT, create_invoice=False)
    db.session.commit()
    assert "invoice.pdf" not in billing_client.get(f"/admin/billing/orders/{order.number}").get_data(as_text=True)
    assert billing_client.get(f"/admin/billing/orders/{order.number}/invoice.pdf").status_code == 404
