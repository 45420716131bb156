"""The one normal form of an e-mail address and of a phone number (a leaf: it imports no service)."""
import phonenumbers
from email_validator import validate_email


def normalize_email(value: str) -> str:
    """Lower-cased, syntax-checked address (no DNS look-up: the network may be closed).

    Raises ValueError (email_validator's EmailNotValidError) when it is not an address.
    """
    return validate_email(value.strip(), check_deliverability=False).normalized.lower()


def normalize_phone(value: str) -> str:
    """E.164 form of a Turkish (default region) or international (+country) number."""
    try:
        number = phonenumbers.parse(value.strip(), "TR")
    except phonenumbers.NumberParseException as exc:
        raise ValueError(str(exc)) from exc
    if not phonenumbers.is_valid_number(number):
        raise ValueError("invalid number")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
