"""Rule 6 (domain.md §5): a new ticket or chat is charged once, by what covers its department.

This is what every help-desk request runs, so it reads what it decides on in one query and writes plain rows.
"""
from dataclasses import dataclass

from flask_babel import gettext as _
from sqlalchemy import bindparam, select, update

from ..clock import now
from ..extensions import db, insert_ignoring_conflict
from ..models import Customer, CustomerDepartment, Department, Usage
from . import ServiceError, holdings, ledger, webhooks


@dataclass(frozen=True)
class ChargeResult:
    usage_id: int
    charged: int
    credits: int  # the customer's credits right after this charge
    covered_by: str  # credits, subscription, manual
    repeated: bool  # True when this (kind, reference) was charged before: nothing charged again


class DepartmentNotEnabled(ServiceError):
    def __init__(self, department_id: int, name: str):
        super().__init__(
            "department_not_enabled",
            _("%(department)s is not enabled for your account. Buy a package that covers it.", department=name),
            department_id=department_id,
        )


def paid_by(source: str | None, department, package_type: str | None, covered: set[int]) -> tuple[str, int]:
    """How a new request in `department` is paid for: (covered_by, cost), or DepartmentNotEnabled.

    `source` is how the department is switched on for the customer (manual, package
    or None); `covered` what the package type covers now (`holdings.covered_department_ids`).
    """
    if source is None or not department.active:
        raise DepartmentNotEnabled(department.id, department.name)
    if source == "manual":
        return "manual", 0
    if department.id in covered:
        return ("subscription", 0) if package_type == "subscription" else ("credits", department.credit_per_request)
    raise DepartmentNotEnabled(department.id, department.name)


class NotFound(LookupError):
    """The customer or the department named for a charge does not exist."""

    def __init__(self, what: str, record_id: int):
        super().__init__(f"No {what} with id {record_id}.")
        self.what, self.record_id = what, record_id


_SET_CREDITS_AFTER = update(Usage.__table__).where(Usage.__table__.c.id == bindparam("usage_id")).values(
    credits_after=bindparam("credits"))


def charge_usage(customer_id: int, department_id: int, kind: str, reference: str) -> ChargeResult:
    """Rule 6: charge a new ticket or chat once; replies and messages never come here.

    The same (kind, reference) again returns the first result and charges
    nothing (a unique constraint decides, even between concurrent requests).
    A subscription or a manual department makes it free; the use is still
    recorded. Not enough credits raises InsufficientCredits.

    This is what every help-desk request runs, so it reads what it needs in two
    queries and writes plain rows: the usage (INSERT … ON CONFLICT DO NOTHING),
    then for a cost the balance and its ledger row (`ledger.post_usage`).
    """
    if kind not in ("ticket", "chat"):
        raise ValueError(kind)
    db.session.flush()  # pending ORM changes (e.g. a new conversation) reach the database first
    facts = _charge_facts(customer_id, department_id, kind, reference)
    if facts.usage_id is not None:
        return _repeat(facts, customer_id)
    moment = now()
    covered = (holdings.covered_department_ids(customer_id, facts.package_type, moment)
               if facts.source == "package" else set())
    covered_by, cost = paid_by(facts.source, facts, facts.package_type, covered)
    usage_id = insert_ignoring_conflict(
        Usage, returning=Usage.id, customer_id=customer_id, department_id=department_id, kind=kind,
        reference=reference, cost=cost, covered_by=covered_by, credits_after=facts.credits, created_at=moment,
    )
    if usage_id is None:
        # A concurrent request recorded the same reference first: answer with its result.
        return _repeat(_charge_facts(customer_id, department_id, kind, reference), customer_id)
    credits = facts.credits
    if cost:
        credits = ledger.post_usage(customer_id, cost, usage_id, facts.low_credit_threshold)
        db.session.execute(_SET_CREDITS_AFTER, {"usage_id": usage_id, "credits": credits})
    result = ChargeResult(usage_id=usage_id, charged=cost, credits=credits, covered_by=covered_by, repeated=False)
    webhooks.emit("usage.charged", customer_id=customer_id, department_id=department_id, kind=kind,
                  reference=reference, charge=result)
    return result


def _statement_of_charge_facts():
    customers, departments = Customer.__table__.c, Department.__table__
    switched_on, usages = CustomerDepartment.__table__, Usage.__table__
    return (
        select(
            customers.package_type, customers.credits, customers.low_credit_threshold,
            departments.c.id, departments.c.name, departments.c.active, departments.c.credit_per_request,
            switched_on.c.source, usages.c.id.label("usage_id"), usages.c.customer_id.label("usage_customer_id"),
            usages.c.cost.label("usage_cost"), usages.c.covered_by.label("usage_covered_by"),
            usages.c.credits_after.label("usage_credits_after"),
        )
        .select_from(Customer.__table__.join(departments, departments.c.id == bindparam("department_id"))
                     .outerjoin(switched_on, (switched_on.c.customer_id == customers.id)
                                & (switched_on.c.department_id == departments.c.id))
                     .outerjoin(usages, (usages.c.kind == bindparam("kind"))
                                & (usages.c.reference == bindparam("reference"))))
        .where(customers.id == bindparam("customer_id"))
    )


_CHARGE_FACTS = _statement_of_charge_facts()


def _charge_facts(customer_id: int, department_id: int, kind: str, reference: str):
    """One row with what a charge decides on: the customer's type, credits and low-credit threshold, the
    department and how it is switched on for the customer, and a usage already recorded for the reference."""
    row = db.session.execute(_CHARGE_FACTS, {
        "customer_id": customer_id, "department_id": department_id, "kind": kind, "reference": reference,
    }).first()
    if row is None:
        exists = db.session.scalar(select(Customer.id).where(Customer.id == customer_id))
        raise NotFound("department", department_id) if exists else NotFound("customer", customer_id)
    return row


def _repeat(facts, customer_id: int) -> ChargeResult:
    if facts.usage_customer_id != customer_id:
        raise ServiceError("reference_conflict", _("This reference was already used for another customer."))
    return ChargeResult(usage_id=facts.usage_id, charged=facts.usage_cost, credits=facts.usage_credits_after,
                        covered_by=facts.usage_covered_by, repeated=True)
