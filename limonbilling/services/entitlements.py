"""The rules of entitlement (domain.md §5, rules 1–6), each in one function that names its rule.

`preview_purchase` says what buying a package would do; `activate_package`
does it (after checking again under a lock); `charge_usage` charges a new
ticket or chat; `entitlement` describes what a customer holds now. Pages, the
API and the payment code call these and never re-check a rule themselves.
"""
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from flask_babel import format_date, ngettext
from flask_babel import gettext as _
from sqlalchemy import bindparam, or_, select, update

from ..clock import now
from ..extensions import db, insert_ignoring_conflict
from ..models import Customer, CustomerDepartment, Department, Grant, Order, Package, SubscriptionPeriod, Usage
from . import ServiceError, audit, holdings, ledger, settings, webhooks


@dataclass(frozen=True)
class Offer:
    """A package as it is offered now, or as it was sold (an order's snapshot): what the rules look at."""

    package_id: int | None
    name: str
    type: str
    price_minor: int
    currency: str
    credits: int | None
    days: int | None
    department_ids: list[int]
    department_names: list[str]
    on_sale: bool

    @classmethod
    def of(cls, package: "Package | Offer") -> "Offer":
        if isinstance(package, Offer):
            return package
        return cls(**package.snapshot(), on_sale=package.on_sale and not package.archived)

    @classmethod
    def sold(cls, snapshot: dict) -> "Offer":
        """What an order bought: it completes even if the package was edited or taken off sale since."""
        return cls(**snapshot, on_sale=True)

    def snapshot(self) -> dict:
        values = {name: getattr(self, name) for name in self.__dataclass_fields__}
        del values["on_sale"]
        return values


@dataclass
class PurchasePreview:
    """What a purchase of `package` would do for the customer, or why it is refused."""

    allowed: bool
    kind: str  # new, top-up, renewal, switch
    reason_code: str | None = None
    reason: str | None = None
    new_credits: int | None = None
    period_start: datetime | None = None
    new_expiry: datetime | None = None
    renewable_from: datetime | None = None
    forfeit_credits: int = 0
    forfeit_subscription_until: datetime | None = None
    department_names: list[str] = field(default_factory=list)

    @property
    def forfeits_something(self) -> bool:
        return self.forfeit_credits > 0 or self.forfeit_subscription_until is not None


class PurchaseRefused(ServiceError):
    def __init__(self, preview: PurchasePreview):
        super().__init__(preview.reason_code, preview.reason, preview=preview)
        self.preview = preview


# --- what a customer holds --------------------------------------------------------------------

def renewal_window() -> timedelta:
    return timedelta(days=settings.get("renewal_window_days"))


def _statements_of_coverage():
    grants, periods = Grant.__table__.c, SubscriptionPeriod.__table__.c
    customer_id, moment = bindparam("customer_id"), bindparam("moment")
    credit = select(grants.snapshot).where(
        grants.customer_id == customer_id, grants.package_type == "credit", grants.ended_at.is_(None))
    subscription = select(grants.snapshot).join_from(Grant.__table__, SubscriptionPeriod.__table__).where(
        periods.customer_id == customer_id, periods.starts_at <= moment, periods.ends_at > moment,
        or_(periods.cut_at.is_(None), periods.cut_at > moment))
    return {"credit": credit, "subscription": subscription}


_COVERAGE = _statements_of_coverage()  # built once: every charge runs one of them


def _covered_department_ids(customer_id: int, package_type: str | None, moment: datetime) -> set[int]:
    """Rules 2 and 3: the departments the customer's package type covers at `moment`.

    Credits cover the departments of every credit package bought since the last
    switch; each subscription period covers its own package's departments,
    only during the period (in SQL what `SubscriptionPeriod.covers` says in Python).
    """
    if package_type not in _COVERAGE:
        return set()
    snapshots = db.session.scalars(_COVERAGE[package_type], {"customer_id": customer_id, "moment": moment})
    return {department_id for snapshot in snapshots for department_id in snapshot["department_ids"]}


def _entitled_department_ids(customer: Customer, moment: datetime) -> set[int]:
    """Departments some entitlement covers now or later (a renewal already bought)."""
    ids = _covered_department_ids(customer.id, "credit", moment) if customer.package_type == "credit" else set()
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
        customer.departments.append(CustomerDepartment(department_id=department_id, source="package"))
        switched_on.append(department_id)
    for department_id, row in rows.items():
        if row.source == "package" and department_id not in entitled:
            customer.departments.remove(row)
            switched_off.append(department_id)
    if (switched_on or switched_off) and actor is not None:
        audit.record(actor, "customer.departments.sync", customer, on=switched_on, off=switched_off)


def expire_entitlements() -> int:
    """Switch off the package departments of every customer whose subscription has ended (cron).

    Returns how many customers changed. Usability is always decided at charge
    time too, so this only keeps the cards tidy.
    """
    changed = 0
    with_package_departments = select(CustomerDepartment.customer_id).where(CustomerDepartment.source == "package")
    subscribers = db.session.scalars(select(Customer).where(
        Customer.id.in_(with_package_departments), Customer.package_type == "subscription"))
    for customer in subscribers:
        before = {row.department_id for row in customer.departments}
        sync_departments(customer, audit.Actor.system("expiry"))
        if {row.department_id for row in customer.departments} != before:
            changed += 1
    return changed


# --- rules 1, 3, 4: what a purchase would do -----------------------------------------------------

def open_order(customer: Customer, exclude: Order | None = None) -> Order | None:
    """Rule 7: the customer's order still awaiting payment or approval, if any.

    An unpaid card checkout stops counting once it expires (it is abandoned).
    """
    statement = select(Order).where(
        Order.customer_id == customer.id, Order.status == "pending", Order.payment_status.in_(("unpaid", "refunded")),
        (Order.expires_at.is_(None)) | (Order.expires_at > now()),
    )
    if exclude is not None:
        statement = statement.where(Order.id != exclude.id)
    return db.session.scalars(statement.order_by(Order.id).limit(1)).first()


@dataclass(frozen=True)
class _Standing:
    """What the purchase rules read about a customer besides the customer row, read once for many packages."""

    waiting: Order | None  # rule 7
    expiry: datetime | None  # rules 3 and 4
    window: timedelta  # rule 3

    @classmethod
    def of(cls, customer: Customer, for_order: Order | None) -> "_Standing":
        expiry = holdings.subscription_expiry(customer) if customer.package_type == "subscription" else None
        return cls(open_order(customer, exclude=for_order), expiry, renewal_window())


def preview_purchases(customer: Customer, packages: list[Package], *, allow_off_sale: bool = False
                      ) -> list[PurchasePreview]:
    """`preview_purchase` for each package, reading the customer's orders and periods once (a page of offers
    costs the same few statements for 3 packages or 50)."""
    standing = _Standing.of(customer, None)
    return [preview_purchase(customer, package, allow_off_sale=allow_off_sale, standing=standing)
            for package in packages]


def preview_purchase(
    customer: Customer, package: Package | Offer, *, allow_off_sale: bool = False, for_order: Order | None = None,
    standing: _Standing | None = None,
) -> PurchasePreview:
    """Rules 1–4 and 7 applied to a would-be purchase: allowed or why not, and its effect.

    `for_order` is the order being paid or activated, which does not block itself under rule 7.

    Rule 1 (one type at a time) and rule 4 (switching forfeits the old type):
    buying the other type is allowed but forfeits the remaining credits or
    subscription time. Rule 2: credit top-ups add up any time. Rule 3:
    subscriptions renew only inside the renewal window or after expiry, the
    new period starting at the current expiry (or now, once expired).
    """
    moment = now()
    package = Offer.of(package)
    current = customer.package_type
    if current is None:
        kind = "new"
    elif current == package.type:
        kind = "top-up" if package.type == "credit" else "renewal"
    else:
        kind = "switch"
    preview = PurchasePreview(allowed=True, kind=kind, department_names=package.department_names)

    if not (package.on_sale or allow_off_sale):
        preview.allowed = False
        preview.reason_code = "not_on_sale"
        preview.reason = _("This package is no longer on sale.")
        return preview
    standing = standing or _Standing.of(customer, for_order)
    waiting = standing.waiting
    if waiting is not None:
        preview.allowed = False
        preview.reason_code = "open_order"
        preview.reason = _(
            "Your order %(number)s is still awaiting payment or approval. Finish or cancel it before a new order.",
            number=waiting.number,
        )
        return preview

    expiry = standing.expiry
    if package.type == "credit":
        if kind == "switch" and expiry is not None and expiry > moment:
            preview.forfeit_subscription_until = expiry
        preview.new_credits = (customer.credits if kind == "top-up" else 0) + package.credits
        if preview.new_credits > ledger.MAX_BALANCE:
            preview.allowed = False
            preview.reason_code = "balance_limit"
            preview.reason = ledger.BalanceLimit().message
        return preview

    if kind == "switch":
        preview.forfeit_credits = customer.credits
    start = moment
    if kind == "renewal" and expiry is not None and expiry > moment:
        opens = expiry - standing.window
        preview.renewable_from = opens
        if moment < opens:
            preview.allowed = False
            preview.reason_code = "renewal_not_open"
            preview.reason = ngettext(
                "Renewal opens on %(date)s, %(num)d day before your subscription ends.",
                "Renewal opens on %(date)s, %(num)d days before your subscription ends.",
                standing.window.days,
                date=format_date(opens, "long"),
            )
            return preview
        start = expiry
    preview.period_start = start
    preview.new_expiry = start + timedelta(days=package.days)
    return preview


# --- activation ---------------------------------------------------------------------------------

def activate_package(
    customer: Customer, package: Package | Offer, *, source: str, actor: audit.Actor, allow_off_sale: bool = False,
    for_order: Order | None = None,
) -> Grant:
    """Give the customer what the package sells, in the caller's transaction.

    The customer row is locked and the rules are checked again, whatever a
    page showed earlier; a refused purchase raises PurchaseRefused. `for_order`
    is the paid order that activates it: the grant is that order's.
    """
    customer = ledger.lock_customer(customer.id)
    package = Offer.of(package)
    preview = preview_purchase(customer, package, allow_off_sale=allow_off_sale, for_order=for_order)
    if not preview.allowed:
        raise PurchaseRefused(preview)
    moment = now()
    grant = Grant(
        customer_id=customer.id, package_id=package.package_id, package_type=package.type, kind=preview.kind,
        snapshot=package.snapshot(), source=source, created_at=moment, order=for_order,
    )
    db.session.add(grant)
    db.session.flush()
    if preview.kind == "switch":
        _forfeit_old_type(customer, grant, moment)
    customer.package_type = package.type
    if package.type == "credit":
        ledger.post(customer, "purchase", package.credits, grant_id=grant.id)
    else:
        db.session.add(SubscriptionPeriod(
            customer_id=customer.id, grant=grant, starts_at=preview.period_start, ends_at=preview.new_expiry,
        ))
    db.session.flush()
    sync_departments(customer)
    audit.record(
        actor, "entitlement.activate", customer, package=package.name, kind=preview.kind, source=source,
        credits=customer.credits if package.type == "credit" else None,
        expires=preview.new_expiry.isoformat() if preview.new_expiry else None,
    )
    webhooks.emit("entitlement.changed", customer=customer, change="granted")
    return grant


def _forfeit_old_type(customer: Customer, grant: Grant, moment: datetime) -> None:
    """Rule 4: a purchase of the other type forfeits the old one, written to the ledger."""
    if customer.package_type == "credit":
        for old in holdings.active_credit_grants(customer):
            old.ended_at, old.end_reason = moment, "forfeit"
        if customer.credits:
            ledger.post(customer, "forfeit", -customer.credits, grant_id=grant.id,
                        **ledger.because("credits_forfeited"))
    else:
        until = None
        for period in holdings.subscription_periods(customer):
            if period.effective_end > moment:
                until = max(until or period.effective_end, period.effective_end)
                period.cut_at = max(period.starts_at, moment)
                period.grant.ended_at, period.grant.end_reason = moment, "forfeit"
        if until is not None:
            ledger.note(customer, "forfeit", grant_id=grant.id,
                        **ledger.because("subscription_forfeited", until=until.isoformat()))


# --- rule 6: charging ---------------------------------------------------------------------------

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


def _paid_by(source: str | None, department, package_type: str | None, covered: set[int]) -> tuple[str, int]:
    """How a new request in `department` is paid for: (covered_by, cost), or DepartmentNotEnabled.

    `source` is how the department is switched on for the customer (manual, package
    or None); `covered` what the package type covers now (`_covered_department_ids`).
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
    covered = _covered_department_ids(customer_id, facts.package_type, moment) if facts.source == "package" else set()
    covered_by, cost = _paid_by(facts.source, facts, facts.package_type, covered)
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
    expiry = holdings.subscription_expiry(customer) if customer.package_type == "subscription" else None
    covered = _covered_department_ids(customer.id, customer.package_type, now())
    access = []
    for row in sorted(customer.departments, key=lambda r: r.department.name):
        try:
            _covered_by, cost = _paid_by(row.source, row.department, customer.package_type, covered)
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
    result = Revocation()
    if grant.ended_at is not None and grant.end_reason == "revoked":
        return result
    moment = now()
    if grant.package_type == "credit":
        granted = grant.snapshot["credits"]
        if grant.ended_at is None and customer.package_type == "credit":
            result.credits_taken_back = min(granted, customer.credits)
            result.credits_already_used = granted - result.credits_taken_back
            if result.credits_taken_back:
                ledger.post(customer, "reversal", -result.credits_taken_back, grant_id=grant.id, **reason)
            if result.credits_already_used:
                ledger.note(customer, "reversal", grant_id=grant.id, **ledger.because(
                    "credits_already_used", num=result.credits_already_used, granted=granted))
    elif grant.period is not None and grant.period.effective_end > grant.period.starts_at:
        grant.period.cut_at = grant.period.starts_at
        result.period_removed = True
        ledger.note(customer, "reversal", grant_id=grant.id, **reason)
    grant.ended_at, grant.end_reason = moment, "revoked"
    db.session.flush()
    sync_departments(customer)
    audit.record(actor, "entitlement.revoke", customer, grant=grant.id, taken_back=result.credits_taken_back,
                 already_used=result.credits_already_used, period_removed=result.period_removed)
    webhooks.emit("entitlement.changed", customer=customer, change="revoked")
    return result


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
        ledger.note(customer, "forfeit", **reason)
        db.session.flush()
        sync_departments(customer, actor)
        audit.record(actor, "entitlement.end_subscription", customer, at=at.isoformat(), periods=changed)
        webhooks.emit("entitlement.changed", customer=customer, change="ended")
    return changed
