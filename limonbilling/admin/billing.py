"""Billing → Billing Packages and Paid Subscriptions (agents with `billing`, only while the module is on)."""
from functools import partial

from flask import current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from sqlalchemy import select

from ..auth import current_actor, requires, vip_required
from ..extensions import db
from ..formatting import format_money, plain_amount
from ..forms import ButtonForm, run_action, run_service
from ..models import Customer, Grant, LedgerEntry, Package
from ..pagination import keyset_page
from ..services import (
    balance,
    cancellations,
    customers,
    departments,
    entitlements,
    holdings,
    ledger,
    orders,
    packages,
    settings,
)
from . import bp
from .forms import BalanceAdjustmentForm, CreditAdjustmentForm, LowCreditThresholdForm, PackageForm, ToggleForm


def billing_view(*rules: str, **options):
    """Register a Billing view: needs the `billing` permission and the Paid VIP Support System."""

    def decorate(view):
        guarded = requires("billing")(vip_required(view))
        for rule in rules:
            bp.add_url_rule(rule, view_func=guarded, **options)
        return guarded

    return decorate


@billing_view("/billing/packages")
def package_list():
    return render_template(
        "admin/packages.html",
        packages=packages.list_packages(include_archived=request.args.get("archived") == "1"),
        show_archived=request.args.get("archived") == "1",
        toggle_form=ToggleForm(), button=ButtonForm(),
    )


@billing_view("/billing/packages/new", "/billing/packages/<int:package_id>/edit", methods=["GET", "POST"])
def package_edit(package_id: int | None = None):
    package = db.get_or_404(Package, package_id) if package_id else None
    form = PackageForm(obj=package)
    form.department_ids.choices = [(d.id, d.name) for d in departments.list_departments()]
    if request.method == "GET" and package is not None:
        form.price.data = plain_amount(package.price_minor)
        form.department_ids.data = package.department_ids
    if form.validate_on_submit():
        save = packages.create_package if package is None else partial(packages.update_package, package)
        if run_service(form, save, form.values(), current_actor())[0]:
            flash(_("Package %(name)s is saved.", name=form.name.data.strip()), "success")
            return redirect(url_for("admin.package_list"))
    return render_template("admin/package_form.html", form=form, package=package)


@billing_view("/billing/packages/<int:package_id>/sale", methods=["POST"])
def package_sale(package_id: int):
    package = db.get_or_404(Package, package_id)
    form = ToggleForm()
    if form.validate_on_submit():
        if run_action(packages.set_on_sale, package, form.enabled.data, current_actor())[0]:
            flash(_("%(name)s is on sale.", name=package.name) if package.on_sale
                  else _("%(name)s is off sale.", name=package.name), "success")
    return redirect(url_for("admin.package_list"))


@billing_view("/billing/packages/<int:package_id>/move/<any(up, down):direction>", methods=["POST"])
def package_move(package_id: int, direction: str):
    package = db.get_or_404(Package, package_id)
    if ButtonForm().validate_on_submit():
        run_action(packages.move, package, -1 if direction == "up" else 1, current_actor())
    return redirect(url_for("admin.package_list"))


@billing_view("/billing/packages/<int:package_id>/archive", methods=["POST"])
def package_archive(package_id: int):
    package = db.get_or_404(Package, package_id)
    if ButtonForm().validate_on_submit():
        name = package.name
        ok, outcome = run_action(packages.archive_or_delete, package, current_actor())
        if ok:
            flash(_("%(name)s is archived: it was sold, so it is kept.", name=name) if outcome == "archived"
                  else _("%(name)s is deleted.", name=name), "success")
    return redirect(url_for("admin.package_list"))


@billing_view("/billing/subscriptions")
def subscription_list():
    """Every customer holding a package, filterable by type and searchable."""
    package_type = request.args.get("type", "")
    query = request.args.get("q", "").strip()
    statement = customers.search(query).where(Customer.package_type.is_not(None))
    if package_type in ("credit", "subscription"):
        statement = statement.where(Customer.package_type == package_type)
    page = keyset_page(statement.order_by(None), Customer.id, before=request.args.get("before", type=int),
                       after=request.args.get("after", type=int), per_page=current_app.config["ITEMS_PER_PAGE"])
    rows = [(customer, entitlements.entitlement(customer)) for customer in page.items]
    return render_template("admin/subscriptions.html", page=page, rows=rows, package_type=package_type, query=query)


@billing_view("/billing/subscriptions/<int:customer_id>", methods=["GET", "POST"])
def subscription_detail(customer_id: int):
    customer = db.get_or_404(Customer, customer_id)
    form = CreditAdjustmentForm()
    if form.validate_on_submit():
        ok, entry = run_service(form, ledger.adjust_credits, customer, form.credits.data, form.reason.data,
                                current_actor())
        if ok:
            flash(_("Credits adjusted by %(credits)d; the balance is now %(balance)d.",
                    credits=entry.amount, balance=entry.balance_after), "success")
            return redirect(url_for("admin.subscription_detail", customer_id=customer.id))
    return _subscription_page(customer, form=form)


def _subscription_page(customer: Customer, *, form: CreditAdjustmentForm | None = None,
                       balance_form: BalanceAdjustmentForm | None = None,
                       threshold_form: LowCreditThresholdForm | None = None, status: int = 200):
    """The customer's subscription page with its three forms; the one just sent (with its errors) replaces
    its blank."""
    ledger_page = keyset_page(ledger.entries(customer.id).order_by(None), LedgerEntry.id,
                              before=request.args.get("before", type=int), after=request.args.get("after", type=int),
                              per_page=current_app.config["ITEMS_PER_PAGE"])
    grants = db.session.scalars(select(Grant).where(Grant.customer_id == customer.id).order_by(Grant.id.desc()))
    customer_orders = db.session.scalars(orders.customer_orders(customer).limit(50))
    return render_template(
        "admin/subscription_detail.html", customer=customer, entitlement=entitlements.entitlement(customer),
        grants=list(grants), orders=list(customer_orders), ledger_page=ledger_page,
        form=form or CreditAdjustmentForm(formdata=None),
        periods=holdings.subscription_periods(customer), balance_form=balance_form or BalanceAdjustmentForm(),
        balances=balance.amounts(customer),
        balance_entries=list(db.session.scalars(balance.entries(customer.id).limit(20))),
        cancellation=cancellations.pending_request(customer),
        threshold_form=threshold_form or LowCreditThresholdForm(
            formdata=None, low_credit_threshold=customer.low_credit_threshold),
        global_threshold=settings.get("low_credit_threshold"),
    ), status


@billing_view("/billing/subscriptions/<int:customer_id>/low-credit-threshold", methods=["POST"])
def low_credit_threshold(customer_id: int):
    """When this customer is warned that credits run low (empty: the global setting)."""
    customer = db.get_or_404(Customer, customer_id)
    form = LowCreditThresholdForm()
    if form.validate_on_submit():
        if run_service(form, customers.set_low_credit_threshold, customer, form.low_credit_threshold.data,
                       current_actor())[0]:
            flash(_("The low-credit warning threshold is saved."), "success")
            return redirect(url_for("admin.subscription_detail", customer_id=customer.id))
    return _subscription_page(customer, threshold_form=form, status=422)


@billing_view("/billing/subscriptions/<int:customer_id>/balance", methods=["POST"])
def balance_adjust(customer_id: int):
    """An agent adds money to (or takes it from) the customer's account balance, with a reason."""
    customer = db.get_or_404(Customer, customer_id)
    form = BalanceAdjustmentForm()
    if form.validate_on_submit():
        ok, entry = run_service(form, balance.adjust, customer, form.amount.data, form.currency.data,
                                form.reason.data, current_actor())
        if ok:
            flash(_("The account balance is now %(amount)s.",
                    amount=format_money(entry.balance_after_minor, entry.currency)), "success")
            return redirect(url_for("admin.subscription_detail", customer_id=customer.id))
    return _subscription_page(customer, balance_form=form, status=422)
