"""Invoices as PDF (issue 16): the printable page, templates/_invoice.html, rendered on A4 by WeasyPrint.

A PDF is rendered when it is asked for, never stored and never in a paying transaction: the pages render it
on download, the outbox when it sends the invoice e-mail (`mail_attachments`, from the row's event and order,
so a resent row attaches the same invoice as it reads then). The renderer reads only files of static/ (the
stylesheet and the DejaVu fonts it embeds); anything else it is pointed at stops the rendering.
"""
from pathlib import Path

from flask import current_app, render_template
from flask_babel import force_locale
from sqlalchemy import select

from ..extensions import db
from ..models import Invoice, Order

# The mails that carry their order's invoice as a PDF.
MAILS_WITH_INVOICE = frozenset({"invoice_issued"})


def file_name(invoice: Invoice) -> str:
    """invoice-2026-000123.pdf; an invoice not issued yet has no number: proforma-<order number>.pdf."""
    return f"invoice-{invoice.number}.pdf" if invoice.number else f"proforma-{invoice.order.number}.pdf"


def render(invoice: Invoice, *, for_customer: bool) -> bytes:
    """The invoice as a PDF in the current language; `for_customer` shows the status as the customer reads it."""
    from weasyprint import HTML  # loading it takes a second: only processes that render a PDF pay for it

    static = Path(current_app.static_folder).resolve()
    html = render_template("invoice_pdf.html", invoice=invoice, for_customer=for_customer)
    return HTML(string=html, base_url=static.as_uri() + "/", url_fetcher=_static_files_only(static)).write_pdf()


def _static_files_only(static: Path):
    from weasyprint.urls import URLFetcher

    class StaticFiles(URLFetcher):
        def fetch(self, url, headers=None):
            if not url.startswith(static.as_uri() + "/"):
                raise ValueError(f"an invoice PDF reads files of static/ only, not {url}")
            return super().fetch(url, headers)

    return StaticFiles(allowed_protocols={"file"}, fail_on_errors=True)


def mail_attachments(event: str, order_number: str | None, language: str) -> list[tuple[str, bytes]]:
    """The PDFs a queued mail carries, as (file name, content), rendered in the mail's language."""
    if event not in MAILS_WITH_INVOICE or order_number is None:
        return []
    invoice = db.session.scalar(select(Invoice).join(Order, Invoice.order_id == Order.id)
                                .where(Order.number == order_number))
    if invoice is None:  # an unpaid order deleted since: its proforma went with it
        return []
    with force_locale(language):
        return [(file_name(invoice), render(invoice, for_customer=True))]
