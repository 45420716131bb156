"""Profile → Your data (KVKK): download everything we hold about you, ask for erasure (services/privacy.py)."""
from flask import Response, current_app, flash, redirect, render_template, url_for
from flask_babel import gettext as _

from ..auth import current_actor, current_customer
from ..extensions import limiter
from ..forms import run_service
from ..services import privacy, settings
from . import bp
from .forms import DataExportForm, ErasureRequestForm


def _customer_key() -> str:
    return f"customer:{current_customer().id}"


def _privacy_page(export_form=None, erasure_form=None, status: int = 200):
    return render_template("portal/data_privacy.html",
                           export_form=export_form or DataExportForm(prefix="export", formdata=None),
                           erasure_form=erasure_form or ErasureRequestForm(prefix="erasure", formdata=None),
                           latest=privacy.latest_request(current_customer()),
                           retention_years=settings.get("retention_years")), status


@bp.route("/profile/privacy")
def privacy_page():
    return _privacy_page()


@bp.route("/profile/privacy/export", methods=["POST"])
@limiter.limit(lambda: current_app.config["DATA_EXPORT_LIMIT"], key_func=_customer_key, methods=["POST"],
               scope="data-export")
def data_export():
    """The archive, after the password again (a stolen session cannot take the data away); every POST counts
    against the per-customer limit, wrong passwords too."""
    customer = current_customer()
    form = DataExportForm(prefix="export")
    if form.validate_on_submit():
        ok, archive = run_service(form, privacy.export_archive, customer, form.password.data, current_actor())
        if ok:
            return Response(archive, mimetype="application/zip", headers={
                "Content-Disposition": f"attachment; filename=limonbilling-data-{customer.id}.zip",
                "Cache-Control": "private, no-store"})
    return _privacy_page(export_form=form, status=422)


@bp.route("/profile/privacy/erasure", methods=["POST"])
def request_erasure():
    form = ErasureRequestForm(prefix="erasure")
    if form.validate_on_submit():
        if run_service(form, privacy.request_erasure, current_customer(), form.reason.data, form.password.data,
                       current_actor())[0]:
            flash(_("Your erasure request is recorded; we will answer it soon."), "success")
            return redirect(url_for("portal.privacy_page"))
    return _privacy_page(erasure_form=form, status=422)
