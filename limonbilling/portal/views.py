from flask import current_app, flash, redirect, render_template, request, session, url_for
from flask_babel import get_locale
from flask_babel import gettext as _
from flask_login import current_user

from ..auth import (
    current_actor,
    current_customer,
    forgot_password_page,
    public,
    reset_password_page,
    sign_in,
    sign_in_page,
    sign_out,
    sign_out_everywhere_else,
    throttled,
)
from ..forms import ButtonForm, PasswordChangeForm, run_action, run_service
from ..models import Language
from ..safe_redirect import safe_next
from ..services import accounts, affiliates, announcements, balance, consents, contracts, customers, entitlements
from . import bp
from .forms import EmailChangeForm, MarketingConsentForm, ProfileForm, RegistrationForm


@bp.after_request
def remember_referral(response):
    """Any portal page reached with `?ref=CODE` of an active affiliate remembers it for 30 days in a signed
    cookie (the last valid code wins; an unknown code changes nothing and says nothing)."""
    code = request.args.get("ref")
    cookie = affiliates.referral_cookie(code) if code else None
    if cookie is not None:
        response.set_cookie(affiliates.REFERRAL_COOKIE, cookie, max_age=affiliates.REFERRAL_MAX_AGE, httponly=True,
                            samesite="Lax", secure=current_app.config["SESSION_COOKIE_SECURE"])
    return response


@bp.route("/")
def home():
    customer = current_customer()
    return render_template("portal/home.html", customer=customer, departments=customers.department_state(customer),
                           entitlement=entitlements.entitlement(customer), balances=balance.amounts(customer),
                           announcements=announcements.latest(get_locale().language))


@bp.route("/announcements")
def announcement_list():
    """Every published announcement in the reader's language, newest first."""
    return render_template("portal/announcements.html",
                           announcements=announcements.published(get_locale().language))


@bp.route("/login", methods=["GET", "POST"])
@public
@throttled
def login():
    return sign_in_page(accounts.authenticate_customer, "portal/login.html", "portal.home")


@bp.route("/logout", methods=["POST"])
def logout():
    sign_out()
    flash(_("You are signed out."), "info")
    return redirect(url_for("portal.login"))


@bp.route("/forgot-password", methods=["GET", "POST"])
@public
@throttled
def forgot_password():
    return forgot_password_page("customer", "portal")


@bp.route("/reset-password/<token>", methods=["GET", "POST"])
@public
def reset_password(token: str):
    return reset_password_page(token, "portal")


@bp.route("/verify-email/<token>")
@public
def verify_email(token: str):
    """The link of the welcome / confirmation e-mail; it works signed in or not."""
    if run_action(accounts.verify_email, token)[0]:
        flash(_("Thank you: your e-mail address is confirmed."), "success")
    return redirect(url_for("portal.profile" if current_customer() else "portal.login"))


@bp.route("/profile/verify-email", methods=["POST"])
def resend_verification():
    customer = current_customer()
    if ButtonForm().validate_on_submit() and run_action(accounts.resend_verification, customer)[0]:
        flash(_("A new confirmation link is on its way to %(email)s.", email=customer.email), "info")
    return redirect(url_for("portal.profile"))


@bp.route("/register", methods=["GET", "POST"])
@public
@throttled
def register():
    form = RegistrationForm()
    if request.method == "GET" and not form.language.data:
        form.language.data = session.get("language", "")
    if form.validate_on_submit():
        if run_service(form, customers.sign_up, form.details(), form.password.data,
                       marketing_consent=form.marketing_consent.data, ip=request.remote_addr)[0]:
            session["registered_email"] = form.email.data.strip()
            return redirect(url_for("portal.registration_sent"))
    return render_template("portal/register.html", form=form)


@bp.route("/privacy")
@public
def privacy():
    """The privacy notice (KVKK Article 10) as it stands now, in the visitor's language."""
    return render_template("portal/privacy_notice.html", notice=contracts.privacy_notice(get_locale().language))


@bp.route("/register/check-your-mail")
@public
def registration_sent():
    """The same page whether the address was new or had an account already (the mail says which)."""
    return render_template("portal/register_sent.html", email=session.get("registered_email"))


def _profile_page(form=None, password_form=None, email_form=None, status: int = 200):
    """The profile page with its three forms; the one just sent (with its errors) replaces its blank."""
    if form is None:
        form = ProfileForm(obj=current_customer(), formdata=None)
    customer = current_customer()
    marketing = consents.latest_marketing_choice(customer)
    return render_template("portal/profile.html", form=form,
                           password_form=password_form or PasswordChangeForm(prefix="pw", formdata=None),
                           email_form=email_form or EmailChangeForm(prefix="email", formdata=None),
                           marketing=marketing, marketing_form=MarketingConsentForm(
                               prefix="marketing", formdata=None,
                               data={"marketing_consent": marketing is not None and marketing.granted}),
                           action_form=ButtonForm()), status


@bp.route("/profile", methods=["GET", "POST"])
def profile():
    customer = current_customer()
    form = ProfileForm(obj=customer)
    if form.validate_on_submit():
        if run_service(form, customers.update_customer, customer, form.details(), current_actor())[0]:
            flash(_("Your details are saved."), "success")
            return redirect(url_for("portal.profile"))
    return _profile_page(form=form)


@bp.route("/profile/password", methods=["POST"])
def change_password():
    customer = current_customer()
    password_form = PasswordChangeForm(prefix="pw")
    if password_form.validate_on_submit():
        if run_service(password_form, accounts.change_password, customer, password_form.current_password.data,
                       password_form.new_password.data, current_actor())[0]:
            sign_in(customer)
            flash(_("Your password is changed; your other sessions are signed out."), "success")
            return redirect(url_for("portal.profile"))
    return _profile_page(password_form=password_form, status=422)


@bp.route("/profile/email", methods=["POST"])
def change_email():
    email_form = EmailChangeForm(prefix="email")
    if email_form.validate_on_submit():
        ok, new_email = run_service(email_form, accounts.request_email_change, current_customer(),
                                    email_form.new_email.data, email_form.password.data, current_actor())
        if ok:
            flash(_("A link to confirm %(email)s is on its way there; your address changes when you open it. "
                    "We told your current address too.", email=new_email), "info")
            return redirect(url_for("portal.profile"))
    return _profile_page(email_form=email_form, status=422)


@bp.route("/profile/marketing", methods=["POST"])
def change_marketing_consent():
    form = MarketingConsentForm(prefix="marketing")
    if form.validate_on_submit():
        ok, changed = run_action(consents.set_marketing_consent, current_customer(), form.marketing_consent.data,
                                 current_actor())
        if ok and changed:
            flash(_("You will get our news and offers by e-mail.") if form.marketing_consent.data
                  else _("You will no longer get our news and offers by e-mail."), "success")
    return redirect(url_for("portal.profile"))


@bp.route("/confirm-email/<token>")
@public
def confirm_email_change(token: str):
    """The link sent to a new address. It signs no one in (whoever holds the link is not proven to hold the
    password or the second factor): the customer signs in again with the new address."""
    ok, customer = run_action(accounts.confirm_email_change, token)
    if not ok:
        return redirect(url_for("portal.profile" if current_customer() else "portal.login"))
    flash(_("Your e-mail address is now %(email)s. Sign in with it.", email=customer.email), "success")
    return redirect(url_for("portal.login"))


@bp.route("/profile/sign-out-everywhere", methods=["POST"])
def sign_out_everywhere():
    return sign_out_everywhere_else("portal.profile")


@bp.route("/language/<code>", methods=["POST"])
@public
def set_language(code: str):
    """Remember the visitor's language choice; signed-in users keep it on their account."""
    if Language.has(code):
        session["language"] = code
        if current_user.is_authenticated:
            run_action(accounts.set_language, current_user._get_current_object(), code)
    return redirect(safe_next(request.form.get("next"), url_for("portal.home")))
