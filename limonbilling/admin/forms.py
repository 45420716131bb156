from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import (
    BooleanField,
    EmailField,
    IntegerField,
    PasswordField,
    RadioField,
    SelectField,
    SelectMultipleField,
    StringField,
    TextAreaField,
)
from wtforms.fields.choices import SelectChoice
from wtforms.validators import InputRequired, NumberRange, Optional
from wtforms.widgets import CheckboxInput, ListWidget

from ..forms import LANGUAGE_CHOICES
from ..models import CURRENCIES, PERMISSIONS

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


class MultiCheckboxField(SelectMultipleField):
    widget = ListWidget(prefix_label=False)
    option_widget = CheckboxInput()


class PackageForm(FlaskForm):
    name = StringField(_l("Name"))
    description = TextAreaField(_l("Description"), description=_l("Shown to customers on the packages page."))
    type = RadioField(
        _l("Type"),
        choices=[SelectChoice("credit", _l("Credit")), SelectChoice("subscription", _l("Subscription"))],
        default="credit",
    )
    price = StringField(_l("Price"), description=_l("e.g. 150.00"))
    currency = SelectField(_l("Currency"), choices=[SelectChoice(c, c) for c in CURRENCIES], default="TRY")
    credits = StringField(_l("Credits"), description=_l("Credit packages: credits added to the balance."))
    days = StringField(_l("Days"), description=_l("Subscription packages: length of one period."))
    department_ids = MultiCheckboxField(_l("Departments"), coerce=int, validate_choice=False)
    on_sale = BooleanField(_l("On sale"), default=True)

    def values(self) -> dict:
        return {name: self[name].data for name in (
            "name", "description", "type", "price", "currency", "credits", "days", "department_ids", "on_sale"
        )}


class CreditAdjustmentForm(FlaskForm):
    credits = IntegerField(
        _l("Credits"), validators=[InputRequired(message=_l("Enter a whole number of credits."))],
        description=_l("A negative number takes credits away."),
    )
    reason = StringField(_l("Reason"), description=_l("Required; the customer's ledger shows it."))


class PaymentSettingsForm(FlaskForm):
    """Settings → Payment Systems (NestPay 3D_PAY). Secret fields start empty: blank keeps the stored value."""

    nestpay_enabled = BooleanField(_l("Take card payments through NestPay 3D_PAY"))
    nestpay_bank = SelectField(_l("Bank"))
    nestpay_gate_url = StringField(_l("3-D gate address"))
    nestpay_api_url = StringField(_l("API address"))
    nestpay_client_id = StringField(_l("Client id (merchant id)"))
    nestpay_store_key = PasswordField(_l("Store key"), description=_l("Leave empty to keep the stored key."))
    nestpay_api_user = StringField(_l("API user"))
    nestpay_api_password = PasswordField(_l("API password"), description=_l("Leave empty to keep the stored password."))
    nestpay_store_type = SelectField(_l("Store type"), choices=[
        SelectChoice("3d_pay", _l("3D_PAY: the card form is ours")),
        SelectChoice("3d_pay_hosting", _l("3D_PAY_HOSTING: the bank's page asks for the card")),
    ])
    nestpay_hash_version = SelectField(_l("Hash version"), choices=[
        SelectChoice("ver3", _l("ver3 (SHA-512, recommended)")), SelectChoice("ver1", _l("ver1 (old stores)")),
    ])
    nestpay_accept_half_3d = BooleanField(_l("Accept half 3-D Secure (mdStatus 2–4)"))
    nestpay_test_mode = BooleanField(_l("Test mode"))
    nestpay_api_body = SelectField(_l("API request body"), choices=[
        SelectChoice("raw", _l("Raw XML (text/xml)")), SelectChoice("form", _l("Form field DATA=")),
    ])
    auto_activate_card = BooleanField(_l("Activate packages as soon as the card payment is approved"))
    card_checkout_minutes = IntegerField(
        _l("Unpaid card checkouts expire after (minutes)"), validators=[InputRequired(), NumberRange(min=5, max=1440)]
    )


class InvoiceSettingsForm(FlaskForm):
    seller_address = TextAreaField(_l("Seller address"))
    seller_tax_office = StringField(_l("Tax office"))
    seller_tax_number = StringField(_l("Tax number"))
    vat_rate_percent = IntegerField(_l("VAT rate (%)"), validators=[InputRequired(), NumberRange(min=0, max=100)])
    vat_inclusive = BooleanField(_l("Package prices include VAT"))


class ApiTokenForm(FlaskForm):
    name = StringField(_l("Name"), description=_l("The system that uses it, e.g. “Help desk production”."))
    scope_read = BooleanField(_l("read: departments, packages, customers, entitlements, ledgers"), default=True)
    scope_write = BooleanField(_l("write: create customers, charge usage, adjust credits"), default=True)

    def scopes(self) -> list[str]:
        return [name for name, field in (("read", self.scope_read), ("write", self.scope_write)) if field.data]


class ReplyForm(FlaskForm):
    body = TextAreaField(_l("Reply"))


class BankAccountForm(FlaskForm):
    bank_name = StringField(_l("Bank"))
    account_holder = StringField(_l("Account holder"))
    iban = StringField(_l("IBAN"))
    currency = SelectField(_l("Currency"), choices=[SelectChoice(c, c) for c in CURRENCIES], default="TRY")
