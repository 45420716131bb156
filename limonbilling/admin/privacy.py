"""Customers → Erasure requests (KVKK): agents with `customers` approve a customer's request, which anonymises
their personal data (services/privacy.py), or reject it with a note the customer reads."""
from flask import current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _

from ..auth import current_actor, requires
from ..extensions import db
from ..forms import ButtonForm, run_action
from ..models import ErasureRequest, ErasureState
from ..pagination import page_number
from ..services import privacy, settings
from . import bp
from .forms import ErasureRejectionForm


@bp.route("/customers/erasure-requests")
@requires("customers")
def erasure_list():
    state = request.args.get("state", ErasureState.PENDING)
    page = db.paginate(privacy.requests(state if ErasureState.has(state) else None), page=page_number(request.args),
                       per_page=current_app.config["ITEMS_PER_PAGE"], error_out=False)
    in_flight = {item.id: privacy.money_in_flight(item.customer_id) for item in page.items if item.waiting}
    return render_template("admin/erasure_requests.html", page=page, state=state, states=list(ErasureState),
                           approval_form=ButtonForm(), rejection_form=ErasureRejectionForm(), in_flight=in_flight,
                           retention_years=settings.get("retention_years"))


@bp.route("/customers/erasure-requests/<int:request_id>/approve", methods=["POST"])
@requires("customers")
def erasure_approve(request_id: int):
    db.get_or_404(ErasureRequest, request_id)
    if ButtonForm().validate_on_submit() and run_action(privacy.approve, request_id, current_actor())[0]:
        flash(_("The customer's personal data is erased; their orders and invoices stay for the accounts."),
              "success")
    return redirect(url_for("admin.erasure_list"))


@bp.route("/customers/erasure-requests/<int:request_id>/reject", methods=["POST"])
@requires("customers")
def erasure_reject(request_id: int):
    db.get_or_404(ErasureRequest, request_id)
    form = ErasureRejectionForm()
    if form.validate_on_submit() and run_action(privacy.reject, request_id, form.note.data, current_actor())[0]:
        flash(_("The request is rejected; the customer reads your note on their data page."), "success")
    return redirect(url_for("admin.erasure_list"))
