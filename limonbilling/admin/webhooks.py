"""Settings → Webhooks (agents with `settings`): endpoints with their secret (shown once), events, on/off,
a test event, and each endpoint's delivery log."""
from flask import flash, redirect, render_template, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from sqlalchemy import select
from wtforms import BooleanField, URLField

from ..auth import current_actor, requires
from ..extensions import db
from ..forms import ButtonForm, choices_of, run_action, run_service
from ..models import Webhook, WebhookEvent
from ..services import webhooks
from . import bp
from .forms import MultiCheckboxField


class WebhookForm(FlaskForm):
    url = URLField(_l("Endpoint URL"), description=_l("Where the events are posted, e.g. "
                                                      "https://helpdesk.example.com/webhook"))
    events = MultiCheckboxField(_l("Events"), choices=choices_of(WebhookEvent), validate_choice=False)


class WebhookEditForm(WebhookForm):
    url = None  # an endpoint keeps its address: add a new one for another
    active = BooleanField(_l("Active (new events are sent)"))


@bp.route("/settings/webhooks", methods=["GET", "POST"])
@requires("settings")
def webhook_list():
    """The secret is rendered once, in the answer to the POST that made it; never stored in a page again."""
    form = WebhookForm()
    secret = created = None
    if form.validate_on_submit():
        ok, result = run_service(form, webhooks.create, form.url.data, form.events.data or [], current_actor())
        if ok:
            created, secret = result
            form = WebhookForm(formdata=None)
    response = render_template("admin/webhooks.html", form=form, secret=secret, created=created,
                               webhooks=db.session.scalars(select(Webhook).order_by(Webhook.id)).all())
    return response, 200, {"Cache-Control": "no-store"}


@bp.route("/settings/webhooks/<int:webhook_id>", methods=["GET", "POST"])
@requires("settings")
def webhook_detail(webhook_id: int):
    webhook = db.get_or_404(Webhook, webhook_id)
    form = WebhookEditForm(obj=webhook)
    if form.validate_on_submit():
        if run_service(form, webhooks.update, webhook, form.events.data or [], form.active.data, current_actor())[0]:
            flash(_("The webhook is saved."), "success")
            return redirect(url_for("admin.webhook_detail", webhook_id=webhook.id))
    return render_template("admin/webhooks_detail.html", webhook=webhook, form=form, button=ButtonForm(),
                           deliveries=webhooks.deliveries(webhook))


@bp.route("/settings/webhooks/<int:webhook_id>/test", methods=["POST"])
@requires("settings")
def webhook_test(webhook_id: int):
    webhook = db.get_or_404(Webhook, webhook_id)
    if ButtonForm().validate_on_submit() and run_action(webhooks.send_test, webhook, current_actor())[0]:
        flash(_("A test event is on its way; its answer appears in the delivery log below."), "success")
    return redirect(url_for("admin.webhook_detail", webhook_id=webhook.id))


@bp.route("/settings/webhooks/<int:webhook_id>/delete", methods=["POST"])
@requires("settings")
def webhook_delete(webhook_id: int):
    webhook = db.get_or_404(Webhook, webhook_id)
    url = webhook.url
    if ButtonForm().validate_on_submit() and run_action(webhooks.remove, webhook, current_actor())[0]:
        flash(_("The webhook to %(url)s is deleted; nothing more is sent there.", url=url), "success")
        return redirect(url_for("admin.webhook_list"))
    return redirect(url_for("admin.webhook_detail", webhook_id=webhook_id))
