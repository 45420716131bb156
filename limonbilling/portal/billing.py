"""The customer's package pages (only while the Paid VIP Support System is on)."""
from flask import current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _

from ..auth import current_actor, current_customer, vip_required
from ..forms import run_service
from ..models import LedgerEntry
from ..pagination import keyset_page
from ..services import balance, cancellations, entitlements, holdings, ledger, purchase_rules
from ..services import packages as catalog
from . import bp
from .forms import CancellationRequestForm


@bp.route("/packages")
@vip_required
def packages():
    """On-sale packages by type, each with what buying it would do for this customer (rules 1–4)."""
    customer = current_customer()
    on_sale = catalog.on_sale()
    offers = list(zip(on_sale, purchase_rules.preview_purchases(customer, on_sale), strict=True))
    return render_template(
        "portal/packages.html",
        entitlement=entitlements.entitlement(customer),
        credit_offers=[offer for offer in offers if offer[0].type == "credit"],
        subscription_offers=[offer for offer in offers if offer[0].type == "subscription"],
        balances=balance.amounts(customer),
    )


@bp.route("/usage")
@vip_required
def usage():
    """My usage: every movement of the credit balance, with the ticket, chat or order it came from."""
    customer = current_customer()
    page = keyset_page(ledger.entries(customer.id).order_by(None), LedgerEntry.id,
                       before=request.args.get("before", type=int), after=request.args.get("after", type=int),
                       per_page=current_app.config["ITEMS_PER_PAGE"])
    causes = ledger.causes(page.items)
    return render_template("portal/usage.html", page=page, causes=causes,
                           descriptions=ledger.customer_descriptions(page.items, causes),
                           entitlement=entitlements.entitlement(customer))


@bp.route("/subscription/cancel", methods=["GET", "POST"])
@vip_required
def subscription_cancel():
    """A subscriber asks to end the subscription now or at the end of the period; an agent decides."""
    customer = current_customer()
    form = CancellationRequestForm()
    if form.validate_on_submit():
        ok, _request = run_service(form, cancellations.request_cancellation, customer, timing=form.timing.data,
                                   reason=form.reason.data, actor=current_actor())
        if ok:
            flash(_("Your request is sent. We will answer it soon."), "success")
            return redirect(url_for("portal.subscription_cancel"))
    return render_template("portal/subscription_cancel.html", form=form,
                           pending=cancellations.pending_request(customer),
                           latest=cancellations.latest_request(customer),
                           period_end=holdings.current_period_end(customer))
