"""Billing → Cancellation Requests: agents approve or reject subscribers' requests to end (DT)."""
from flask import current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _

from ..auth import current_actor
from ..clock import now
from ..extensions import db
from ..forms import run_action
from ..models import CancellationRequest, CancellationState, RefundDestination
from ..pagination import page_number
from ..payments import gateways
from ..services import cancellations, holdings, refunds
from .billing import billing_view
from .forms import DecisionForm


@billing_view("/billing/cancellations")
def cancellation_list():
    state = request.args.get("state", "pending")
    page = db.paginate(cancellations.requests(state if CancellationState.has(state) else None),
                       page=page_number(request.args),
                       per_page=current_app.config["ITEMS_PER_PAGE"], error_out=False)
    waiting = [r for r in page.items if r.state == CancellationState.PENDING]
    periods = {r.id: holdings.current_period_end(r.customer) for r in waiting}
    ahead = {r.id: cancellations.renewals_ahead(r.customer, now()) for r in waiting}
    return render_template("admin/cancellations.html", page=page, state=state, states=list(CancellationState),
                           form=DecisionForm(), period_ends=periods, renewals=ahead)


@billing_view("/billing/cancellations/<int:request_id>/<any(approve, reject):decision>", methods=["POST"])
def cancellation_decide(request_id: int, decision: str):
    cancellation = db.get_or_404(CancellationRequest, request_id)
    form = DecisionForm()
    if form.validate_on_submit():
        if decision == "approve":
            destination = {"balance": RefundDestination.BALANCE, "bank": RefundDestination.CARD}.get(
                form.refund_renewals.data)
            ok, to_card = run_action(cancellations.approve, cancellation, current_actor(), form.note.data,
                                     refund_renewals=destination)
        else:
            ok, to_card = run_action(cancellations.reject, cancellation, current_actor(), form.note.data)
        for order in to_card or []:  # recorded and committed: now the bank is asked
            run_action(refunds.send, order, gateways.gateway(), current_actor())
        if ok and decision == "approve":
            cancellation = db.session.get(CancellationRequest, request_id)
            flash(_("The subscription of %(name)s ends on %(date)s.", name=cancellation.customer.display_name,
                    date=cancellation.ends_at.date().isoformat()), "success")
        elif ok:
            flash(_("The request of %(name)s is rejected.", name=cancellation.customer.display_name), "success")
    return redirect(url_for("admin.cancellation_list"))
