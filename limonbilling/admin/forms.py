from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import BooleanField, EmailField, IntegerField, PasswordField, SelectField, StringField, TextAreaField
from wtforms.validators import InputRequired, NumberRange, Optional

from ..forms import LANGUAGE_CHOICES
from ..models import PERMISSIONS

PERMISSION_LABELS = {
    "billing": _l("Billing: packages, subscriptions, orders, invoices, promo codes"),
    "customers": _l("Customers: customer cards"),
    "settings": _l("Settings: general, payment systems, modules, API tokens, agents"),
    "support": _l("Support: tickets and chats"),
}


class DepartmentForm(FlaskForm):
    name = StringField(_l("Name"))
    active = BooleanField(_l("Active"), default=True)
    credit_per_request = StringField(
        _l("Credit per request"),
        default="0",
        description=_l("Credits one new ticket or chat in this department costs; 0 makes it free."),
    )


class NoteForm(FlaskForm):
    body = TextAreaField(_l("Note"))


class ToggleForm(FlaskForm):
    """A button that sets one yes/no value (department on the card, identity verified)."""

    enabled = BooleanField()


class GeneralSettingsForm(FlaskForm):
    company_name = StringField(_l("Company name"), validators=[InputRequired()])
    notification_email = EmailField(
        _l("E-mail"), validators=[Optional()], description=_l("Where purchase notifications go.")
    )
    notification_email_cc = StringField(
        _l("E-mail CC"), description=_l("More addresses for notifications, separated by commas.")
    )
    default_language = SelectField(_l("Default language"), choices=LANGUAGE_CHOICES[1:])
    renewal_window_days = IntegerField(
        _l("Renewal window (days)"),
        validators=[InputRequired(), NumberRange(min=1, max=365)],
        description=_l("A subscription can be renewed only this many days before it ends, or after."),
    )


class ModulesForm(FlaskForm):
    vip_support_enabled = BooleanField(_l("Paid VIP Support System"))


class AgentPermissionsForm(FlaskForm):
    is_owner = BooleanField(_l("Owner (all permissions, sees the audit log)"))
    can_billing = BooleanField(PERMISSION_LABELS["billing"])
    can_customers = BooleanField(PERMISSION_LABELS["customers"])
    can_settings = BooleanField(PERMISSION_LABELS["settings"])
    can_support = BooleanField(PERMISSION_LABELS["support"])

    def selected_permissions(self) -> list[str]:
        return [permission for permission in PERMISSIONS if self[f"can_{permission}"].data]


class AgentCreateForm(AgentPermissionsForm):
    name = StringField(_l("Name"))
    email = EmailField(_l("E-mail"))
    password = PasswordField(_l("Initial password"), description=_l("Give it to the agent to sign in."))


class AgentEditForm(AgentPermissionsForm):
    active = BooleanField(_l("Active (may sign in)"))
