"""Sign-in, agent accounts, and the signed links that confirm an e-mail address or reset a password."""
from functools import cache
from pathlib import Path

from flask import current_app
from flask_babel import gettext as _
from sqlalchemy import func, select

from ..clock import now
from ..extensions import db
from ..models import Agent, Customer, Permission
from ..models.accounts import check_password_of_nobody
from . import ServiceError, ValidationFailed, audit, notifications, tokens
from .contacts import normalize_email

MIN_PASSWORD_LENGTH = 10
COMMON_PASSWORDS_FILE = Path(__file__).resolve().parent.parent / "data" / "common_passwords.txt"


@cache
def _common_passwords() -> frozenset[str]:
    lines = COMMON_PASSWORDS_FILE.read_text(encoding="utf-8").splitlines()
    return frozenset(line for line in lines if line and not line.startswith("#"))


def password_problem(password: str | None) -> str | None:
    """Why a password is too weak, or None when it will do."""
    password = password or ""
    if len(password) < MIN_PASSWORD_LENGTH:
        return _("Use at least %(n)d characters.", n=MIN_PASSWORD_LENGTH)
    if password.isdigit() or password.isalpha():
        return _("Use letters and at least one digit or symbol.")
    if password.lower() in _common_passwords():
        return _("This password is one of the most common ones; choose another.")
    return None


def _by_email(model, email: str):
    return db.session.scalar(select(model).where(func.lower(model.email) == (email or "").strip().lower()))


def _authenticate(model, email: str, password: str):
    """The account whose password this is, or None; a password hash is checked either way (timing)."""
    user = _by_email(model, email)
    if user is None:
        return check_password_of_nobody(password or "") or None
    if not user.check_password(password or "") or not user.is_active:
        return None
    return user


def authenticate_agent(email: str, password: str) -> Agent | None:
    return _authenticate(Agent, email, password)


def authenticate_customer(email: str, password: str) -> Customer | None:
    return _authenticate(Customer, email, password)


def change_password(user: Agent | Customer, current: str, new: str, actor: audit.Actor) -> None:
    errors: dict[str, list[str]] = {}
    if not user.check_password(current or ""):
        errors["current_password"] = [_("This is not your current password.")]
    problem = password_problem(new)
    if problem:
        errors["new_password"] = [problem]
    if errors:
        raise ValidationFailed(errors)
    user.set_password(new)
    user.end_sessions()
    audit.record(actor, f"{user.kind}.password", user)


def set_language(user: Agent | Customer, language: str) -> None:
    """The account keeps the language its user chose with the language switch (pages and e-mails)."""
    user.language = language


def end_all_sessions(user: Agent | Customer, actor: audit.Actor) -> None:
    """"Sign out everywhere": every session of the account ends (the caller signs this one in again)."""
    user.end_sessions()
    audit.record(actor, f"{user.kind}.sessions_ended", user)


def verify_email(token: str) -> Customer:
    """Confirm the address the link was sent to. Raises ServiceError for a bad, expired or outdated link."""
    data = tokens.load(token, "verify-email", current_app.config["EMAIL_VERIFICATION_MAX_AGE"])
    customer = db.session.get(Customer, data.get("id"))
    if customer is None or data.get("f") != tokens.fingerprint(customer.email):
        raise ServiceError("link_invalid", _("This link is not valid any more; ask for a new one from your profile."))
    if customer.email_verified_at is None:
        customer.email_verified_at = now()
        audit.record(audit.Actor.of(customer), "customer.email_verified", customer, email=customer.email)
    return customer


def resend_verification(customer: Customer) -> None:
    """A new confirmation link for an address not confirmed yet; a confirmed one needs none."""
    if customer.email_verified_at is not None:
        raise ServiceError("already_confirmed", _("Your e-mail address is already confirmed."))
    notifications.email_verification(customer)


def request_email_change(customer: Customer, new_email: str, password: str, actor: audit.Actor) -> str:
    """Start moving the account to a new address: the password proves it is the customer, a link to the
    new address proves it is theirs, and the old address is told (a stolen session cannot quietly take
    the account over). An address of another account gets the same answer and no link. Returns it."""
    errors: dict[str, list[str]] = {}
    if not customer.check_password(password or ""):
        errors["password"] = [_("This is not your current password.")]
    try:
        new_email = normalize_email(new_email or "")
    except ValueError:
        errors["new_email"] = [_("Enter a valid e-mail address, like name@example.com.")]
    else:
        if new_email == customer.email.lower():
            errors["new_email"] = [_("This is your address already.")]
    if errors:
        raise ValidationFailed(errors)
    if _by_email(Customer, new_email) is None:
        notifications.email_change(customer, new_email, tokens.email_change_token(customer, new_email))
    notifications.email_change_notice(customer, customer.email, new_email)
    audit.record(actor, "customer.email_change_requested", customer, new=new_email)
    return new_email


def confirm_email_change(token: str) -> Customer:
    """Move the account to the address the link was sent to; every session of the account ends.

    The link works once (it carries a fingerprint of the old address) and expires like a confirmation link.
    """
    data = tokens.load(token, "change-email", current_app.config["EMAIL_VERIFICATION_MAX_AGE"])
    customer = db.session.get(Customer, data.get("id"), with_for_update=True)
    if (customer is None or data.get("f") != tokens.fingerprint(customer.email)
            or data.get("p") != tokens.fingerprint(customer.password_hash)):
        raise ServiceError("link_invalid", _("This link is not valid any more; ask for a new one from your profile."))
    new_email = data.get("n")
    if _by_email(Customer, new_email) is not None:
        raise ServiceError("email_taken", _("%(email)s already belongs to another account.", email=new_email))
    actor, old_email = audit.Actor.of(customer), customer.email
    customer.email = new_email
    customer.email_verified_at = now()
    customer.end_sessions()
    audit.record(actor, "customer.email_changed", customer, old=old_email, new=new_email)
    return customer


def user_for_reset(token: str, kind: str) -> Agent | Customer:
    """The account a reset link belongs to, while the link is valid and unused.

    `kind` is the area the link is opened in ("customer" or "agent"): a customer's link does not work
    on the agents' page, nor an agent's on the portal.
    """
    config = current_app.config
    longest = max(config["PASSWORD_RESET_MAX_AGE"], config["EMAIL_VERIFICATION_MAX_AGE"])
    data, signed_at = tokens.load(token, "reset-password", longest, with_timestamp=True)
    max_age = config["EMAIL_VERIFICATION_MAX_AGE"] if data.get("w") else config["PASSWORD_RESET_MAX_AGE"]
    if (now() - signed_at).total_seconds() > max_age:
        raise ServiceError("link_expired", _("This link has expired; ask for a new one."))
    model = {"agent": Agent, "customer": Customer}.get(data.get("k")) if data.get("k") == kind else None
    user = db.session.get(model, data.get("id")) if model is not None else None
    if user is None or data.get("f") != tokens.fingerprint(user.password_hash) or not getattr(user, "active", True):
        raise ServiceError("link_invalid", _("This link has been used or is not valid; ask for a new one."))
    return user


def reset_password(token: str, new: str, kind: str) -> Agent | Customer:
    user = user_for_reset(token, kind)
    problem = password_problem(new)
    if problem:
        raise ValidationFailed({"password": [problem]})
    user.set_password(new)
    user.end_sessions()
    if user.kind == "customer" and user.email_verified_at is None:
        user.email_verified_at = now()  # the link reached the inbox: the address is the customer's
    audit.record(audit.Actor.of(user), f"{user.kind}.password_reset", user)
    return user


def request_password_reset(kind: str, email: str) -> None:
    """Mail a reset link if the account exists; the page says the same either way (no account probing)."""
    user = _by_email({"agent": Agent, "customer": Customer}[kind], email)
    if user is not None and getattr(user, "active", True):
        notifications.password_reset(user)


def require_owner(actor: audit.Actor) -> None:
    """Only an owner (or the installation itself, from the CLI) creates agents, changes what they may do,
    makes API tokens (which act with billing and customer rights) or requires two-factor sign-in of agents.

    The acting agent is read from the database: an actor that only claims to be an owner is not one.
    """
    if actor.type == "system":
        return
    agent = db.session.get(Agent, actor.id) if actor.type == "agent" and actor.id is not None else None
    if agent is None or not (agent.is_owner and agent.active):
        raise ServiceError("owner_only", _("Only an owner can do this: create agents, change their permissions, "
                                           "make API tokens or require two-factor sign-in."))


def create_agent(
    *, name: str, email: str, password: str, permissions: list[str], is_owner: bool, actor: audit.Actor
) -> Agent:
    require_owner(actor)
    errors: dict[str, list[str]] = {}
    if not (name or "").strip():
        errors["name"] = [_("This field is required.")]
    elif len(name.strip()) > 120:
        errors["name"] = [_("At most %(n)d characters.", n=120)]
    try:
        email = normalize_email(email or "")
    except ValueError:
        errors["email"] = [_("Enter a valid e-mail address, like name@example.com.")]
    else:
        if _by_email(Agent, email) is not None:
            errors["email"] = [_("An agent with this e-mail address already exists.")]
    problem = password_problem(password)
    if problem:
        errors["password"] = [problem]
    if errors:
        raise ValidationFailed(errors)
    agent = Agent(name=name.strip(), email=email, is_owner=is_owner, active=True)
    agent.set_password(password)
    _apply_permissions(agent, permissions)
    db.session.add(agent)
    db.session.flush()
    audit.record(actor, "agent.create", agent, permissions=agent.permissions, owner=is_owner)
    return agent


def _apply_permissions(agent: Agent, permissions: list[str]) -> None:
    unknown = set(permissions) - set(Permission)
    if unknown:
        raise ValueError(f"unknown permissions {sorted(unknown)}")
    for permission in Permission:
        setattr(agent, f"can_{permission}", permission in permissions)


def _owner_count() -> int:
    return db.session.scalar(select(func.count()).where(Agent.is_owner, Agent.active))


def update_agent(
    agent: Agent, *, permissions: list[str], is_owner: bool, active: bool, actor: audit.Actor
) -> None:
    """Change an agent's permissions (an owner's job); the last active owner can be neither demoted nor disabled."""
    require_owner(actor)
    if agent.is_owner and agent.active and (not is_owner or not active) and _owner_count() <= 1:
        raise ServiceError("last_owner", _("At least one active owner must remain."))
    _apply_permissions(agent, permissions)
    agent.is_owner = is_owner
    if agent.active and not active:
        agent.end_sessions()
    agent.active = active
    audit.record(actor, "agent.update", agent, permissions=agent.permissions, owner=is_owner, active=active)


def create_owner(email: str, password: str, name: str | None = None) -> Agent:
    """The first account of an installation (CLI `billing create-owner`)."""
    return create_agent(
        name=name or email.split("@")[0],
        email=email,
        password=password,
        permissions=list(Permission),
        is_owner=True,
        actor=audit.Actor.system("cli"),
    )
