"""Two-factor sign-in (TOTP, RFC 6238) with one-time recovery codes, for agents and customers.

A code is accepted one time step (30 s) either side of now, for clock drift, and only once: the account
keeps the last step it accepted (`totp_last_step`) and refuses that step and older ones. Recovery codes
carry about 79 random bits, so a plain SHA-256 of each is safe to store; each works once. Every check
that spends a code locks the account row first, so two requests cannot both spend the same code.
"""
import hashlib
import hmac
import re
import secrets
from datetime import datetime, timedelta

import pyotp
from flask_babel import gettext as _
from pyotp.utils import strings_equal
from sqlalchemy import func, select

from ..clock import now
from ..extensions import db
from ..models import Agent, AuditEntry, Customer
from . import ServiceError, ValidationFailed, accounts, audit, settings

VALID_WINDOW = 1  # steps accepted either side of the current one
RECOVERY_CODES = 10
MAX_FAILURES = 5  # wrong codes before a pending sign-in is dropped (the password must be entered again)
ACCOUNT_FAILURES = 20  # wrong codes of one account in ACCOUNT_WINDOW, over all its pending sign-ins
ACCOUNT_WINDOW = timedelta(minutes=15)
_RECOVERY_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"  # no 0/o, 1/l/i to misread
_RECOVERY_LENGTH = 16

Account = Agent | Customer


def required_for(user: Account) -> bool:
    """The owner's rule (setting `require_two_factor_agents`): every agent signs in with a second factor."""
    return user.kind == "agent" and bool(settings.get("require_two_factor_agents"))


def require_for_agents(required: bool, actor: audit.Actor) -> None:
    """Make the owner's rule (see required_for), or lift it: only an owner may (accounts.require_owner)."""
    accounts.require_owner(actor)
    settings.update({"require_two_factor_agents": required}, actor)


def start_enrolment(user: Account) -> str:
    """A new secret for an account without two-factor sign-in. A secret not confirmed yet is kept, so
    opening the page again does not invalidate the QR code already scanned."""
    if user.two_factor_enabled:
        raise ServiceError("already_enabled", _("Two-factor sign-in is already on."))
    if not user.totp_secret:
        user.totp_secret = pyotp.random_base32()
    return user.totp_secret


def provisioning_uri(user: Account) -> str:
    """The otpauth:// address an authenticator app reads from the QR code, issued by the company name."""
    return pyotp.TOTP(user.totp_secret).provisioning_uri(name=user.email, issuer_name=settings.get("company_name"))


def confirm_enrolment(user: Account, code: str, actor: audit.Actor) -> list[str]:
    """Turn two-factor sign-in on with a current code from the app; returns the recovery codes, shown once.

    The account's other sessions end (the caller signs the current one in again).
    """
    _lock(user)
    if user.two_factor_enabled:
        raise ServiceError("already_enabled", _("Two-factor sign-in is already on."))
    if not user.totp_secret:
        raise ServiceError("not_started", _("Open the two-factor page again to get a QR code."))
    if not check_code(user, code):
        raise ValidationFailed({"code": [_wrong_code()]})
    user.totp_enabled_at = now()
    codes = _new_recovery_codes(user)
    user.end_sessions()
    audit.record(actor, f"{user.kind}.two_factor_enabled", user)
    return codes


def check_code(user: Account, code: str) -> bool:
    """Whether `code` is the account's current TOTP code (one step either side) and newer than the last one
    used; if so, its step is spent."""
    _lock(user)
    code = (code or "").strip().replace(" ", "")
    if not user.totp_secret or not re.fullmatch(r"[0-9]{6}", code):
        return False
    totp = pyotp.TOTP(user.totp_secret)
    current = totp.timecode(now())
    for step in range(current - VALID_WINDOW, current + VALID_WINDOW + 1):
        if (user.totp_last_step is None or step > user.totp_last_step) and strings_equal(code, totp.generate_otp(step)):
            user.totp_last_step = step
            return True
    return False


def use_recovery_code(user: Account, code: str, actor: audit.Actor) -> bool:
    """Spend one of the account's recovery codes: each works once, also when two requests bring it at once."""
    _lock(user)
    digest = _digest(code)
    hashes = list(user.recovery_code_hashes or [])
    match = next((stored for stored in hashes if hmac.compare_digest(stored, digest)), None)
    if match is None:
        return False
    hashes.remove(match)
    user.recovery_code_hashes = hashes  # a new list: the JSON column does not see changes inside the old one
    audit.record(actor, f"{user.kind}.recovery_code_used", user, left=len(hashes))
    return True


def second_step(user: Account, code: str, actor: audit.Actor, *, pending_since: datetime) -> bool:
    """The second step of signing in (begun at `pending_since`), with a code from the app or a recovery code.
    Audited either way; the failures count towards MAX_FAILURES and ACCOUNT_FAILURES, read under the account's
    row lock, so guesses sent in parallel cannot pass the limits (ServiceError once they are reached)."""
    _lock(user)
    if failed_attempts(user, since=pending_since) >= MAX_FAILURES or locked_out(user):
        raise ServiceError("too_many_codes", _("Too many wrong codes. Enter your password again."))
    if check_code(user, code):
        method = "totp"
    elif use_recovery_code(user, code, actor):
        method = "recovery_code"
    else:
        audit.record(actor, f"{user.kind}.two_factor_failed", user)
        return False
    record_sign_in(user, actor, method)
    return True


def failed_attempts(user: Account, since: datetime) -> int:
    """Wrong second steps of the account since `since`. Counted from the audit log, not the session
    cookie: a visitor can send an older cookie again, but cannot make the server forget."""
    return db.session.scalar(select(func.count()).select_from(AuditEntry).where(
        AuditEntry.action == f"{user.kind}.two_factor_failed", AuditEntry.target_type == type(user).__tablename__,
        AuditEntry.target_id == str(user.id), AuditEntry.at >= since))


def locked_out(user: Account) -> bool:
    """Too many wrong codes lately: a right password is not a failed sign-in for the throttle, so without
    this someone who has the password could keep starting new second steps to guess codes."""
    return failed_attempts(user, since=now() - ACCOUNT_WINDOW) >= ACCOUNT_FAILURES


def record_sign_in(user: Account, actor: audit.Actor, method: str) -> None:
    """Every successful sign-in is in the audit log, with how the account proved itself."""
    audit.record(actor, f"{user.kind}.sign_in", user, method=method)


def regenerate_recovery_codes(user: Account, code: str, actor: audit.Actor) -> list[str]:
    """Replace every recovery code with new ones (shown once); needs a current code from the app."""
    _lock(user)
    if not user.two_factor_enabled:
        raise ServiceError("not_enabled", _("Two-factor sign-in is off."))
    if not check_code(user, code):
        raise ValidationFailed({"code": [_wrong_code()]})
    codes = _new_recovery_codes(user)
    audit.record(actor, f"{user.kind}.recovery_codes_regenerated", user)
    return codes


def disable(user: Account, password: str, code: str, actor: audit.Actor) -> None:
    """Turn two-factor sign-in off with the password and a current or recovery code; an agent cannot
    while the owner requires it."""
    _lock(user)
    if not user.two_factor_enabled:
        raise ServiceError("not_enabled", _("Two-factor sign-in is off."))
    if required_for(user):
        raise ServiceError("required", _("The owner requires two-factor sign-in for every agent, "
                                         "so it stays on. Ask the owner if you need it off."))
    if not user.check_password(password or ""):
        raise ValidationFailed({"password": [_("This is not your current password.")]})
    if not (check_code(user, code) or use_recovery_code(user, code, actor)):
        raise ValidationFailed({"code": [_wrong_code()]})
    user.totp_secret = None
    user.totp_enabled_at = None
    user.recovery_code_hashes = None
    audit.record(actor, f"{user.kind}.two_factor_disabled", user)


def _lock(user: Account) -> Account:
    """The account re-read with its row locked until the transaction ends (PostgreSQL: SELECT … FOR UPDATE;
    SQLite: every transaction holds the writer's lock), as `lifecycle.lock_order` does for orders."""
    db.session.flush()
    model = type(user)
    return db.session.execute(select(model).where(model.id == user.id).with_for_update()
                              .execution_options(populate_existing=True)).scalar_one()


def _new_recovery_codes(user: Account) -> list[str]:
    raw = ["".join(secrets.choice(_RECOVERY_ALPHABET) for _position in range(_RECOVERY_LENGTH))
           for _number in range(RECOVERY_CODES)]
    user.recovery_code_hashes = [_digest(code) for code in raw]
    return ["-".join(code[i:i + 4] for i in range(0, _RECOVERY_LENGTH, 4)) for code in raw]


def _digest(code: str) -> str:
    """Recovery codes are compared without case, spaces or dashes (as people copy them)."""
    normal = re.sub(r"[\s-]", "", code or "").lower()
    return hashlib.sha256(normal.encode()).hexdigest()


def _wrong_code() -> str:
    return _("This code is not right. Enter the 6-digit code your app shows now.")
