"""Billing → Promo Codes (agents with `billing`)."""
from flask import flash, redirect, render_template, url_for
from flask_babel import gettext as _
from wtforms.fields.choices import SelectChoice

from ..auth import current_actor
from ..extensions import db
from ..forms import run_action, run_service
from ..models import PromoCode
from ..services import packages, promo_codes
from .billing import billing_view
from .forms import PromoCodeForm, ToggleForm


@billing_view("/billing/promo-codes", methods=["GET", "POST"])
def promo_code_list():
    form = PromoCodeForm()
    form.package_ids.choices = [SelectChoice(p.id, p.name) for p in packages.list_packages()]
    if form.validate_on_submit():
        ok, promo = run_service(form, promo_codes.create, {
            "code": form.code.data, "kind": form.kind.data, "value": form.value.data,
            "currency": form.currency.data, "valid_from": form.valid_from.data, "valid_until": form.valid_until.data,
            "max_uses": form.max_uses.data, "package_ids": form.package_ids.data,
        }, current_actor())
        if ok:
            flash(_("Promo code %(code)s is created.", code=promo.code), "success")
            return redirect(url_for("admin.promo_code_list"))
    return render_template("admin/promo_codes.html", form=form, codes=promo_codes.all_codes(),
                           toggle_form=ToggleForm(),
                           package_names={p.id: p.name for p in packages.list_packages(include_archived=True)})


@billing_view("/billing/promo-codes/<int:promo_id>/active", methods=["POST"])
def promo_code_active(promo_id: int):
    promo = db.get_or_404(PromoCode, promo_id)
    form = ToggleForm()
    if form.validate_on_submit() and run_action(promo_codes.set_active, promo, form.enabled.data, current_actor())[0]:
        flash(_("%(code)s can be used.", code=promo.code) if promo.active
              else _("%(code)s can no longer be used.", code=promo.code), "success")
    return redirect(url_for("admin.promo_code_list"))
