"""What customers are entitled to (domain.md §5): activating a package, departments switching on and off by
themselves (rule 5), what a customer holds for pages and the API, revoking and ending.

What a purchase would do is in purchase_rules.py (rules 1–4, 7), charging a new ticket or chat in
charging.py (rule 6). Pages, the API and the payment code call these and never re-check a rule themselves.
"""
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from flask_babel import gettext as _
from sqlalchemy import select

from ..clock import now
from ..extensions import db
from ..models import (
    Customer,
    CustomerDepartment,
    Department,
    DepartmentSource,
    Grant,
    GrantEnd,
    LedgerEntry,
    LedgerKind,
    Order,
    OrderKind,
    Package,
    PackageType,
    SubscriptionPeriod,
)
from . import audit, holdings, ledger, webhooks
from .charging import DepartmentNotEnabled, paid_by
from .purchase_rules import Offer, PurchaseRefused, preview_purchase, renewal_window

# --- what a customer holds --------------------------------------------------------------------

def _entitled_department_ids(customer: Customer, moment: datetime) -> set[int]:
    """Departments some entitlement covers now or later (a renewal already bought)."""
    ids = (holdings.covered_department_ids(customer.id, PackageType.CREDIT, moment)
           if customer.package_type == PackageType.CREDIT else set())
    for period in holdings.subscription_periods(customer):
        if period.effective_end > moment:
            ids.update(period.grant.department_ids)
    return ids


# --- rule 5: departments switch on and off by themselves ----------------------------------------

def sync_departments(customer: Customer, actor: audit.Actor | None = None) -> None:
    """Rule 5: package departments switch on when a purchase is activated and off when nothing covers them.

    Departments an agent switched on (`manual`) are never touched.
    """
    db.session.flush()  # the grants and periods just changed are what the coverage query reads
    entitled = _entitled_department_ids(customer, now())
    rows = {row.department_id: row for row in customer.departments}
    switched_on, switched_off = [], []
    for department_id in sorted(entitled - rows.keys()):
        customer.departments.append(CustomerDepartment(department_id=department_id, source=DepartmentSource.PACKAGE))
        switched_on.append(department_id)
    for department_id, row in rows.items():
        if row.source == DepartmentSource.PACKAGE and department_id not in entitled:
            customer.departments.remove(row)
            switched_off.append(department_id)
    if (switched_on or switched_off) and actor is not None:
        audit.record(actor, "customer.departments.sync", customer, on=switched_on, off=switched_off)


def subscribers_to_expire() -> list[int]:
    """The subscribers holding a department by a package: those whose subscription may have ended (cron)."""
    with_package_departments = select(CustomerDepartment.customer_id).where(
        CustomerDepartment.source == DepartmentSource.PACKAGE)
    return list(db.session.scalars(select(Customer.id).where(
        Customer.id.in_(with_package_departments), Customer.package_type == PackageType.SUBSCRIPTION
    ).order_by(Customer.id)))


def expire_subscriber(customer_id: int) -> bool:
    """Switch off the package departments no period of the customer covers any more; whether any went off.

    The customer is locked first, as a purchase locks it: read unlocked, a renewal committed meanwhile (its
    departments still on, so it switched none on) lost them here, for good. The cron commits each customer on
    its own, so a run does not hold every subscriber until its end."""
    customer = ledger.lock_customer(customer_id)
    db.session.expire(customer, ["departments"])  # as they are now, under the lock
    before = {row.department_id for row in customer.departments}
    sync_departments(customer, audit.Actor.system("expiry"))
    return {row.department_id for row in customer.departments} != before


# --- activation ---------------------------------------------------------------------------------

def activate_package(
    customer: Customer, package: Package | Offer, *, source: str, actor: audit.Actor, allow_off_sale: bool = False,
    for_order: Order | None = None, may_forfeit: bool = True,
) -> Grant:
    """Give the customer what the package sells, in the caller's transaction.

    The customer row is locked and the rules are checked again, whatever a
    page showed earlier; a refused purchase raises PurchaseRefused, also one
    that would forfeit what the customer holds (rule 4) unless `may_forfeit`.
    `for_order` is the paid order that activates it: the grant is that order's.
    """
    customer = ledger.lock_customer(customer.id)
    package = Offer.of(package)
    preview = preview_purchase(customer, package, allow_off_sale=allow_off_sale, for_order=for_order)
    if preview.allowed and preview.forfeits_something and not may_forfeit:
        preview.allowed, preview.reason_code = False, "unasked_forfeit"
        preview.reason = _("it would forfeit the package the customer holds now, which they did not agree to when "
                           "they ordered; refund the order instead")
    if not preview.allowed:
        raise PurchaseRefused(preview)
    moment = now()
    grant = Grant(
        customer_id=customer.id, package_id=package.package_id, package_type=package.type, kind=preview.kind,
        snapshot=package.snapshot(), source=source, created_at=moment, order=for_order,
    )
    db.session.add(grant)
    db.session.flush()
    if preview.kind == OrderKind.SWITCH:
        _forfeit_old_type(customer, grant, moment)
    customer.package_type = package.type
    if package.type == PackageType.CREDIT:
        ledger.post(customer, "purchase", package.credits, grant_id=grant.id)
    else:
        db.session.add(SubscriptionPeriod(
            customer_id=customer.id, grant=grant, starts_at=preview.period_start, ends_at=preview.new_expiry,
        ))
    db.session.flush()
    sync_departments(customer)
    audit.record(
        actor, "entitlement.activate", customer, package=package.name, kind=preview.kind, source=source,
        credits=customer.credits if package.type == PackageType.CREDIT else None,
        expires=preview.new_expiry.isoformat() if preview.new_expiry else None,
    )
    webhooks.emit("entitlement.changed", customer=customer, change="granted")
    return grant


def _forfeit_old_type(customer: Customer, grant: Grant, moment: datetime) -> None:
    """Rule 4: a purchase of the other type forfeits the old one, written to the ledger."""
    if customer.package_type == PackageType.CREDIT:
        for old in holdings.active_credit_grants(customer):
            old.ended_at, old.end_reason = moment, GrantEnd.FORFEIT
        if customer.credits:
            ledger.post(customer, "forfeit", -customer.credits, grant_id=grant.id,
                        **ledger.because("credits_forfeited"))
    else:
        until = None
        for period in holdings.subscription_periods(customer):
            if period.effective_end > moment:
                until = max(until or period.effective_end, period.effective_end)
                period.cut_at = max(period.starts_at, moment)
                period.grant.ended_at, period.grant.end_reason = moment, GrantEnd.FORFEIT
        if until is not None:
            ledger.note(customer, LedgerKind.FORFEIT, grant_id=grant.id,
                        **ledger.because("subscription_forfeited", until=until.isoformat()))


# --- what the customer holds, for pages and the API ----------------------------------------------

@dataclass
class DepartmentAccess:
    department: Department
    source: str  # manual, package
    usable: bool
    cost: int


@dataclass
class Entitlement:
    package_type: str | None
    credits: int
    expires_at: datetime | None
    renewable_from: datetime | None
    departments: list[DepartmentAccess]

    @property
    def subscription_active(self) -> bool:
        return self.expires_at is not None and self.expires_at > now()


def entitlement(customer: Customer) -> Entitlement:
    """What the customer holds now: type, credits or expiry, and each enabled department's usability."""
    expiry = holdings.subscription_expiry(customer) if customer.package_type == PackageType.SUBSCRIPTION else None
    covered = holdings.covered_department_ids(customer.id, customer.package_type, now())
    access = []
    for row in sorted(customer.departments, key=lambda r: r.department.name):
        try:
            _covered_by, cost = paid_by(row.source, row.department, customer.package_type, covered)
        except DepartmentNotEnabled:
            access.append(DepartmentAccess(row.department, row.source, usable=False, cost=0))
        else:
            access.append(DepartmentAccess(row.department, row.source, usable=customer.credits >= cost, cost=cost))
    return Entitlement(
        package_type=customer.package_type,
        credits=customer.credits,
        expires_at=expiry,
        renewable_from=expiry - renewal_window() if expiry else None,
        departments=access,
    )


# --- revoking what an order granted ---------------------------------------------------------------

@dataclass
class Revocation:
    credits_taken_back: int = 0
    credits_already_used: int = 0
    period_removed: bool = False


def revoke_grant(grant: Grant, actor: audit.Actor, reason: dict) -> Revocation:
    """Take back what one purchase gave (a cancelled, refunded or fraudulent order).

    Credits are taken back as far as they remain, never below zero; the rest
    was already used and is recorded in the ledger, not silently dropped. A
    subscription period is removed. Departments follow (rule 5).
    """
    customer = ledger.lock_customer(grant.customer_id)
    # Read again under the customer's lock: a switch that committed since the caller loaded them may have ended
    # the grant and cut its period (what it forfeited is not the revocation's to take, nor to give back)
    db.session.flush()
    db.session.refresh(grant)
    if grant.period is not None:
        db.session.refresh(grant.period)
    result = Revocation()
    if grant.ended_at is not None and grant.end_reason == GrantEnd.REVOKED:
        return result
    moment = now()
    if grant.package_type == PackageType.CREDIT:
        granted = grant.snapshot["credits"]
        if grant.ended_at is None and customer.package_type == PackageType.CREDIT:
            result.credits_taken_back = min(granted, customer.credits)
            result.credits_already_used = granted - result.credits_taken_back
            if result.credits_taken_back:
                ledger.post(customer, "reversal", -result.credits_taken_back, grant_id=grant.id, **reason)
            if result.credits_already_used:
                ledger.note(customer, "reversal", grant_id=grant.id, **ledger.because(
                    "credits_already_used", num=result.credits_already_used, granted=granted))
    elif grant.period is not None and grant.period.effective_end > grant.period.starts_at:
        left = max(grant.period.effective_end - max(grant.period.starts_at, moment), timedelta(0))
        grant.period.cut_at = grant.period.starts_at
        result.period_removed = True
        # The note keeps how much of the period was still to come, for an Accept of the same money (restoration)
        ledger.note(customer, "reversal", grant_id=grant.id, reason_code=reason["reason_code"],
                    reason_args={**(reason["reason_args"] or {}), "left_seconds": int(left.total_seconds())})
    grant.ended_at, grant.end_reason = moment, GrantEnd.REVOKED
    db.session.flush()
    sync_departments(customer)
    audit.record(actor, "entitlement.revoke", customer, grant=grant.id, taken_back=result.credits_taken_back,
                 already_used=result.credits_already_used, period_removed=result.period_removed)
    webhooks.emit("entitlement.changed", customer=customer, change="revoked")
    return result


def restoration(order: Order, offer: Offer) -> tuple[Offer, bool]:
    """What activating the order gives now, and whether it is a restoration.

    Once the order's grant was revoked (Cancel, Set as Fraud) while the money that paid for it stayed with us,
    Back to Pending and Accept give back what the revocation took: the credits it took back, or the time that
    was still to come of the period, not the package again (the customer used the rest of it already). Money
    confirmed after the revocation (a new payment after a refund) buys the package whole.
    """
    revoked = next((grant for grant in reversed(order.grants) if grant.end_reason == GrantEnd.REVOKED), None)
    # New money is money we accepted and still hold: an approval confirmed after the revocation and returned to
    # the card by itself (a second attempt, an order no longer awaiting payment) buys nothing, also while the bank
    # refuses to take it back
    if revoked is None or any((payment.confirmed_at or payment.created_at) > revoked.ended_at
                              for payment in order.standing_payments):
        return offer, False
    reversals = db.session.scalars(select(LedgerEntry).where(
        LedgerEntry.grant_id == revoked.id, LedgerEntry.kind == LedgerKind.REVERSAL)).all()
    if revoked.package_type == PackageType.CREDIT:
        return replace(offer, credits=-sum(entry.amount for entry in reversals)), True
    left = max([(entry.reason_args or {}).get("left_seconds", 0) for entry in reversals], default=0)
    return replace(offer, length=timedelta(seconds=left)), True


def restore_nothing(customer: Customer, offer: Offer, *, source: str, for_order: Order) -> Grant:
    """A restoration with nothing to give back (the revocation took nothing: the credits were used or the period
    was forfeited by a switch, ended or over before it). The order counts as given again, but nothing moves: no
    purchase of 0 credits or a period of no length, and above all no switch of type forfeiting what the customer
    holds now. The grant is recorded already ended, so a later revocation takes nothing either."""
    customer = ledger.lock_customer(customer.id)
    moment = now()
    kind = (OrderKind.NEW if customer.package_type is None else OrderKind.SWITCH if customer.package_type != offer.type
            else OrderKind.TOP_UP if offer.type == PackageType.CREDIT else OrderKind.RENEWAL)
    snapshot = {**offer.snapshot(), "credits": 0} if offer.type == PackageType.CREDIT else offer.snapshot()
    grant = Grant(customer_id=customer.id, package_id=offer.package_id, package_type=offer.type, kind=kind,
                  snapshot=snapshot, source=source, created_at=moment, ended_at=moment, end_reason=GrantEnd.FORFEIT,
                  order=for_order)
    db.session.add(grant)
    db.session.flush()
    return grant


def end_subscription(customer: Customer, at: datetime, actor: audit.Actor, reason: dict) -> int:
    """End the subscription period running at `at` there (an approved cancellation request).

    Renewals bought ahead (periods that start after `at`) are paid time and stay:
    only a refund of their order takes them away (domain.md §6a). The ledger
    notes the cut and departments follow (rule 5) once `at` has passed. Returns
    how many periods changed.
    """
    customer = ledger.lock_customer(customer.id)
    changed = 0
    for period in holdings.subscription_periods(customer):
        if not period.starts_at <= at < period.effective_end:
            continue
        period.cut_at = at
        changed += 1
    if changed:
        ledger.note(customer, LedgerKind.FORFEIT, **reason)
        db.session.flush()
        sync_departments(customer, actor)
        audit.record(actor, "entitlement.end_subscription", customer, at=at.isoformat(), periods=changed)
        webhooks.emit("entitlement.changed", customer=customer, change="ended")
    return changed
