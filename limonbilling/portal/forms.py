from flask_babel import lazy_gettext as _l
from wtforms import PasswordField
from wtforms.validators import EqualTo, InputRequired

from ..forms import CustomerDetailsForm


class RegistrationForm(CustomerDetailsForm):
    password = PasswordField(_l("Password"), validators=[InputRequired()])
    password_again = PasswordField(
        _l("Password again"),
        validators=[InputRequired(), EqualTo("password", message=_l("The two passwords differ."))],
    )
