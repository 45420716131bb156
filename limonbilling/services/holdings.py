"""What a customer holds now: credit grants and subscription periods, read without changing anything.

Below the rules (entitlements), cancellations, notifications and webhooks, which all read it.
"""
from datetime import datetime

from sqlalchemy import select

from ..clock import now
from ..extensions import db
from ..models import Customer, Grant, SubscriptionPeriod


def active_credit_grants(customer: Customer) -> list[Grant]:
    """Rule 2: credits cover the departments of every credit package bought since the last switch."""
    return list(db.session.scalars(
        select(Grant).where(
            Grant.customer_id == customer.id, Grant.package_type == "credit", Grant.ended_at.is_(None)
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
