"""The PDF invoice in a real headless Chromium (issue 16): a Turkish customer pays by card on the simulator's 3-D
page and downloads the invoice from the order page; the agent downloads it from the invoice page."""
import re
from pathlib import Path

import pypdf

from limonbilling.extensions import db

from ..factories import make_customer
from .test_journeys import agent_signs_in, customer_signs_in, pay_by_card


def pdf_text(download) -> str:
    return "\n".join(page.extract_text() for page in pypdf.PdfReader(Path(download.path())).pages)


def test_a_turkish_customer_and_an_agent_download_the_invoice_pdf(shop, new_page):
    with shop.app.app_context():
        make_customer(first_name="Çağrı Şahin", last_name="Öztürk İğdır", email="cagri@example.com")
        db.session.remove()

    page = new_page()
    customer_signs_in(page, shop, "cagri@example.com")
    page.locator("button[lang=tr]").first.click()
    page.wait_for_function("document.documentElement.lang === 'tr'")
    page.goto(f"{shop.url}/packages")
    pay_by_card(page, "10 Kredi")
    number = page.url.rsplit("/", 1)[1]
    with page.expect_download() as downloaded:
        page.get_by_role("link", name="PDF", exact=True).click()
    download = downloaded.value
    assert re.fullmatch(r"invoice-\d{4}-000001\.pdf", download.suggested_filename)
    invoice_number = download.suggested_filename.removeprefix("invoice-").removesuffix(".pdf")
    text = pdf_text(download)
    for expected in (f"Fatura {invoice_number}", "Çağrı Şahin Öztürk İğdır", "10 Kredi", "₺150,00", number):
        assert expected in text, expected

    agent = new_page()
    agent_signs_in(agent, shop)
    agent.goto(f"{shop.url}/admin/billing/orders/{number}/invoice")
    with agent.expect_download() as downloaded:
        agent.get_by_role("link", name="Download PDF").click()
    assert downloaded.value.suggested_filename == download.suggested_filename
    assert f"Invoice {invoice_number}" in pdf_text(downloaded.value)
