from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import (
    BooleanField,
    DateField,
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
from wtforms.validators import InputRequired, Length, NumberRange, Optional
from wtforms.widgets import CheckboxInput, ListWidget

from ..forms import LANGUAGE_CHOICES, MESSAGE_LENGTH, AttachmentsForm, choices_of, optional_id
from ..models import ApiScope, Currency, Language, OrderState, PackageType, Permission, PromoKind, TopUpInvoicing
from ..services.placement import MAX_QUANTITY
from ..services.settings import BOUNDS


def bounded(setting: str) -> NumberRange:
    """The bounds the settings service enforces (settings.BOUNDS), shown by the form before it is sent."""
    low, high = BOUNDS[setting]
    return NumberRange(min=low, max=high, message=_l("Enter a number from %(min)d to %(max)d."))

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
        validators=[InputRequired(), bounded("renewal_window_days")],
        description=_l("A subscription can be renewed only this many days before it ends, or after."),
    )


class ModulesForm(FlaskForm):
    vip_support_enabled = BooleanField(_l("Paid VIP Support System"))
    attachment_max_mb = IntegerField(_l("Largest file (MB)"),
                                     validators=[InputRequired(), bounded("attachment_max_mb")],
                                     description=_l("A file of exactly this size is accepted; one byte more is not."))
    attachment_max_count = IntegerField(_l("Files per message"),
                                        validators=[InputRequired(), bounded("attachment_max_count")])


class AgentPermissionsForm(FlaskForm):
    is_owner = BooleanField(_l("Owner (all permissions, sees the audit log)"))
    can_billing = BooleanField(Permission.BILLING.label)
    can_customers = BooleanField(Permission.CUSTOMERS.label)
    can_settings = BooleanField(Permission.SETTINGS.label)
    can_support = BooleanField(Permission.SUPPORT.label)

    def selected_permissions(self) -> list[str]:
        return [permission for permission in Permission if self[f"can_{permission}"].data]


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
        choices=choices_of(PackageType),
        default="credit",
    )
    price = StringField(_l("Price"), description=_l("e.g. 150.00"))
    currency = SelectField(_l("Currency"), choices=choices_of(Currency), default="TRY")
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
    card_checkout_minutes = IntegerField(_l("Unpaid card checkouts expire after (minutes)"),
                                         validators=[InputRequired(), bounded("card_checkout_minutes")])
    # Against card testing
    card_attempts_per_order = IntegerField(_l("Card attempts per order"),
                                           validators=[Optional(), bounded("card_attempts_per_order")])
    card_attempts_per_customer_hour = IntegerField(
        _l("Card attempts per customer in an hour"),
        validators=[Optional(), bounded("card_attempts_per_customer_hour")],
        description=_l("Over all their orders, in the last 60 minutes."))


class InstalmentSettingsForm(FlaskForm):
    """Settings → Payment Systems, card instalments (services/instalments.py)."""

    card_instalments_enabled = BooleanField(_l("Offer card payments in instalments (TRY orders)"))
    card_instalment_plans = TextAreaField(
        _l("Instalments offered"), render_kw={"rows": 6, "placeholder": "3; 300.00; 2.50"},
        description=_l("One line per count: the count (2 to 12); the minimum order amount from which it is offered; "
                       "the surcharge (vade farkı) in percent, 0 allowed. E.g. 3; 300.00; 2.50"))


class TopUpSettingsForm(FlaskForm):
    """Settings → Payment Systems, account balance top-ups (services/top_ups.py)."""

    top_up_minimum = StringField(_l("Least one top-up adds (TRY)"), validators=[InputRequired()])
    top_up_maximum = StringField(_l("Most one top-up adds (TRY)"), validators=[InputRequired()])
    top_up_invoicing = RadioField(_l("Invoicing of top-ups"), choices=choices_of(TopUpInvoicing),
                                  validators=[InputRequired()])


class InvoiceSettingsForm(FlaskForm):
    seller_address = TextAreaField(_l("Seller address"))
    seller_tax_office = StringField(_l("Tax office"))
    seller_tax_number = StringField(_l("Tax number"))
    vat_rate_percent = IntegerField(_l("VAT rate (%)"), validators=[InputRequired(), bounded("vat_rate_percent")])
    vat_inclusive = BooleanField(_l("Package prices include VAT"))
    retention_years = IntegerField(
        _l("Keep the buyer's details on invoices for (years)"),
        validators=[InputRequired(), bounded("retention_years")],
        description=_l("The tax law keeps invoices with their buyer; after this many years `flask billing "
                       "anonymise-invoices` erases the buyer of customers whose data was erased (KVKK)."))


class ApiTokenForm(FlaskForm):
    name = StringField(_l("Name"), description=_l("The system that uses it, e.g. “Help desk production”."))
    scope_read = BooleanField(ApiScope.READ.label, default=True)
    scope_write = BooleanField(ApiScope.WRITE.label, default=True)

    def scopes(self) -> list[str]:
        return [name for name, field in (("read", self.scope_read), ("write", self.scope_write)) if field.data]


class ReplyForm(AttachmentsForm):
    body = TextAreaField(_l("Reply"), validators=[MESSAGE_LENGTH])


class BankAccountForm(FlaskForm):
    bank_name = StringField(_l("Bank"))
    account_holder = StringField(_l("Account holder"))
    iban = StringField(_l("IBAN"))
    currency = SelectField(_l("Currency"), choices=choices_of(Currency), default="TRY")


class PromoCodeForm(FlaskForm):
    code = StringField(_l("Code"), description=_l("Letters, digits, - and _; customers type it at checkout."))
    kind = RadioField(_l("Discount"), choices=choices_of(PromoKind), default=PromoKind.PERCENT)
    value = StringField(_l("Value"), description=_l("Percent (1–99) or an amount like 50.00."))
    currency = SelectField(_l("Currency of a fixed amount"), choices=choices_of(Currency),
                           default="TRY")
    valid_from = DateField(_l("Valid from"), validators=[Optional()])
    valid_until = DateField(_l("Valid until"), validators=[Optional()])
    max_uses = IntegerField(_l("Maximum uses"), validators=[Optional()],
                            description=_l("Empty: no limit. Each paid order counts once."))
    package_ids = SelectMultipleField(_l("Packages"), coerce=int, option_widget=CheckboxInput(),
                                      widget=ListWidget(prefix_label=False),
                                      description=_l("None ticked: every package."))


class OrderStatusForm(FlaskForm):
    name = StringField(_l("Name"))
    colour = StringField(_l("Colour"), default="#6c757d", render_kw={"type": "color"})
    counts_as = SelectField(_l("Counted as"), choices=choices_of(OrderState, excluding={OrderState.FRAUD}))


def _legal_text(language: Language) -> TextAreaField:
    return TextAreaField(language.label, render_kw={"rows": 14, "lang": language.value})


class LegalTextsForm(FlaskForm):
    """Settings → Legal texts: each text in each language, named as its setting (settings.legal_text_key);
    services/contracts.py checks them."""

    legal_pre_information_en = _legal_text(Language.EN)
    legal_pre_information_tr = _legal_text(Language.TR)
    legal_distance_sales_en = _legal_text(Language.EN)
    legal_distance_sales_tr = _legal_text(Language.TR)
    legal_privacy_en = _legal_text(Language.EN)
    legal_privacy_tr = _legal_text(Language.TR)


class OrderSettingsForm(FlaskForm):
    """Settings → Orders: checkout rules and the fraud check's points."""

    require_identity_verification = BooleanField(
        _l("Individual customers must be identity-verified by an agent before their first purchase"),
        description=_l("Customers who already bought keep renewing and topping up. Customers send their documents "
                       "in the free Account verification ticket channel."))
    transfer_reminder_days = IntegerField(_l("Remind the customer after (days)"),
                                          validators=[Optional(), bounded("transfer_reminder_days")])
    transfer_cancel_days = IntegerField(_l("Cancel the order after (days)"),
                                        validators=[Optional(), bounded("transfer_cancel_days")])
    fraud_check_enabled = BooleanField(_l("Run the fraud check on every new customer order"))
    fraud_threshold = IntegerField(_l("Fraud score threshold"),
                                   validators=[InputRequired(), bounded("fraud_threshold")],
                                   description=_l("An order scoring this much or more goes straight to Fraud."))
    fraud_failed_cards_points = IntegerField(_l("Points for the customer's failed card payments"),
                                             validators=[InputRequired(), bounded("fraud_failed_cards_points")])
    fraud_failed_cards_limit = IntegerField(_l("… when at least this many failed in the last hour"),
                                            validators=[InputRequired(), bounded("fraud_failed_cards_limit")])
    fraud_many_orders_points = IntegerField(_l("Points for many orders by the customer"),
                                            validators=[InputRequired(), bounded("fraud_many_orders_points")])
    fraud_many_orders_limit = IntegerField(_l("… when at least this many orders"),
                                           validators=[InputRequired(), bounded("fraud_many_orders_limit")])
    fraud_many_orders_minutes = IntegerField(_l("… within minutes"),
                                             validators=[InputRequired(), bounded("fraud_many_orders_minutes")])
    fraud_ip_failed_customers_points = IntegerField(
        _l("Points for an IP address where other customers' cards were refused"),
        validators=[InputRequired(), bounded("fraud_ip_failed_customers_points")],
        description=_l("Offices and mobile carriers share addresses: on a customer's first order these points "
                       "alone never reach the threshold."))
    fraud_ip_failed_customers_limit = IntegerField(
        _l("… when at least this many other customers had cards refused from it in the last hour"),
        validators=[InputRequired(), bounded("fraud_ip_failed_customers_limit")])
    fraud_unverified_email_points = IntegerField(_l("Points for an unverified e-mail address"),
                                                 validators=[InputRequired(), bounded("fraud_unverified_email_points")])
    fraud_price_points = IntegerField(_l("Points for a price far above the customer's usual"),
                                      validators=[InputRequired(), bounded("fraud_price_points")])
    fraud_price_factor = IntegerField(_l("… when more than this many times the usual order"),
                                      validators=[InputRequired(), bounded("fraud_price_factor")])


class PlaceOrderForm(FlaskForm):
    """An agent orders a package for a customer."""

    package_id = SelectField(_l("Package"), coerce=int)
    quantity = IntegerField(
        _l("Quantity"), default=1,
        validators=[Optional(), NumberRange(min=1, max=max(MAX_QUANTITY.values()),
                                                 message=_l("Enter a number from %(min)d to %(max)d."))],
        description=_l("n × the package: n × the credits (at most %(credits)d), or n consecutive periods "
                       "(at most %(periods)d), at n × the price.", credits=MAX_QUANTITY["credit"],
                       periods=MAX_QUANTITY["subscription"]))
    payment_method = SelectField(_l("Payment method"), choices=[
        SelectChoice("manual", _l("Manual: paid outside, activate now")),
        SelectChoice("bank_transfer", _l("Bank transfer: wait for the money, then Accept")),
        SelectChoice("account_balance", _l("Account balance: pay from the customer's balance now")),
        SelectChoice("card", _l("Card: e-mail the customer a payment link")),
    ])
    promo_code = StringField(_l("Promo code"), validators=[Optional()],
                             description=_l("Applied whatever its dates, use limit or packages; it counts as a use."))
    price_override = StringField(_l("Price override (each)"), validators=[Optional()],
                                 description=_l("Empty: the package price. 0 makes it free."))
    create_invoice = BooleanField(_l("Create an invoice"), default=True)
    send_confirmation = BooleanField(_l("Send the order confirmation e-mail"), default=True)
    send_invoice = BooleanField(_l("Send the invoice by e-mail"), default=False,
                                description=_l("Needs \"Create an invoice\"."))


class CustomerSearchForm(FlaskForm):
    """Finds the customer to order for (Billing → Orders → Add new order): a GET that only searches."""

    class Meta:
        csrf = False

    q = StringField(_l("Customer"), description=_l("Name, company, e-mail or phone"))


class BalanceAdjustmentForm(FlaskForm):
    amount = StringField(_l("Amount"), description=_l("e.g. 250.00 to add, -250.00 to take away."))
    currency = SelectField(_l("Currency"), choices=choices_of(Currency), default="TRY")
    reason = StringField(_l("Reason"), description=_l("Required; the customer sees it."))


class DecisionForm(FlaskForm):
    note = TextAreaField(_l("Note to the customer"), validators=[Optional()])
    refund_renewals = RadioField(_l("Renewals the customer already paid for"), choices=[
        SelectChoice("", _l("Keep them: the subscription ends when they run out")),
        SelectChoice("balance", _l("Refund them to the account balance")),
        SelectChoice("bank", _l("Refund them to the card")),
    ], default="", validators=[Optional()])


class RefundForm(FlaskForm):
    to = RadioField(_l("Refund to"), choices=[
        SelectChoice("bank", _l("The card, through the bank")),
        SelectChoice("balance", _l("The customer's account balance")),
    ], default="bank", validators=[InputRequired()])
    amount = StringField(_l("Amount"), validators=[Length(max=20)],
                         description=_l("Empty: all that can be refunded, and the order is cancelled. "
                                        "Less: a partial refund; the order stays as it is."))


class AcceptForm(FlaskForm):
    """Accept, with what it needs when the money has not arrived through the system."""

    received_on = DateField(_l("Transfer received on"), validators=[Optional()],
                            description=_l("Empty: today."))
    free_reason = StringField(_l("Give it without payment, because"), validators=[Optional(), Length(max=500)],
                              description=_l("Only for an order whose card payment did not arrive; the reason "
                                             "is kept with the order."))


class SettleAttentionForm(FlaskForm):
    note = StringField(_l("How it was settled"), validators=[Length(max=1000)],
                       description=_l("e.g. kept: the customer confirmed; or refunded in the bank's panel"))


class NotificationSettingsForm(FlaskForm):
    """Settings → Notifications: the SMTP server, the SMS provider, retries, the low-credit warning."""

    smtp_host = StringField(_l("SMTP server"),
                            description=_l("e.g. smtp.example.com; empty: e-mails wait in the outbox."))
    smtp_port = IntegerField(_l("Port"), validators=[InputRequired(), bounded("smtp_port")])
    smtp_security = SelectField(_l("Connection security"), choices=[
        SelectChoice("starttls", _l("STARTTLS (port 587)")), SelectChoice("ssl", _l("SSL/TLS (port 465)")),
        SelectChoice("none", _l("None (local servers only)")),
    ])
    smtp_username = StringField(_l("User name"), description=_l("Empty when the server needs no sign-in."))
    smtp_password = PasswordField(_l("Password"))
    smtp_from_address = EmailField(_l("Sender address"))
    smtp_from_name = StringField(_l("Sender name"), description=_l("Empty: the company name."))
    notification_max_attempts = IntegerField(_l("Attempts before a message is marked failed"),
                                             validators=[InputRequired(), bounded("notification_max_attempts")])
    low_credit_threshold = IntegerField(
        _l("Warn customers when their credits fall below"),
        validators=[InputRequired(), bounded("low_credit_threshold")],
        description=_l("0 sends no warning. A customer's own threshold (Paid subscriptions) wins."))
    sms_enabled = BooleanField(_l("Send SMS"))
    sms_url = StringField(_l("SMS provider address"))
    sms_method = SelectField(_l("Request method"), choices=[SelectChoice("POST", "POST"), SelectChoice("GET", "GET")])
    sms_parameters = TextAreaField(
        _l("Parameters"), description=_l("One name=value per line; {phone}, {phone_digits} and {message} are "
                                         "filled in, e.g. to={phone_digits}"))
    sms_username = StringField(_l("SMS user name"), description=_l("Sent as HTTP Basic authentication."))
    sms_password = PasswordField(_l("SMS password"))
    sms_agent_phone = StringField(_l("Agents' phone for SMS alerts"),
                                  description=_l("Gets bank-transfer activation requests; empty: none."))


class TestSendForm(FlaskForm):
    recipient = StringField(_l("Send a test to"), validators=[InputRequired()])


class LowCreditThresholdForm(FlaskForm):
    low_credit_threshold = IntegerField(_l("Warn when credits fall below"), validators=[Optional(), NumberRange(min=0)],
                                        description=_l("Empty: the global setting."))


class AffiliateForm(FlaskForm):
    name = StringField(_l("Name"))
    code = StringField(_l("Code"), description=_l("Letters, digits, - and _; the affiliate's link is /?ref=CODE."))
    commission_percent = IntegerField(_l("Commission (%)"), validators=[Optional()],
                                      description=_l("0 to 100, of the money kept from the orders it brings."))

    def values(self) -> dict:
        return {"name": self.name.data, "code": self.code.data, "commission_percent": self.commission_percent.data}


class AffiliateAssignForm(FlaskForm):
    """The affiliate of an order (empty: none), chosen by an agent on the order page."""

    affiliate_id = SelectField(_l("Affiliate"))

    def with_choices(self, affiliates) -> "AffiliateAssignForm":
        self.affiliate_id.choices = [SelectChoice("", _l("None")), *(
            SelectChoice(str(a.id), f"{a.name} · {a.code}" if a.active else f"{a.name} · {a.code} ({_l('inactive')})")
            for a in affiliates)]
        return self


class AnnouncementEditForm(FlaskForm):
    language = SelectField(_l("Language"), choices=choices_of(Language), default=Language.TR,
                           description=_l("Customers see the announcements in the language they use."))
    title = StringField(_l("Title"))
    body = TextAreaField(_l("Text"), description=_l("Plain text; line breaks are kept."))


class AnnouncementForm(AnnouncementEditForm):
    publish = BooleanField(_l("Publish now"), default=True)


class ActivationApprovalForm(FlaskForm):
    package_id = SelectField(_l("Package"), coerce=optional_id, validate_choice=False)


class ErasureRejectionForm(FlaskForm):
    note = TextAreaField(_l("Why not (the customer reads it)"))


class ActivationRejectionForm(FlaskForm):
    reason = TextAreaField(_l("Reason (the customer reads it)"))
