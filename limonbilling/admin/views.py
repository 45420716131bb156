from datetime import date
from functools import partial

from flask import current_app, flash, redirect, render_template, request, url_for
from flask_babel import format_date
from flask_babel import gettext as _
from sqlalchemy import func, select

from ..auth import (
    OWNER,
    SIGNED_IN,
    current_actor,
    current_agent,
    forgot_password_page,
    public,
    requires,
    reset_password_page,
    sign_in,
    sign_in_page,
    sign_out,
    sign_out_everywhere_else,
    throttled,
)
from ..extensions import db
from ..forms import (
    ButtonForm,
    CustomerDetailsForm,
    PasswordChangeForm,
    TwoFactorRequirementForm,
    run_action,
    run_service,
)
from ..labels import label
from ..models import Agent, AuditEntry, Customer, Department
from ..pagination import keyset_page
from ..services import accounts, consents, customers, departments, reports, settings
from . import bp
from .forms import (
    AgentCreateForm,
    AgentEditForm,
    DepartmentForm,
    GeneralSettingsForm,
    ModulesForm,
    NoteForm,
    ToggleForm,
)


def _page(statement, id_column):
    """A page of a list that can grow without end, by keyset (no COUNT, no OFFSET): see pagination.py."""
    return keyset_page(statement.order_by(None), id_column, before=request.args.get("before", type=int),
                       after=request.args.get("after", type=int), per_page=current_app.config["ITEMS_PER_PAGE"],
                       oldest_first=request.args.get("sort") == "oldest")


# --- signing in -----------------------------------------------------------------------------

@bp.route("/login", methods=["GET", "POST"])
@public
@throttled
def login():
    return sign_in_page(accounts.authenticate_agent, "admin/login.html", "admin.dashboard")


@bp.route("/forgot-password", methods=["GET", "POST"])
@public
@throttled
def forgot_password():
    return forgot_password_page("agent", "admin")


@bp.route("/reset-password/<token>", methods=["GET", "POST"])
@public
def reset_password(token: str):
    return reset_password_page(token, "admin")


@bp.route("/logout", methods=["POST"])
@requires(SIGNED_IN)
def logout():
    sign_out()
    flash(_("You are signed out."), "info")
    return redirect(url_for("admin.login"))


@bp.route("/")
@requires(SIGNED_IN)
def dashboard():
    counts = {
        "customers": db.session.scalar(select(func.count(Customer.id))),
        "departments": db.session.scalar(select(func.count(Department.id)).where(Department.active)),
        "agents": db.session.scalar(select(func.count(Agent.id)).where(Agent.active)),
    }
    agent = current_agent()
    billing = None
    if settings.vip_support_enabled() and agent.can("billing"):
        billing = {
            "months": reports.last_months(12), "revenue": reports.revenue_by_month(12),
            "statuses": reports.orders_by_status(), "credits": reports.credits_by_department(12),
            "ending": reports.subscriptions_ending(30), "pending": reports.pending_orders(),
        }
        billing["charts"] = _dashboard_charts(billing)
    return render_template("admin/dashboard.html", counts=counts, vip_enabled=settings.vip_support_enabled(),
                           billing=billing)


def _dashboard_charts(billing: dict) -> dict:
    """What static/js/dashboard.js draws; the page shows the same numbers in tables."""
    return {
        "months": [format_date(date(int(month[:4]), int(month[5:]), 1), "MMM yyyy") for month in billing["months"]],
        "revenue": [{"label": currency, "data": [amount / 100 for amount in by_month.values()]}
                    for currency, by_month in billing["revenue"].items()],
        "statuses": {"labels": [label(status, "order_status") for status in billing["statuses"]],
                     "data": list(billing["statuses"].values())},
        "credits": {"labels": [row.department for row in billing["credits"]],
                    "sold": [row.sold for row in billing["credits"]], "used": [row.used for row in billing["credits"]],
                    "sold_label": _("Credits sold"), "used_label": _("Credits used")},
    }


@bp.route("/profile", methods=["GET", "POST"])
@requires(SIGNED_IN)
def profile():
    form = PasswordChangeForm()
    if form.validate_on_submit():
        if run_service(form, accounts.change_password, current_agent(), form.current_password.data,
                       form.new_password.data, current_actor())[0]:
            sign_in(current_agent())
            flash(_("Your password is changed; your other sessions are signed out."), "success")
            return redirect(url_for("admin.profile"))
    return render_template("admin/profile.html", form=form, action_form=ButtonForm())


@bp.route("/profile/sign-out-everywhere", methods=["POST"])
@requires(SIGNED_IN)
def sign_out_everywhere():
    return sign_out_everywhere_else("admin.profile")


# --- Components → Departments ----------------------------------------------------------------

@bp.route("/departments")
@requires("settings")
def department_list():
    return render_template("admin/departments.html", departments=departments.list_departments())


@bp.route("/departments/new", methods=["GET", "POST"])
@bp.route("/departments/<int:department_id>/edit", methods=["GET", "POST"])
@requires("settings")
def department_edit(department_id: int | None = None):
    department = db.get_or_404(Department, department_id) if department_id else None
    form = DepartmentForm(obj=department)
    if form.validate_on_submit():
        values = {
            "name": form.name.data, "active": form.active.data,
            "credit_per_request": form.credit_per_request.data, "actor": current_actor(),
        }
        save = departments.create_department if department is None else partial(departments.update_department,
                                                                                 department)
        if run_service(form, save, **values)[0]:
            flash(_("Department %(name)s is saved.", name=form.name.data.strip()), "success")
            return redirect(url_for("admin.department_list"))
    return render_template("admin/department_form.html", form=form, department=department)


# --- Customer cards --------------------------------------------------------------------------

@bp.route("/customers")
@requires("customers")
def customer_list():
    query = request.args.get("q", "").strip()
    page = _page(customers.search(query), Customer.id)
    return render_template("admin/customers.html", page=page, query=query, sort=request.args.get("sort", ""))


@bp.route("/customers/new", methods=["GET", "POST"])
@requires("customers")
def customer_new():
    form = CustomerDetailsForm()
    if form.validate_on_submit():
        ok, customer = run_service(form, customers.register_customer, form.details(), password=None,
                                   actor=current_actor())
        if ok:
            flash(_("Customer %(name)s is created.", name=customer.display_name), "success")
            return redirect(url_for("admin.customer_detail", customer_id=customer.id))
    return render_template("admin/customer_form.html", form=form, customer=None)


@bp.route("/customers/<int:customer_id>")
@requires("customers")
def customer_detail(customer_id: int):
    customer = db.get_or_404(Customer, customer_id)
    return render_template(
        "admin/customer_detail.html",
        customer=customer,
        departments=customers.department_state(customer),
        marketing_history=consents.marketing_history(customer),
        note_form=NoteForm(),
        toggle_form=ToggleForm(),
    )


@bp.route("/customers/<int:customer_id>/edit", methods=["GET", "POST"])
@requires("customers")
def customer_edit(customer_id: int):
    customer = db.get_or_404(Customer, customer_id)
    form = CustomerDetailsForm(obj=customer)
    if form.validate_on_submit():
        if run_service(form, customers.update_customer, customer, form.details(), current_actor())[0]:
            flash(_("The customer's details are saved."), "success")
            return redirect(url_for("admin.customer_detail", customer_id=customer.id))
    return render_template("admin/customer_form.html", form=form, customer=customer)


@bp.route("/customers/<int:customer_id>/departments/<int:department_id>", methods=["POST"])
@requires("customers")
def customer_department(customer_id: int, department_id: int):
    customer = db.get_or_404(Customer, customer_id)
    department = db.get_or_404(Department, department_id)
    form = ToggleForm()
    if form.validate_on_submit() and run_action(customers.set_department, customer, department, form.enabled.data,
                                                current_actor())[0]:
        if form.enabled.data:
            flash(_("%(department)s is on for this customer, free of charge.", department=department.name), "success")
        else:
            flash(_("%(department)s is off for this customer.", department=department.name), "success")
    return redirect(url_for("admin.customer_detail", customer_id=customer.id))


@bp.route("/customers/<int:customer_id>/notes", methods=["POST"])
@requires("customers")
def customer_note(customer_id: int):
    customer = db.get_or_404(Customer, customer_id)
    form = NoteForm()
    if form.validate_on_submit() and run_action(customers.add_note, customer, form.body.data, current_actor())[0]:
        flash(_("The note is added."), "success")
    return redirect(url_for("admin.customer_detail", customer_id=customer.id))


@bp.route("/customers/<int:customer_id>/identity", methods=["POST"])
@requires("customers")
def customer_identity(customer_id: int):
    customer = db.get_or_404(Customer, customer_id)
    form = ToggleForm()
    if form.validate_on_submit() and run_action(customers.set_identity_verified, customer, form.enabled.data,
                                                current_actor())[0]:
        flash(_("Identity marked as verified.") if form.enabled.data else _("Identity mark removed."), "success")
    return redirect(url_for("admin.customer_detail", customer_id=customer.id))


# --- Settings ----------------------------------------------------------------------------------

@bp.route("/settings/general", methods=["GET", "POST"])
@requires("settings")
def settings_general():
    current = settings.get_all()
    form = GeneralSettingsForm(data={**current, "notification_email_cc": ", ".join(current["notification_email_cc"])})
    if form.validate_on_submit():
        if run_service(
            form, settings.update_general,
            company_name=form.company_name.data,
            notification_email=form.notification_email.data,
            notification_email_cc=form.notification_email_cc.data,
            default_language=form.default_language.data,
            renewal_window_days=form.renewal_window_days.data,
            actor=current_actor(),
        )[0]:
            flash(_("The settings are saved."), "success")
            return redirect(url_for("admin.settings_general"))
    return render_template("admin/settings_general.html", form=form)


@bp.route("/settings/modules", methods=["GET", "POST"])
@requires("settings")
def settings_modules():
    form = ModulesForm(data=settings.get_all())
    values = {name: form[name].data for name in form.data if name != "csrf_token"}
    if form.validate_on_submit() and run_service(form, settings.update, values, current_actor())[0]:
        if form.vip_support_enabled.data:
            flash(_("The Paid VIP Support System is on."), "success")
        else:
            flash(
                _("The Paid VIP Support System is off: billing is hidden and departments are free. No data is lost."),
                "warning",
            )
        return redirect(url_for("admin.settings_modules"))
    return render_template("admin/settings_modules.html", form=form)


@bp.route("/settings/agents")
@requires("settings")
def agent_list():
    agents = db.session.scalars(select(Agent).order_by(Agent.name))
    requirement_form = TwoFactorRequirementForm(data={"required": settings.get("require_two_factor_agents")})
    return render_template("admin/agents.html", agents=agents, requirement_form=requirement_form)


@bp.route("/settings/agents/new", methods=["GET", "POST"])
@requires(OWNER)
def agent_new():
    form = AgentCreateForm()
    if form.validate_on_submit():
        ok, agent = run_service(
            form, accounts.create_agent, name=form.name.data, email=form.email.data, password=form.password.data,
            permissions=form.selected_permissions(), is_owner=form.is_owner.data, actor=current_actor(),
        )
        if ok:
            flash(_("Agent %(name)s is created.", name=agent.name), "success")
            return redirect(url_for("admin.agent_list"))
    return render_template("admin/agent_form.html", form=form, agent=None)


@bp.route("/settings/agents/<int:agent_id>/edit", methods=["GET", "POST"])
@requires(OWNER)
def agent_edit(agent_id: int):
    agent = db.get_or_404(Agent, agent_id)
    form = AgentEditForm(obj=agent)
    if form.validate_on_submit():
        if run_service(form, accounts.update_agent, agent, permissions=form.selected_permissions(),
                       is_owner=form.is_owner.data, active=form.active.data, actor=current_actor())[0]:
            flash(_("Agent %(name)s is saved.", name=agent.name), "success")
            return redirect(url_for("admin.agent_list"))
    return render_template("admin/agent_form.html", form=form, agent=agent)


@bp.route("/audit")
@requires(OWNER)
def audit_log():
    statement = select(AuditEntry).order_by(AuditEntry.id.desc())
    action = request.args.get("action", "").strip()
    if action:
        statement = statement.where(AuditEntry.action.startswith(action))
    return render_template("admin/audit.html", page=_page(statement, AuditEntry.id), action=action)
