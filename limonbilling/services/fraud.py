"""The fraud check on every new customer order (WHMCS): a score from rules agents tune in the settings.

Each rule adds its points when it fires, and the order keeps every rule's
contribution so the agent sees why. At or above the threshold the order goes
straight to Fraud and nothing is activated or sent to the bank.

The velocity rules (failed cards, many orders) look at the customer's own
history (domain.md §6a). An IP address is shared by offices and mobile
carriers, so it counts against a customer only when several *other*
customers failed card payments from it in the last hour, and on a customer's
first order the IP rule alone never reaches the threshold.
"""
from datetime import timedelta

from flask_babel import gettext as _
from flask_babel import ngettext
from sqlalchemy import func, select

from ..clock import now
from ..extensions import db
from ..models import Customer, Order, Payment, PaymentMethod, PaymentState
from . import settings

RULES = ("failed_cards", "many_orders", "unverified_email", "price_above_usual", "ip_failed_customers")
FAILED_CARDS_WINDOW = timedelta(hours=1)


def _failed_card_payments(since):
    """Card payments the bank refused since `since`, with their order (for its customer and IP address)."""
    return select(Payment.id).join(Order, Order.id == Payment.order_id).where(
        Payment.method == PaymentMethod.CARD, Payment.state == PaymentState.FAILED, Payment.updated_at >= since)


def _has_earlier_orders(order: Order, customer: Customer) -> bool:
    earlier = select(Order.id).where(Order.customer_id == customer.id)
    if order.id is not None:
        earlier = earlier.where(Order.id != order.id)
    return db.session.scalar(earlier.limit(1)) is not None


def score(order: Order, customer: Customer) -> tuple[int, list[dict]]:
    """The order's score and the rules that fired, as [{"rule", "points", "args"}]: the words are not stored,
    `describe` writes them in the reader's language (the customer who placed the order may read another)."""
    values = settings.get_all()
    checks = []

    def fire(rule: str, points: int, **args) -> None:
        if points > 0:
            checks.append({"rule": rule, "points": points, "args": args})

    moment = now()
    hour_ago = moment - FAILED_CARDS_WINDOW
    own_failures = _failed_card_payments(hour_ago).where(Order.customer_id == customer.id).subquery()
    failed = db.session.scalar(select(func.count()).select_from(own_failures))
    if failed >= values["fraud_failed_cards_limit"]:
        fire("failed_cards", values["fraud_failed_cards_points"], num=failed)

    minutes = values["fraud_many_orders_minutes"]
    recent_orders = select(func.count(Order.id)).where(
        Order.customer_id == customer.id, Order.created_at >= moment - timedelta(minutes=minutes))
    if order.id is not None:
        recent_orders = recent_orders.where(Order.id != order.id)
    recent = db.session.scalar(recent_orders)
    if recent + 1 >= values["fraud_many_orders_limit"]:
        fire("many_orders", values["fraud_many_orders_points"], num=recent + 1, minutes=minutes)

    if customer.email_verified_at is None:
        fire("unverified_email", values["fraud_unverified_email_points"])

    usual = db.session.scalar(select(func.avg(Order.amount_minor)).where(
        Order.customer_id == customer.id, Order.payment_status == "paid", Order.currency == order.currency))
    factor = values["fraud_price_factor"]
    if usual and order.amount_minor > factor * usual:
        fire("price_above_usual", values["fraud_price_points"], factor=factor)

    if order.ip:
        checks.extend(_ip_checks(order, customer, values, hour_ago, sum(check["points"] for check in checks)))
    return sum(check["points"] for check in checks), checks


def _ip_checks(order: Order, customer: Customer, values: dict, since, other_points: int) -> list[dict]:
    """The IP rule: at least `fraud_ip_failed_customers_limit` different customers other than this one had
    card payments refused from the order's IP address since `since`.

    On the customer's first order it may bring the score up to just below the threshold, never to it: a
    shared address alone does not send a first order to Fraud (the other rules still can)."""
    points = values["fraud_ip_failed_customers_points"]
    if points <= 0:
        return []
    failures = _failed_card_payments(since).add_columns(Order.customer_id).where(
        Order.ip == order.ip, Order.customer_id != customer.id).subquery()
    others = db.session.scalar(select(func.count(func.distinct(failures.c.customer_id))))
    if others < values["fraud_ip_failed_customers_limit"]:
        return []
    threshold, capped = values["fraud_threshold"], False
    if other_points < threshold and other_points + points >= threshold and not _has_earlier_orders(order, customer):
        points, capped = max(threshold - 1 - other_points, 0), True
    return [{"rule": "ip_failed_customers", "points": points, "args": {"num": others, "capped": capped}}]


def describe(check: dict) -> str:
    """A rule that fired, in the language of whoever reads it now (a page, an agent's e-mail). Checks recorded
    before the words were left out of the row keep the words they were stored with."""
    args, rule = check.get("args"), check.get("rule")
    if args is None:
        return check.get("detail", "")
    if rule == "failed_cards":
        return ngettext("%(num)d failed card payment by this customer in the last hour.",
                        "%(num)d failed card payments by this customer in the last hour.", args["num"])
    if rule == "many_orders":
        return ngettext("%(num)d order by this customer in %(minutes)d minutes.",
                        "%(num)d orders by this customer in %(minutes)d minutes.", args["num"],
                        minutes=args["minutes"])
    if rule == "unverified_email":
        return _("The e-mail address is not verified.")
    if rule == "price_above_usual":
        return _("The amount is more than %(factor)d times this customer's usual order.", factor=args["factor"])
    text = ngettext("%(num)d other customer had card payments refused from this IP address in the last hour.",
                    "%(num)d other customers had card payments refused from this IP address in the last hour.",
                    args["num"])
    if args.get("capped"):
        text = " ".join((text, _("Counted below the threshold: this is the customer's first order, and a shared "
                                 "address alone does not send it to Fraud.")))
    return text


def is_fraud(order: Order, customer: Customer) -> bool:
    """Score the order (recorded on it) and say whether it reaches the threshold."""
    if not settings.get("fraud_check_enabled"):
        return False
    order.fraud_score, order.fraud_checks = score(order, customer)
    return order.fraud_score >= settings.get("fraud_threshold")
