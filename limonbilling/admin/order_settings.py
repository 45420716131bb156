"""Settings → Orders (checkout rules, the fraud check) and Settings → Order Statuses (agents with `settings`)."""
from flask import flash, redirect, render_template, url_for
from flask_babel import gettext as _

from ..auth import current_actor, requires
from ..extensions import db
from ..forms import ButtonForm, run_action, run_service
from ..models import OrderStatus
from ..services import order_statuses, settings
from . import bp
from .forms import OrderSettingsForm, OrderStatusForm


@bp.route("/settings/orders", methods=["GET", "POST"])
@requires("settings")
def settings_orders():
    form = OrderSettingsForm(data=settings.get_all())
    values = {name: form[name].data for name in form.data if name != "csrf_token"}
    if form.validate_on_submit() and run_service(form, settings.update, values, current_actor())[0]:
        flash(_("Order settings are saved. They apply to new orders."), "success")
        return redirect(url_for("admin.settings_orders"))
    return render_template("admin/settings_orders.html", form=form)


@bp.route("/settings/order-statuses", methods=["GET", "POST"])
@bp.route("/settings/order-statuses/<int:status_id>", methods=["GET", "POST"])
@requires("settings")
def order_status_list(status_id: int | None = None):
    status = db.get_or_404(OrderStatus, status_id) if status_id is not None else None
    form = OrderStatusForm(obj=status)
    if form.validate_on_submit():
        ok, saved = run_service(form, order_statuses.save, status, name=form.name.data, colour=form.colour.data,
                                counts_as=form.counts_as.data, actor=current_actor())
        if ok:
            flash(_("Status %(name)s is saved.", name=saved.name), "success")
            return redirect(url_for("admin.order_status_list"))
    return render_template("admin/order_statuses.html", form=form, editing=status,
                           statuses=order_statuses.all_statuses(), delete_form=ButtonForm())


@bp.route("/settings/order-statuses/<int:status_id>/delete", methods=["POST"])
@requires("settings")
def order_status_delete(status_id: int):
    status = db.get_or_404(OrderStatus, status_id)
    if ButtonForm().validate_on_submit():
        name = status.name
        if run_action(order_statuses.delete, status, current_actor())[0]:
            flash(_("Status %(name)s is deleted.", name=name), "success")
    return redirect(url_for("admin.order_status_list"))
