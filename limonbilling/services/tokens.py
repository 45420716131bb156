"""Signed links: e-mail confirmation, e-mail change, password reset and an order's payment link (and the
referral cookie).

A link carries the account and a fingerprint of what it is about: the e-mail address for a
confirmation (a link for an old address confirms nothing), the password hash for a reset (the
link works once: the new password changes the hash). Both expire (config *_MAX_AGE).
"""
import hashlib

from flask import current_app
from flask_babel import gettext as _
from itsdangerous import BadSignature, SignatureExpired, TimestampSigner, URLSafeTimedSerializer

from ..clock import now
from ..models import Agent, Customer, Order
from . import ServiceError


class _ClockSigner(TimestampSigner):
    """Signs and checks ages by the app's clock, so tests can let a link expire."""

    def get_timestamp(self) -> int:
        return int(now().timestamp())


def _serializer(purpose: str) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.secret_key, salt=f"limonbilling.{purpose}", signer=_ClockSigner)


def fingerprint(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()[:20]


def email_verification_token(customer: Customer) -> str:
    return _serializer("verify-email").dumps({"id": customer.id, "f": fingerprint(customer.email)})


def email_change_token(customer: Customer, new_email: str) -> str:
    """Bound to the address and the password it was asked with: a new password (what the notice to the old
    address advises) makes every pending change link worthless."""
    return _serializer("change-email").dumps({"id": customer.id, "f": fingerprint(customer.email),
                                             "p": fingerprint(customer.password_hash), "n": new_email})


def password_reset_token(user: Agent | Customer, welcome: bool = False) -> str:
    """A reset link; in a welcome mail (`welcome`) it lives as long as a confirmation link."""
    return _serializer("reset-password").dumps(
        {"k": user.kind, "id": user.id, "f": fingerprint(user.password_hash), "w": welcome})


def referral_token(code: str) -> str:
    """The referral cookie: an affiliate's code, signed with the moment of the visit (the age `load` checks)."""
    return _serializer("referral").dumps({"code": code})


def payment_link_token(order: Order) -> str:
    """A link to pay the order by card (card_payments.payment_link_order decides whether it still works)."""
    return _serializer("payment-link").dumps({"o": order.id, "n": order.number})


def load(token: str, purpose: str, max_age: int, with_timestamp: bool = False):
    """The data a link signed for `purpose` carries; ServiceError when it expired or was not signed by us."""
    try:
        data, signed_at = _serializer(purpose).loads(token, max_age=max_age, return_timestamp=True)
    except SignatureExpired as error:
        raise ServiceError("link_expired", _("This link has expired; ask for a new one.")) from error
    except BadSignature as error:
        raise ServiceError("link_invalid", _("This link is not valid; check that it was copied whole.")) from error
    if not isinstance(data, dict):
        raise ServiceError("link_invalid", _("This link is not valid; check that it was copied whole."))
    return (data, signed_at) if with_timestamp else data
