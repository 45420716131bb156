"""Placing an order (domain.md §6): a customer's own checkout, or an agent (or the API) ordering for a customer.

Both run the purchase rules on the locked customer, price the package, number the order and write its
invoice; they differ in what follows. A customer's order is fraud-checked and waits for its payment (a
card checkout expires after `card_checkout_minutes`, so an abandoned one does not block: rule 7). An
agent's is not fraud-checked, may buy n × the package (`quantity`), may override the price, always applies
the promo code the agent picked, and one paid manually or from the balance is paid, activated and Active at
once; one paid by card waits for the customer, who gets a payment link by e-mail.
"""
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from flask_babel import gettext as _
from sqlalchemy import select

from ..clock import now
from ..extensions import db
from ..formatting import format_money
from ..models import (
    Affiliate,
    Agent,
    Customer,
    MoneyState,
    Order,
    OrderKind,
    OrderState,
    Package,
    Payment,
    PaymentMethod,
    PromoCode,
)
from ..payments import gateways
from . import (
    ServiceError,
    ValidationFailed,
    audit,
    bank_transfer,
    card_payments,
    contracts,
    fraud,
    instalments,
    invoices,
    ledger,
    notifications,
    payments,
    promo_codes,
    purchase_rules,
    settings,
    top_ups,
)
from .lifecycle import move_order, settle
from .orders import payment_confirmed
from .packages import parse_price

NUMBER_DIGITS = 10
CUSTOMER_PAYMENT_METHODS = (PaymentMethod.CARD, PaymentMethod.BANK_TRANSFER, PaymentMethod.ACCOUNT_BALANCE)
AGENT_PAYMENT_METHODS = (PaymentMethod.MANUAL, PaymentMethod.BANK_TRANSFER, PaymentMethod.ACCOUNT_BALANCE,
                         PaymentMethod.CARD)
# How many of one package an agent's order may buy: a year of monthly periods, or a hundred credit packages.
MAX_QUANTITY = {"credit": 100, "subscription": 12}
CUSTOMER_NOTE_LENGTH = 500  # characters of the customer's note at checkout


def new_order_number() -> str:
    """A random 10-digit number that never starts with 0 and does not reveal how many orders exist."""
    while True:
        number = str(secrets.randbelow(9 * 10 ** (NUMBER_DIGITS - 1)) + 10 ** (NUMBER_DIGITS - 1))
        if db.session.scalar(select(Order.id).where(Order.number == number)) is None:
            return number


def has_bought(customer: Customer) -> bool:
    """Whether money (or an agent's grant) was ever accepted for one of the customer's orders, refunded since
    or not: such a customer already bought."""
    return db.session.scalar(select(Payment.id).join(Payment.order).where(
        Order.customer_id == customer.id, Payment.confirmed_at.is_not(None)).limit(1)) is not None


def checkout_refusal(customer: Customer) -> str | None:
    """Why the customer may not check out at all now, or None. DT: with "identity verification required" on,
    an individual who never bought must be identity-verified first; one who already bought keeps renewing
    and topping up unverified (turning the setting on blocks no existing customer)."""
    if (settings.get("require_identity_verification") and customer.account_type == "individual"
            and not customer.identity_verified and not has_bought(customer)):
        return _("Your identity must be verified by our team before you can buy a package. Send a photo or "
                 "scan of your identity document in an Account verification ticket: it is free.")
    return None


@dataclass
class Quote:
    """What an order of the package costs: price, promo discount, VAT (inside the total) and total."""

    price_minor: int
    discount_minor: int
    vat_rate_percent: int
    vat_minor: int
    total_minor: int
    currency: str
    promo: PromoCode | None


def quote(package: Package, promo_code: str | None = None, price_minor: int | None = None, *, quantity: int = 1,
          forced_promo: bool = False) -> Quote:
    """The price of `quantity` × the package now (at `price_minor` each, its price by default), with the promo
    code's discount on the total (a bad code raises ServiceError; `forced_promo`: see promo_codes.check)."""
    price = (package.price_minor if price_minor is None else price_minor) * quantity
    promo, discount = None, 0
    if promo_code and promo_code.strip():
        promo, discount = promo_codes.check(promo_code, package, price, forced=forced_promo)
    vat_rate, vat, total = invoices.order_totals(price - discount)
    return Quote(price, discount, vat_rate, vat, total, package.currency, promo)


def check_quantity(package: Package, quantity: int) -> None:
    """n × the package: from 1 to MAX_QUANTITY of its type."""
    most = MAX_QUANTITY[package.type]
    if not 1 <= quantity <= most:
        raise ValidationFailed({"quantity": [_("Order from 1 to %(most)d of this package.", most=most)]})


def check_customer_note(note: str | None) -> str | None:
    """The customer's note at checkout, trimmed, at most CUSTOMER_NOTE_LENGTH characters; None when empty."""
    note = (note or "").strip()
    if len(note) > CUSTOMER_NOTE_LENGTH:
        raise ServiceError("customer_note", _("Write at most %(max)d characters.", max=CUSTOMER_NOTE_LENGTH))
    return note or None


def place_customer_order(customer: Customer, package: Package, *, payment_method: str, actor: audit.Actor,
                         contracts_accepted: bool, language: str | None = None, ip: str | None = None,
                         promo_code: str | None = None, note: str | None = None,
                         affiliate: Affiliate | None = None, instalment_count: int = 1) -> Order:
    """The customer's own order, if the buyer accepted the distance-sale contracts, and the identity rule and
    the purchase rules (1–4, 7) allow it now. The contracts are kept with the order as filled in for it, in
    `language` (the page's; the customer's by default). At the fraud threshold it goes to Fraud and nothing
    happens to it; paid from the balance, it is paid at once and stays Pending for an agent's review. `note` is
    the customer's own note, shown on the order; `affiliate`: who referred the customer (affiliates.referrer);
    `instalment_count`: a card payment in that many instalments, with its surcharge (instalments.choose), 1 for
    a single payment."""
    if payment_method not in CUSTOMER_PAYMENT_METHODS:
        raise ServiceError("payment_method", _("Pay by card, by bank transfer or from your account balance."))
    contracts.require_acceptance(contracts_accepted)
    _require_transfer_account(payment_method, package.currency)
    refusal = checkout_refusal(customer)
    if refusal:
        raise ServiceError("identity_not_verified", refusal)
    order, customer = _new_order(customer, package, payment_method=payment_method, actor=actor, ip=ip,
                                 promo_code=promo_code, affiliate=affiliate, instalment_count=instalment_count,
                                 create_invoice=_invoiced(payment_method))
    order.customer_note = check_customer_note(note)
    contracts.freeze(order, customer, language or customer.language or settings.get("default_language"), ip)
    if _set_aside_as_fraud(order, customer, actor):
        return order
    _pay_at_once(order, actor)
    settle(order)
    return order


def _set_aside_as_fraud(order: Order, customer: Customer, actor: audit.Actor) -> bool:
    """The fraud check (fraud.py) of a customer's new order: at the threshold it goes to Fraud and nothing
    happens to it (no payment is taken, nothing goes to the bank); the agents are told."""
    if not fraud.is_fraud(order, customer):
        return False
    move_order(order, OrderState.FRAUD)
    promo_codes.release_use(order)
    settle(order)
    audit.record(actor, "order.fraud_check", order, number=order.number, score=order.fraud_score)
    notifications.order_set_to_fraud(order)
    return True


def place_agent_order(customer: Customer, package: Package, *, payment_method: str, actor: audit.Actor,
                      ip: str | None = None, promo_code: str | None = None, placed_by: Agent | None = None,
                      price_override_minor: int | None = None, create_invoice: bool = True,
                      send_confirmation: bool = False, send_invoice: bool = False, quantity: int = 1,
                      transfer_arrived: bool = False) -> Order:
    """An order an agent (`placed_by`) or the API places for the customer, if the purchase rules allow it:
    `quantity` × the package, at `price_override_minor` each if given, with the promo code applied whatever its
    terms (recorded as forced). Paid manually (money received outside the system) or from the balance, it is
    paid, activated and Active at once; by bank transfer it waits for Accept; by card the customer is mailed a
    payment link, which works until the order is paid, cancelled or expires (card_payments.PAYMENT_LINK_LIFETIME).
    `send_confirmation` and `send_invoice` mail the order confirmation and the invoice to the customer. An order
    to be paid by transfer needs an account in its currency, unless the transfer arrived already
    (`transfer_arrived`: an approved activation request, recorded at once)."""
    if payment_method not in AGENT_PAYMENT_METHODS:
        raise ServiceError("payment_method", _("An agent places orders paid manually, by bank transfer, from "
                                               "the account balance or by card through a payment link."))
    if price_override_minor is not None and price_override_minor < 0:
        raise ValidationFailed({"price_override": [_("The price must be 0 or more; 0 makes it free.")]})
    if not transfer_arrived:
        _require_transfer_account(payment_method, package.currency)
    if payment_method == PaymentMethod.CARD:  # else its link is mailed, every payment refused, and it blocks (rule 7)
        gateways.gateway().check_currency(package.currency)
    order, _customer = _new_order(customer, package, payment_method=payment_method, actor=actor, ip=ip,
                                  promo_code=promo_code, placed_by=placed_by,
                                  price_override_minor=price_override_minor,
                                  create_invoice=create_invoice and _invoiced(payment_method),
                                  quantity=quantity, forced_promo=True)
    if payment_method == PaymentMethod.CARD:
        order.expires_at = order.created_at + card_payments.PAYMENT_LINK_LIFETIME
        notifications.payment_link(order)
    _pay_at_once(order, actor)
    if order.holds_money and order.activated:
        move_order(order, OrderState.ACTIVE)
    settle(order)
    if send_confirmation:
        notifications.order_confirmation(order)
    if send_invoice:
        notifications.invoice_issued(order)
    return order


def _new_order(customer: Customer, package: Package, *, payment_method: str, actor: audit.Actor,
               ip: str | None, promo_code: str | None, placed_by: Agent | None = None,
               price_override_minor: int | None = None, create_invoice: bool = True, quantity: int = 1,
               forced_promo: bool = False, affiliate: Affiliate | None = None,
               instalment_count: int = 1) -> tuple[Order, Customer]:
    """Lock the customer, check the purchase rules, price the package and write the Pending order (with its
    invoice); returns it with the locked customer."""
    check_quantity(package, quantity)
    customer = ledger.lock_active_customer(customer.id)
    preview = purchase_rules.preview_purchase(customer, purchase_rules.Offer.of(package).times(quantity))
    if not preview.allowed:
        raise purchase_rules.PurchaseRefused(preview)
    moment = now()
    has_orders = db.session.scalar(select(Order.id).where(Order.customer_id == customer.id).limit(1)) is not None
    price = quote(package, promo_code, price_override_minor, quantity=quantity, forced_promo=forced_promo)
    if price.total_minor == 0 and payment_method in (PaymentMethod.CARD, PaymentMethod.BANK_TRANSFER):
        # A payment link for 0.00 the bank cannot take, or a transfer of nothing: the order would wait for ever
        raise ServiceError("nothing_to_pay", _("A free order has nothing to pay by card or bank transfer; place "
                                               "it as paid manually."))
    plan = instalments.choose(price.total_minor, package.currency, instalment_count, payment_method)
    if price.promo is not None:
        promo_codes.take_use(price.promo, forced=forced_promo)
    order = Order(
        number=new_order_number(), customer_id=customer.id, created_at=moment, customer_was_new=not has_orders,
        kind=preview.kind, package_id=package.id, package_snapshot=package.snapshot(),
        promo_code_id=price.promo.id if price.promo else None, promo_code=price.promo.code if price.promo else None,
        promo_use_held=price.promo is not None, promo_forced=forced_promo and price.promo is not None,
        quantity=quantity,
        discount_minor=price.discount_minor, amount_minor=plan.total_minor,
        vat_minor=price.vat_minor + invoices.vat_included(plan.surcharge_minor, price.vat_rate_percent),
        vat_rate_percent=price.vat_rate_percent, instalments=plan.count, surcharge_minor=plan.surcharge_minor,
        currency=package.currency, payment_method=payment_method, payment_status=MoneyState.UNPAID,
        status=OrderState.PENDING, ip=ip, placed_by_agent_id=placed_by.id if placed_by else None,
        affiliate_id=affiliate.id if affiliate else None,
        price_overridden=price_override_minor is not None and price_override_minor != package.price_minor,
        expires_at=_checkout_expiry(payment_method, moment),
    )
    db.session.add(order)
    if create_invoice:
        invoices.create_for_order(order)
    db.session.flush()
    audit.record(actor, "order.create", order, number=order.number, package=package.name,
                 method=payment_method, kind=preview.kind, agent=placed_by.email if placed_by else None,
                 quantity=quantity, promo=order.promo_code, promo_forced=order.promo_forced,
                 instalments=plan.count, surcharge_minor=plan.surcharge_minor)
    return order, customer


def _checkout_expiry(payment_method: str, moment: datetime) -> datetime | None:
    """A card checkout left unpaid is abandoned after `card_checkout_minutes` (rule 7 stops counting it)."""
    if payment_method != PaymentMethod.CARD:
        return None
    return moment + timedelta(minutes=settings.get("card_checkout_minutes"))


def _require_transfer_account(payment_method: str, currency: str) -> None:
    """Bank transfer is offered only when the seller has an active account in the currency to be paid into."""
    if payment_method == PaymentMethod.BANK_TRANSFER and not bank_transfer.accounts_for(currency):
        raise ServiceError("payment_method", _("Bank transfer is not available for this currency."))


def _invoiced(payment_method: str) -> bool:
    """An order paid from the balance gets no invoice when top-ups are invoiced as they are paid: that money was
    invoiced then (never the same money twice; see top_ups.py)."""
    return not (payment_method == PaymentMethod.ACCOUNT_BALANCE and top_ups.invoices_top_ups())


TOP_UP_CURRENCY = "TRY"
TOP_UP_PAYMENT_METHODS = (PaymentMethod.CARD, PaymentMethod.BANK_TRANSFER)


def place_top_up(customer: Customer, raw_amount: str, *, payment_method: str, actor: audit.Actor,
                 ip: str | None = None) -> Order:
    """The customer's order to add `raw_amount` (e.g. "250,00") TRY to their account balance, from the least to
    the most the settings allow (both included), paid by card in a single payment or by bank transfer; the
    balance is credited when it is paid (top_ups.credit). Invoiced when paid only if top-ups are invoiced."""
    if payment_method not in TOP_UP_PAYMENT_METHODS:
        raise ServiceError("payment_method", _("Top up by card or by bank transfer."))
    _require_transfer_account(payment_method, TOP_UP_CURRENCY)
    refusal = checkout_refusal(customer)
    if refusal:
        raise ServiceError("identity_not_verified", refusal)
    least, most = top_ups.limits()
    try:
        amount_minor = parse_price((raw_amount or "").strip())
    except ValueError as error:
        raise ValidationFailed({"amount": [str(error)]}) from None
    if not least <= amount_minor <= most:
        raise ValidationFailed({"amount": [_("Top up from %(least)s to %(most)s.",
                                             least=format_money(least, TOP_UP_CURRENCY),
                                             most=format_money(most, TOP_UP_CURRENCY))]})
    customer = ledger.lock_active_customer(customer.id)
    moment = now()
    settings.lock("top_up_invoicing", shared=True)  # the way it is invoiced cannot change until this commits
    invoiced = top_ups.invoices_top_ups()
    vat_rate = settings.get("vat_rate_percent") if invoiced else 0
    order = Order(
        number=new_order_number(), customer_id=customer.id, created_at=moment, kind=OrderKind.BALANCE,
        package_id=None, package_snapshot={"name": "Account balance top-up", "price_minor": amount_minor},
        quantity=1, amount_minor=amount_minor, discount_minor=0, instalments=1, surcharge_minor=0,
        vat_minor=invoices.vat_included(amount_minor, vat_rate) if invoiced else 0, vat_rate_percent=vat_rate,
        currency=TOP_UP_CURRENCY, payment_method=payment_method, payment_status=MoneyState.UNPAID,
        status=OrderState.PENDING, ip=ip,
        expires_at=_checkout_expiry(payment_method, moment),
    )
    db.session.add(order)
    if invoiced:
        invoices.create_for_order(order)
    db.session.flush()
    audit.record(actor, "order.create", order, number=order.number, kind=OrderKind.BALANCE, method=payment_method,
                 amount_minor=amount_minor)
    if not _set_aside_as_fraud(order, customer, actor):  # a stolen card's top-up would be spendable at once
        settle(order)
    return order


def _pay_at_once(order: Order, actor: audit.Actor) -> None:
    """An order paid from the account balance, or with money an agent received outside, is paid now."""
    if order.payment_method == PaymentMethod.ACCOUNT_BALANCE:
        payments.take_from_balance(order, order.amount_minor, actor)
        payment_confirmed(order, actor)
    elif order.payment_method == PaymentMethod.MANUAL:
        payments.record(order, PaymentMethod.MANUAL, order.amount_minor, actor)
        payment_confirmed(order, actor)
