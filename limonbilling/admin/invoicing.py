"""Invoices for agents: the printable invoice of an order and its PDF, and Settings → Invoices."""
from flask import abort, flash, redirect, render_template, url_for
from flask_babel import gettext as _

from ..auth import current_actor, requires
from ..forms import run_service
from ..invoice_responses import invoice_pdf_response
from ..services import settings
from . import bp
from .billing import billing_view
from .forms import InvoiceSettingsForm
from .orders import order_or_404


@billing_view("/billing/orders/<number>/invoice")
def order_invoice(number: str):
    order = order_or_404(number)
    if order.invoice is None:
        abort(404)
    return render_template("admin/invoice.html", invoice=order.invoice, order=order)


@billing_view("/billing/orders/<number>/invoice.pdf")
def order_invoice_pdf(number: str):
    return invoice_pdf_response(order_or_404(number).invoice, for_customer=False)


@bp.route("/settings/invoices", methods=["GET", "POST"])
@requires("settings")
def settings_invoices():
    form = InvoiceSettingsForm(data=settings.get_all())
    if form.validate_on_submit():
        values = {
            "seller_address": form.seller_address.data.strip(),
            "seller_tax_office": form.seller_tax_office.data.strip(),
            "seller_tax_number": form.seller_tax_number.data.strip(),
            "vat_rate_percent": form.vat_rate_percent.data,
            "vat_inclusive": form.vat_inclusive.data,
            "retention_years": form.retention_years.data,
        }
        if run_service(form, settings.update, values, current_actor())[0]:
            flash(_("Invoice settings are saved. New orders use them; issued invoices keep theirs."), "success")
            return redirect(url_for("admin.settings_invoices"))
    return render_template("admin/settings_invoices.html", form=form)
