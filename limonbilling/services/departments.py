"""Components → Departments: name, active flag, credit per request (domain.md §3)."""
from flask_babel import gettext as _
from sqlalchemy import func, select

from ..extensions import db
from ..models import Department
from . import ValidationFailed, audit

MAX_CREDIT_PER_REQUEST = 1_000_000  # far below the integer column's limit

def _validate(name: str, credit_per_request, department: Department | None) -> tuple[str, int]:
    errors: dict[str, list[str]] = {}
    name = (name or "").strip()
    if not name:
        errors["name"] = [_("This field is required.")]
    elif len(name) > 120:
        errors["name"] = [_("At most %(n)d characters.", n=120)]
    else:
        clash = select(Department.id).where(func.lower(Department.name) == name.lower())
        if department is not None:
            clash = clash.where(Department.id != department.id)
        if db.session.scalar(clash) is not None:
            errors["name"] = [_("A department with this name already exists.")]
    try:
        cost = int(credit_per_request)
        if not 0 <= cost <= MAX_CREDIT_PER_REQUEST or str(credit_per_request).strip() not in (str(cost), f"+{cost}"):
            raise ValueError
    except (TypeError, ValueError):
        errors["credit_per_request"] = [_("Enter a whole number of credits from 0 to %(max)d.",
                                          max=MAX_CREDIT_PER_REQUEST)]
        cost = 0
    if errors:
        raise ValidationFailed(errors)
    return name, cost


def create_department(*, name: str, active: bool, credit_per_request, actor: audit.Actor) -> Department:
    name, cost = _validate(name, credit_per_request, None)
    department = Department(name=name, active=active, credit_per_request=cost)
    db.session.add(department)
    db.session.flush()
    audit.record(actor, "department.create", department, name=name, credit_per_request=cost, active=active)
    return department


def update_department(
    department: Department, *, name: str, active: bool, credit_per_request, actor: audit.Actor
) -> None:
    name, cost = _validate(name, credit_per_request, department)
    changes = {
        field: value
        for field, value in (("name", name), ("active", active), ("credit_per_request", cost))
        if getattr(department, field) != value
    }
    for field, value in changes.items():
        setattr(department, field, value)
    if changes:
        audit.record(actor, "department.update", department, **changes)


def list_departments() -> list[Department]:
    return list(db.session.scalars(select(Department).order_by(Department.name)))
