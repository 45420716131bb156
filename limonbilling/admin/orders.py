"""Billing → Orders: the list agents review, the order detail, and the WHMCS actions."""
from datetime import datetime, timedelta
from decimal import Decimal

from flask import current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_babel import ngettext
from sqlalchemy import select
from sqlalchemy.orm import contains_eager
from wtforms.fields.choices import SelectChoice

from ..auth import current_actor, current_agent
from ..clock import day_start
from ..csv_export import csv_response
from ..extensions import db
from ..formatting import format_money
from ..forms import ButtonForm, run_action, run_service
from ..labels import label
from ..models import (
    BalanceEntry,
    Customer,
    LedgerEntry,
    Notification,
    Order,
    OrderState,
    Package,
    RefundDestination,
)
from ..pagination import keyset_page
from ..payments import gateways
from ..services import (
    affiliates,
    balance,
    card_payments,
    customers,
    order_actions,
    order_statuses,
    packages,
    placement,
    purchase_rules,
    refunds,
    reports,
)
from .billing import billing_view
from .forms import AcceptForm, AffiliateAssignForm, CustomerSearchForm, PlaceOrderForm, RefundForm, SettleAttentionForm

PENDING_BADGE_MOST = 999  # the list's pending badge counts this far, then says "999+"

ACTIONS = {
    "cancel": (order_actions.cancel_order, _l("Order %(number)s is cancelled.")),
    "fraud": (order_actions.set_fraud, _l("Order %(number)s is marked as fraud.")),
    "pending": (order_actions.back_to_pending, _l("Order %(number)s is pending again.")),
}


def _filtered(args) -> tuple:
    """The order select for the list's filters: status (built-in or custom), search (number, customer),
    date range. Unordered: the list pages by id, the export sorts it."""
    statement = (select(Order).join(Customer, Customer.id == Order.customer_id)
                 .options(contains_eager(Order.customer)))  # one query for the page, not one per row
    status = args.get("status", "")
    if OrderState.has(status):
        statement = statement.where(Order.status == status)
    elif (custom_id := order_statuses.choice_id(status)) is not None:
        statement = statement.where(Order.custom_status_id == custom_id)
    query = args.get("q", "").strip()
    if query:
        if query.isdigit() and len(query) == 10:
            statement = statement.where(Order.number == query)
        else:
            # The matching customers first (an indexed search on PostgreSQL), then their orders.
            statement = statement.where(Order.customer_id.in_(select(Customer.id).where(customers.matching(query))))
    for name, bound in (("from", "start"), ("to", "end")):
        raw = args.get(name, "")
        try:
            day = datetime.strptime(raw, "%Y-%m-%d").date() if raw else None
        except ValueError:
            day = None
        if day is not None:
            if bound == "start":
                statement = statement.where(Order.created_at >= day_start(day))  # local days
            else:
                statement = statement.where(Order.created_at < day_start(day + timedelta(days=1)))
    filters = {k: args.get(k, "") for k in ("status", "q", "from", "to", "sort") if args.get(k)}
    return statement, filters


@billing_view("/billing/orders")
def order_list():
    statement, filters = _filtered(request.args)
    page = keyset_page(statement, Order.id, before=request.args.get("before", type=int),
                       after=request.args.get("after", type=int), per_page=current_app.config["ITEMS_PER_PAGE"],
                       oldest_first=filters.get("sort") == "oldest")
    pending = reports.pending_orders(at_most=PENDING_BADGE_MOST + 1)
    return render_template("admin/orders.html", page=page, filters=filters, pending=pending,
                           pending_most=PENDING_BADGE_MOST,
                           statuses=list(OrderState), custom_statuses=order_statuses.all_statuses(), form=ButtonForm())


@billing_view("/billing/orders.csv")
def order_export():
    """The filtered list as CSV, written by csv_export: names cannot become formulas, times carry their zone."""
    statement, _filters = _filtered(request.args)
    return csv_response("orders.csv", [
        "number", "created_at", "customer", "email", "package", "kind", "amount", "currency", "payment_method",
        "payment_status", "status",
    ], ([order.number, order.created_at, order.customer.display_name, order.customer.email, order.package_name,
         order.kind, Decimal(order.amount_minor).scaleb(-2), order.currency, order.payment_method,
         order.payment_status, order.status]
        for order in db.session.scalars(statement.order_by(Order.id.desc()))))


def order_or_404(number: str) -> Order:
    """The order with this number (the admin pages find orders by number, not by id), or 404."""
    return db.first_or_404(select(Order).where(Order.number == number))


@billing_view("/billing/orders/<number>")
def order_detail(number: str):
    order = order_or_404(number)
    grant_ids = [grant.id for grant in order.grants]
    entries = list(db.session.scalars(
        select(LedgerEntry).where(LedgerEntry.grant_id.in_(grant_ids)).order_by(LedgerEntry.id))) if grant_ids else []
    balance_entries = list(db.session.scalars(
        select(BalanceEntry).where(BalanceEntry.order_id == order.id).order_by(BalanceEntry.id)))
    messages = list(db.session.scalars(
        select(Notification).where(Notification.order_number == order.number).order_by(Notification.id)))
    return render_template("admin/order_detail.html", order=order, entries=entries, form=ButtonForm(),
                           accept_form=AcceptForm(), attention_form=SettleAttentionForm(),
                           balance_entries=balance_entries, messages=messages,
                           card_plan=refunds.card_plan(order),
                           payment_link=card_payments.has_payment_link(order),
                           affiliate_form=AffiliateAssignForm(affiliate_id=str(order.affiliate_id or ""))
                           .with_choices(affiliates.all_affiliates()))


@billing_view("/billing/orders/<number>/accept", methods=["POST"])
def order_accept(number: str):
    """Accept: with the day a bank transfer arrived, or an explicit reason to give a card order free."""
    order = order_or_404(number)
    form = AcceptForm()
    if form.validate_on_submit():
        if run_action(order_actions.accept_order, order, current_actor(), received_on=form.received_on.data,
                      free_reason=form.free_reason.data or None)[0]:
            flash(_("Order %(number)s is accepted.", number=number), "success")
    else:
        flash(_("Check the date: %(error)s", error=" ".join(form.received_on.errors + form.free_reason.errors)),
              "danger")
    return redirect(url_for("admin.order_detail", number=number))


@billing_view("/billing/orders/<number>/<any(cancel, fraud, pending):action>", methods=["POST"])
def order_action(number: str, action: str):
    order = order_or_404(number)
    if ButtonForm().validate_on_submit():
        handler, message = ACTIONS[action]
        if run_action(handler, order, current_actor())[0]:
            flash(message % {"number": number}, "success")
    return redirect(url_for("admin.order_detail", number=number))


@billing_view("/billing/orders/<number>/attention", methods=["POST"])
def order_settle_attention(number: str):
    """The agent settled what the order was flagged for (kept the money, or returned it outside the system)."""
    order = order_or_404(number)
    form = SettleAttentionForm()
    if not form.validate_on_submit():
        flash(" ".join(form.note.errors), "danger")
    elif run_action(order_actions.settle_attention, order, form.note.data, current_actor())[0]:
        flash(_("Order %(number)s no longer needs attention.", number=number), "success")
    return redirect(url_for("admin.order_detail", number=number))


@billing_view("/billing/orders/<number>/payment-link", methods=["POST"])
def order_resend_payment_link(number: str):
    """Mail the card payment link of an order an agent placed again; it works a week from now."""
    order = order_or_404(number)
    if ButtonForm().validate_on_submit():
        ok, sent = run_action(card_payments.resend_payment_link, order, current_actor())
        if ok:
            flash(_("The payment link is mailed to the customer again.") if sent else
                  _("The payment link was mailed less than a minute ago; it is not sent twice."),
                  "success" if sent else "info")
    return redirect(url_for("admin.order_detail", number=number))


@billing_view("/billing/orders/<number>/ask-bank", methods=["POST"])
def order_ask_bank(number: str):
    """Ask the bank about the order's attempts without a final answer and its refunds in flight."""
    order = order_or_404(number)
    if ButtonForm().validate_on_submit():
        ok, lines = run_action(card_payments.ask_bank, order, gateways.gateway(), current_actor())
        if ok:
            for line in lines or [_("Nothing is waiting for the bank.")]:
                flash(line, "info")
    return redirect(url_for("admin.order_detail", number=number))


@billing_view("/billing/orders/<number>/delete", methods=["GET", "POST"])
def order_delete(number: str):
    """Delete needs an explicit confirmation step: it cannot be undone."""
    order = order_or_404(number)
    form = ButtonForm()
    if form.validate_on_submit() and request.form.get("confirm") == number:
        if not run_action(order_actions.delete_order, order, current_actor())[0]:
            return redirect(url_for("admin.order_detail", number=number))
        flash(_("Order %(number)s is deleted. The audit log keeps the record.", number=number), "success")
        return redirect(url_for("admin.order_list"))
    if request.method == "POST":
        flash(_("Type the order number to confirm the deletion."), "warning")
    return render_template("admin/order_delete.html", order=order, form=form)


@billing_view("/billing/orders/bulk", methods=["POST"])
def order_bulk():
    """Bulk status change: only the status moves, no payment or entitlement command runs."""
    numbers = request.form.getlist("numbers")
    form = ButtonForm()
    if form.validate_on_submit() and numbers:
        selected = list(db.session.scalars(select(Order).where(Order.number.in_(numbers))))
        status = request.form.get("status", "")
        ok, result = run_service(form, order_actions.bulk_set_status, selected, status, current_actor())
        if ok:
            count, skipped = result
            custom = selected[0].custom_status if selected else None
            flash(ngettext("%(num)d order set to %(status)s.", "%(num)d orders set to %(status)s.", count,
                           status=custom.name if custom else label(status, "order_status")), "success")
            if skipped:
                flash(_("Left as they were (the status does not fit them; use the order's own actions): "
                        "%(numbers)s", numbers=", ".join(skipped)), "warning")
        else:
            flash(form.form_errors[-1], "warning")
    else:
        flash(_("Choose orders and a status."), "warning")
    return redirect(url_for("admin.order_list", status=request.form.get("back_status") or None))


@billing_view("/billing/orders/<number>/refund", methods=["GET", "POST"])
def order_refund(number: str):
    """Cancel & Refund, after a confirmation page that says what will happen: the money goes back to the
    card (Void or Credit at the bank) or to the customer's account balance, all of it (the order is then
    cancelled) or a part."""
    order = order_or_404(number)
    form = RefundForm()
    plan = refunds.card_plan(order)
    if not plan:
        form.to.choices = [choice for choice in form.to.choices if choice.value == "balance"]
        form.to.data = form.to.data if request.method == "POST" else "balance"
    if form.validate_on_submit():
        try:
            amount = packages.parse_price(form.amount.data) if (form.amount.data or "").strip() else None
        except ValueError as error:
            form.amount.errors = [str(error)]
        else:
            outcome = _refund(order, form, amount)
            if outcome is not None:
                flash(_REFUND_OUTCOMES[outcome] % {"number": number}, "success" if outcome == "refunded" else "warning")
                return redirect(url_for("admin.order_detail", number=number))
    return render_template("admin/order_refund.html", order=order, form=form, plan=plan,
                           refundable=order.refundable_minor > 0)


_REFUND_OUTCOMES = {
    "refunded": _l("The refund of order %(number)s is made."),
    "unknown": _l("The bank did not answer: the refund of %(number)s is unknown. Ask the bank later from this page; "
                  "its status is checked first, so nothing is refunded twice."),
    "failed": _l("The bank refused the refund of order %(number)s; the order page says why. The money stays "
                 "with us."),
}


def _refund(order: Order, form: RefundForm, amount: int | None) -> str | None:
    """Record the refund and commit; a card refund then goes to the bank and its answer is committed too."""
    to = RefundDestination.BALANCE if form.to.data == "balance" else RefundDestination.CARD
    if not run_service(form, refunds.start, order, to=to, actor=current_actor(), amount_minor=amount)[0]:
        return None
    if to == RefundDestination.BALANCE:
        return "refunded"
    return run_service(form, refunds.send, order, gateways.gateway(), current_actor())[1]


CUSTOMER_PICKS = 20  # customers the "Add new order" search shows; more: narrow the search


@billing_view("/billing/orders/new")
def order_new():
    """Add new order: find the customer (any customer, also one who never bought), then the order form."""
    form = CustomerSearchForm(request.args)
    query = (form.q.data or "").strip()
    found = list(db.session.scalars(customers.search(query).limit(CUSTOMER_PICKS + 1))) if query else []
    return render_template("admin/order_new.html", form=form, query=query, found=found[:CUSTOMER_PICKS],
                           more=len(found) > CUSTOMER_PICKS)


@billing_view("/billing/customers/<int:customer_id>/orders/new", methods=["GET", "POST"])
def order_place(customer_id: int):
    """An agent places an order for a customer: package, quantity, payment method (a card order mails the
    customer a payment link), promo code, price override."""
    customer = db.get_or_404(Customer, customer_id)
    form = PlaceOrderForm()
    form.package_id.choices = [SelectChoice(p.id, f"{p.name} · {format_money(p.price_minor, p.currency)}")
                               for p in packages.list_packages()]
    if form.validate_on_submit():
        package = db.session.get(Package, form.package_id.data)
        try:
            override = packages.parse_price_override(form.price_override.data)
        except ValueError as error:
            form.price_override.errors = [str(error)]
        else:
            agent = current_agent()
            ok, order = run_service(
                form, placement.place_agent_order, customer, package, payment_method=form.payment_method.data,
                actor=current_actor(), ip=request.remote_addr, promo_code=form.promo_code.data, placed_by=agent,
                price_override_minor=override, quantity=form.quantity.data or 1,
                create_invoice=form.create_invoice.data,
                send_confirmation=form.send_confirmation.data,
                send_invoice=form.send_invoice.data and form.create_invoice.data,
            )
            if ok:
                flash(_("Order %(number)s is placed.", number=order.number), "success")
                return redirect(url_for("admin.order_detail", number=order.number))
    return render_template("admin/order_place.html", form=form, customer=customer,
                           balances=balance.amounts(customer), preview=_previews(customer),
                           package_labels={choice.value: choice.label for choice in form.package_id.choices})


def _previews(customer: Customer) -> dict:
    """What buying each package would do for this customer now (allowed or why not)."""
    offered = packages.list_packages()
    return {package.id: preview for package, preview in zip(
        offered, purchase_rules.preview_purchases(customer, offered, allow_off_sale=True), strict=True)}
