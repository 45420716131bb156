"""Forms shared by the portal and the admin pages, and the one way a view runs a service.

Forms carry the fields and the CSRF token; the rules live in the services. A view that changes data calls
`run_service` (a refusal goes on the form shown again, field errors next to their fields) or `run_action`
(a refusal is flashed): both commit the request's work, or roll it back on a refusal. No page view commits
or catches a ServiceError itself (tests/unit/test_view_conventions.py).
"""
from flask import flash
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import (
    BooleanField,
    EmailField,
    MultipleFileField,
    PasswordField,
    RadioField,
    SelectField,
    StringField,
    TextAreaField,
)
from wtforms.fields.choices import SelectChoice
from wtforms.validators import EqualTo, InputRequired, Length

from .extensions import db
from .models import AccountType, Choice, Language
from .services import ServiceError, ValidationFailed
from .services.attachments import Upload, limits_hint


def choices_of(choice: type[Choice], *, excluding=()) -> list[SelectChoice]:
    """A field's choices from the enum of stored values, worded by their labels."""
    return [SelectChoice(member.value, member.label) for member in choice if member not in excluding]


def optional_id(value) -> int | None:
    """A select's record id; empty (or not a number) is none, and the service says what it makes of it."""
    try:
        return int(value) if value not in (None, "") else None
    except (TypeError, ValueError):
        return None


LANGUAGE_CHOICES = [SelectChoice("", _l("Default")), *choices_of(Language)]
MAX_MESSAGE_LENGTH = 20_000  # characters in one ticket or chat message: a long pasted log still fits
MESSAGE_LENGTH = Length(max=MAX_MESSAGE_LENGTH, message=_l("Write at most %(max)d characters."))


class AttachmentsForm(FlaskForm):
    """A message form that takes files (tickets and chats): its page posts multipart/form-data, and its view
    passes `uploads(form)` to the service, which checks them."""

    attachments = MultipleFileField(_l("Attach files"), render_kw={
        "accept": "image/png,image/jpeg,image/webp,application/pdf"})

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.attachments.description = limits_hint()

    def uploads(self) -> list[Upload]:
        """The chosen files (an empty file input sends one part with no name: not a file)."""
        return [Upload(file.filename, file.read()) for file in self.attachments.data or []
                if getattr(file, "filename", None)]


class CustomerDetailsForm(FlaskForm):
    account_type = RadioField(
        _l("Account type"),
        choices=choices_of(AccountType),
        default=AccountType.INDIVIDUAL,
    )
    first_name = StringField(_l("First name"))
    last_name = StringField(_l("Last name"))
    email = EmailField(_l("E-mail"))
    phone = StringField(_l("Phone"), description=_l("e.g. 0532 123 45 67 or +44 20 7946 0958"))
    national_id = StringField(_l("Turkish ID number (optional)"))
    company_name = StringField(_l("Company name"))
    tax_number = StringField(_l("Tax number"))
    tax_office = StringField(_l("Tax office"))
    billing_address = TextAreaField(_l("Billing address"))
    language = SelectField(_l("Language"), choices=LANGUAGE_CHOICES)

    def details(self) -> dict:
        from .services.customers import DETAIL_FIELDS

        return {name: self[name].data for name in DETAIL_FIELDS if name in self}


class SignInForm(FlaskForm):
    email = EmailField(_l("E-mail"), validators=[InputRequired()])
    password = PasswordField(_l("Password"), validators=[InputRequired()])


class ButtonForm(FlaskForm):
    """A form that is only a button: it carries the CSRF token. Every such button uses this one class."""


class ForgotPasswordForm(FlaskForm):
    email = EmailField(_l("E-mail"), validators=[InputRequired()])


class ResetPasswordForm(FlaskForm):
    password = PasswordField(_l("New password"), validators=[InputRequired()],
                             description=_l("At least 10 characters, with a digit or a symbol."))
    confirm = PasswordField(_l("New password again"), validators=[InputRequired(), EqualTo(
        "password", message=_l("The two passwords differ."))])


class PasswordChangeForm(FlaskForm):
    current_password = PasswordField(_l("Current password"), validators=[InputRequired()])
    new_password = PasswordField(_l("New password"), validators=[InputRequired()])


def show_errors(form: FlaskForm, error: ValidationFailed) -> None:
    """Attach a service's field errors to the form; unknown fields go to the form-level errors."""
    for field, messages in error.errors.items():
        target = form[field].errors if field in form else form.form_errors
        if isinstance(target, tuple):
            target = form[field].errors = list(target)
        target.extend(messages)


def run_service(form: FlaskForm, action, /, *args, **kwargs) -> tuple[bool, object]:
    """Run a service call for a submitted form that is shown again when refused: commit and return
    (True, result), or roll back, put the refusal on the form (field errors next to their fields) and
    return (False, None)."""

    def on_the_form(error: ServiceError) -> None:
        if isinstance(error, ValidationFailed):
            show_errors(form, error)
        else:
            form.form_errors.append(error.message)

    return _one_unit_of_work(on_the_form, action, args, kwargs)


def run_action(action, /, *args, **kwargs) -> tuple[bool, object]:
    """Run a service call for a view that redirects whatever happens (a button that posts only its CSRF
    token, a link from an e-mail): commit and return (True, result), or roll back, flash the refusal and
    return (False, None)."""

    def flashed(error: ServiceError) -> None:
        if isinstance(error, ValidationFailed):
            messages = [message for field_messages in error.errors.values() for message in field_messages]
        else:
            messages = [error.message]
        for message in messages:
            flash(message, "danger")

    return _one_unit_of_work(flashed, action, args, kwargs)


def _one_unit_of_work(refused, action, args, kwargs) -> tuple[bool, object]:
    """The request's unit of work (architecture.md, Transactions): the service does its work in the session,
    the view's helper commits it, or rolls all of it back and hands the refusal to `refused`."""
    try:
        result = action(*args, **kwargs)
    except ServiceError as error:
        db.session.rollback()
        refused(error)
        return False, None
    db.session.commit()
    return True, result


# --- two-factor sign-in ----------------------------------------------------------------------------
_ONE_TIME = {"autocomplete": "one-time-code", "autocapitalize": "off", "spellcheck": "false"}


class TwoFactorCodeForm(FlaskForm):
    """A code from the authenticator app (or, at sign-in, a recovery code)."""

    code = StringField(_l("Code"), validators=[InputRequired()], render_kw=_ONE_TIME)


class TwoFactorDisableForm(FlaskForm):
    password = PasswordField(_l("Password"), validators=[InputRequired()])
    code = StringField(_l("Code from your app or a recovery code"), validators=[InputRequired()], render_kw=_ONE_TIME)


class TwoFactorRequirementForm(FlaskForm):
    required = BooleanField(_l("Every agent must sign in with two-factor sign-in"))
