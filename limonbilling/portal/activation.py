"""The public activation form (xcPanel): someone who paid by bank transfer tells us, signed in or not.

Sellers link to it from their own website, with `?package=<id>` to choose the package beforehand (the snippet
is on Billing → Activation requests). The answer is the same whether the e-mail address had an account.
"""
from flask import redirect, render_template, request, session, url_for
from flask_babel import get_locale
from flask_babel import gettext as _

from ..auth import client_ip, current_customer, public, throttled, vip_required
from ..formatting import format_money
from ..forms import optional_id, run_service
from ..services import activation_requests, bank_transfer
from . import bp
from .forms import ActivationForm


def _package_choices(packages) -> list[tuple]:
    priced = ((package.id, f"{package.name} — {format_money(package.price_minor, package.currency)}")
              for package in packages)
    return [("", _("I am not sure")), *priced]


@bp.route("/activate", methods=["GET", "POST"])
@public
@vip_required
@throttled
def activate():
    customer = current_customer()
    packages = activation_requests.form_packages()
    form = ActivationForm()
    form.package_id.choices = _package_choices(packages)
    if request.method == "GET":
        chosen = next((p for p in packages if p.id == optional_id(request.args.get("package"))), None)
        if chosen is not None:
            form.package_id.data, form.currency.data = chosen.id, chosen.currency
        if customer is not None:
            form.email.data, form.phone.data = customer.email, customer.phone
            form.first_name.data, form.last_name.data = customer.first_name, customer.last_name
    status = 200
    if form.validate_on_submit():
        ok, _request = run_service(form, activation_requests.submit, form.fields(), signed_in=customer,
                                   language=str(get_locale()), ip=client_ip())
        if ok:
            session["activation_email"] = form.email.data.strip()
            return redirect(url_for("portal.activation_sent"))
    if request.method == "POST":
        status = 422
    accounts = [account for account in bank_transfer.all_accounts() if account.active]
    return render_template("portal/activate.html", form=form, accounts=accounts), status


@bp.route("/activate/sent")
@public
@vip_required
def activation_sent():
    """The same page whether the address was new, had an account, or had a request waiting already."""
    return render_template("portal/activate_sent.html", email=session.get("activation_email"))
