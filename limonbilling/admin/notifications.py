"""Notifications: the outbox (every e-mail and SMS, its state and last error, retry) and its settings."""
from flask import abort, flash, make_response, redirect, render_template, request, url_for
from flask_babel import gettext as _
from sqlalchemy import or_, select

from .. import security
from ..auth import current_actor, current_agent, requires
from ..extensions import db
from ..forms import ButtonForm, run_action, run_service
from ..models import Notification, NotificationChannel, NotificationState
from ..pagination import keyset_page
from ..search import contains
from ..services import outbox, settings
from ..services.messaging import save_settings, send_test_email, send_test_sms, sms_configured, smtp_configured
from ..transports import DeliveryError
from . import bp
from .forms import NotificationSettingsForm, TestSendForm


def _filtered(args):
    statement = select(Notification)
    if NotificationState.has(args.get("state")):
        statement = statement.where(Notification.state == args["state"])
    if NotificationChannel.has(args.get("channel")):
        statement = statement.where(Notification.channel == args["channel"])
    if args.get("event"):
        statement = statement.where(Notification.event == args["event"])
    query = args.get("q", "").strip().lower()
    if query:
        statement = statement.where(or_(contains(Notification.recipient, query), Notification.order_number == query))
    return statement


@bp.route("/notifications")
@requires("settings")
def notification_list():
    page = keyset_page(_filtered(request.args), Notification.id, before=request.args.get("before", type=int),
                       after=request.args.get("after", type=int),
                       per_page=min(max(request.args.get("per_page", 50, type=int), 1), 200))
    events = list(db.session.scalars(select(Notification.event).distinct().order_by(Notification.event)))
    filters = {key: request.args.get(key, "") for key in ("state", "channel", "event", "q")}
    return render_template("admin/notifications.html", page=page, events=events, filters=filters,
                           states=list(NotificationState), waiting=outbox.waiting_for_smtp(), retry_form=ButtonForm(),
                           smtp_ready=smtp_configured())


@bp.route("/notifications/<int:notification_id>")
@requires("settings")
def notification_detail(notification_id: int):
    notification = db.get_or_404(Notification, notification_id)
    return render_template("admin/notification_detail.html", notification=notification, retry_form=ButtonForm())


@bp.route("/notifications/<int:notification_id>/preview")
@requires("settings")
def notification_preview(notification_id: int):
    """The mail's HTML alone, framed by the detail page: its inline styles are allowed here, scripts never."""
    notification = db.get_or_404(Notification, notification_id)
    if notification.sensitive or not notification.body_html:
        abort(404)
    response = make_response(notification.body_html)
    response.headers["Content-Security-Policy"] = security.policy(
        **{"default-src": "'none'", "style-src": "'unsafe-inline'", "img-src": "data:", "frame-ancestors": "'self'",
           "script-src": "'none'", "form-action": "'none'"}) + "; sandbox"
    response.headers["X-Frame-Options"] = "SAMEORIGIN"
    return response


@bp.route("/notifications/<int:notification_id>/retry", methods=["POST"])
@requires("settings")
def notification_retry(notification_id: int):
    notification = db.get_or_404(Notification, notification_id)
    if ButtonForm().validate_on_submit():
        if run_action(outbox.retry, notification, current_actor())[0]:
            flash(_("The message to %(recipient)s is queued again.", recipient=notification.recipient), "success")
    if request.form.get("back") == "list":
        return redirect(url_for("admin.notification_list", state="failed"))
    return redirect(url_for("admin.notification_detail", notification_id=notification.id))


@bp.route("/settings/notifications", methods=["GET", "POST"])
@requires("settings")
def settings_notifications():
    current = settings.get_all()
    form = NotificationSettingsForm(data={key: value for key, value in current.items()
                                          if key not in settings.SECRET_KEYS})
    if form.validate_on_submit():
        values = {field.name: field.data for field in form if field.name != "csrf_token"}
        if run_service(form, save_settings, values, current_actor())[0]:
            flash(_("Notification settings are saved."), "success")
            return redirect(url_for("admin.settings_notifications"))
    agent = current_agent()
    return render_template(
        "admin/settings_notifications.html", form=form,
        secrets_stored={key: bool(current[key]) for key in ("smtp_password", "sms_password")},
        email_test=TestSendForm(prefix="email", data={"recipient": agent.email}),
        sms_test=TestSendForm(prefix="sms", data={"recipient": current["sms_agent_phone"]}),
        smtp_ready=smtp_configured(current), sms_ready=sms_configured(current),
    )


@bp.route("/settings/notifications/test/<any(email, sms):channel>", methods=["POST"])
@requires("settings")
def settings_notifications_test(channel: str):
    """Send a test straight away (not through the outbox), so the agent sees the server's answer."""
    form = TestSendForm(prefix=channel)
    if form.validate_on_submit():
        recipient = form.recipient.data.strip()
        try:
            (send_test_email if channel == "email" else send_test_sms)(recipient)
        except DeliveryError as error:
            flash(_("The test to %(recipient)s failed: %(error)s", recipient=recipient, error=str(error)), "danger")
        else:
            flash(_("A test was sent to %(recipient)s.", recipient=recipient), "success")
    else:
        flash(_("Enter where the test should go."), "danger")
    return redirect(url_for("admin.settings_notifications"))
