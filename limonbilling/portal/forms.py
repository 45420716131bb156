from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import (
    BooleanField,
    DateField,
    EmailField,
    HiddenField,
    PasswordField,
    RadioField,
    SelectField,
    StringField,
    TextAreaField,
)
from wtforms.validators import EqualTo, InputRequired, Length, Optional

from ..forms import MESSAGE_LENGTH, AttachmentsForm, CustomerDetailsForm, choices_of, optional_id
from ..models import CancellationTiming, Currency
from ..services.placement import CUSTOMER_NOTE_LENGTH


class ProfileForm(CustomerDetailsForm):
    """The customer's own details; the address changes through EmailChangeForm (password and a link)."""

    email = None


class EmailChangeForm(FlaskForm):
    new_email = EmailField(_l("New e-mail address"), validators=[InputRequired()])
    password = PasswordField(_l("Current password"), validators=[InputRequired()])


class DataExportForm(FlaskForm):
    password = PasswordField(_l("Current password"), validators=[InputRequired()])


class ErasureRequestForm(FlaskForm):
    reason = TextAreaField(_l("Why (optional)"), validators=[Optional(), Length(
        max=2000, message=_l("Write at most %(max)d characters."))])
    password = PasswordField(_l("Current password"), validators=[InputRequired()])


MARKETING_CONSENT_LABEL = _l("Send me news and offers by e-mail (optional; you can change this on your profile "
                             "at any time).")


class RegistrationForm(CustomerDetailsForm):
    password = PasswordField(_l("Password"), validators=[InputRequired()])
    password_again = PasswordField(
        _l("Password again"),
        validators=[InputRequired(), EqualTo("password", message=_l("The two passwords differ."))],
    )
    marketing_consent = BooleanField(MARKETING_CONSENT_LABEL)


class MarketingConsentForm(FlaskForm):
    """The customer's consent to marketing e-mails, given or withdrawn on the profile."""

    marketing_consent = BooleanField(MARKETING_CONSENT_LABEL)


class CheckoutForm(FlaskForm):
    """Confirms a purchase; for store type 3d_pay it also carries the card, which goes to the bank form only."""

    promo_code = HiddenField()
    note = TextAreaField(_l("Note for us (optional)"), validators=[Length(
        max=CUSTOMER_NOTE_LENGTH, message=_l("Write at most %(max)d characters."))],
        description=_l("Shown on your order; e.g. what the support is for."))
    accept_forfeit = BooleanField(_l("I understand what I lose by switching and want to continue."))
    accept_contracts = BooleanField(_l("I have read and accept the pre-information form and the distance sales "
                                       "contract."))
    card_number = StringField(_l("Card number"), render_kw={"autocomplete": "cc-number", "inputmode": "numeric"})
    card_expiry = StringField(_l("Expiry (MM/YY)"), render_kw={"autocomplete": "cc-exp", "placeholder": "MM/YY"})
    card_cvv = PasswordField(_l("Security code (CVV)"), render_kw={"autocomplete": "cc-csc", "inputmode": "numeric"})
    # The count of card instalments (1: a single payment); the service checks it is offered for the order.
    instalments = RadioField(_l("Payment plan"), coerce=int, default=1, validate_choice=False)

    def forget_card(self) -> None:
        """Never show the card back on a re-rendered page."""
        for name in ("card_number", "card_expiry", "card_cvv"):
            self[name].data = ""
            self[name].raw_data = []


class PromoCodeForm(FlaskForm):
    """Applies a promo code on the checkout page (a GET that only recalculates the price)."""

    class Meta:
        csrf = False

    promo = StringField(_l("Promo code"), render_kw={"autocomplete": "off"})


class NewConversationForm(AttachmentsForm):
    department_id = SelectField(_l("Department"), coerce=int)
    subject = StringField(_l("Subject"))
    body = TextAreaField(_l("Message"), validators=[MESSAGE_LENGTH])


class VerificationForm(AttachmentsForm):
    """A ticket in the free Account verification channel, with the identity documents."""

    subject = StringField(_l("Subject"), default=_l("Identity verification"))
    body = TextAreaField(_l("Message"), validators=[MESSAGE_LENGTH])


class MessageForm(AttachmentsForm):
    body = TextAreaField(_l("Your message"), validators=[MESSAGE_LENGTH])


class ActivationRequestForm(FlaskForm):
    email = StringField(_l("E-mail"))
    phone = StringField(_l("Phone"))
    note = TextAreaField(_l("Note (optional)"), description=_l("e.g. the sender's name or the transfer date"))


class CancellationRequestForm(FlaskForm):
    timing = RadioField(_l("End my subscription"), choices=choices_of(CancellationTiming),
                        default=CancellationTiming.PERIOD_END)
    reason = TextAreaField(_l("Why do you want to cancel?"))


class ActivationForm(FlaskForm):
    """The public activation form (xcPanel): who paid, how much, when, and for what; the rules are the
    service's (services/activation_requests.py)."""

    first_name = StringField(_l("First name"), render_kw={"autocomplete": "given-name"})
    last_name = StringField(_l("Last name"), render_kw={"autocomplete": "family-name"})
    email = EmailField(_l("E-mail"), render_kw={"autocomplete": "email"})
    phone = StringField(_l("Phone"), description=_l("e.g. 0532 123 45 67 or +44 20 7946 0958"),
                        render_kw={"autocomplete": "tel"})
    amount = StringField(_l("Amount paid"), description=_l("e.g. 150.00"), render_kw={"inputmode": "decimal"})
    currency = SelectField(_l("Currency"), choices=choices_of(Currency), default=Currency.TRY)
    paid_on = DateField(_l("Day paid"), validators=[Optional()])
    package_id = SelectField(_l("Package paid for (optional)"), coerce=optional_id, validate_choice=False)
    note = TextAreaField(_l("Note (optional)"), description=_l("e.g. the sender's name or the bank"))

    def fields(self) -> dict:
        return {name: self[name].data for name in ("first_name", "last_name", "email", "phone", "amount", "currency",
                                                   "paid_on", "package_id", "note")}


class TopUpForm(FlaskForm):
    """The amount a customer adds to the account balance (the service checks it against the settings)."""

    amount = StringField(_l("Amount (TRY)"), validators=[InputRequired()],
                         render_kw={"inputmode": "decimal", "placeholder": "250,00"})
