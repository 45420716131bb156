"""PDF invoices (issue 16): the printable page on A4 with DejaVu embedded, read back with pypdf, and the invoice
e-mail that carries it, rendered when it is sent."""
import io

import pypdf
from flask import current_app
from flask_babel import force_locale

from limonbilling.extensions import db
from limonbilling.models import Notification
from limonbilling.services import card_payments, invoice_pdf, outbox, placement, settings

from ..factories import make_corporate_customer, make_customer, make_department, make_package
from ..payment_support import AGENT, BANK, bank_answer, card_order

TURKISH_NAME = ("Çağrı Şahin", "Öztürk İğdır")


def read(pdf: bytes) -> pypdf.PdfReader:
    assert pdf.startswith(b"%PDF-")
    return pypdf.PdfReader(io.BytesIO(pdf))


def text_of(pdf: bytes) -> str:
    return "\n".join(page.extract_text() for page in read(pdf).pages)


def money(minor: int) -> str:
    return current_app.jinja_env.filters["money"](minor, "TRY")


def embedded_fonts(pdf: bytes) -> set[str]:
    """The names of the fonts whose files are inside the PDF (a font only named would be the reader's own)."""
    names = set()
    for page in read(pdf).pages:
        for font in page["/Resources"]["/Font"].values():
            font = font.get_object()
            for descendant in font.get("/DescendantFonts", [font]):
                descriptor = descendant.get_object().get("/FontDescriptor")
                if descriptor is not None and any(key in descriptor.get_object() for key in
                                                  ("/FontFile", "/FontFile2", "/FontFile3")):
                    names.add(str(font["/BaseFont"]))
    return names


def paid_order(gateway, customer, price="150.00"):
    order, attempt = card_order(customer, make_package("credit", [make_department()], name="Gümüş", price=price))
    card_payments.apply_card_callback(gateway, bank_answer(attempt), BANK)
    db.session.commit()
    return order


def test_an_issued_invoice_on_a4_with_seller_buyer_lines_vat_and_totals(gateway):
    settings.update({"company_name": "Limon Destek Ltd.", "seller_tax_office": "Kadıköy",
                     "seller_tax_number": "1234567890", "seller_address": "Moda, İstanbul"}, AGENT)
    order = paid_order(gateway, make_customer(first_name=TURKISH_NAME[0], last_name=TURKISH_NAME[1],
                                              national_id="10000000146"))
    invoice = order.invoice
    pdf = invoice_pdf.render(invoice, for_customer=True)
    text = text_of(pdf)
    for expected in ("Invoice 2026-000001", order.number, "Limon Destek Ltd.", "Moda, İstanbul", "1234567890",
                     " ".join(TURKISH_NAME), "10000000146", "Gümüş", "VAT 20%", money(invoice.net_minor),
                     money(invoice.vat_minor), money(invoice.total_minor)):
        assert expected in text, expected
    assert "Proforma" not in text
    page = read(pdf).pages[0]
    assert (round(float(page.mediabox.width)), round(float(page.mediabox.height))) == (595, 842)  # A4 in points
    assert {name.partition("+")[2] for name in embedded_fonts(pdf)} == {"DejaVu-Sans", "DejaVu-Sans-Bold"}
    assert invoice_pdf.file_name(invoice) == "invoice-2026-000001.pdf"


def test_a_corporate_buyer_shows_its_tax_office_and_number_in_turkish(gateway):
    order = paid_order(gateway, make_corporate_customer(first_name="Çağrı", last_name="Şahin"))
    with force_locale("tr"):
        text = text_of(invoice_pdf.render(order.invoice, for_customer=True))
    for expected in ("Öztürk Yazılım A.Ş.", "Kadıköy", "4540536920", "Moda Cad. No: 1, Kadıköy / İstanbul",
                     "Çağrı Şahin", "Fatura 2026-000001", "Vergi numarası"):
        assert expected in text, expected


def test_an_unissued_invoice_is_a_proforma(gateway):
    order, _attempt = card_order(make_customer(), make_package("credit", [make_department()]))
    text = text_of(invoice_pdf.render(order.invoice, for_customer=False))
    assert "Proforma invoice" in text and "Not issued yet: the number is given when the order is paid." in text
    with force_locale("tr"):
        text = text_of(invoice_pdf.render(order.invoice, for_customer=True))
    assert "Proforma fatura" in text and "Henüz düzenlenmedi" in text
    assert invoice_pdf.file_name(order.invoice) == f"proforma-{order.number}.pdf"


def test_the_invoice_mail_attaches_the_pdf_and_a_resend_attaches_the_same_invoice(app, smtp_server):
    customer = make_customer(first_name=TURKISH_NAME[0], last_name=TURKISH_NAME[1], email="cagri@example.com")
    order = placement.place_agent_order(customer, make_package("credit", name="Bronz"), payment_method="manual",
                                        actor=AGENT, send_invoice=True)
    db.session.commit()
    row = db.session.scalars(db.select(Notification).where(Notification.event == "invoice_issued")).one()
    assert "attached to this e-mail as a PDF" in row.body_text  # the row holds the text; the PDF is made at sending
    outbox.send_due()
    number = order.invoice.number
    assert number == "2026-000001"

    def attachments():
        mails = [mail for mail in smtp_server.to("cagri@example.com") if mail.subject.startswith("Invoice")]
        return [(part.get_filename(), part.get_content_type(), text_of(part.get_content()))
                for mail in mails for part in mail.message.iter_attachments()]

    [mail] = [mail for mail in smtp_server.to("cagri@example.com") if mail.subject.startswith("Invoice")]
    assert "attached to this e-mail as a PDF" in mail.text() and "attached to this e-mail as a PDF" in mail.html()
    [(filename, content_type, text)] = attachments()
    assert (filename, content_type) == (f"invoice-{number}.pdf", "application/pdf")
    assert number in text and " ".join(TURKISH_NAME) in text and money(order.invoice.total_minor) in text
    row.state = "failed"  # as if the mail server had lost it: an agent sends the same row again
    outbox.retry(row, AGENT)
    db.session.commit()
    outbox.send_due()
    assert attachments() == [(filename, content_type, text)] * 2


def test_other_mails_carry_no_attachment(app, smtp_server):
    placement.place_agent_order(make_customer(email="plain@example.com"), make_package("credit"),
                                payment_method="manual", actor=AGENT, send_confirmation=True)
    db.session.commit()
    outbox.send_due()
    mails = smtp_server.to("plain@example.com")
    assert mails and all(not list(mail.message.iter_attachments()) for mail in mails)


def test_markup_a_customer_typed_stays_text(gateway):
    address = '<link rel="stylesheet" href="file:///etc/hostname"><img src="http://127.0.0.1:9/x.png">'
    order = paid_order(gateway, make_corporate_customer(billing_address=address))
    assert address in text_of(invoice_pdf.render(order.invoice, for_customer=True)).replace("\n", "")
