from flask import flash, redirect, render_template, request, session, url_for
from flask_babel import gettext as _
from flask_login import current_user, logout_user

from ..auth import current_actor, current_customer, public, sign_in, sign_in_page
from ..extensions import db
from ..forms import CustomerDetailsForm, PasswordChangeForm, run_service
from ..safe_redirect import safe_next
from ..services import accounts, customers
from ..services.settings import LANGUAGES
from . import bp
from .forms import RegistrationForm


@bp.route("/")
def home():
    customer = current_customer()
    return render_template("portal/home.html", customer=customer, departments=customers.department_state(customer))


@bp.route("/login", methods=["GET", "POST"])
@public
def login():
    return sign_in_page(accounts.authenticate_customer, "portal/login.html", "portal.home")


@bp.route("/logout", methods=["POST"])
def logout():
    logout_user()
    flash(_("You are signed out."), "info")
    return redirect(url_for("portal.login"))


@bp.route("/register", methods=["GET", "POST"])
@public
def register():
    form = RegistrationForm()
    if request.method == "GET" and not form.language.data:
        form.language.data = session.get("language", "")
    if form.validate_on_submit():
        ok, customer = run_service(form, customers.register_customer, form.details(), form.password.data)
        if ok:
            sign_in(customer)
            flash(_("Welcome! Your account is ready."), "success")
            return redirect(url_for("portal.home"))
    return render_template("portal/register.html", form=form)


@bp.route("/profile", methods=["GET", "POST"])
def profile():
    customer = current_customer()
    form = CustomerDetailsForm(obj=customer)
    if form.validate_on_submit():
        if run_service(form, customers.update_customer, customer, form.details(), current_actor())[0]:
            flash(_("Your details are saved."), "success")
            return redirect(url_for("portal.profile"))
    return render_template("portal/profile.html", form=form, password_form=PasswordChangeForm(prefix="pw"))


@bp.route("/profile/password", methods=["POST"])
def change_password():
    customer = current_customer()
    password_form = PasswordChangeForm(prefix="pw")
    if password_form.validate_on_submit():
        if run_service(password_form, accounts.change_password, customer, password_form.current_password.data,
                       password_form.new_password.data, current_actor())[0]:
            flash(_("Your password is changed."), "success")
            return redirect(url_for("portal.profile"))
    form = CustomerDetailsForm(obj=customer, formdata=None)
    return render_template("portal/profile.html", form=form, password_form=password_form), 422


@bp.route("/language/<code>", methods=["POST"])
@public
def set_language(code: str):
    """Remember the visitor's language choice; signed-in users keep it on their account."""
    if code in LANGUAGES:
        session["language"] = code
        if current_user.is_authenticated:
            current_user.language = code
            db.session.commit()
    return redirect(safe_next(request.form.get("next"), url_for("portal.home")))
