"""The fraud check on every new customer order (WHMCS): a score from rules agents tune in the settings.

Each rule adds its points when it fires, and the order keeps every rule's
contribution so the agent sees why. At or above the threshold the order goes
straight to Fraud and nothing is activated or sent to the bank.
"""
from datetime import timedelta

from flask_babel import gettext as _
from sqlalchemy import func, or_, select

from ..extensions import db
from ..models import Customer, Order, PaymentAttempt
from . import settings
from .clock import now

RULES = ("failed_cards", "many_orders", "unverified_email", "price_above_usual")


def score(order: Order, customer: Customer) -> tuple[int, list[dict]]:
    """The order's score and the rules that fired, as [{"rule", "points", "detail"}]."""
    values = settings.get_all()
    checks = []

    def fire(rule: str, points: int, detail: str) -> None:
        if points > 0:
            checks.append({"rule": rule, "points": points, "detail": detail})

    moment = now()
    same_buyer = or_(Order.customer_id == customer.id, Order.ip == order.ip) if order.ip else (
        Order.customer_id == customer.id)
    failed = db.session.scalar(
        select(func.count(PaymentAttempt.id)).join(Order, Order.id == PaymentAttempt.order_id)
        .where(same_buyer, PaymentAttempt.state == "failed", PaymentAttempt.updated_at >= moment - timedelta(hours=1))
    )
    if failed >= values["fraud_failed_cards_limit"]:
        fire("failed_cards", values["fraud_failed_cards_points"],
             _("%(count)d failed card payments by this customer or IP in the last hour.", count=failed))

    minutes = values["fraud_many_orders_minutes"]
    recent = db.session.scalar(select(func.count(Order.id)).where(
        same_buyer, Order.created_at >= moment - timedelta(minutes=minutes), Order.id != order.id))
    if recent + 1 >= values["fraud_many_orders_limit"]:
        fire("many_orders", values["fraud_many_orders_points"],
             _("%(count)d orders by this customer or IP in %(minutes)d minutes.", count=recent + 1, minutes=minutes))

    if customer.email_verified_at is None:
        fire("unverified_email", values["fraud_unverified_email_points"], _("The e-mail address is not verified."))

    usual = db.session.scalar(select(func.avg(Order.amount_minor)).where(
        Order.customer_id == customer.id, Order.payment_status == "paid", Order.currency == order.currency))
    factor = values["fraud_price_factor"]
    if usual and order.amount_minor > factor * usual:
        fire("price_above_usual", values["fraud_price_points"],
             _("The amount is more than %(factor)d times this customer's usual order.", factor=factor))
    return sum(check["points"] for check in checks), checks


def is_fraud(order: Order, customer: Customer) -> bool:
    """Score the order (recorded on it) and say whether it reaches the threshold."""
    if not settings.get("fraud_check_enabled"):
        return False
    order.fraud_score, order.fraud_checks = score(order, customer)
    return order.fraud_score >= settings.get("fraud_threshold")
