"""The two-factor pages both areas share (`area` is "admin" or "portal"), like auth.py's password pages.

After the right password, an account with two-factor sign-in is not signed in yet: the session keeps the
pending account (kind, id, session version, when) for PENDING_MINUTES, and the second-step page signs it
in once a code is right. Wrong codes are counted in the audit log (`two_factor.failed_attempts`).
"""
from datetime import datetime, timedelta

import segno
from flask import flash, make_response, redirect, render_template, request, session, url_for
from flask_babel import gettext as _
from flask_login import current_user

from .auth import client_ip, current_actor, sign_in
from .clock import now
from .extensions import db
from .forms import TwoFactorCodeForm, TwoFactorDisableForm, run_action, run_service
from .models import Agent, Customer
from .safe_redirect import safe_next
from .services import audit, two_factor

PENDING = "two_factor_pending"
PENDING_MINUTES = 5


def begin_second_step(user: Agent | Customer, area: str):
    """The password was right: remember the account and ask for its second factor, keeping `next`."""
    session[PENDING] = {"kind": user.kind, "id": user.id, "version": user.session_version,
                        "started": now().isoformat()}
    return redirect(url_for(f"{area}.login_two_factor", next=request.args.get("next")))


def _pending(kind: str) -> tuple[Agent | Customer, datetime] | None:
    """The account waiting for its second step, while the wait is short, the account unchanged (no new
    password, no sign-out everywhere) and fewer than MAX_FAILURES codes were wrong."""
    data = session.get(PENDING)
    if not isinstance(data, dict) or data.get("kind") != kind:
        return None
    started = datetime.fromisoformat(data["started"])
    if started.tzinfo is None or now() - started > timedelta(minutes=PENDING_MINUTES):  # naive: from before 0018
        return None
    user = db.session.get({"agent": Agent, "customer": Customer}[kind], data["id"])
    if (user is None or not user.is_active or user.session_version != data["version"] or not user.two_factor_enabled
            or two_factor.failed_attempts(user, since=started) >= two_factor.MAX_FAILURES):
        return None
    return user, started


def _back_to_password(area: str, message: str):
    session.pop(PENDING, None)
    flash(message, "warning")
    return redirect(url_for(f"{area}.login", next=request.args.get("next")))


def second_step_page(area: str, home_endpoint: str):
    pending = _pending("agent" if area == "admin" else "customer")
    if pending is None:
        return _back_to_password(area, _("Your sign-in has expired or had too many wrong codes. "
                                          "Enter your password again."))
    user, started = pending
    if two_factor.locked_out(user):
        return _back_to_password(area, _("Too many wrong codes for this account. Wait %(minutes)d minutes, "
                                         "then sign in again.", minutes=two_factor.ACCOUNT_WINDOW.seconds // 60))
    form = TwoFactorCodeForm()
    if form.validate_on_submit():
        ok, signed = run_service(form, two_factor.second_step, user, form.code.data, audit.Actor.of(user, client_ip()),
                                 pending_since=started)
        if not ok:
            return _back_to_password(area, form.form_errors[-1])
        if signed:
            sign_in(user)
            return redirect(safe_next(request.args.get("next"), url_for(home_endpoint)))
        if two_factor.failed_attempts(user, since=started) >= two_factor.MAX_FAILURES:
            return _back_to_password(area, _("Too many wrong codes. Enter your password again."))
        form.code.errors = [_("This code is not right. Enter the 6-digit code your app shows now, "
                              "or one of your recovery codes.")]
    return render_template("two_factor_sign_in.html", form=form, area=area)


def _qr_code(uri: str) -> str:
    """The provisioning address as an SVG data: URI (the Content-Security-Policy allows data: images)."""
    return segno.make(uri, error="m").svg_data_uri(scale=5, border=2, dark="#000", light="#fff")


def _no_store(body, status: int = 200):
    """Pages with the secret or the recovery codes are not kept in any cache."""
    response = make_response(body, status)
    response.headers["Cache-Control"] = "no-store"
    return response


def _settings(area: str, status: int = 200, **forms):
    """The two-factor page: set up (QR code, secret, code) while off; new recovery codes or off while on."""
    user = current_user._get_current_object()
    enrolment = None
    if not user.two_factor_enabled:
        if not user.totp_secret:
            run_action(two_factor.start_enrolment, user)
        uri = two_factor.provisioning_uri(user)
        enrolment = {"secret": user.totp_secret, "qr": _qr_code(uri)}
    forms = {"enrol_form": TwoFactorCodeForm(prefix="enrol", formdata=None),
             "regenerate_form": TwoFactorCodeForm(prefix="regenerate", formdata=None),
             "disable_form": TwoFactorDisableForm(prefix="disable", formdata=None), **forms}
    return _no_store(render_template("two_factor_settings.html", area=area, enrolment=enrolment,
                                     required=two_factor.required_for(user), **forms), status)


def _recovery_codes(area: str, codes: list[str]):
    return _no_store(render_template("two_factor_codes.html", area=area, codes=codes))


def settings_page(area: str):
    """GET: the page; POST: confirm the set-up with a code, then show the recovery codes once."""
    form = TwoFactorCodeForm(prefix="enrol")
    if form.validate_on_submit():
        user = current_user._get_current_object()
        ok, codes = run_service(form, two_factor.confirm_enrolment, user, form.code.data, current_actor())
        if ok:
            sign_in(user)  # turning it on ended every session: this one goes on under the new session version
            return _recovery_codes(area, codes)
    return _settings(area, 422 if form.errors else 200, enrol_form=form)


def regenerate_page(area: str):
    form = TwoFactorCodeForm(prefix="regenerate")
    if form.validate_on_submit():
        ok, codes = run_service(form, two_factor.regenerate_recovery_codes, current_user._get_current_object(),
                                form.code.data, current_actor())
        if ok:
            return _recovery_codes(area, codes)
    return _settings(area, 422, regenerate_form=form)


def disable_page(area: str):
    form = TwoFactorDisableForm(prefix="disable")
    if form.validate_on_submit():
        if run_service(form, two_factor.disable, current_user._get_current_object(), form.password.data,
                       form.code.data, current_actor())[0]:
            flash(_("Two-factor sign-in is off."), "info")
            return redirect(url_for(f"{area}.two_factor_settings"))
    return _settings(area, 422, disable_form=form)
