from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import (
    BooleanField,
    EmailField,
    HiddenField,
    PasswordField,
    RadioField,
    SelectField,
    StringField,
    TextAreaField,
)
from wtforms.validators import EqualTo, InputRequired, Length

from ..forms import MESSAGE_LENGTH, CustomerDetailsForm, choices_of
from ..models import CancellationTiming
from ..services.placement import CUSTOMER_NOTE_LENGTH


class ProfileForm(CustomerDetailsForm):
    """The customer's own details; the address changes through EmailChangeForm (password and a link)."""

    email = None


class EmailChangeForm(FlaskForm):
    new_email = EmailField(_l("New e-mail address"), validators=[InputRequired()])
    password = PasswordField(_l("Current password"), validators=[InputRequired()])


class RegistrationForm(CustomerDetailsForm):
    password = PasswordField(_l("Password"), validators=[InputRequired()])
    password_again = PasswordField(
        _l("Password again"),
        validators=[InputRequired(), EqualTo("password", message=_l("The two passwords differ."))],
    )


class CheckoutForm(FlaskForm):
    """Confirms a purchase; for store type 3d_pay it also carries the card, which goes to the bank form only."""

    promo_code = HiddenField()
    note = TextAreaField(_l("Note for us (optional)"), validators=[Length(
        max=CUSTOMER_NOTE_LENGTH, message=_l("Write at most %(max)d characters."))],
        description=_l("Shown on your order; e.g. what the support is for."))
    accept_forfeit = BooleanField(_l("I understand what I lose by switching and want to continue."))
    card_number = StringField(_l("Card number"), render_kw={"autocomplete": "cc-number", "inputmode": "numeric"})
    card_expiry = StringField(_l("Expiry (MM/YY)"), render_kw={"autocomplete": "cc-exp", "placeholder": "MM/YY"})
    card_cvv = PasswordField(_l("Security code (CVV)"), render_kw={"autocomplete": "cc-csc", "inputmode": "numeric"})

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


class NewConversationForm(FlaskForm):
    department_id = SelectField(_l("Department"), coerce=int)
    subject = StringField(_l("Subject"))
    body = TextAreaField(_l("Message"), validators=[MESSAGE_LENGTH])


class MessageForm(FlaskForm):
    body = TextAreaField(_l("Your message"), validators=[MESSAGE_LENGTH])


class ActivationRequestForm(FlaskForm):
    email = StringField(_l("E-mail"))
    phone = StringField(_l("Phone"))
    note = TextAreaField(_l("Note (optional)"), description=_l("e.g. the sender's name or the transfer date"))


class CancellationRequestForm(FlaskForm):
    timing = RadioField(_l("End my subscription"), choices=choices_of(CancellationTiming),
                        default=CancellationTiming.PERIOD_END)
    reason = TextAreaField(_l("Why do you want to cancel?"))
