"""Billing → Activation requests: the public activation form's requests (xcPanel); an agent approves one by
choosing the package (its order is placed, paid by the transfer and activated) or rejects it with a
reason. The page also gives the link and HTML snippet sellers put on their own website."""
from flask import current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _

from ..auth import current_actor
from ..extensions import db
from ..formatting import format_money
from ..forms import optional_id, run_action
from ..links import external_url
from ..models import ActivationRequest, ActivationState
from ..pagination import page_number
from ..services import activation_requests
from .billing import billing_view
from .forms import ActivationApprovalForm, ActivationRejectionForm


@billing_view("/billing/activation-requests")
def activation_list():
    state = request.args.get("state", ActivationState.PENDING)
    page = db.paginate(activation_requests.requests(state if ActivationState.has(state) else None),
                       page=page_number(request.args), per_page=current_app.config["ITEMS_PER_PAGE"],
                       error_out=False)
    packages = activation_requests.form_packages()
    snippet_package = next((p for p in packages if p.id == optional_id(request.args.get("snippet"))), None)
    form_url = external_url("portal.activate", **({"package": snippet_package.id} if snippet_package else {}))
    return render_template("admin/activation_requests.html", page=page, state=state, states=list(ActivationState),
                           packages=packages, approval_form=ActivationApprovalForm(),
                           rejection_form=ActivationRejectionForm(), snippet_package=snippet_package,
                           form_url=form_url)


@billing_view("/billing/activation-requests/<int:request_id>/approve", methods=["POST"])
def activation_approve(request_id: int):
    db.get_or_404(ActivationRequest, request_id)
    form = ActivationApprovalForm()
    if form.validate_on_submit():
        ok, order = run_action(activation_requests.approve, request_id, form.package_id.data, current_actor())
        if ok:
            flash(_("Order %(number)s is placed, paid by bank transfer and active; the customer is told.",
                    number=order.number), "success")
            excess = activation_requests.excess_minor(db.session.get(ActivationRequest, request_id))
            if excess:
                flash(_("The customer says they sent %(excess)s more than the order's total. Only the total is "
                        "recorded; once the bank account shows the rest, add it to their account balance with a "
                        "reason.", excess=format_money(excess, order.currency)), "warning")
    return redirect(url_for("admin.activation_list"))


@billing_view("/billing/activation-requests/<int:request_id>/reject", methods=["POST"])
def activation_reject(request_id: int):
    db.get_or_404(ActivationRequest, request_id)
    form = ActivationRejectionForm()
    if form.validate_on_submit() and run_action(activation_requests.reject, request_id, form.reason.data,
                                                current_actor())[0]:
        flash(_("The request is rejected; the customer is told why."), "success")
    return redirect(url_for("admin.activation_list"))
