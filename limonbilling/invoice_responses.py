"""The one way an invoice PDF leaves the server, for customers and agents alike (the views decide who may)."""
from flask import Response, abort

from .models import Invoice
from .services import invoice_pdf


def invoice_pdf_response(invoice: Invoice | None, *, for_customer: bool) -> Response:
    """The invoice as a PDF download, rendered now; 404 for an order without an invoice."""
    if invoice is None:
        abort(404)
    response = Response(invoice_pdf.render(invoice, for_customer=for_customer), mimetype="application/pdf")
    response.headers["Content-Disposition"] = f'attachment; filename="{invoice_pdf.file_name(invoice)}"'
    response.headers["Cache-Control"] = "private, no-store"
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response
