"""Who is signed in, and the declared access rules for views.

Agents and customers sign in separately: the Flask-Login id carries the kind
(`agent:3`, `customer:7`), the admin blueprint accepts only agents and the
portal only customers. Every admin view declares what it needs with
`@requires(...)`; a test walks the URL map to prove none is left open.
"""
from functools import wraps

from flask import abort, current_app, flash, redirect, render_template, request, session, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_user, logout_user

from .extensions import db, limiter, login_manager
from .forms import ButtonForm, ForgotPasswordForm, ResetPasswordForm, SignInForm, run_action, run_service
from .models import Agent, Customer
from .safe_redirect import safe_next
from .services import accounts, audit
from .throttle import check_password

OWNER = "owner"
SIGNED_IN = "signed-in"  # any active agent, no permission needed


@login_manager.user_loader
def load_user(user_id: str):
    """The account of a session or remember cookie (`kind:id:version`), while that session is still valid.

    A session ends when the account's session version moved on (see SignInMixin) or the
    account was deactivated: Flask-Login itself checks `is_active` only when signing in.
    """
    kind, raw_id, version = (user_id.split(":") + ["", ""])[:3]
    model = {"agent": Agent, "customer": Customer}.get(kind)
    if model is None or not raw_id.isdigit():
        return None
    user = db.session.get(model, int(raw_id))
    if user is None or not user.is_active or version != str(user.session_version):
        return None
    return user


def sign_in(user: Agent | Customer, remember: bool = False) -> None:
    """Start a fresh session for the user, so a session id planted before sign-in is worthless."""
    language = session.get("language")
    session.clear()
    if language:
        session["language"] = language
    login_user(user, remember=remember)


def sign_out() -> None:
    """End the session, and with it every other session of the account: the session is a signed
    cookie the server cannot forget, so a copy of it would otherwise outlive the sign-out."""
    user = current_user._get_current_object()
    if user.is_authenticated:
        run_action(user.end_sessions)
    logout_user()


def sign_out_everywhere_else(profile_endpoint: str):
    """"Sign out everywhere else" of either area: every session of the account ends but this one."""
    user = current_user._get_current_object()
    if ButtonForm().validate_on_submit() and run_action(accounts.end_all_sessions, user, current_actor())[0]:
        sign_in(user)
        flash(_("Every other session of your account is signed out."), "success")
    return redirect(url_for(profile_endpoint))


def current_agent() -> Agent | None:
    """The signed-in agent itself (not the proxy: services record it in the audit log), or None."""
    user = current_user._get_current_object()
    return user if isinstance(user, Agent) else None


def current_customer() -> Customer | None:
    """The signed-in customer itself (not the proxy), or None."""
    user = current_user._get_current_object()
    return user if isinstance(user, Customer) else None


def client_ip() -> str | None:
    return request.remote_addr


def current_actor() -> audit.Actor:
    return audit.Actor.of(current_user, client_ip())


def requires(permission: str):
    """Declare what an admin view needs: a permission name, OWNER, or SIGNED_IN.

    The admin blueprint has already refused anyone who is not a signed-in agent;
    this adds the permission check (403) and records the need for the URL-map test.
    """

    def decorate(view):
        @wraps(view)
        def wrapper(*args, **kwargs):
            agent = current_agent()
            if agent is None:
                abort(401)
            if permission == OWNER:
                allowed = agent.is_owner
            elif permission == SIGNED_IN:
                allowed = True
            else:
                allowed = agent.can(permission)
            if not allowed:
                abort(403)
            return view(*args, **kwargs)

        wrapper.required_permission = permission
        return wrapper

    return decorate


def public(view):
    """Mark a view that works without sign-in (sign-in pages, language switch)."""
    view.is_public = True
    return view


def vip_required(view):
    """The licence gate (domain.md §2): while the Paid VIP Support System is off, the view does not exist."""

    @wraps(view)
    def wrapper(*args, **kwargs):
        from .services import settings

        if not settings.vip_support_enabled():
            abort(404)
        return view(*args, **kwargs)

    wrapper.vip_only = True
    return wrapper


def _counts(response) -> bool:
    """Every reset request, registration and activation form counts (each may send a mail); of sign-ins only
    the failed or refused ones (a working one redirects)."""
    return request.endpoint.endswith(("forgot_password", "register", "activate")) or response.status_code != 302


def throttled(view):
    """Throttle failed sign-ins (and reset requests) per client IP across accounts (Flask-Limiter, in the
    storage every worker shares); the lock-out of one account from one IP is throttle.check_password's."""
    per_ip = limiter.limit(lambda: current_app.config["SIGN_IN_LIMIT_PER_IP"], methods=["POST"],
                           deduct_when=_counts, scope="sign-in-ip")
    return per_ip(view)


def sign_in_page(authenticate, template: str, home_endpoint: str):
    """The sign-in page of an area (agents or customers): check the password, start a fresh
    session, and go where the visitor was heading, if that is on this site. An account with
    two-factor sign-in goes on to the second step first (two_factor_pages.py)."""
    from .services import two_factor
    from .two_factor_pages import begin_second_step

    form = SignInForm()
    if form.validate_on_submit():
        user = check_password(authenticate, form.email.data, form.password.data, client_ip())
        if user is not None:
            if user.two_factor_enabled:
                return begin_second_step(user, home_endpoint.split(".")[0])
            sign_in(user)
            run_action(two_factor.record_sign_in, user, audit.Actor.of(user, client_ip()), "password")
            return redirect(safe_next(request.args.get("next"), url_for(home_endpoint)))
        form.form_errors.append(_("The e-mail address or the password is wrong."))
    return render_template(template, form=form)


def forgot_password_page(kind: str, area: str):
    """Ask for a reset link. The answer is the same whether or not the address has an account."""
    form = ForgotPasswordForm()
    if form.validate_on_submit() and run_service(form, accounts.request_password_reset, kind, form.email.data)[0]:
        flash(_("If %(email)s has an account, a link to choose a new password is on its way. "
                "Check your inbox (and the spam folder).", email=form.email.data), "info")
        return redirect(url_for(f"{area}.login"))
    return render_template("password_forgot.html", form=form, area=area)


def reset_password_page(token: str, area: str):
    """Choose a new password from a signed link; the link then stops working (see accounts). An account with
    two-factor sign-in still needs its code: the link proves the mailbox, not the second factor."""
    from .two_factor_pages import begin_second_step

    ok, user = run_action(accounts.user_for_reset, token, "customer" if area == "portal" else "agent")
    if not ok:
        return redirect(url_for(f"{area}.forgot_password"))
    form = ResetPasswordForm()
    if form.validate_on_submit():
        ok, user = run_service(form, accounts.reset_password, token, form.password.data, user.kind)
        if ok and user.two_factor_enabled:
            flash(_("Your new password is set. Enter the code from your app to sign in."), "success")
            return begin_second_step(user, area)
        if ok:
            sign_in(user)
            flash(_("Your new password is set and you are signed in."), "success")
            return redirect(url_for(f"{area}.home" if area == "portal" else "admin.dashboard"))
    return render_template("password_reset.html", form=form, area=area, user=user)
