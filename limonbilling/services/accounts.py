"""Sign-in and agent accounts."""
from email_validator import validate_email
from flask_babel import gettext as _
from sqlalchemy import func, select

from ..extensions import db
from ..models import PERMISSIONS, Agent, Customer
from . import ServiceError, ValidationFailed, audit

MIN_PASSWORD_LENGTH = 8


def normalize_email(value: str) -> str:
    """Lower-cased, syntax-checked address (no DNS look-up: the network may be closed).

    Raises ValueError (email_validator's EmailNotValidError) when it is not an address.
    """
    return validate_email(value.strip(), check_deliverability=False).normalized.lower()


def password_problem(password: str | None) -> str | None:
    """Why a password is too weak, or None when it will do."""
    password = password or ""
    if len(password) < MIN_PASSWORD_LENGTH:
        return _("Use at least %(n)d characters.", n=MIN_PASSWORD_LENGTH)
    if password.isdigit() or password.isalpha():
        return _("Use letters and at least one digit or symbol.")
    return None


def _by_email(model, email: str):
    return db.session.scalar(select(model).where(func.lower(model.email) == (email or "").strip().lower()))


def authenticate_agent(email: str, password: str) -> Agent | None:
    agent = _by_email(Agent, email)
    if agent is None or not agent.active or not agent.check_password(password or ""):
        return None
    return agent


def authenticate_customer(email: str, password: str) -> Customer | None:
    customer = _by_email(Customer, email)
    if customer is None or not customer.check_password(password or ""):
        return None
    return customer


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
    audit.record(actor, f"{user.kind}.password", user)


def create_agent(
    *, name: str, email: str, password: str, permissions: list[str], is_owner: bool, actor: audit.Actor
) -> Agent:
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
    unknown = set(permissions) - set(PERMISSIONS)
    if unknown:
        raise ValueError(f"unknown permissions {sorted(unknown)}")
    for permission in PERMISSIONS:
        setattr(agent, f"can_{permission}", permission in permissions)


def _owner_count() -> int:
    return db.session.scalar(select(func.count()).where(Agent.is_owner, Agent.active))


def update_agent(
    agent: Agent, *, permissions: list[str], is_owner: bool, active: bool, actor: audit.Actor
) -> None:
    """Change an agent's permissions; the last active owner can be neither demoted nor disabled."""
    if agent.is_owner and agent.active and (not is_owner or not active) and _owner_count() <= 1:
        raise ServiceError("last_owner", _("At least one active owner must remain."))
    _apply_permissions(agent, permissions)
    agent.is_owner = is_owner
    agent.active = active
    audit.record(actor, "agent.update", agent, permissions=agent.permissions, owner=is_owner, active=active)


def create_owner(email: str, password: str, name: str | None = None) -> Agent:
    """The first account of an installation (CLI `billing create-owner`)."""
    return create_agent(
        name=name or email.split("@")[0],
        email=email,
        password=password,
        permissions=list(PERMISSIONS),
        is_owner=True,
        actor=audit.Actor.system("cli"),
    )
