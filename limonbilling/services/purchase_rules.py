"""What buying a package would do (domain.md §5, rules 1–4 and 7): allowed or why not, and its effect.

Pure rules over what is read once about the customer (`_Standing`), so a page of offers costs the same few
statements for 3 packages or 50. `entitlements.activate_package` checks them again under the customer's lock.
"""
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from flask_babel import format_date, ngettext
from flask_babel import gettext as _
from sqlalchemy import select

from ..clock import now
from ..extensions import db
from ..models import Customer, MoneyState, Order, OrderKind, OrderState, Package, PackageType
from . import ServiceError, holdings, ledger, settings


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
    # A subscription period of exactly this length instead of `days`: what a revocation took back, given back
    # (entitlements.restoration). Not part of the snapshot.
    length: timedelta | None = None

    @classmethod
    def of(cls, package: "Package | Offer") -> "Offer":
        if isinstance(package, Offer):
            return package
        return cls(**package.snapshot(), on_sale=package.on_sale and not package.archived)

    @classmethod
    def sold(cls, snapshot: dict, quantity: int = 1) -> "Offer":
        """What an order bought (`quantity` × the package): it completes even if the package was edited or taken
        off sale since."""
        return cls(**snapshot, on_sale=True).times(quantity)

    def times(self, quantity: int) -> "Offer":
        """n × the package as one purchase: n × the credits, or n consecutive periods (one period of n × the
        days, starting where one period would), at n × the price. The grant's snapshot keeps the total, so a
        revocation takes back all of it."""
        if quantity == 1:
            return self
        return replace(self, price_minor=self.price_minor * quantity,
                       credits=self.credits * quantity if self.credits is not None else None,
                       days=self.days * quantity if self.days is not None else None)

    def snapshot(self) -> dict:
        values = {name: getattr(self, name) for name in self.__dataclass_fields__}
        del values["on_sale"], values["length"]
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


def renewal_window() -> timedelta:
    return timedelta(days=settings.get("renewal_window_days"))


def open_order(customer: Customer, exclude: Order | None = None) -> Order | None:
    """Rule 7: the customer's order still awaiting payment or approval, if any.

    An unpaid card checkout stops counting once it expires (it is abandoned).
    """
    statement = select(Order).where(
        Order.customer_id == customer.id, Order.status == OrderState.PENDING,
        Order.kind != OrderKind.BALANCE,  # a top-up waiting for its money blocks no purchase
        Order.payment_status.in_((MoneyState.UNPAID, MoneyState.REFUNDED)),
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
        expiry = holdings.subscription_expiry(customer) if customer.package_type == PackageType.SUBSCRIPTION else None
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
        kind = OrderKind.NEW
    elif current == package.type:
        kind = OrderKind.TOP_UP if package.type == PackageType.CREDIT else OrderKind.RENEWAL
    else:
        kind = OrderKind.SWITCH
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
    if package.type == PackageType.CREDIT:
        if kind == OrderKind.SWITCH and expiry is not None and expiry > moment:
            preview.forfeit_subscription_until = expiry
        preview.new_credits = (customer.credits if kind == "top-up" else 0) + package.credits
        if preview.new_credits > ledger.MAX_BALANCE:
            preview.allowed = False
            preview.reason_code = "balance_limit"
            preview.reason = ledger.BalanceLimit().message
        return preview

    if kind == OrderKind.SWITCH:
        preview.forfeit_credits = customer.credits
    start = moment
    if kind == OrderKind.RENEWAL and expiry is not None and expiry > moment:
        opens = expiry - standing.window
        preview.renewable_from = opens
        # A restoration (an offer of `length`: what Cancel or Fraud took, given back for money we kept) is paid
        # time, not a new purchase: a renewal bought ahead meanwhile must not shut it out until the window opens
        if moment < opens and package.length is None:
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
    preview.new_expiry = start + (package.length if package.length is not None else timedelta(days=package.days))
    return preview
