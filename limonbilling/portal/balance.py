"""The customer's account balance: its history (payments, refunds to the balance, top-ups, agents' adjustments)
and adding money to it by card or bank transfer (services/top_ups.py)."""
from flask import current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _

from ..auth import current_actor, current_customer, vip_required
from ..forms import run_service
from ..models import BalanceEntry
from ..pagination import keyset_page
from ..payments import gateways
from ..services import balance, bank_transfer, placement, top_ups
from . import bp
from .checkout import after_placing
from .forms import TopUpForm


def _page(form: TopUpForm, status: int = 200):
    customer = current_customer()
    page = keyset_page(balance.entries(customer.id).order_by(None), BalanceEntry.id,
                       before=request.args.get("before", type=int), after=request.args.get("after", type=int),
                       per_page=current_app.config["ITEMS_PER_PAGE"])
    least, most = top_ups.limits()
    return render_template("portal/balance.html", page=page, form=form, balances=balance.amounts(customer),
                           least=least, most=most, currency=placement.TOP_UP_CURRENCY,
                           card=gateways.gateway().is_available(),
                           transfer=bool(bank_transfer.accounts_for(placement.TOP_UP_CURRENCY)),
                           refusal=placement.checkout_refusal(customer)), status


@bp.route("/balance")
@vip_required
def balance_history():
    """Every movement of the account balance, newest first, and the top-up form (its amount filled in from
    `?amount=`, as the checkout links it when the balance falls short of an order)."""
    return _page(TopUpForm(formdata=None, data={"amount": request.args.get("amount", "")[:20]}))


@bp.route("/balance/top-up/<any(card, transfer):method>", methods=["POST"])
@vip_required
def top_up(method: str):
    """Place a top-up order; by card the order's payment page takes the card to the bank (single payment), by
    transfer the order page shows the accounts and takes the activation request."""
    form = TopUpForm()
    if form.validate_on_submit():
        ok, order = run_service(form, placement.place_top_up, current_customer(), form.amount.data,
                                payment_method="card" if method == "card" else "bank_transfer",
                                actor=current_actor(), ip=request.remote_addr)
        if ok:
            if order.under_review:  # held by the fraud check: said as for any order
                return after_placing(order)
            if method == "card":
                return redirect(url_for("portal.pay_order", number=order.number))
            flash(_("Top-up order %(number)s is placed. Make the transfer, then send us the activation request "
                    "below.", number=order.number), "success")
            return redirect(url_for("portal.order_detail", number=order.number))
    return _page(form, 422)
