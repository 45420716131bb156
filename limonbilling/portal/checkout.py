"""Checkout by card (NestPay 3D_PAY), the bank's callbacks, and the customer's orders.

The card number travels from the customer's POST into the auto-submitting
bank form and nowhere else: it is not stored, logged, kept in the session or
echoed in an error.
"""
from flask import abort, current_app, flash, make_response, redirect, render_template, request, url_for
from flask_babel import get_locale
from flask_babel import gettext as _

from .. import security
from ..auth import current_actor, current_customer, public, vip_required
from ..extensions import csrf, db
from ..forms import ButtonForm, run_action, run_service
from ..invoice_responses import invoice_pdf_response
from ..links import external_url
from ..models import Order, Package
from ..pagination import page_number
from ..payments import gateways
from ..payments.base import PaymentGateway
from ..payments.cards import parse_card
from ..services import (
    affiliates,
    audit,
    balance,
    bank_transfer,
    card_payments,
    contracts,
    instalments,
    order_actions,
    orders,
    placement,
    purchase_rules,
    refunds,
)
from . import bp
from .forms import ActivationRequestForm, CheckoutForm, PromoCodeForm


def _package_on_sale_or_404(package_id: int) -> Package:
    package = db.get_or_404(Package, package_id)
    if not package.on_sale or package.archived:
        abort(404)
    return package


def _order_or_404(number: str) -> Order:
    """The signed-in customer's own order by its number; another customer's is 404, as one that does not exist."""
    order = orders.customer_order(current_customer(), number)
    if order is None:
        abort(404)
    return order


def _bank_form(gateway: PaymentGateway, order: Order, form: CheckoutForm) -> tuple[str, dict]:
    """Create a payment attempt; the address and fields of the auto-submitting form to the bank's gate."""
    card = None
    if gateway.card_on_our_page:
        card = parse_card(form.card_number.data, form.card_expiry.data, form.card_cvv.data)
    attempt = card_payments.start_card_payment(order, gateway.name)
    customer = current_customer()
    return gateway.payment_form(
        reference=attempt.oid, amount_minor=attempt.amount_minor, currency=attempt.currency,
        ok_url=external_url("portal.nestpay_callback", outcome="ok"),
        fail_url=external_url("portal.nestpay_callback", outcome="fail"),
        lang="tr" if str(get_locale()).startswith("tr") else "en",
        card=card, email=customer.email, name=customer.full_name, instalments=attempt.instalments,
    )


def _to_bank(order: Order, bank_form: tuple[str, dict]):
    """The auto-submitting form to the bank's gate (its attempt is committed)."""
    action, fields = bank_form
    response = make_response(render_template("portal/to_bank.html", action=action, fields=fields, order=order))
    response.headers["Cache-Control"] = "no-store"
    response.headers["Content-Security-Policy"] = security.policy(form_action_to=action)
    return response


def _checkout_page(package: Package, form: CheckoutForm, promo_code: str | None, status: int = 200):
    """The checkout page: what the purchase does, the price with any promo code, and the ways to pay."""
    customer = current_customer()
    preview = purchase_rules.preview_purchase(customer, package)
    promo_form = PromoCodeForm(data={"promo": promo_code or ""})
    ok, price = run_service(promo_form, placement.quote, package, promo_code)
    if ok:
        form.promo_code.data = price.promo.code if price.promo else ""
    else:  # the code is refused: say why next to it, and show the price without it
        promo_form.promo.errors, promo_form.form_errors = promo_form.form_errors, []
        form.promo_code.data = ""
        price = placement.quote(package)
    form.forget_card()
    return render_template(
        "portal/checkout.html", form=form, promo_form=promo_form, package=package, preview=preview,
        price=price, refusal=placement.checkout_refusal(customer), gateway=gateways.gateway(), order=None,
        instalment_options=instalments.offered(price.total_minor, package.currency),
        transfer_accounts=bank_transfer.accounts_for(package.currency),
        balance_minor=balance.amount(customer, package.currency),
        contracts=contracts.contracts_for(contracts.Purchase.at_checkout(customer, package, price.total_minor,
                                                                         price.vat_minor), get_locale().language),
    ), status


def _forfeit_confirmed(package: Package, form: CheckoutForm) -> bool:
    """A purchase that forfeits credits or a subscription (rule 4) needs the box ticked."""
    preview = purchase_rules.preview_purchase(current_customer(), package)
    if preview.forfeits_something and not form.accept_forfeit.data:
        form.accept_forfeit.errors = [_("Tick the box to confirm what you give up.")]
        return False
    return True


def _place_order(package: Package, form: CheckoutForm, payment_method: str) -> Order:
    return placement.place_customer_order(current_customer(), package, payment_method=payment_method,
                                          actor=current_actor(), ip=request.remote_addr,
                                          contracts_accepted=form.accept_contracts.data,
                                          language=get_locale().language,
                                          promo_code=form.promo_code.data, note=form.note.data,
                                          affiliate=affiliates.referrer(request.cookies.get(affiliates.REFERRAL_COOKIE)),
                                          instalment_count=form.instalments.data if payment_method == "card" else 1)


def _place_card_order(gateway: PaymentGateway, package: Package, form: CheckoutForm):
    """The card order and its first attempt in one unit of work: a card the bank form refuses leaves no order
    behind to block the next try (rule 7). An order held for review goes to no bank: (order, None)."""
    order = _place_order(package, form, "card")
    return order, None if order.under_review else _bank_form(gateway, order, form)


def after_placing(order: Order):
    """Orders that did not go to the bank: held for review as fraud, or paid from the balance."""
    if order.under_review:
        flash(_("Order %(number)s needs a review by our team before it can go ahead; we will contact you.",
                number=order.number), "warning")
    elif order.payment_method == "account_balance":
        flash(_("Order %(number)s is paid from your account balance.", number=order.number), "success")
    else:
        flash(_("Order %(number)s is placed. Make the transfer, then send us the activation request below.",
                number=order.number), "success")
    return redirect(url_for("portal.order_detail", number=order.number))


@bp.route("/checkout/<int:package_id>", methods=["GET", "POST"])
@vip_required
def checkout(package_id: int):
    """Show what the purchase will do and take the card; confirming creates the order and goes to the bank."""
    package = _package_on_sale_or_404(package_id)
    form = CheckoutForm()
    gateway = gateways.gateway()
    if form.validate_on_submit() and gateway.is_available():
        if _forfeit_confirmed(package, form):
            ok, placed = run_service(form, _place_card_order, gateway, package, form)
            if ok:
                order, bank_form = placed
                return after_placing(order) if bank_form is None else _to_bank(order, bank_form)
        return _checkout_page(package, form, form.promo_code.data, 422)
    return _checkout_page(package, form, request.args.get("promo"))


@bp.route("/checkout/<int:package_id>/<any(transfer, balance):method>", methods=["POST"])
@vip_required
def checkout_other(package_id: int, method: str):
    """Order now and pay by bank transfer (the order page then takes the activation request)
    or from the account balance (paid at once)."""
    package = _package_on_sale_or_404(package_id)
    form = CheckoutForm()
    if not form.validate_on_submit():
        if form.note.errors:  # a note too long: said next to it, with what was written
            return _checkout_page(package, form, form.promo_code.data, 422)
        return redirect(url_for("portal.checkout", package_id=package_id))
    if _forfeit_confirmed(package, form):
        ok, order = run_service(form, _place_order, package, form,
                                "bank_transfer" if method == "transfer" else "account_balance")
        if ok:
            return after_placing(order)
    return _checkout_page(package, form, form.promo_code.data, 422)


def _order_page(order: Order, request_form: ActivationRequestForm | None = None, status: int = 200):
    """The customer's order page; an activation request just refused replaces the blank one (with its errors)."""
    if request_form is None:
        customer = current_customer()
        request_form = ActivationRequestForm(formdata=None, data={"email": customer.email, "phone": customer.phone})
    return render_template("portal/order.html", order=order, gateway=gateways.gateway(), form=ButtonForm(),
                           request_form=request_form,
                           transfer_accounts=bank_transfer.accounts_for(order.currency)), status


@bp.route("/orders/<number>/activation-request", methods=["POST"])
@vip_required
def activation_request(number: str):
    order = _order_or_404(number)
    form = ActivationRequestForm()
    if form.validate_on_submit():
        ok, _request = run_service(form, bank_transfer.request_activation, order, email=form.email.data,
                                   phone=form.phone.data, note=form.note.data, actor=current_actor())
        if ok:
            flash(_("Thank you. We activate your package as soon as we see the transfer."), "success")
        elif form.form_errors:  # the order no longer takes a request: said on the order page
            flash(form.form_errors[-1], "danger")
        else:
            return _order_page(order, request_form=form, status=422)
    return redirect(url_for("portal.order_detail", number=number))


@bp.route("/orders/<number>/pay", methods=["GET", "POST"])
@vip_required
def pay_order(number: str):
    """Try the card payment of an unpaid order again (after a decline or a 3-D failure)."""
    order = _order_or_404(number)
    gateway = gateways.gateway()
    form = CheckoutForm()
    if not order.awaiting_payment:
        flash(_("This order is not waiting for a card payment."), "info")
        return redirect(url_for("portal.order_detail", number=order.number))
    if form.validate_on_submit() and gateway.is_available():
        ok, bank_form = run_service(form, _bank_form, gateway, order, form)
        if ok:
            return _to_bank(order, bank_form)
    form.forget_card()
    return render_template(
        "portal/checkout.html", form=form, package=None, preview=None, gateway=gateway, order=order,
    )


@bp.route("/pay/<token>")
@vip_required
def payment_link(token: str):
    """The payment link mailed with an agent's card order: after sign-in (the portal asks first, then comes
    back here), the card checkout of that order, if the link still works for this customer."""
    ok, order = run_action(card_payments.payment_link_order, token, current_customer())
    if not ok:
        return redirect(url_for("portal.order_list"))
    return redirect(url_for("portal.pay_order", number=order.number))


@bp.url_value_preprocessor
def limit_bank_callback(endpoint: str | None, _values) -> None:
    """The bank sends a few kilobytes of form fields, and anyone may post to its address: more is refused (413).
    Set here because this runs before every before_request hook, and those read the form."""
    if endpoint == "portal.nestpay_callback":
        request.max_content_length = current_app.config["NESTPAY_CALLBACK_MAX_LENGTH"]


def _apply_bank_answer(gateway: PaymentGateway, fields: dict, bank: audit.Actor):
    """The bank's answer applied, with what the redirect needs read before the commit (which would expire the
    order and cost a new transaction to read it again)."""
    order = card_payments.apply_card_callback(gateway, fields, bank)
    return (order, order.number, order.refund_in_flight) if order is not None else (None, None, False)


@bp.route("/payments/nestpay/<any(ok, fail):outcome>", methods=["GET", "POST"])
@public
@csrf.exempt
def nestpay_callback(outcome: str):
    """The bank's answer (okUrl / failUrl). Untrusted: it counts only after every check of the protocol.

    It does not rely on the customer's session: a cross-site POST from the
    bank does not carry a SameSite=Lax cookie. Processed once, then a 303 to the order page.
    """
    fields = request.form.to_dict() if request.method == "POST" else request.args.to_dict()
    bank = audit.Actor("system", None, "nestpay", request.remote_addr)
    gateway = gateways.gateway()
    if not gateway.is_set_up():
        abort(404)  # never set up: no bank sends answers here
    _ok, answered = run_action(_apply_bank_answer, gateway, fields, bank)
    order, number, returning = answered or (None, None, False)
    if returning:  # money we did not accept goes back to the card now
        run_action(refunds.send, order, gateway, bank)
    if number is None:
        current_app.logger.warning("NestPay callback for an unknown order")
        return redirect(url_for("portal.order_list"), code=303)
    return redirect(url_for("portal.order_detail", number=number), code=303)


@bp.route("/orders")
@vip_required
def order_list():
    page = db.paginate(orders.customer_orders(current_customer()), page=page_number(request.args),
                       per_page=current_app.config["ITEMS_PER_PAGE"], error_out=False)
    return render_template("portal/orders.html", page=page)


@bp.route("/orders/<number>")
@vip_required
def order_detail(number: str):
    return _order_page(_order_or_404(number))


@bp.route("/orders/<number>/cancel", methods=["POST"])
@vip_required
def cancel_order(number: str):
    """The customer gives up an unpaid order, so a new one can start (rule 7)."""
    order = _order_or_404(number)
    if ButtonForm().validate_on_submit() and run_action(order_actions.cancel_unpaid_order, order, current_actor())[0]:
        flash(_("Order %(number)s is cancelled.", number=order.number), "success")
    return redirect(url_for("portal.order_detail", number=order.number))


@bp.route("/orders/<number>/invoice")
@vip_required
def order_invoice(number: str):
    order = _order_or_404(number)
    if order.invoice is None:
        abort(404)
    return render_template("portal/invoice.html", invoice=order.invoice, order=order)


@bp.route("/orders/<number>/invoice.pdf")
@vip_required
def order_invoice_pdf(number: str):
    return invoice_pdf_response(_order_or_404(number).invoice, for_customer=True)
