"""Billing → Affiliates (agents with `billing`): who refers customers, their orders and commission due, and
the affiliate of an order, set by hand on its page."""
from decimal import Decimal

from flask import current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _

from ..auth import current_actor
from ..csv_export import csv_response
from ..extensions import db
from ..forms import run_action, run_service
from ..models import Affiliate, Order
from ..pagination import keyset_page
from ..services import affiliates
from .billing import billing_view
from .forms import AffiliateAssignForm, AffiliateForm, ToggleForm
from .orders import order_or_404


@billing_view("/billing/affiliates", methods=["GET", "POST"])
def affiliate_list():
    form = AffiliateForm()
    if form.validate_on_submit():
        ok, affiliate = run_service(form, affiliates.create, form.values(), current_actor())
        if ok:
            flash(_("Affiliate %(name)s is created; its link is %(link)s.", name=affiliate.name,
                    link=url_for("portal.home", ref=affiliate.code, _external=True)), "success")
            return redirect(url_for("admin.affiliate_list"))
    return render_template("admin/affiliates.html", form=form, rows=affiliates.earnings(), toggle_form=ToggleForm())


@billing_view("/billing/affiliates.csv")
def affiliate_export():
    """One line per affiliate and currency it was paid in (one line with no currency when nothing yet)."""
    def lines():
        for row in affiliates.earnings():
            affiliate = row.affiliate
            start = [affiliate.name, affiliate.code, affiliate.commission_percent, int(affiliate.active), row.orders]
            for currency, kept in row.paid.items() or [("", 0)]:
                yield [*start, currency, Decimal(kept).scaleb(-2),
                       Decimal(row.commission.get(currency, 0)).scaleb(-2)]

    return csv_response("affiliates.csv", ["name", "code", "commission_percent", "active", "orders", "currency",
                                           "paid", "commission"], lines())


@billing_view("/billing/affiliates/<int:affiliate_id>", methods=["GET", "POST"])
def affiliate_detail(affiliate_id: int):
    """The affiliate's figures, its details to edit, and its orders newest first."""
    affiliate = db.get_or_404(Affiliate, affiliate_id)
    form = AffiliateForm(obj=affiliate)
    if form.validate_on_submit():
        if run_service(form, affiliates.update, affiliate, form.values(), current_actor())[0]:
            flash(_("Affiliate %(name)s is saved.", name=affiliate.name), "success")
            return redirect(url_for("admin.affiliate_detail", affiliate_id=affiliate.id))
    page = keyset_page(affiliates.orders_of(affiliate), Order.id, before=request.args.get("before", type=int),
                       after=request.args.get("after", type=int), per_page=current_app.config["ITEMS_PER_PAGE"])
    return render_template("admin/affiliate_detail.html", affiliate=affiliate, form=form, page=page,
                           row=affiliates.earnings(affiliate.id)[0], toggle_form=ToggleForm())


@billing_view("/billing/affiliates/<int:affiliate_id>/active", methods=["POST"])
def affiliate_active(affiliate_id: int):
    affiliate = db.get_or_404(Affiliate, affiliate_id)
    form = ToggleForm()
    if form.validate_on_submit() and run_action(affiliates.set_active, affiliate, form.enabled.data,
                                                current_actor())[0]:
        flash(_("%(name)s refers customers again.", name=affiliate.name) if affiliate.active
              else _("%(name)s no longer refers customers: its link is ignored.", name=affiliate.name), "success")
    if request.form.get("back") == "detail":
        return redirect(url_for("admin.affiliate_detail", affiliate_id=affiliate.id))
    return redirect(url_for("admin.affiliate_list"))


@billing_view("/billing/orders/<number>/affiliate", methods=["POST"])
def order_affiliate(number: str):
    """Assign, change or clear the affiliate of an order (WHMCS: the affiliate who referred them)."""
    order = order_or_404(number)
    form = AffiliateAssignForm().with_choices(affiliates.all_affiliates())
    if form.validate_on_submit():
        chosen = int(form.affiliate_id.data) if form.affiliate_id.data else None
        ok, changed = run_action(affiliates.assign, order, chosen, current_actor())
        if ok:
            flash(_("The affiliate of order %(number)s is saved.", number=number) if changed
                  else _("Order %(number)s already had this affiliate.", number=number),
                  "success" if changed else "info")
    else:
        flash(_("Choose an affiliate from the list."), "danger")
    return redirect(url_for("admin.order_detail", number=number))
