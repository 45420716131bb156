"""The figures on the agents' dashboard: revenue, orders, credits sold and used, subscriptions ending.

Each figure is one grouped query, so the dashboard costs the same few
queries whatever the number of orders.
"""
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sqlalchemy import case, func, select

from ..clock import day_start, local_day, now
from ..extensions import db
from ..models import (
    Customer,
    Department,
    Grant,
    LedgerEntry,
    LedgerKind,
    Order,
    OrderKind,
    OrderState,
    PackageType,
    Payment,
    PaymentState,
    Refund,
    RefundState,
    SubscriptionPeriod,
    Usage,
)


def _local_month(column, labels: list[str]):
    """'YYYY-MM' of the local (Istanbul) month a timestamp column falls in, among `labels` (None outside them).

    Compared with the moments each local month starts, worked out here: the same SQL on both databases, and a
    sale at 01:30 on the 1st in Istanbul (22:30 UTC the day before) is the new month's."""
    starts = [day_start(date(int(label[:4]), int(label[5:]), 1)) for label in labels]
    year, month = int(labels[-1][:4]), int(labels[-1][5:])
    starts.append(day_start(date(year + month // 12, month % 12 + 1, 1)))
    return case(*((column < starts[i + 1], label) for i, label in enumerate(labels)), else_=None), starts[0]


def last_months(count: int, moment: datetime | None = None) -> list[str]:
    """The `count` local months up to and including this one, oldest first, as 'YYYY-MM'."""
    today = local_day(moment or now())
    year, month = today.year, today.month
    months = []
    for _ in range(count):
        months.append(f"{year:04d}-{month:02d}")
        year, month = (year, month - 1) if month > 1 else (year - 1, 12)
    return list(reversed(months))


RECEIVED = (PaymentState.CONFIRMED, PaymentState.REFUNDED)  # payments whose money came (some may have gone back)


def accepted_payment():
    """A received payment we accepted: the SQL side of `Order.accepted_payments`. Money the bank took that we
    refused (half 3-D, a second approval, a late one) goes back by itself and paid for nothing, also while its
    return is on its way or was refused by the bank (the order page asks an agent to act on it)."""
    returned = select(Refund.id).where(Refund.payment_id == Payment.id, Refund.automatic)
    return Payment.state.in_(RECEIVED) & ~returned.exists()


def kept_minor():
    """What of a received payment we keep: its amount less its done refunds. The SQL side of an order's
    `captured_minor - refunded_minor`, for sums over many orders."""
    refunded = (select(func.coalesce(func.sum(Refund.amount_minor), 0))
                .where(Refund.payment_id == Payment.id, Refund.state == RefundState.DONE).scalar_subquery())
    return Payment.amount_minor - refunded


def revenue_by_month(months: int = 12) -> dict[str, dict[str, int]]:
    """Money kept by currency and local month of payment: every payment received and accepted, less what of it
    was refunded (a partial refund leaves the rest), {currency: {month: minor}}. Balance top-ups are left out:
    their money is counted when the balance pays for an order, not twice."""
    labels = last_months(months)
    month, since = _local_month(Payment.confirmed_at, labels)
    kept = (select(Payment.currency, month.label("month"), kept_minor().label("kept"))
            .join(Order, Order.id == Payment.order_id)
            .where(accepted_payment(), Payment.confirmed_at >= since, Order.kind != OrderKind.BALANCE)
            .subquery())  # grouped outside: PostgreSQL cannot tell the CASE's parameters in GROUP BY are the same
    rows = db.session.execute(select(kept.c.currency, kept.c.month, func.sum(kept.c.kept))
                              .where(kept.c.month.is_not(None)).group_by(kept.c.currency, kept.c.month))
    revenue: dict[str, dict[str, int]] = {}
    for currency, paid_month, amount in rows:
        revenue.setdefault(currency, dict.fromkeys(labels, 0))[paid_month] = int(amount)
    return revenue


def orders_by_status() -> dict[str, int]:
    counts = dict(db.session.execute(select(Order.status, func.count(Order.id)).group_by(Order.status)).all())
    return {status: counts.get(status, 0) for status in OrderState}


@dataclass
class DepartmentCredits:
    department: str
    sold: int
    used: int


def credits_by_department(months: int = 12) -> list[DepartmentCredits]:
    """Credits sold in credit packages that cover each department, and credits spent there, over `months`.

    What each purchase gave, less what a revocation (Cancel, Fraud, a refund) took back of it: an order accepted
    again with the same money gives back only what was taken (entitlements.restoration), and the credits used
    before the revocation stay sold, so sold credits are never fewer than those used from them.
    A package that covers several departments counts its credits under each of them.
    """
    since = now() - timedelta(days=31 * months)
    names = dict(db.session.execute(select(Department.id, Department.name)).all())
    sold = dict.fromkeys(names, 0)
    taken_back = (select(func.coalesce(func.sum(LedgerEntry.amount), 0))
                  .where(LedgerEntry.grant_id == Grant.id, LedgerEntry.kind == LedgerKind.REVERSAL).scalar_subquery())
    for snapshot, reversed_credits in db.session.execute(select(Grant.snapshot, taken_back).where(
            Grant.package_type == PackageType.CREDIT, Grant.created_at >= since)):
        for department_id in snapshot["department_ids"]:
            if department_id in sold:
                sold[department_id] += snapshot["credits"] + int(reversed_credits)
    used = dict(db.session.execute(
        select(Usage.department_id, func.sum(Usage.cost))
        .where(Usage.covered_by == "credits", Usage.created_at >= since).group_by(Usage.department_id)
    ).all())
    return [DepartmentCredits(names[department_id], sold[department_id], int(used.get(department_id) or 0))
            for department_id in sorted(names, key=names.get) if sold[department_id] or used.get(department_id)]


@dataclass
class EndingSubscription:
    customer: Customer
    ends_at: datetime


def subscriptions_ending(days: int = 30) -> list[EndingSubscription]:
    """Subscribers whose last period ends in the next `days` days (a renewal bought ahead moves them out)."""
    moment = now()
    last_end = (select(SubscriptionPeriod.customer_id, func.max(func.coalesce(
        SubscriptionPeriod.cut_at, SubscriptionPeriod.ends_at)).label("ends_at"))
        .group_by(SubscriptionPeriod.customer_id).subquery())
    rows = db.session.execute(
        select(Customer, last_end.c.ends_at).join(last_end, last_end.c.customer_id == Customer.id)
        .where(last_end.c.ends_at > moment, last_end.c.ends_at <= moment + timedelta(days=days),
               Customer.package_type == PackageType.SUBSCRIPTION)
        .order_by(last_end.c.ends_at)
    )
    return [EndingSubscription(customer, ends_at) for customer, ends_at in rows]


def pending_orders(at_most: int | None = None) -> int:
    """How many orders wait for review. With `at_most`, counting stops there: a badge that says "999+"
    costs the same at a thousand pending orders as at a million."""
    pending = select(Order.id).where(Order.status == OrderState.PENDING)
    if at_most is not None:
        pending = pending.limit(at_most)
    return db.session.scalar(select(func.count()).select_from(pending.subquery())) or 0
