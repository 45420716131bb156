"""What a customer holds now: credit grants and subscription periods, read without changing anything.

Below the rules (entitlements), cancellations, notifications and webhooks, which all read it.
"""
from datetime import datetime

from sqlalchemy import bindparam, or_, select

from ..clock import now
from ..extensions import db
from ..models import Customer, Grant, PackageType, SubscriptionPeriod


def active_credit_grants(customer: Customer) -> list[Grant]:
    """Rule 2: credits cover the departments of every credit package bought since the last switch."""
    return list(db.session.scalars(
        select(Grant).where(
            Grant.customer_id == customer.id, Grant.package_type == PackageType.CREDIT, Grant.ended_at.is_(None)
        ).order_by(Grant.id)
    ))


def subscription_periods(customer: Customer) -> list[SubscriptionPeriod]:
    """The customer's periods that were not cut to nothing, in time order."""
    periods = db.session.scalars(
        select(SubscriptionPeriod).where(SubscriptionPeriod.customer_id == customer.id).order_by(
            SubscriptionPeriod.starts_at, SubscriptionPeriod.id
        )
    )
    return [period for period in periods if period.effective_end > period.starts_at]


def subscription_expiry(customer: Customer) -> datetime | None:
    """When the customer's subscription time runs out (the end of the last period), or None."""
    periods = subscription_periods(customer)
    return max(period.effective_end for period in periods) if periods else None


def current_period_end(customer: Customer):
    """The end of the period running now, or None when no subscription is running."""
    moment = now()
    running = [p for p in subscription_periods(customer) if p.covers(moment)]
    return max(p.effective_end for p in running) if running else None


def _statements_of_coverage():
    grants, periods = Grant.__table__.c, SubscriptionPeriod.__table__.c
    customer_id, moment = bindparam("customer_id"), bindparam("moment")
    credit = select(grants.snapshot).where(
        grants.customer_id == customer_id, grants.package_type == PackageType.CREDIT, grants.ended_at.is_(None))
    subscription = select(grants.snapshot).join_from(Grant.__table__, SubscriptionPeriod.__table__).where(
        periods.customer_id == customer_id, periods.starts_at <= moment, periods.ends_at > moment,
        or_(periods.cut_at.is_(None), periods.cut_at > moment))
    return {PackageType.CREDIT: credit, PackageType.SUBSCRIPTION: subscription}


_COVERAGE = _statements_of_coverage()  # built once: every charge runs one of them


def covered_department_ids(customer_id: int, package_type: str | None, moment: datetime) -> set[int]:
    """Rules 2 and 3: the departments the customer's package type covers at `moment`.

    Credits cover the departments of every credit package bought since the last
    switch; each subscription period covers its own package's departments,
    only during the period (in SQL what `SubscriptionPeriod.covers` says in Python).
    """
    if package_type not in _COVERAGE:
        return set()
    snapshots = db.session.scalars(_COVERAGE[package_type], {"customer_id": customer_id, "moment": moment})
    return {department_id for snapshot in snapshots for department_id in snapshot["department_ids"]}
